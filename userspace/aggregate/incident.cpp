#include "ctbpf/incident.h"

#include <climits>
#include <cstdlib>

#include <algorithm>

namespace ctbpf {

namespace {

const TableState* fullest(const std::vector<TableState>& tables) {
    const TableState* best = nullptr;
    for (const auto& t : tables)
        if (!best || t.fill() > best->fill()) best = &t;
    return best;
}

}  // namespace

std::string netns_marker(uint32_t inum, const std::string& name) { return "netns " + std::to_string(inum) + " " + name; }

bool parse_netns_marker(const std::string& text, uint32_t& inum, std::string& name) {
    if (!text.starts_with("netns ")) return false;
    const size_t sp = text.find(' ', 6);
    if (sp == std::string::npos) return false;
    char* end = nullptr;
    const unsigned long v = std::strtoul(text.c_str() + 6, &end, 10);
    if (end != text.c_str() + sp || v == 0 || v > UINT32_MAX) return false;
    inum = static_cast<uint32_t>(v);
    name = text.substr(sp + 1);
    return true;
}

Incident read_incident(const std::string& path, size_t capacity) {
    RecordingReader r(path);
    Incident in;
    in.header = r.header();
    in.agg = std::make_unique<Aggregator>(Aggregator::Options{capacity, capacity});
    in.workloads = std::make_unique<WorkloadTop>();
    const RecordingHeader& h = in.header;
    for (const auto& w : h.netns) in.netns_names[w.inum] = w.name;
    bool have_prev = false;
    Snapshot prev;
    auto note_time = [&](int64_t wall) {
        if (in.first_wall_ns == 0 || wall < in.first_wall_ns) in.first_wall_ns = wall;
        in.last_wall_ns = std::max(in.last_wall_ns, wall);
    };

    Frame f;
    while (r.next(f)) {
        switch (f.type) {
            case FrameType::Events:
                for (const Event& e : f.events) {
                    in.agg->add(e);
                    in.workloads->add(e);
                    in.events++;
                    const int64_t wall = h.wall_ns(e.ts_ns);
                    note_time(wall);
                    if (e.kind == EventKind::Drop) {
                        if (!in.drops_begin_wall_ns || wall < *in.drops_begin_wall_ns) in.drops_begin_wall_ns = wall;
                        if (!in.drops_end_wall_ns || wall > *in.drops_end_wall_ns) in.drops_end_wall_ns = wall;
                    }
                }
                break;
            case FrameType::Snapshot: {
                const Snapshot& s = f.snapshot;
                const int64_t wall = h.wall_ns(s.ts_ns);
                note_time(wall);
                in.totals = s.totals;
                TimelinePoint p;
                p.wall_ns = wall;
                if (const TableState* t = fullest(s.tables)) {
                    p.count = t->count;
                    p.max = t->max;
                    p.fill = t->fill();
                    in.peak_count = std::max(in.peak_count, t->count);
                    in.max = t->max;
                    in.buckets = t->buckets;
                    // The recording does not say how many CPUs inserted: table_is_full's
                    // floor of 1% of max covers a once-a-second sample during a storm.
                    if (table_is_full(*t) && !in.first_full_wall_ns) in.first_full_wall_ns = wall;
                }
                // Rates between consecutive snapshots (a gap, e.g. between triggered
                // captures, is not a second: skip it).
                if (have_prev && s.ts_ns > prev.ts_ns && s.ts_ns - prev.ts_ns < 5'000'000'000ull) {
                    const double dt = static_cast<double>(s.ts_ns - prev.ts_ns) / 1e9;
                    p.inserts_s = static_cast<double>(s.totals.insert - prev.totals.insert) / dt;
                    p.drops_s = static_cast<double>(s.totals.drop - prev.totals.drop) / dt;
                    p.early_drops_s = static_cast<double>(s.totals.early_drop - prev.totals.early_drop) / dt;
                    p.destroys_s = static_cast<double>(s.totals.destroy - prev.totals.destroy) / dt;
                }
                in.timeline.push_back(p);
                prev = s;
                have_prev = true;
                break;
            }
            case FrameType::Marker: {
                uint32_t inum = 0;
                std::string name;
                if (parse_netns_marker(f.marker, inum, name))
                    in.netns_names[inum] = name;
                else
                    in.markers.push_back({h.wall_ns(f.first_ts_ns), f.marker});
                break;
            }
            case FrameType::Baseline:
                // Written before the events: entries the recorder found in the table when it
                // started (already net of those it then saw inserted).
                for (const auto& [addr, n] : f.baseline.by_source) in.agg->add_baseline(f.baseline.netns, addr, n);
                in.baseline_entries += f.baseline.total;
                in.baseline = true;
                break;
            case FrameType::End:
                in.totals = f.end.totals;
                note_time(h.wall_ns(f.end.ts_ns));
                break;
        }
    }
    // Snapshots come once a second; a drop shows the table was already full (a drop is
    // almost always "table full"), so the first drop in the second before the first full
    // snapshot dates it more precisely.
    if (in.first_full_wall_ns && in.drops_begin_wall_ns && *in.drops_begin_wall_ns < *in.first_full_wall_ns &&
        *in.first_full_wall_ns - *in.drops_begin_wall_ns <= 1'100'000'000)
        in.first_full_wall_ns = in.drops_begin_wall_ns;
    in.clean_close = r.clean_close();
    in.warnings = r.warnings();
    return in;
}

}  // namespace ctbpf
