// Reading a recording back as an incident: when the table filled, when drops began and
// ended, a per-second timeline, who inserted and who lost packets. Used by `ctbpf report`
// (and by exports); knows nothing of how it is shown.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/recording.h"

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
};

// Throws Error for a file that cannot be read at all (not a recording, newer version,
// truncated header); a damaged frame only adds a warning.
Incident read_incident(const std::string& path, size_t capacity = 1 << 16);

}  // namespace ctbpf
