// Whether a drop happened with the table full. Recent kernels keep the entry count where
// BPF cannot read it, so it is read here: the kernel side wakes us at the start of every
// drop storm, and a drop counts as table-full if the table was seen full within a second
// of it. (The kernel counts an entry before checking the limit and takes it back on
// failure, so a full table can read up to one entry per CPU below max.)
#pragma once

#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <unordered_map>

#include "ctbpf/kernel.h"

namespace ctbpf::cli {

inline uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class FullnessCache {
public:
    explicit FullnessCache(const Session& s) : s_(s), slack_(sysconf(_SC_NPROCESSORS_ONLN)) {}

    bool full(uint32_t netns, uint64_t event_ns) {
        const uint64_t now = monotonic_ns();
        auto& st = state_[netns];
        if (now - st.read_ns > 5'000'000) {
            st.read_ns = now;
            auto t = s_.table(netns);
            if (t && t->max > 0 && t->count + slack_ >= t->max) st.full_ns = now;
        }
        const uint64_t d = event_ns > st.full_ns ? event_ns - st.full_ns : st.full_ns - event_ns;
        return st.full_ns != 0 && d < 1'000'000'000ull;
    }

private:
    struct State {
        uint64_t read_ns = 0, full_ns = 0;
    };
    const Session& s_;
    int64_t slack_;
    std::unordered_map<uint32_t, State> state_;
};

}  // namespace ctbpf::cli
