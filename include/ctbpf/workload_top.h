// Bounded top-K by workload, beside the top-K by source address: per network namespace,
// per cgroup and per process (the local process the kernel side names at insert and drop,
// include/ctbpf/event.h). Same Space-Saving bounds as the sources (heavy_hitters.h): exact
// while fewer than `capacity` workloads of a kind were seen, then every figure within its
// `activity_error`, and any workload not listed had at most untracked_bound() activity.
//
// Counts inserts (failed ones taken back), drops and early drops, and the insert rate.
// Entries per workload are not kept: destroy events carry no process, and a namespace's
// exact entry count is its table's (the kernel's count, in the live view's tables).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/decode.h"
#include "ctbpf/heavy_hitters.h"

namespace ctbpf {

enum class WorkloadKind : uint8_t { Netns = 0, Cgroup = 1, Process = 2 };
std::string_view workload_kind_name(WorkloadKind k);  // "netns", "cgroup", "process"

struct WorkloadKey {
    WorkloadKind kind = WorkloadKind::Netns;
    uint32_t netns = 0;            // Netns; for the others, where it was first seen
    uint64_t cgroup = 0;           // Cgroup and Process
    uint32_t pid = 0;              // Process (with comm: a reused pid is another process)
    std::array<char, 16> comm{};
    bool operator==(const WorkloadKey& o) const {
        return kind == o.kind && pid == o.pid && cgroup == o.cgroup && comm == o.comm &&
               (kind != WorkloadKind::Netns || netns == o.netns);
    }
};

struct WorkloadKeyHash {
    size_t operator()(const WorkloadKey& k) const noexcept;
};

struct WorkloadStats {
    WorkloadKey key;               // with the namespace (and cgroup) it was first seen in
    uint64_t inserts = 0, drops = 0, early_drops = 0;
    RateHistory insert_rate;
    uint64_t activity_error = 0;   // as SourceStats::activity_error
    bool named = false;            // key set (the slot's first event)
};

class WorkloadTop {
public:
    explicit WorkloadTop(size_t capacity_per_kind = 4096);
    void add(const Event& e);
    // Best `n` of a kind by `key` (Inserts, Rate1s, Rate10s or Drops; Entries sorts by inserts).
    std::vector<const WorkloadStats*> top(WorkloadKind kind, SortKey key, size_t n, uint64_t now_sec) const;
    uint64_t untracked_bound(WorkloadKind kind) const;
    size_t tracked(WorkloadKind kind) const;
    // Inserts and drops with no local process (forwarded, received, NATed, or sent from
    // softirq): they count under their namespace only, and under the socket's cgroup if any.
    uint64_t inserts_without_process() const { return no_process_inserts_; }
    uint64_t drops_without_process() const { return no_process_drops_; }

private:
    using Summary = SpaceSaving<WorkloadKey, WorkloadStats, WorkloadKeyHash>;
    void count(Summary& s, const WorkloadKey& k, const Event& e);
    std::array<Summary, 3> by_kind_;
    uint64_t no_process_inserts_ = 0, no_process_drops_ = 0;
};

}  // namespace ctbpf
