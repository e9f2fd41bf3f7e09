// Presentation of events and summaries as text or JSON lines. Pure formatting.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ctbpf/aggregator.h"
#include "ctbpf/composition.h"
#include "ctbpf/decode.h"
#include "ctbpf/kernel.h"

namespace ctbpf::cli {

// Appends one event as an NDJSON line (with --json) or a human line. `wall_ns` is the
// event's CLOCK_REALTIME time (ts_ns + the session's or recording's mono_to_wall_ns).
// `names` (live, or a recording read on the host it was made on) adds the namespace's and the
// cgroup's names: "netns_name", and for inserts and drops "pid", "comm", "cgroup" (its path,
// "" unknown) and "cgroup_id" (0 and "" when the packet had no local process).
struct EventNames {
    std::string netns_name;
    std::string cgroup;
};
void format_event_json(fmt::memory_buffer& out, const Event& e, std::string_view reason, int64_t wall_ns,
                       const EventNames* names = nullptr);
void format_event_text(fmt::memory_buffer& out, const Event& e, std::string_view reason, int64_t wall_ns,
                       const EventNames* names = nullptr);
// "2026-11-30T12:34:56.123456Z": ISO 8601, UTC, microseconds (what logs are matched by).
std::string iso8601_us(int64_t wall_ns);

// What the entries are, as rows: class, entries, share, the timeout holding it, idle and age
// medians; then the busiest sources by state, silent destinations and the predictions.
std::string composition_text(const Composition& c, uint64_t object_size, size_t max_rows = 12);
// Lifetimes of ended entries by the class they ended in.
std::string lifetimes_text(const std::map<EntryClass, DurationHistogram>& by_class);

struct SummaryInput {
    const BackendChoice& choice;
    const std::vector<WatchedNetns>& watched;
    const KernelTotals& kernel;
    const Aggregator& agg;
    double duration_s;
    uint64_t now_sec;
    size_t top;
    uint64_t drops_table_full;  // delivered drop events seen while the table was full
    // A start-up baseline was added to `agg`: entries include what predates the start.
    bool baseline = false;
    int64_t baseline_entries = 0;
};

// "ctbpf: watching netns ... with backend ...": said on stderr once attached.
std::string watching_line(const Session& s);

std::string format_summary_json(const SummaryInput& s);
std::string format_summary_text(const SummaryInput& s);

}  // namespace ctbpf::cli
