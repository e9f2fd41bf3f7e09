// One network namespace's conntrack table as the kernel counts it, and the one rule for
// "the table is full". Every layer that describes a table (the live session, recordings,
// the live view, reports) uses this type; nothing else defines fullness.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ctbpf {

struct TableState {
    uint32_t netns = 0;                     // inode number of the network namespace
    int64_t count = 0, max = 0, buckets = 0;  // nf_conntrack_{count,max,buckets}; max 0: no limit

    double fill() const { return max > 0 ? static_cast<double>(count) / static_cast<double>(max) : 0; }
    bool operator==(const TableState&) const = default;
};

// How far below max a full table can read. The kernel adds an entry to the count before it
// checks the limit and takes it back when the check fails (__nf_conntrack_alloc), so each
// CPU inside that window can hold one phantom slot; and a count sampled once a second
// during a storm sits a few entries under max while the gc worker and early drops free
// slots that the next packets take again. One entry per CPU, at least 1% of max.
inline int64_t full_slack(int64_t max, unsigned cpus) {
    return std::max<int64_t>({1, static_cast<int64_t>(cpus), max / 100});
}

// The table is full: new entries are refused and conntrack drops their packets. `cpus` is
// the number of CPUs that can be inserting at once (1 when unknown, e.g. in a recording).
inline bool table_is_full(const TableState& t, unsigned cpus = 1) {
    return t.max > 0 && t.count >= t.max - full_slack(t.max, cpus);
}

}  // namespace ctbpf
