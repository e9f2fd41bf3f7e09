// `ctbpf events`: every conntrack event as a line, then the exact in-kernel totals.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ctbpf/aggregator.h"
#include "ctbpf/decode.h"
#include "ctbpf/error.h"
#include "ctbpf/recording.h"
#include "ctbpf/clock.h"
#include "ctbpf/observe.h"
#include "ctbpf/units.h"
#include "format.h"

namespace ctbpf::cli {

namespace {

// Writes all of `b` to stdout; false once the reader has gone (EPIPE).
bool flush(fmt::memory_buffer& b) {
    if (b.size() == 0) return true;
    const bool ok = std::fwrite(b.data(), 1, b.size(), stdout) == b.size() && std::fflush(stdout) == 0;
    b.clear();
    if (!ok && errno != EPIPE) throw_errno("writing events to standard output", errno);
    return ok;
}

}  // namespace

// `ctbpf events --from FILE`: the events of a recording, in the same format as live.
int events_from_file(const EventsArgs& a) {
    RecordingReader r(a.from);
    Aggregator agg;
    fmt::memory_buffer out;
    Frame f;
    uint64_t first = 0, last = 0;
    KernelTotals totals;
    bool baseline = false;
    int64_t baseline_entries = 0;
    while (r.next(f)) {
        if (f.type == FrameType::Snapshot) totals = f.snapshot.totals;
        if (f.type == FrameType::End) totals = f.end.totals;
        if (f.type == FrameType::Baseline) {
            for (const auto& [addr, n] : f.baseline.by_source) agg.add_baseline(f.baseline.netns, addr, n);
            baseline = true;
            baseline_entries += f.baseline.total;
        }
        if (f.type != FrameType::Events) continue;
        for (const Event& e : f.events) {
            const int64_t wall = r.header().wall_ns(e.ts_ns);
            if (a.json) format_event_json(out, e, reason_name(e.reason), wall);
            else format_event_text(out, e, reason_name(e.reason), wall);
            agg.add(e);
            if (!first) first = e.ts_ns;
            last = e.ts_ns;
        }
        if (!flush(out)) return 0;
    }
    for (const auto& w : r.warnings()) fmt::print(stderr, "ctbpf: warning: {}\n", w);
    BackendChoice choice{parse_backend(r.header().backend).value_or(Backend::Tracepoint), "recorded"};
    SummaryInput in{choice, r.header().netns, totals, agg, static_cast<double>(last - first) / 1e9,
                    last / 1'000'000'000ull + 1, a.top, 0, baseline, baseline_entries};
    fmt::format_to(std::back_inserter(out), "{}", a.json ? format_summary_json(in) : format_summary_text(in));
    flush(out);
    return 0;
}

int cmd_events(const EventsArgs& a) {
    if (!a.from.empty()) return events_from_file(a);
    const auto duration = parse_duration_option(a.duration, "--duration");

    block_stop_signals();
    fmt::memory_buffer out;
    ObserverOptions oo;
    oo.backend = a.backend;
    oo.netns = a.netns;
    oo.all_netns = a.all_netns;
    oo.ring_bytes = a.ring_mib << 20;
    oo.verbose = a.verbose;
    // As watch: the summary's per-source entries then include what the table already held.
    oo.baseline = "auto";
    // The recordings' own pairing of the two clocks (events carry CLOCK_MONOTONIC).
    const int64_t mono_to_wall = host_header().mono_to_wall_ns;
    // Names come from caches the observer refreshes between drains (never per event); the
    // sink runs only once `obs` exists (events are delivered by drain()).
    Observer* self = nullptr;
    EventNames names;
    Observer obs(oo, [&](const Event& e, EventRecordView) {
        const int64_t wall = static_cast<int64_t>(e.ts_ns) + mono_to_wall;
        EventNames* n = nullptr;
        if (self) {
            names.netns_name = self->netns_label(e.netns);
            names.cgroup = self->cgroup_names(e.cgroup).first;
            n = &names;
        }
        if (a.json) format_event_json(out, e, reason_name(e.reason), wall, n);
        else format_event_text(out, e, reason_name(e.reason), wall, n);
    });
    self = &obs;
    Session& s = obs.session();
    fmt::print(stderr, "{}\n", watching_line(s));

    const uint64_t start = monotonic_ns();
    LoopOptions lo;
    if (duration) lo.duration = std::chrono::milliseconds(static_cast<int64_t>(*duration * 1000));
    bool reader_gone = false;
    run_loop(s, lo, [&] {
        obs.refresh_names();
        if (!flush(out)) reader_gone = true;
        return !reader_gone;
    });

    const KernelTotals totals = obs.finish();
    const uint64_t now = monotonic_ns();
    int64_t baseline_entries = 0;
    for (const auto& b : obs.baselines()) baseline_entries += b.total;
    SummaryInput in{s.choice(), s.watched(), totals, obs.aggregator(), static_cast<double>(now - start) / 1e9,
                    now / 1'000'000'000ull, a.top, obs.drops().table_full, !obs.baselines().empty(), baseline_entries};
    if (a.json) fmt::format_to(std::back_inserter(out), "{}", format_summary_json(in));
    else fmt::format_to(std::back_inserter(out), "{}", format_summary_text(in));
    if (!reader_gone) flush(out);
    if (totals.lost > 0)
        fmt::print(stderr, "ctbpf: {} events were lost (ring buffer full); the totals above are still exact\n",
                   totals.lost);
    return 0;
}

int cmd_probe(bool json) {
    // Without CAP_BPF the program-based probes all read "no": say that this is the reason,
    // not the kernel (a non-root user was told "needs 6.4+" on 6.18).
    std::string privileges;
    try {
        require_privileges(false);
    } catch (const Error& e) {
        privileges = std::string(e.what()) + " (the probes that load a program read 'no' without them)";
    }
    const KernelFeatures f = probe_kernel();
    std::string chosen, why, error, drops;
    try {
        auto c = choose_backend(f, Backend::Auto);
        chosen = backend_name(c.backend);
        why = c.why;
        drops = drop_attribution(c);
    } catch (const Error& e) {
        error = e.what();
    }
    auto yn = [](bool b) { return b ? "yes" : "no"; };
    if (json) {
        const nlohmann::json j = {{"kernel", f.release},   {"btf", f.btf},       {"ringbuf", f.ringbuf},
                                  {"tp_btf", f.tp_btf},    {"netfilter_link", f.netfilter_link},
                                  {"kprobes", f.kprobes},  {"fentry", f.fentry}, {"backend", chosen},
                                  {"why", why},            {"drops", drops},     {"error", error},
                                  {"privileges", privileges}, {"notes", f.notes}};
        fmt::print("{}\n", j.dump());
    } else {
        if (!privileges.empty()) fmt::print("privileges        {}\n", privileges);
        fmt::print("kernel            {}\n", f.release);
        fmt::print("BTF               {}\n", yn(f.btf));
        fmt::print("ring buffer       {}\n", yn(f.ringbuf));
        fmt::print("BTF tracepoints   {}\n", yn(f.tp_btf));
        fmt::print("netfilter links   {}\n", yn(f.netfilter_link));
        fmt::print("kprobes           {}\n", yn(f.kprobes));
        fmt::print("fentry            {}\n", yn(f.fentry));
        for (const auto& n : f.notes) fmt::print("  note: {}\n", n);
        if (error.empty()) fmt::print("backend (auto)    {}: {}\ndrops             {}\n", chosen, why, drops);
        else fmt::print("backend (auto)    none: {}\n", error);
    }
    return error.empty() ? 0 : 1;
}

}  // namespace ctbpf::cli
