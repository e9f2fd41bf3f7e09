#include "ctbpf/live_view.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ctbpf/decode.h"
#include "ctbpf/clock.h"

namespace ctbpf {

ModelSource live_source(const Session& s) {
    ModelSource src{std::string(backend_name(s.choice().backend)), s.watched(), [&s] { return s.totals(); },
                    [&s](uint32_t netns) { return s.table(netns); }, [] { return monotonic_ns(); }};
    src.watched_now = [&s] { return s.watched(); };
    return src;
}

LiveModel::LiveModel(ModelSource src, TableFacts facts, bool baseline, int64_t baseline_entries,
                       double baseline_seconds)
    : s_(std::move(src)), facts_(std::move(facts)), baseline_(baseline), baseline_entries_(baseline_entries),
      baseline_seconds_(baseline_seconds),
      start_ns_(s_.now_ns()), prev_ns_(start_ns_), prev_(s_.totals()) {}

LiveSnapshot LiveModel::take(const Aggregator& agg, const DropCounts& drops, const ModelOptions& opt) {
    LiveSnapshot snap;
    const uint64_t drops_full_total = drops.table_full;
    snap.drops_other_total = drops.other;
    const uint64_t now = s_.now_ns();
    const double dt = std::max(1e-3, static_cast<double>(now - prev_ns_) / 1e9);
    snap.elapsed_s = static_cast<double>(now - start_ns_) / 1e9;
    snap.backend = s_.backend;

    if (s_.watched_now) s_.watched = s_.watched_now();
    for (const auto& w : s_.watched) {
        TableRow r;
        r.netns = w.inum;
        r.name = w.name;
        if (s_.is_gone && s_.is_gone(w.inum)) r.name += " (gone)";
        if (auto t = s_.table(w.inum)) static_cast<TableState&>(r) = *t;
        snap.tables.push_back(r);
    }
    if (snap.tables.empty()) {
        TableRow none;
        none.name = "none";
        snap.tables.push_back(none);
    }
    std::stable_sort(snap.tables.begin(), snap.tables.end(),
                     [](const TableRow& a, const TableRow& b) { return a.fill() > b.fill(); });
    const TableRow& top = snap.tables.front();

    // Judge the fullest table with the same rules as `ctbpf status`.
    TableFacts f = facts_;
    f.table = top;
    snap.object_size = f.object_size;
    snap.object_size_estimated = f.object_size_estimated;
    snap.mem_now = static_cast<uint64_t>(std::max<int64_t>(0, f.table.count)) * f.object_size;
    snap.mem_max = static_cast<uint64_t>(std::max<int64_t>(0, f.table.max)) * f.object_size;
    snap.baseline = baseline_;
    snap.baseline_entries = baseline_entries_;
    snap.baseline_seconds = baseline_seconds_;

    const KernelTotals t = s_.totals();
    snap.totals = t;
    auto per_s = [&](int64_t a, int64_t b) { return static_cast<double>(a - b) / dt; };
    snap.inserts_s = per_s(t.insert, prev_.insert);
    snap.destroys_s = per_s(t.destroy + t.early_drop, prev_.destroy + prev_.early_drop);
    snap.drops_s = per_s(t.drop, prev_.drop);
    // Delivered events and kernel counters are read at slightly different moments.
    snap.drops_full_s = std::min(snap.drops_s, static_cast<double>(drops_full_total - prev_drops_full_) / dt);
    snap.early_drops_s = per_s(t.early_drop, prev_.early_drop);
    snap.insert_failed_s = per_s(t.insert_failed, prev_.insert_failed);
    int64_t count_sum = 0;
    for (const auto& r : snap.tables) count_sum += r.count;
    snap.growth_s = prev_count_ < 0 ? snap.inserts_s - snap.destroys_s : per_s(count_sum, prev_count_);
    if (snap.growth_s > 0 && top.max > 0 && top.count < top.max)
        snap.seconds_to_full = static_cast<double>(top.max - top.count) / snap.growth_s;
    else if (top.max > 0 && top.count >= top.max)
        snap.seconds_to_full = 0;
    // The interval just observed is the window health is judged on; the history since
    // boot that `status` shows is not this view's business.
    RecentActivity recent;
    recent.seconds = dt;
    auto grew = [](int64_t a, int64_t b) { return static_cast<uint64_t>(std::max<int64_t>(0, a - b)); };
    recent.drop = grew(t.drop, prev_.drop);
    recent.early_drop = grew(t.early_drop, prev_.early_drop);
    recent.insert_failed = grew(t.insert_failed, prev_.insert_failed);
    recent.growth_per_s = snap.growth_s;
    f.recent = recent;
    f.counters.clear();
    f.kernel_log = KernelLog{};
    prev_ = t;
    prev_ns_ = now;
    prev_count_ = count_sum;
    prev_drops_full_ = drops_full_total;
    snap.drops_full_total = drops_full_total;

    rows(snap, agg, opt);

    // The level and its reasons come from the same rules as `ctbpf status`, judged on this
    // interval: every level above ok carries at least one reason, then the advice.
    // The kernel log is read at most every 10 s: it is the whole ring buffer each time.
    if (s_.other_incidents && (others_read_ns_ == 0 || now - others_read_ns_ >= 10'000'000'000ull)) {
        others_ = s_.other_incidents();
        others_read_ns_ = now;
    }
    f.other_incidents = others_;
    const Assessment as = assess(f);
    snap.level = as.health.level;
    if (snap.drops_s > 0)
        snap.alerts.push_back(fmt::format("conntrack is dropping packets: {:.0f}/s ({:.0f}/s with the table full)",
                                          snap.drops_s, snap.drops_full_s));
    for (const auto& r : as.health.reasons)
        if (r.rfind("conntrack dropped", 0) != 0) snap.alerts.push_back(r);
    if (snap.level != Level::Ok)
        for (const auto& a : as.advice) snap.alerts.push_back(fmt::format("advice: {}: {}", a.what, a.command));
    return snap;
}

void add_composition_advice(LiveSnapshot& snap) {
    for (const auto& c : snap.composition) {
        TableFacts f;
        for (const auto& t : snap.tables)
            if (t.netns == c.netns) f.table = t;
        f.object_size = snap.object_size ? snap.object_size : f.object_size;
        f.object_size_estimated = snap.object_size_estimated;
        f.timeouts = c.timeouts;
        f.netns.inode = c.netns;
        f.netns.initial = c.netns == kInitialNetnsInode;
        f.composition = c;
        const Assessment a = assess(f);
        for (const auto& item : a.advice) {
            bool ours = item.command.rfind("conntrack -D", 0) == 0;
            for (const auto& p : a.timeout_changes)
                ours |= item.command.find("nf_conntrack_" + p.sysctl + "=") != std::string::npos;
            if (ours) snap.alerts.push_back(fmt::format("advice: {}: {}", item.what, item.command));
        }
    }
}

namespace {
std::string netns_name(const std::vector<WatchedNetns>& watched, uint32_t inum) {
    for (const auto& w : watched)
        if (w.inum == inum) return w.name;
    return std::to_string(inum);
}
}  // namespace

void LiveModel::rows(LiveSnapshot& snap, const Aggregator& agg, const ModelOptions& opt) const {
    // Sources: best by the chosen key, filtered by prefix.
    const uint64_t now_sec = s_.now_ns() / 1'000'000'000ull;
    int64_t count_sum = 0;
    for (const auto& r : snap.tables) count_sum += r.count;
    snap.sources.clear();
    snap.destinations.clear();
    // "rate" ranks by the 10 s average: a burst that filled the table stays on top for ten
    // seconds after it stops instead of being overtaken by any source active this second.
    const SortKey key = opt.sort == SourceSort::Rate ? SortKey::Rate10s
                        : opt.sort == SourceSort::Entries ? SortKey::Entries
                                                          : SortKey::Drops;
    // Ranked over windows that end now, the second in progress included (shown, that second
    // would read low; ranked without it, a snapshot taken right after a burst put sources
    // idle since above the one that just filled the table).
    auto rows = agg.top_sources(key, opt.cidr ? agg.source_count() : opt.top, now_sec + 1);
    for (const SourceStats* s : rows) {
        if (opt.cidr && !opt.cidr->contains(s->addr)) continue;
        if (snap.sources.size() >= opt.top) break;
        SourceRow r;
        r.addr = s->addr;
        r.netns = s->netns;
        r.netns_name = netns_name(s_.watched, s->netns);
        r.inserts = s->inserts;
        r.drops = s->drops;
        r.early_drops = s->early_drops;
        r.rate_1s = s->insert_rate.rate(now_sec, 1);
        r.rate_10s = s->insert_rate.rate(now_sec, 10);
        r.entries = s->entries;
        r.activity_error = s->activity_error;
        r.share = count_sum > 0 ? static_cast<double>(s->entries) / static_cast<double>(count_sum) : 0;
        for (unsigned i = 0; i < 60; ++i) r.trend[i] = s->insert_rate.at(now_sec, now_sec - 60 + i);
        snap.sources.push_back(r);
    }
    snap.tracked = agg.source_count();
    snap.capacity = agg.source_capacity();
    snap.untracked_bound = agg.untracked_bound();
    snap.other_inserts = agg.other().inserts;
    snap.other_drops = agg.other().drops;
    snap.other_entries = agg.other().entries;
    snap.unattributed = count_sum - agg.attributed_entries();
    for (const DestStats* d : agg.top_destinations(opt.top))
        if (d->drops > 0)
            snap.destinations.push_back(
                {d->key.addr, d->key.port, d->key.proto, d->drops, d->key.netns, netns_name(s_.watched, d->key.netns)});

}

std::string sparkline(const std::array<uint32_t, 60>& v, size_t width) {
    static const char* kBars[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    width = std::min<size_t>(width, 60);
    // Each column sums 60/width seconds.
    std::vector<uint64_t> cols(width, 0);
    for (size_t i = 0; i < 60; ++i) cols[i * width / 60] += v[i];
    const uint64_t peak = *std::max_element(cols.begin(), cols.end());
    std::string out;
    for (uint64_t c : cols) out += kBars[peak == 0 ? 0 : (c == 0 ? 0 : 1 + (c * 7) / peak)];
    return out;
}

nlohmann::json to_json(const DurationHistogram& h) {
    nlohmann::json buckets = nlohmann::json::array();
    for (size_t i = 0; i < h.counts.size(); ++i)
        if (h.counts[i])
            buckets.push_back({{"le", i + 1 == h.counts.size() ? nlohmann::json("+Inf") : nlohmann::json(DurationHistogram::kBounds[i])},
                               {"count", h.counts[i]}});
    return {{"count", h.count}, {"sum_s", h.sum_s},        {"p50_s", h.quantile(0.5)},
            {"p90_s", h.quantile(0.9)}, {"p99_s", h.quantile(0.99)}, {"buckets", buckets}};
}

nlohmann::json lifetimes_json(const std::map<EntryClass, DurationHistogram>& by_class) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [cls, h] : by_class) {
        nlohmann::json row = to_json(h);
        row["proto"] = proto_name(cls.proto);
        row["state"] = state_name(cls.state);
        out.push_back(std::move(row));
    }
    return out;
}

nlohmann::json to_json(const Composition& c, uint64_t now_ns, uint64_t object_size) {
    using nlohmann::json;
    json j;
    j["netns"] = c.netns;
    j["total"] = c.total;
    j["dump_seconds"] = c.dump_seconds;
    if (now_ns) j["age_s"] = now_ns > c.taken_ns ? static_cast<double>(now_ns - c.taken_ns) / 1e9 : 0.0;
    j["classes"] = json::array();
    for (const auto& k : c.classes) {
        json row = {{"proto", proto_name(k.cls.proto)},
                    {"state", state_name(k.cls.state)},
                    {"entries", k.entries},
                    {"share", c.total ? static_cast<double>(k.entries) / static_cast<double>(c.total) : 0.0},
                    {"timeout_sysctl", k.sysctl.empty() ? json(nullptr) : json("nf_conntrack_" + k.sysctl)},
                    {"timeout_s", k.timeout_s ? json(*k.timeout_s) : json(nullptr)},
                    {"idle", to_json(k.idle)},
                    {"stale", k.stale}};
        if (k.age.count) {
            row["age"] = to_json(k.age);
            row["age_at_least"] = k.age_at_least;
        }
        j["classes"].push_back(std::move(row));
    }
    j["sources"] = json::array();
    for (const auto& src : c.sources) {
        json by = json::array();
        for (const auto& [cls, n] : src.by_class)
            by.push_back({{"proto", proto_name(cls.proto)}, {"state", state_name(cls.state)}, {"entries", n}});
        j["sources"].push_back({{"addr", src.addr.to_string()}, {"entries", src.entries}, {"by_state", by}});
    }
    j["silent_destinations"] = json::array();
    for (const auto& d : c.silent)
        j["silent_destinations"].push_back({{"addr", d.addr.to_string()}, {"port", d.port}, {"proto", proto_name(d.proto)},
                                            {"unreplied", d.unreplied}, {"oldest_s", d.oldest_s}});
    j["predictions"] = json::array();
    for (const auto& p : c.predictions) {
        const uint64_t freed = p.entries_now > p.entries_after ? p.entries_now - p.entries_after : 0;
        j["predictions"].push_back({{"sysctl", "nf_conntrack_" + p.sysctl},
                                    {"from_s", p.from_s},
                                    {"to_s", p.to_s},
                                    {"entries_now", p.entries_now},
                                    {"entries_after", p.entries_after},
                                    {"table_after", c.total - freed},
                                    {"bytes_freed", freed * object_size}});
    }
    return j;
}

nlohmann::json to_json(const LiveSnapshot& s) {
    using nlohmann::json;
    json j;
    j["type"] = "snapshot";
    j["elapsed_s"] = std::round(s.elapsed_s * 1000) / 1000;
    j["backend"] = s.backend;
    const TableRow& t = s.tables.front();
    j["table"] = {{"netns", t.name},
                  {"count", t.count},
                  {"max", t.max},
                  {"buckets", t.buckets},
                  {"fill", t.fill()},
                  {"memory_bytes", s.mem_now},
                  {"memory_at_max_bytes", s.mem_max},
                  {"object_size", s.object_size},
                  {"object_size_estimated", s.object_size_estimated},
                  {"baseline", s.baseline},
                  {"baseline_entries", s.baseline_entries},
                  {"baseline_seconds", s.baseline_seconds}};
    j["tables"] = json::array();
    for (const auto& r : s.tables)
        j["tables"].push_back({{"netns", r.name}, {"inum", r.netns}, {"count", r.count}, {"max", r.max},
                               {"buckets", r.buckets}, {"fill", r.fill()}});
    j["rates"] = {{"inserts_per_s", s.inserts_s},     {"destroys_per_s", s.destroys_s},
                  {"growth_per_s", s.growth_s},       {"drops_per_s", s.drops_s},
                  {"drops_table_full_per_s", s.drops_full_s}, {"early_drops_per_s", s.early_drops_s},
                  {"insert_failed_per_s", s.insert_failed_s}};
    j["seconds_to_full"] = s.seconds_to_full ? json(*s.seconds_to_full) : json(nullptr);
    j["totals"] = {{"insert", s.totals.insert},
                   {"drop", s.totals.drop},
                   {"early_drop", s.totals.early_drop},
                   {"insert_failed", s.totals.insert_failed},
                   {"clash_resolved", s.totals.clash_resolved},
                   {"destroy", s.totals.destroy},
                   {"lost", s.totals.lost},
                   {"overflow", s.totals.overflow}};
    j["sources"] = json::array();
    for (const auto& r : s.sources)
        j["sources"].push_back({{"addr", r.addr.to_string()},
                                {"netns", r.netns},
                                {"netns_name", r.netns_name},
                                {"inserts", r.inserts},
                                {"inserts_per_s", r.rate_1s},
                                {"inserts_per_s_10s", r.rate_10s},
                                {"entries", r.entries},
                                {"share", r.share},
                                {"drops", r.drops},
                                {"early_drops", r.early_drops},
                                {"activity_error", r.activity_error},
                                {"trend", r.trend},
                                {"lifetime", r.lifetime ? to_json(*r.lifetime) : nlohmann::json(nullptr)}});
    j["tracking"] = {{"sources", s.tracked},
                     {"capacity", s.capacity},
                     {"untracked_bound", s.untracked_bound},
                     {"other", {{"inserts", s.other_inserts}, {"drops", s.other_drops}, {"entries", s.other_entries}}},
                     {"unattributed", s.unattributed}};
    j["destinations"] = json::array();
    for (const auto& d : s.destinations)
        j["destinations"].push_back(
            {{"addr", d.addr.to_string()}, {"netns", d.netns}, {"netns_name", d.netns_name}, {"port", d.port},
             {"proto", proto_name(d.proto)}, {"drops", d.drops}});
    json w = json::object();
    for (WorkloadKind k : {WorkloadKind::Netns, WorkloadKind::Cgroup, WorkloadKind::Process}) {
        json rows = json::array();
        for (const auto& r : s.workloads) {
            if (r.kind != k) continue;
            json row = {{"netns", r.netns}, {"netns_name", r.netns_name}, {"inserts", r.inserts},
                        {"insert_rate_1s", r.rate_1s}, {"insert_rate_10s", r.rate_10s}, {"drops", r.drops},
                        {"early_drops", r.early_drops}, {"activity_error", r.activity_error}};
            if (k == WorkloadKind::Netns) row["entries"] = r.entries;
            if (k != WorkloadKind::Netns) {
                row["cgroup_id"] = r.cgroup;
                row["cgroup"] = r.cgroup_path;
                row["workload"] = r.workload;
            }
            if (k == WorkloadKind::Process) {
                row["pid"] = r.pid;
                row["comm"] = r.comm;
            }
            rows.push_back(std::move(row));
        }
        w[std::string(workload_kind_name(k))] = std::move(rows);
    }
    w["untracked_bound"] = {{"netns", s.workload_untracked_bound[0]},
                            {"cgroup", s.workload_untracked_bound[1]},
                            {"process", s.workload_untracked_bound[2]}};
    w["without_process"] = {{"inserts", s.inserts_without_process}, {"drops", s.drops_without_process}};
    j["workloads"] = std::move(w);
    j["level"] = std::string(level_name(s.level));
    j["composition"] = json::array();
    for (const auto& c : s.composition) {
        j["composition"].push_back(to_json(c, monotonic_ns(), s.object_size));
    }
    j["composition_errors"] = s.composition_errors;
    j["lifetimes"] = lifetimes_json(s.lifetimes);
    j["alerts"] = s.alerts;
    return j;
}

std::string workloads_text(const LiveSnapshot& s, size_t per_kind) {
    if (s.workloads.empty()) return "";
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    for (WorkloadKind k : {WorkloadKind::Netns, WorkloadKind::Cgroup, WorkloadKind::Process}) {
        size_t n = 0;
        for (const auto& r : s.workloads) {
            if (r.kind != k || n >= per_kind) continue;
            if (n++ == 0)
                fmt::format_to(out, "{:<47} {:>9} {:>9} {:>8} {:>9}\n",
                               k == WorkloadKind::Netns    ? "NETWORK NAMESPACE"
                               : k == WorkloadKind::Cgroup ? "CGROUP"
                                                           : "PROCESS",
                               "INS/S10", "INSERTS", "DROPS", k == WorkloadKind::Netns ? "ENTRIES" : "");
            std::string name;
            if (k == WorkloadKind::Netns) name = fmt::format("{} ({})", r.netns_name, r.netns);
            else if (k == WorkloadKind::Cgroup)
                name = r.workload.empty() ? (r.cgroup_path.empty() ? fmt::format("cgroup {}", r.cgroup) : r.cgroup_path)
                                          : r.workload;
            else
                name = fmt::format("{} {} [{}]", r.comm, r.pid, r.workload.empty() ? r.netns_name : r.workload);
            if (name.size() > 47) name = name.substr(0, 44) + "...";
            fmt::format_to(out, "{:<47} {:>9.1f} {:>9} {:>8} {:>9}\n", name, r.rate_10s, r.inserts, r.drops,
                           r.entries >= 0 ? std::to_string(r.entries) : std::string());
        }
    }
    if (s.inserts_without_process || s.drops_without_process)
        fmt::format_to(out, "(no local process: {} inserts, {} drops: forwarded, received or NATed traffic)\n",
                       s.inserts_without_process, s.drops_without_process);
    return fmt::to_string(b);
}

std::string to_text(const LiveSnapshot& s) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    const TableRow& t = s.tables.front();
    fmt::format_to(out, "ctbpf watch  {:.0f}s  backend {}  netns {}  [{}]\n", s.elapsed_s, s.backend, t.name,
                   level_name(s.level));
    fmt::format_to(out, "table {}/{} ({:.1f}%)  buckets {}  memory {} (at max {}){}\n", t.count, t.max, t.fill() * 100,
                   t.buckets, human_bytes(s.mem_now), human_bytes(s.mem_max),
                   s.baseline ? "" : "  occupancy: since start only");
    fmt::format_to(out, "inserts/s {:.0f}  destroys/s {:.0f}  growth/s {:+.0f}  full in {}\n", s.inserts_s,
                   s.destroys_s, s.growth_s,
                   s.seconds_to_full ? human_seconds(static_cast<uint64_t>(*s.seconds_to_full)) : std::string("-"));
    fmt::format_to(out, "drops/s {:.0f} (table full {:.0f})  early drops/s {:.0f}  insert failures/s {:.0f}  lost {}\n",
                   s.drops_s, s.drops_full_s, s.early_drops_s, s.insert_failed_s, s.totals.lost);
    for (const auto& a : s.alerts) fmt::format_to(out, "! {}\n", a);
    fmt::format_to(out, "{:<39} {:>9} {:>9} {:>9} {:>8} {:>6}\n", "SOURCE", "INS/S", "INS/S10", "ENTRIES", "DROPS",
                   "SHARE");
    // With several namespaces an address alone is ambiguous: name the namespace too.
    const bool many = s.tables.size() > 1;
    auto where = [&](const Address& a, const std::string& ns) {
        return many ? fmt::format("{} [{}]", a.to_string(), ns) : a.to_string();
    };
    int64_t count_sum = 0;
    for (const auto& r : s.tables) count_sum += r.count;
    auto share = [&](int64_t n) { return count_sum > 0 ? 100.0 * static_cast<double>(n) / static_cast<double>(count_sum) : 0.0; };
    for (const auto& r : s.sources)
        fmt::format_to(out, "{:<39} {:>9.0f} {:>9.1f} {:>9} {:>8} {:>5.1f}%\n", where(r.addr, r.netns_name), r.rate_1s,
                       r.rate_10s, r.entries, r.drops, r.share * 100);
    // The rows below the top ones, so that ENTRIES adds up to the table's count.
    if (s.other_entries != 0 || s.other_inserts != 0)
        fmt::format_to(out, "{:<39} {:>9} {:>9} {:>9} {:>8} {:>5.1f}%\n", "(other: untracked sources)", "", "",
                       s.other_entries, s.other_drops, share(s.other_entries));
    if (s.unattributed != 0)
        fmt::format_to(out, "{:<39} {:>9} {:>9} {:>9} {:>8} {:>5.1f}%\n", "(unattributed)", "", "", s.unattributed, "",
                       share(s.unattributed));
    if (!s.destinations.empty()) fmt::format_to(out, "{:<39} {:>6} {:>6} {:>9}\n", "LOSING PACKETS", "PORT", "PROTO", "DROPS");
    for (const auto& d : s.destinations)
        fmt::format_to(out, "{:<39} {:>6} {:>6} {:>9}\n", where(d.addr, d.netns_name), d.port, proto_name(d.proto),
                       d.drops);
    fmt::format_to(out, "{}", workloads_text(s, 5));
    return fmt::to_string(b);
}

}  // namespace ctbpf
