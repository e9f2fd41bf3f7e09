#include "format.h"

#include <netinet/in.h>

#include <iterator>

namespace ctbpf::cli {

namespace {
std::string_view family_name(uint8_t f) { return f == AF_INET6 ? "ipv6" : f == AF_INET ? "ipv4" : "unknown"; }
}  // namespace

void format_event_json(fmt::memory_buffer& out, const Event& e, std::string_view reason) {
    fmt::format_to(std::back_inserter(out),
                   R"({{"type":"{}","ts_ns":{},"cpu":{},"netns":{},"zone":{},"family":"{}","proto":"{}",)"
                   R"("src":"{}","dst":"{}","sport":{},"dport":{},"reason":"{}"}})"
                   "\n",
                   kind_name(e.kind), e.ts_ns, e.cpu, e.netns, e.zone, family_name(e.src.family),
                   proto_name(e.proto), e.src.to_string(), e.dst.to_string(), e.sport, e.dport, reason);
}

void format_event_text(fmt::memory_buffer& out, const Event& e, std::string_view reason) {
    fmt::format_to(std::back_inserter(out), "{:>17.6f} {:<13} {:<6} {}:{} -> {}:{} netns={} zone={} cpu={}{}{}\n",
                   static_cast<double>(e.ts_ns) / 1e9, kind_name(e.kind), proto_name(e.proto), e.src.to_string(),
                   e.sport, e.dst.to_string(), e.dport, e.netns, e.zone, e.cpu, reason.empty() ? "" : " ",
                   reason);
}

std::string watching_line(const Session& s) {
    std::string names;
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
                   R"("drop_table_full":{}}},"sources":[)",
                   seen[1], seen[2], seen[3], seen[4], seen[5], s.drops_table_full);
    auto top = s.agg.top_sources(SortKey::Inserts, s.top, s.now_sec);
    for (size_t i = 0; i < top.size(); ++i) {
        const SourceStats& src = *top[i];
        fmt::format_to(out,
                       R"({}{{"addr":"{}","inserts":{},"entries":{},"drops":{},"early_drops":{},"destroys":{},)"
                       R"("insert_failed":{},"inserts_per_s":{{"1s":{:.1f},"10s":{:.1f},"60s":{:.1f}}}}})",
                       i ? "," : "", src.addr.to_string(), src.inserts, src.entries, src.drops, src.early_drops,
                       src.destroys, src.insert_failed, src.insert_rate.rate(s.now_sec, 1),
                       src.insert_rate.rate(s.now_sec, 10), src.insert_rate.rate(s.now_sec, 60));
    }
    fmt::format_to(out, R"(],"destinations":[)");
    auto dests = s.agg.top_destinations(s.top);
    for (size_t i = 0; i < dests.size(); ++i)
        fmt::format_to(out, R"({}{{"addr":"{}","port":{},"proto":"{}","drops":{}}})", i ? "," : "",
                       dests[i]->key.addr.to_string(), dests[i]->key.port, proto_name(dests[i]->key.proto),
                       dests[i]->drops);
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
    if (!top.empty()) fmt::format_to(out, "{:<40} {:>10} {:>10} {:>10} {:>10}\n", "source", "inserts", "entries", "drops", "early_drops");
    for (const auto* src : top)
        fmt::format_to(out, "{:<40} {:>10} {:>10} {:>10} {:>10}\n", src->addr.to_string(), src->inserts,
                       src->entries, src->drops, src->early_drops);
    return fmt::to_string(b);
}

}  // namespace ctbpf::cli
