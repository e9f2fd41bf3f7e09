#include <algorithm>
#include "exposition.h"

#include <cmath>
#include <span>

#include <fmt/format.h>

namespace ctbpf::serve {

namespace {

enum class Type { Gauge, Counter, Info, Histogram };

// Writes families in either format. The formats differ only in how a family is announced:
// OpenMetrics names a counter without `_total` and an info family without `_info`, states
// units, and ends with `# EOF`.
class Writer {
public:
    explicit Writer(Format f) : f_(f) {}
    std::back_insert_iterator<fmt::memory_buffer> out() { return std::back_inserter(b_); }

    // `name` is the sample name (with `_total` / `_info`); `unit` must end the name if set.
    void family(std::string_view name, Type t, std::string_view help, std::string_view unit = {}) {
        std::string_view fam = name;
        if (f_ == Format::OpenMetrics) {
            if (t == Type::Counter) fam.remove_suffix(6);  // "_total"
            if (t == Type::Info) fam.remove_suffix(5);     // "_info"
        }
        const char* type = t == Type::Counter                                ? "counter"
                           : t == Type::Histogram                            ? "histogram"
                           : (t == Type::Info && f_ == Format::OpenMetrics) ? "info"
                                                                              : "gauge";
        fmt::format_to(out(), "# HELP {} {}\n# TYPE {} {}\n", fam, help, fam, type);
        if (f_ == Format::OpenMetrics && !unit.empty()) fmt::format_to(out(), "# UNIT {} {}\n", fam, unit);
    }

    void sample(std::string_view name, std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                double v) {
        fmt::format_to(out(), "{}", name);
        if (labels.size() > 0) {
            char sep = '{';
            for (const auto& [k, val] : labels) {
                fmt::format_to(out(), "{}{}=\"", sep, k);
                escape(val);
                b_.push_back('"');
                sep = ',';
            }
            b_.push_back('}');
        }
        b_.push_back(' ');
        number(v);
        b_.push_back('\n');
    }

    std::string finish() {
        if (f_ == Format::OpenMetrics) fmt::format_to(out(), "# EOF\n");
        return fmt::to_string(b_);
    }

private:
    void escape(std::string_view s) {
        for (char c : s) {
            if (c == '\\' || c == '"') b_.push_back('\\');
            if (c == '\n') {
                fmt::format_to(out(), "\\n");
                continue;
            }
            b_.push_back(c);
        }
    }
    void number(double v) {
        if (std::isnan(v)) fmt::format_to(out(), "NaN");
        else if (std::isinf(v)) fmt::format_to(out(), "{}Inf", v > 0 ? '+' : '-');
        // Integers as integers (counters read best that way); others shortest round-trip.
        else if (v == std::floor(v) && std::fabs(v) < 1e15) fmt::format_to(out(), "{}", static_cast<int64_t>(v));
        else fmt::format_to(out(), "{}", v);
    }

