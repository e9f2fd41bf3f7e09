#include "ctbpf/incident.h"

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

Incident read_incident(const std::string& path, size_t capacity) {
    RecordingReader r(path);
    Incident in;
    in.header = r.header();
    in.agg = std::make_unique<Aggregator>(Aggregator::Options{capacity, capacity});
    const RecordingHeader& h = in.header;
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
            case FrameType::Marker:
                in.markers.push_back({h.wall_ns(f.first_ts_ns), f.marker});
                break;
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
