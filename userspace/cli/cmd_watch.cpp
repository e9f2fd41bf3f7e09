// `ctbpf watch`: the live view. Full screen on a terminal; otherwise (or with --json /
// --once) one snapshot per interval as a JSON line or text, for scripts and tests.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "ctbpf/aggregator.h"
#include "ctbpf/baseline.h"
#include "ctbpf/error.h"
#include "ctbpf/netns.h"
#include "format.h"
#include "fullness.h"
#include "loop.h"
#include "watch_model.h"
#include "watch_tui.h"

namespace ctbpf::cli {

namespace {

// A dump of this many entries takes well under a second (libnetfilter_conntrack, measured
// in BENCHMARKS.md); beyond it the baseline is only taken when asked for.
constexpr int64_t kAutoBaselineMax = 250'000;

std::optional<uint8_t> parse_proto(const std::string& p) {
    if (p.empty()) return std::nullopt;
    for (int n = 0; n < 256; ++n)
        if (proto_name(static_cast<uint8_t>(n)) == p) return static_cast<uint8_t>(n);
    throw Error(fmt::format("unknown protocol '{}': use tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre or a number", p), 2);
}

}  // namespace

int cmd_watch(const WatchArgs& a) {
    const auto backend = parse_backend(a.backend);
    if (!backend) throw Error(fmt::format("unknown backend '{}'", a.backend), 2);
    ModelOptions mo;
    mo.top = a.top;
    if (!a.cidr.empty()) {
        mo.cidr = Cidr::parse(a.cidr);
        if (!mo.cidr) throw Error(fmt::format("--cidr '{}' is not an address or prefix (e.g. 10.0.0.0/8)", a.cidr), 2);
    }
    mo.sort = a.sort == "entries" ? SourceSort::Entries : a.sort == "drops" ? SourceSort::Drops : SourceSort::Rate;
    const auto proto = parse_proto(a.proto);
    const bool full_screen = !a.json && !a.once && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);

    block_stop_signals();
    Aggregator agg(Aggregator::Options{a.capacity, a.capacity});
    uint64_t drops_full = 0;
    std::optional<FullnessCache> fullness;
    auto on_record = [&](std::span<const std::byte> rec) {
        auto e = decode_event(rec);
        if (!e) return;
        if (e->kind == EventKind::Drop && fullness->full(e->netns, e->ts_ns)) drops_full++;
        if (proto && e->proto != *proto) return;
        agg.add(*e);
    };
    SessionOptions so;
    so.backend = *backend;
    so.netns = a.netns;
    Session s(so, on_record);
    fullness.emplace(s);

    // What the table already holds: once, by netlink, if cheap enough (or asked for).
    bool baseline = false;
    int64_t baseline_entries = 0;
    int64_t existing = 0;
    for (const auto& w : s.watched())
        if (auto t = s.table(w.inum)) existing += t->count;
    if (a.baseline == "on" || (a.baseline == "auto" && existing <= kAutoBaselineMax)) {
        s.drain();
        for (const auto& w : s.watched()) {
            const Baseline b = dump_baseline(w.name);
            for (const auto& [addr, n] : b.by_source) agg.add_baseline(addr, n);
            baseline_entries += b.total;
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
    WatchModel model(s, facts, baseline, baseline_entries);

    std::unique_ptr<Tui> tui;
    if (full_screen) tui = std::make_unique<Tui>();
    else fmt::print(stderr, "{}\n", watching_line(s));
    const auto interval = std::chrono::milliseconds(static_cast<int64_t>(a.interval_s * 1000));
    auto next = std::chrono::steady_clock::now() + interval;
    size_t shown = 0;
    const size_t limit = a.once ? 1 : a.count;
    bool paused = false;
    Snapshot last;
    bool have_last = false;

    LoopOptions lo;
    run_loop(s, lo, [&] {
        if (tui) {
            bool changed = false;
            if (!tui->keys(mo, paused, changed)) return false;
            if (changed && have_last) {
                if (!paused) WatchModel::rows(last, agg, mo);
                tui->draw(last, mo, paused);
            }
        }
        if (std::chrono::steady_clock::now() < next) return true;
        next += interval;
        Snapshot snap = model.take(agg, drops_full, mo);
        if (tui) {
            if (!paused) {
                last = std::move(snap);
                have_last = true;
            }
            tui->draw(last, mo, paused);
        } else {
            const std::string text = a.json ? to_json(snap).dump() + "\n" : to_text(snap) + "\n";
            if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
                return false;  // reader gone
        }
        return ++shown < limit || limit == 0;
    });
    return 0;
}

}  // namespace ctbpf::cli
