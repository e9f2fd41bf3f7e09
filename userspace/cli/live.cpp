#include "live.h"

#include <fmt/format.h>

#include "ctbpf/baseline.h"
#include "ctbpf/error.h"
#include "ctbpf/netns.h"

namespace ctbpf::cli {

namespace {
// The dump costs about 2.5 us per entry here, nearly all of it the kernel's (250,000
// entries: 0.6 s; `conntrack -L` took 1.5 s): automatic up to 250,000 entries, so that the
// first answer comes within a second; asked for beyond.
constexpr int64_t kAutoBaselineMax = 250'000;
}  // namespace

std::optional<uint8_t> parse_proto(const std::string& p) {
    if (p.empty()) return std::nullopt;
    for (int n = 0; n < 256; ++n)
        if (proto_name(static_cast<uint8_t>(n)) == p) return static_cast<uint8_t>(n);
    throw Error(fmt::format("unknown protocol '{}': use tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre or a number", p), 2);
}

Live::Live(const LiveOptions& o) : agg_(Aggregator::Options{o.capacity, o.capacity}) {
    const auto backend = parse_backend(o.backend);
    if (!backend) throw Error(fmt::format("unknown backend '{}'", o.backend), 2);
    const auto proto = parse_proto(o.proto);
    auto on_record = [this, proto](std::span<const std::byte> rec) {
        auto e = decode_event(rec);
        if (!e) return;
        if (e->kind == EventKind::Drop) ++(fullness_->full(e->netns, e->ts_ns) ? drops_full_ : drops_other_);
        if (proto && e->proto != *proto) return;
        agg_.add(*e);
    };
    SessionOptions so;
    so.backend = *backend;
    so.netns = o.netns;
    session_ = std::make_unique<Session>(so, on_record);
    fullness_.emplace(*session_);
    Session& s = *session_;

    // What the table already holds: once, by netlink, if cheap enough (or asked for).
    bool baseline = false;
    int64_t baseline_entries = 0;
    double baseline_seconds = 0;
    int64_t existing = 0;
    for (const auto& w : s.watched())
        if (auto t = s.table(w.inum)) existing += t->count;
    if (o.baseline == "on" || (o.baseline == "auto" && existing <= kAutoBaselineMax)) {
        s.drain();
        for (const auto& w : s.watched()) {
            const Baseline b = dump_baseline(w.name);
            for (const auto& [addr, n] : b.by_source) agg_.add_baseline(addr, n);
            baseline_entries += b.total;
            baseline_seconds += b.seconds;
        }
        baseline = true;
    }

    // Timeouts and the slab object size, read once, inside the (first) watched namespace.
    TableFacts facts;
    try {
        NetnsFile ns(s.watched().front().name);
        NetnsEntry inside(ns);
        facts = read_table_facts();
    } catch (const Error&) {
        // conntrack not active there yet: the defaults in TableFacts serve
    }
    model_ = std::make_unique<WatchModel>(live_source(s), facts, baseline, baseline_entries, baseline_seconds);
}

}  // namespace ctbpf::cli