    Format f_;
    fmt::memory_buffer b_;
};

double d(int64_t v) { return static_cast<double>(v); }
double d(uint64_t v) { return static_cast<double>(v); }

}  // namespace

std::string_view content_type(Format f) {
    return f == Format::OpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                    : "text/plain; version=0.0.4; charset=utf-8";
}

Format negotiate(std::string_view accept) {
    return accept.find("application/openmetrics-text") != std::string_view::npos ? Format::OpenMetrics
                                                                                : Format::PrometheusText;
}

namespace {
constexpr size_t kStateSeries = 16, kLifetimeClasses = 8;
}  // namespace

size_t series_ceiling(size_t tables, size_t top_k) {
    tables = std::min(tables, top_k);  // the per-table families list the top-K fullest
    // build_info, 5 per table + time to full, 8 totals (drops has three reasons),
    // 3 tracking gauges (with unattributed entries), 4 per-source families and 1 destination
    // family of top_k each. The netns label on per-source series adds no series: each
    // family still lists top_k (namespace, address) rows.
    // Composition: at most kStateSeries classes per table, and lifetimes for at most
    // kLifetimeClasses classes, each with its buckets, _sum and _count.
    // Workloads: two families (inserts, drops) of top_k per kind (namespace, cgroup, process).
    return 1 + 5 * tables + 1 + 8 + 3 + 5 * top_k + kStateSeries * tables +
           kLifetimeClasses * (DurationHistogram::kBounds.size() + 2) + 2 * 3 * top_k;
}

std::string render(const LiveSnapshot& s, const TopK& top, const Exposition& e, Format f) {
    Writer w(f);
    w.family("ctbpf_build_info", Type::Info, "ctbpf's version and the attach backend in use");
    w.sample("ctbpf_build_info", {{"version", e.version}, {"backend", s.backend}}, 1);

    // The table, per watched network namespace: the top-K fullest (--all-netns on a host
    // of hundreds of containers must not make a series per namespace).
    const std::span<const TableRow> tables(s.tables.data(), std::min(s.tables.size(), e.top_k));
    w.family("ctbpf_conntrack_entries", Type::Gauge, "Entries in the conntrack table (nf_conntrack_count)");
    for (const auto& t : tables) w.sample("ctbpf_conntrack_entries", {{"netns", t.name}}, d(t.count));
    w.family("ctbpf_conntrack_entries_limit", Type::Gauge, "Most entries the table may hold (nf_conntrack_max)");
    for (const auto& t : tables) w.sample("ctbpf_conntrack_entries_limit", {{"netns", t.name}}, d(t.max));
    w.family("ctbpf_conntrack_buckets", Type::Gauge, "Hash buckets of the table (nf_conntrack_buckets)");
    for (const auto& t : tables) w.sample("ctbpf_conntrack_buckets", {{"netns", t.name}}, d(t.buckets));
    w.family("ctbpf_conntrack_fill_ratio", Type::Gauge, "Entries divided by the limit (1 = full: new flows are dropped)",
             "ratio");
    for (const auto& t : tables) w.sample("ctbpf_conntrack_fill_ratio", {{"netns", t.name}}, t.fill());
    w.family("ctbpf_conntrack_memory_bytes", Type::Gauge, "Slab memory held by the table's entries", "bytes");
    for (const auto& t : tables)
        w.sample("ctbpf_conntrack_memory_bytes", {{"netns", t.name}}, d(static_cast<uint64_t>(std::max<int64_t>(0, t.count))) * d(s.object_size));
    w.family("ctbpf_conntrack_time_to_full_seconds", Type::Gauge,
             "Seconds until the fullest table is full at its current growth (+Inf when not growing, 0 when full)",
             "seconds");
    w.sample("ctbpf_conntrack_time_to_full_seconds", {{"netns", s.tables.front().name}},
             s.seconds_to_full ? *s.seconds_to_full : INFINITY);

    // Exact in-kernel totals since ctbpf started, over all watched namespaces.
    const KernelTotals& k = s.totals;
    w.family("ctbpf_conntrack_inserts_total", Type::Counter, "Entries inserted (confirmed)");
    w.sample("ctbpf_conntrack_inserts_total", {}, d(k.insert));
    w.family("ctbpf_conntrack_destroys_total", Type::Counter, "Entries removed (timeout or deletion; early drops not included)");
    w.sample("ctbpf_conntrack_destroys_total", {}, d(k.destroy));
    // By reason, from the drop events as they were delivered, so that each series only
    // grows; their sum trails the kernel's total by the events still in the ring buffer.
    w.family("ctbpf_conntrack_drops_total", Type::Counter,
             "Packets conntrack dropped; reason=table_full when the table was full, unknown when the event was lost");
    w.sample("ctbpf_conntrack_drops_total", {{"reason", "table_full"}}, d(s.drops_full_total));
    w.sample("ctbpf_conntrack_drops_total", {{"reason", "other"}}, d(s.drops_other_total));
    w.sample("ctbpf_conntrack_drops_total", {{"reason", "unknown"}}, d(k.lost_drop));
    w.family("ctbpf_conntrack_early_drops_total", Type::Counter, "Unassured entries evicted to make room (early_drop)");
    w.sample("ctbpf_conntrack_early_drops_total", {}, d(k.early_drop));
    w.family("ctbpf_conntrack_insert_failures_total", Type::Counter, "Entries that failed to insert (unresolved clashes)");
    w.sample("ctbpf_conntrack_insert_failures_total", {}, d(k.insert_failed));
    w.family("ctbpf_events_lost_total", Type::Counter,
             "Events the ring buffer could not take (totals above stay exact; per-source detail misses them)");
    w.sample("ctbpf_events_lost_total", {}, d(k.lost));

    w.family("ctbpf_tracked_sources", Type::Gauge, "Sources tracked individually now");
    w.sample("ctbpf_tracked_sources", {}, d(s.tracked));
    w.family("ctbpf_tracked_sources_limit", Type::Gauge, "Most sources tracked at once (--capacity): bounds memory");
    w.sample("ctbpf_tracked_sources_limit", {}, d(s.capacity));
    w.family("ctbpf_unattributed_entries", Type::Gauge,
             "Entries in the watched tables no source accounts for: table count minus per-source and other entries "
             "(0 when they add up; negative when entries made during the start-up dump were counted twice)");
    w.sample("ctbpf_unattributed_entries", {}, d(s.unattributed));

    // Bounded per-source detail: each family holds its own top-K, never more.
    auto first = [&](const auto& v) { return std::span(v.data(), std::min(v.size(), e.top_k)); };
    std::string addr;
    w.family("ctbpf_source_inserts_total", Type::Counter,
             "Entries inserted by this source since ctbpf started (the top-K sources by insert rate)");
    for (const auto& r : first(top.by_rate))
        w.sample("ctbpf_source_inserts_total", {{"source", addr = r.addr.to_string()}, {"netns", r.netns_name}}, d(r.inserts));
    w.family("ctbpf_source_insert_rate", Type::Gauge,
             "Entries inserted per second by this source over the last 10 s (the top-K by insert rate)");
    for (const auto& r : first(top.by_rate))
        w.sample("ctbpf_source_insert_rate", {{"source", addr = r.addr.to_string()}, {"netns", r.netns_name}}, r.rate_10s);
    w.family("ctbpf_source_entries", Type::Gauge, "Live entries this source holds in the table (the top-K by entries)");
    for (const auto& r : first(top.by_entries))
        w.sample("ctbpf_source_entries", {{"source", addr = r.addr.to_string()}, {"netns", r.netns_name}}, d(r.entries));
    w.family("ctbpf_source_drops_total", Type::Counter, "Packets from this source conntrack dropped (the top-K by drops)");
    for (const auto& r : first(top.by_drops))
        if (r.drops > 0)
            w.sample("ctbpf_source_drops_total", {{"source", addr = r.addr.to_string()}, {"netns", r.netns_name}}, d(r.drops));
    w.family("ctbpf_destination_drops_total", Type::Counter,
             "Packets to this service conntrack dropped: who loses packets (the top-K by drops)");
    for (const auto& r : first(top.destinations)) {
        const std::string port = std::to_string(r.port), proto = proto_name(r.proto);
        w.sample("ctbpf_destination_drops_total",
                 {{"destination", addr = r.addr.to_string()}, {"netns", r.netns_name}, {"port", port}, {"proto", proto}},
                 d(r.drops));
    }

    // Which workloads: the top-K namespaces, cgroups and processes (--all-netns on a
    // container host), each kind bounded like the sources.
    auto workload_labels = [](const WorkloadRow& r) {
        std::string name;
        if (r.kind == WorkloadKind::Netns) name = r.netns_name;
        else if (r.kind == WorkloadKind::Cgroup)
            name = !r.workload.empty() ? r.workload : !r.cgroup_path.empty() ? r.cgroup_path : std::to_string(r.cgroup);
        else name = fmt::format("{} {}", r.comm, r.pid);
        return std::vector<std::pair<std::string, std::string>>{
            {"kind", std::string(workload_kind_name(r.kind))}, {"workload", name}, {"netns", r.netns_name}};
    };
    auto per_kind = [&](const std::vector<WorkloadRow>& rows, auto&& emit) {
        size_t n[3] = {0, 0, 0};
        for (const auto& r : rows)
            if (n[static_cast<size_t>(r.kind)]++ < e.top_k) emit(r);
    };
    w.family("ctbpf_workload_inserts_total", Type::Counter,
             "Entries inserted by this namespace, cgroup or process (the top-K of each kind by insert rate)");
    per_kind(top.workloads_by_rate, [&](const WorkloadRow& r) {
        const auto l = workload_labels(r);
        w.sample("ctbpf_workload_inserts_total", {{"kind", l[0].second}, {"workload", l[1].second}, {"netns", l[2].second}},
                 d(r.inserts));
    });
    w.family("ctbpf_workload_drops_total", Type::Counter,
             "Packets of this namespace, cgroup or process conntrack dropped (the top-K of each kind by drops)");
    per_kind(top.workloads_by_drops, [&](const WorkloadRow& r) {
        if (r.drops == 0) return;
        const auto l = workload_labels(r);
        w.sample("ctbpf_workload_drops_total", {{"kind", l[0].second}, {"workload", l[1].second}, {"netns", l[2].second}},
                 d(r.drops));
    });

    // What the entries are (the last dump of each table) and how long ended ones lived.
    w.family("ctbpf_conntrack_entries_by_state", Type::Gauge,
             "Entries by protocol and state at the last dump of the table (TCP: its state; others: "
             "UNREPLIED, REPLIED or ASSURED); the largest classes of each table");
    for (const auto& c : s.composition) {
        std::string ns;
        for (const auto& t : tables)
            if (t.netns == c.netns) ns = t.name;
        if (ns.empty()) continue;  // not among the top-K tables
        for (size_t i = 0; i < c.classes.size() && i < kStateSeries; ++i) {
            const auto& k = c.classes[i];
            const std::string proto = proto_name(k.cls.proto), state = state_name(k.cls.state);
            w.sample("ctbpf_conntrack_entries_by_state", {{"netns", ns}, {"proto", proto}, {"state", state}},
                     d(k.entries));
        }
    }
    w.family("ctbpf_conntrack_entry_lifetime_seconds", Type::Histogram,
             "How long ended entries lived, by the protocol and state they ended in (entries whose insert "
             "was seen)",
             "seconds");
    std::vector<std::pair<EntryClass, const DurationHistogram*>> lt;
    for (const auto& [c, h] : s.lifetimes) lt.emplace_back(c, &h);
    std::stable_sort(lt.begin(), lt.end(), [](auto& a, auto& b) { return a.second->count > b.second->count; });
    if (lt.size() > kLifetimeClasses) lt.resize(kLifetimeClasses);
    std::sort(lt.begin(), lt.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (const auto& [c, h] : lt) {
        const std::string proto = proto_name(c.proto), state = state_name(c.state);
        uint64_t cum = 0;
        for (size_t i = 0; i < h->counts.size(); ++i) {
            cum += h->counts[i];
            const bool inf = i + 1 == h->counts.size();
            const std::string le = inf ? "+Inf" : fmt::format("{}", DurationHistogram::kBounds[i]);
            w.sample("ctbpf_conntrack_entry_lifetime_seconds_bucket", {{"proto", proto}, {"state", state}, {"le", le}},
                     d(cum));
        }
        w.sample("ctbpf_conntrack_entry_lifetime_seconds_sum", {{"proto", proto}, {"state", state}}, h->sum_s);
        w.sample("ctbpf_conntrack_entry_lifetime_seconds_count", {{"proto", proto}, {"state", state}}, d(h->count));
    }
    return w.finish();
}

}  // namespace ctbpf::serve
