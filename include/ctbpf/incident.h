// Reading a recording back as an incident: when the table filled, when drops began and
// ended, a per-second timeline, who inserted and who lost packets. Used by `ctbpf report`
// (and by exports); knows nothing of how it is shown.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/recording.h"
#include "ctbpf/workload_top.h"

namespace ctbpf {

struct TimelinePoint {
    int64_t wall_ns = 0;
    int64_t count = 0, max = 0;  // the fullest watched table
    double fill = 0;
    double inserts_s = 0, drops_s = 0, early_drops_s = 0, destroys_s = 0;
};

struct Marker {
    int64_t wall_ns = 0;
    std::string text;
};

struct Incident {
    RecordingHeader header;
    bool clean_close = false;
    std::vector<std::string> warnings;  // damaged or truncated frames, as the reader found
    std::vector<Marker> markers;        // e.g. "trigger fired: fill>=90%"
    int64_t first_wall_ns = 0, last_wall_ns = 0;
    std::optional<int64_t> first_full_wall_ns;  // table at >= 99% of max
    std::optional<int64_t> drops_begin_wall_ns, drops_end_wall_ns;
    int64_t peak_count = 0, max = 0, buckets = 0;
    std::vector<TimelinePoint> timeline;  // one point per recorded snapshot (once a second)
    KernelTotals totals;   // exact, over the recording (last snapshot or end frame)
    uint64_t events = 0;   // event records read
    // The recording holds a start-up baseline (version 2): `entries` then include what the
    // table held before recording began; without it they count only entries made since.
    bool baseline = false;
    int64_t baseline_entries = 0;  // what the start-up dumps found, all namespaces
    std::unique_ptr<Aggregator> agg;
    // Top namespaces, cgroups and processes over the recording (event layout 3; older
    // recordings have namespaces only), and every namespace's name: the header's, then the
    // "netns INUM NAME" markers `record --all-netns` writes as it finds namespaces (those
    // markers are not in `markers`).
    std::unique_ptr<WorkloadTop> workloads;
    std::map<uint32_t, std::string> netns_names;
};

// The marker `record` writes when it begins watching a namespace, and its reading.
std::string netns_marker(uint32_t inum, const std::string& name);
bool parse_netns_marker(const std::string& text, uint32_t& inum, std::string& name);

// Throws Error for a file that cannot be read at all (not a recording, newer version,
// truncated header); a damaged frame only adds a warning.
Incident read_incident(const std::string& path, size_t capacity = 1 << 16);

}  // namespace ctbpf
