// The one clock of live observation: CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns(), so
// that times read here compare with event timestamps.
#pragma once

#include <time.h>

#include <cstdint>

namespace ctbpf {

inline uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace ctbpf
