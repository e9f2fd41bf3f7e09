#include "format.h"

#include "ctbpf/system.h"

#include <netinet/in.h>
#include <time.h>

#include <iterator>

#include <nlohmann/json.hpp>

namespace ctbpf::cli {

namespace {
std::string_view family_name(uint8_t f) { return f == AF_INET6 ? "ipv6" : f == AF_INET ? "ipv4" : "unknown"; }

// The namespace's name as given to --netns, else its inode.
std::string netns_label(const std::vector<WatchedNetns>& watched, uint32_t inum) {
    for (const auto& w : watched)
        if (w.inum == inum) return w.name;
    return std::to_string(inum);
}
}  // namespace

std::string iso8601_us(int64_t wall_ns) {
    // Floor division, so that times before 1970 (a wrong clock) still print sensibly.
    int64_t sec = wall_ns / 1'000'000'000, ns = wall_ns % 1'000'000'000;
    if (ns < 0) ns += 1'000'000'000, --sec;
    const time_t t = static_cast<time_t>(sec);
    tm tmv{};
    gmtime_r(&t, &tmv);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tmv);
    return fmt::format("{}.{:06d}Z", buf, ns / 1000);
}

// Events that carry the entry's state (not drops, nor events of recordings made before the
// state was recorded) add "state" and "status" (ct->status's low 16 bits, hex) after the
// fields every event has.
namespace {
std::string json_str(std::string_view v) {
    return nlohmann::json(std::string(v)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

void format_event_json(fmt::memory_buffer& out, const Event& e, std::string_view reason, int64_t wall_ns,
                       const EventNames* names) {
    fmt::format_to(std::back_inserter(out),
                   R"({{"type":"{}","ts_ns":{},"ts_wall":"{}","cpu":{},"netns":{},"zone":{},"family":"{}",)"
                   R"("proto":"{}","src":"{}","dst":"{}","sport":{},"dport":{},"reason":"{}")",
                   kind_name(e.kind), e.ts_ns, iso8601_us(wall_ns), e.cpu, e.netns, e.zone, family_name(e.src.family),
                   proto_name(e.proto), e.src.to_string(), e.dst.to_string(), e.sport, e.dport, reason);
    if (e.has_state)
        fmt::format_to(std::back_inserter(out), R"(,"state":"{}","status":"0x{:04x}")", state_name(e), e.ct_status);
    if (names) {
        fmt::format_to(std::back_inserter(out), R"(,"netns_name":{})", json_str(names->netns_name));
        if (e.kind == EventKind::Insert || e.kind == EventKind::Drop)
            fmt::format_to(std::back_inserter(out), R"(,"pid":{},"comm":{},"cgroup":{},"cgroup_id":{})", e.pid,
                           json_str(e.comm_view()), json_str(names->cgroup), e.cgroup);
    }
    fmt::format_to(std::back_inserter(out), "}}\n");
}

// The state goes last, so the fields before it keep their places.
void format_event_text(fmt::memory_buffer& out, const Event& e, std::string_view reason, int64_t wall_ns,
                       const EventNames* names) {
    fmt::format_to(std::back_inserter(out), "{} {:>17.6f} {:<13} {:<6} {}:{} -> {}:{} netns={} zone={} cpu={}{}{}",
                   iso8601_us(wall_ns), static_cast<double>(e.ts_ns) / 1e9, kind_name(e.kind), proto_name(e.proto),
                   e.src.to_string(), e.sport, e.dst.to_string(), e.dport, e.netns, e.zone, e.cpu,
                   reason.empty() ? "" : " ", reason);
    if (e.has_state) fmt::format_to(std::back_inserter(out), " state={}", state_name(e));
    if (e.pid) fmt::format_to(std::back_inserter(out), " pid={} comm={}", e.pid, e.comm_view());
    if (names && !names->cgroup.empty()) fmt::format_to(std::back_inserter(out), " cgroup={}", names->cgroup);
    if (names && !names->netns_name.empty() && names->netns_name != std::to_string(e.netns))
        fmt::format_to(std::back_inserter(out), " netns_name={}", names->netns_name);
    fmt::format_to(std::back_inserter(out), "\n");
}

std::string watching_line(const Session& s) {
    std::string names;
    if (s.watched().size() > 8)
        names = fmt::format("{} namespaces ({}, {}, ...)", s.watched().size(), s.watched()[0].name, s.watched()[1].name);
    else
        for (const auto& w : s.watched()) names += fmt::format("{}{}({})", names.empty() ? "" : ", ", w.name, w.inum);
    return fmt::format("ctbpf: watching netns {} with backend {} ({}); Ctrl-C to stop", names,
                       backend_name(s.choice().backend), s.choice().why);
}

std::string format_summary_json(const SummaryInput& s) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    const auto& k = s.kernel;
    fmt::format_to(out, R"({{"type":"summary","backend":"{}","duration_s":{:.3f},"netns":[)",
                   backend_name(s.choice.backend), s.duration_s);
    for (size_t i = 0; i < s.watched.size(); ++i)
        fmt::format_to(out, R"({}{{"name":"{}","inum":{}}})", i ? "," : "", s.watched[i].name, s.watched[i].inum);
    fmt::format_to(out,
                   R"(],"kernel":{{"insert":{},"drop":{},"early_drop":{},"insert_failed":{},"clash_resolved":{},)"
                   R"("destroy":{}}},"lost":{},"overflow":{},)",
                   k.insert, k.drop, k.early_drop, k.insert_failed, k.clash_resolved, k.destroy, k.lost, k.overflow);
    const auto& seen = s.agg.seen();
    fmt::format_to(out,
                   R"("delivered":{{"insert":{},"drop":{},"early_drop":{},"insert_failed":{},"destroy":{},)"
                   R"("drop_table_full":{}}},)",
                   seen[1], seen[2], seen[3], seen[4], seen[5], s.drops_table_full);
    // Which figures cover only the time since start, and whether `entries` includes the
    // entries that were already in the table (a start-up baseline).
    fmt::format_to(out,
                   R"("since_start":["inserts","drops","early_drops","destroys","insert_failed","inserts_per_s"],)"
                   R"("baseline":{{"taken":{},"entries":{}}},"entries_include_existing":{},"sources":[)",
                   s.baseline, s.baseline_entries, s.baseline);
    auto top = s.agg.top_sources(SortKey::Inserts, s.top, s.now_sec);
    for (size_t i = 0; i < top.size(); ++i) {
        const SourceStats& src = *top[i];
        fmt::format_to(out,
                       R"({}{{"addr":"{}","netns":{},"netns_name":"{}","inserts":{},"entries":{},)"
                       R"("entries_existing":{},"drops":{},"early_drops":{},"destroys":{},)"
                       R"("insert_failed":{},"inserts_per_s":{{"1s":{:.1f},"10s":{:.1f},"60s":{:.1f}}}}})",
                       i ? "," : "", src.addr.to_string(), src.netns, netns_label(s.watched, src.netns), src.inserts,
                       src.entries, src.baseline, src.drops, src.early_drops, src.destroys, src.insert_failed,
                       src.insert_rate.rate(s.now_sec, 1), src.insert_rate.rate(s.now_sec, 10),
                       src.insert_rate.rate(s.now_sec, 60));
    }
    fmt::format_to(out, R"(],"destinations":[)");
    auto dests = s.agg.top_destinations(s.top);
    for (size_t i = 0; i < dests.size(); ++i)
        fmt::format_to(out, R"({}{{"addr":"{}","netns":{},"port":{},"proto":"{}","drops":{}}})", i ? "," : "",
                       dests[i]->key.addr.to_string(), dests[i]->key.netns, dests[i]->key.port,
                       proto_name(dests[i]->key.proto), dests[i]->drops);
    fmt::format_to(out, "]}}\n");
    return fmt::to_string(b);
}

std::string format_summary_text(const SummaryInput& s) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    const auto& k = s.kernel;
    fmt::format_to(out, "--- summary: {:.1f} s, backend {}, netns", s.duration_s, backend_name(s.choice.backend));
    for (const auto& w : s.watched) fmt::format_to(out, " {}({})", w.name, w.inum);
    fmt::format_to(out,
                   "\nkernel totals: insert {}  drop {}  early_drop {}  insert_failed {}  clash_resolved {}  "
                   "destroy {}\nevents lost: {}  untracked nested calls (overflow): {}\n",
                   k.insert, k.drop, k.early_drop, k.insert_failed, k.clash_resolved, k.destroy, k.lost, k.overflow);
    auto top = s.agg.top_sources(SortKey::Inserts, s.top, s.now_sec);
    // With several namespaces the same address can be two hosts: say whose it is.
    const bool many = s.watched.size() > 1;
    auto who = [&](const SourceStats& src) {
        return many ? fmt::format("{} [{}]", src.addr.to_string(), netns_label(s.watched, src.netns))
                    : src.addr.to_string();
    };
    if (!top.empty()) fmt::format_to(out, "{:<40} {:>10} {:>10} {:>10} {:>10}\n", "source", "inserts", "entries", "drops", "early_drops");
    for (const auto* src : top)
        fmt::format_to(out, "{:<40} {:>10} {:>10} {:>10} {:>10}\n", who(*src), src->inserts, src->entries, src->drops,
                       src->early_drops);
    if (!top.empty())
        fmt::format_to(out, "(inserts, drops and early_drops: since start; entries: {})\n",
                       s.baseline ? fmt::format("live now, including the {} that were in the table at start",
                                                s.baseline_entries)
                                  : std::string("only those made since start (no start-up baseline)"));
    return fmt::to_string(b);
}

namespace {
std::string dur(double s) {
    if (s < 10) return fmt::format("{:.1f}s", s);
    return human_seconds(static_cast<uint64_t>(s));
}
}  // namespace

std::string composition_text(const Composition& c, uint64_t object_size, size_t max_rows) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    const double total = c.total ? static_cast<double>(c.total) : 1.0;
    fmt::format_to(out, "  {:<18} {:>9} {:>6}  {:<36} {:>9} {:>9}\n", "CLASS", "ENTRIES", "SHARE",
                   "HELD BY (net.netfilter.nf_conntrack_*)", "IDLE p50", "AGE p50");
    size_t rows = 0;
    for (const auto& k : c.classes) {
        if (rows++ == max_rows) {
            fmt::format_to(out, "  ({} more classes)\n", c.classes.size() - max_rows);
            break;
        }
        const std::string held = k.sysctl.empty() ? "-" : k.timeout_s ? fmt::format("{} = {}", k.sysctl, *k.timeout_s) : k.sysctl;
        std::string age = k.age.count ? dur(k.age.quantile(0.5)) : "-";
        if (k.age.count && k.age_at_least * 2 > k.age.count) age = ">" + age;  // mostly from before watching
        fmt::format_to(out, "  {:<18} {:>9} {:>5.1f}%  {:<36} {:>9} {:>9}{}\n", class_name(k.cls), k.entries,
                       100.0 * static_cast<double>(k.entries) / total, held,
                       k.idle.count ? dur(k.idle.quantile(0.5)) : "-", age,
                       k.stale ? fmt::format("  {} stale", k.stale) : "");
    }
    if (c.classes.empty()) fmt::format_to(out, "  (the table is empty)\n");
    if (!c.sources.empty()) {
        fmt::format_to(out, "  busiest sources:\n");
        for (size_t i = 0; i < c.sources.size() && i < 5; ++i) {
            const auto& s = c.sources[i];
            std::string parts;
            for (size_t j = 0; j < s.by_class.size() && j < 3; ++j)
                parts += fmt::format("{}{} {}", j ? ", " : "", s.by_class[j].second, class_name(s.by_class[j].first));
            fmt::format_to(out, "    {:<39} {:>9}  {}\n", s.addr.to_string(), s.entries, parts);
        }
    }
    for (const auto& d : c.silent)
        fmt::format_to(out, "  silent destination {}:{} ({}): {} entries, none replied\n", d.addr.to_string(), d.port,
                       proto_name(d.proto), d.unreplied);
    for (const auto& p : c.predictions) {
        if (static_cast<double>(p.entries_now) < 0.05 * total) continue;
        const uint64_t freed = p.entries_now > p.entries_after ? p.entries_now - p.entries_after : 0;
        fmt::format_to(out, "  if nf_conntrack_{} were {} instead of {}: about {} entries instead of {} ({} fewer, {})\n",
                       p.sysctl, p.to_s, p.from_s, c.total - freed, c.total, freed, human_bytes(freed * object_size));
    }
    fmt::format_to(out, "  (dump of {} entries took {:.3f} s)\n", c.total, c.dump_seconds);
    return fmt::to_string(b);
}

std::string lifetimes_text(const std::map<EntryClass, DurationHistogram>& by_class) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    fmt::format_to(out, "  {:<18} {:>9} {:>9} {:>9} {:>9}\n", "ENDED IN", "ENTRIES", "p50", "p90", "MEAN");
    std::vector<std::pair<EntryClass, const DurationHistogram*>> rows;
    for (const auto& [c, h] : by_class) rows.emplace_back(c, &h);
    std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second->count > b.second->count; });
    for (const auto& [c, h] : rows)
        fmt::format_to(out, "  {:<18} {:>9} {:>9} {:>9} {:>9}\n", class_name(c), h->count, dur(h->quantile(0.5)),
                       dur(h->quantile(0.9)), dur(h->mean()));
    return fmt::to_string(b);
}

}  // namespace ctbpf::cli
