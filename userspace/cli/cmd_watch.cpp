// `ctbpf watch`: the live view. Full screen on a terminal; otherwise (or with --json /
// --once) one snapshot per interval as a JSON line or text, for scripts and tests.
// `--replay FILE` shows a recording the same way, at --speed times real time.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "ctbpf/aggregator.h"
#include "ctbpf/error.h"
#include "ctbpf/fd.h"
#include "ctbpf/recording.h"
#include "ctbpf/live_view.h"
#include "ctbpf/observe.h"
#include "ctbpf/clock.h"
#include "format.h"
#include "watch_tui.h"

namespace ctbpf::cli {

namespace {

// The text view's composition: the last dump of each table, and lifetimes of ended entries.
std::string composition_block(const LiveSnapshot& s) {
    std::string out;
    for (const auto& c : s.composition) {
        const double age = static_cast<double>(monotonic_ns() - std::min(monotonic_ns(), c.taken_ns)) / 1e9;
        out += fmt::format("What the entries are (netns {}, dump {:.0f} s ago)\n", c.netns, age);
        out += composition_text(c, s.object_size, 8);
    }
    for (const auto& e : s.composition_errors) out += e + "\n";
    if (!s.lifetimes.empty()) out += "Lifetimes of ended entries\n" + lifetimes_text(s.lifetimes);
    return out.empty() ? out : out + "\n";
}

// Shows a snapshot every interval, on the screen or as lines; the same for live and replay.
class View {
public:
    View(const WatchArgs& a, ModelOptions& mo, LiveModel& model, const Aggregator& agg, const DropCounts& drops,
         std::function<void(LiveSnapshot&)> enrich = {})
        : a_(a), mo_(mo), model_(model), agg_(agg), drops_(drops), enrich_(std::move(enrich)),
          limit_(a.once ? 1 : a.count), interval_(static_cast<int64_t>(a.interval_s * 1000)) {
        if (!a.json && !a.once && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO)) tui_ = std::make_unique<Tui>();
        next_ = std::chrono::steady_clock::now() + interval_;
    }
    bool full_screen() const { return tui_ != nullptr; }

    // Called every tick; false when it is time to stop (q, --count reached, reader gone).
    bool tick(bool force = false) {
        if (tui_) {
            bool changed = false;
            if (!tui_->keys(mo_, paused_, changed)) return false;
            if (changed && have_last_) {
                if (!paused_) model_.rows(last_, agg_, mo_);
                tui_->draw(last_, mo_, paused_);
            }
        }
        if (!force && std::chrono::steady_clock::now() < next_) return true;
        next_ += interval_;
        LiveSnapshot snap = model_.take(agg_, drops_, mo_);
        if (enrich_) enrich_(snap);
        if (tui_) {
            if (!paused_) {
                last_ = std::move(snap);
                have_last_ = true;
            }
            tui_->draw(last_, mo_, paused_);
        } else {
            std::string text = a_.json ? to_json(snap).dump() + "\n" : to_text(snap) + "\n";
            if (!a_.json) text += composition_block(snap);
            if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
                return false;  // reader gone
        }
        return ++shown_ < limit_ || limit_ == 0;
    }

private:
    const WatchArgs& a_;
    ModelOptions& mo_;
    LiveModel& model_;
    const Aggregator& agg_;
    const DropCounts& drops_;
    std::function<void(LiveSnapshot&)> enrich_;
    size_t shown_ = 0, limit_;
    std::chrono::milliseconds interval_;
    std::chrono::steady_clock::time_point next_;
    std::unique_ptr<Tui> tui_;
    bool paused_ = false, have_last_ = false;
    LiveSnapshot last_;
};

ModelOptions model_options(const WatchArgs& a) {
    ModelOptions mo;
    mo.top = a.top;
    if (!a.cidr.empty()) {
        mo.cidr = Cidr::parse(a.cidr);
        if (!mo.cidr) throw Error(fmt::format("--cidr '{}' is not an address or prefix (e.g. 10.0.0.0/8)", a.cidr), 2);
    }
    mo.sort = a.sort == "entries" ? SourceSort::Entries : a.sort == "drops" ? SourceSort::Drops : SourceSort::Rate;
    return mo;
}

// Replays a recording: events and snapshots are applied as the replay clock (the
// recording's own, running --speed times faster than real time) passes them.
int replay(const WatchArgs& a) {
    if (a.speed <= 0) throw Error("--speed must be positive", 2);
    RecordingReader r(a.replay);
    ModelOptions mo = model_options(a);
    const auto proto = parse_proto(a.proto);
    Aggregator agg(Aggregator::Options{a.capacity, a.capacity});
    DropCounts drops;
    KernelTotals totals;
    std::vector<TableState> tables;
    Frame f;
    bool have = r.next(f), done = !have;
    // The start-up baseline comes first in the file (version 2): the entries that were in
    // the table before recording began, so that replay counts them as live watch did.
    bool baseline = false;
    int64_t baseline_entries = 0;
    auto add_baseline = [&] {
        for (const auto& [addr, n] : f.baseline.by_source)
            if (!proto) agg.add_baseline(f.baseline.netns, addr, n);  // the dump has no protocol
        baseline = true;
        baseline_entries += f.baseline.total;
    };
    while (have && f.type == FrameType::Baseline) {
        add_baseline();
        have = r.next(f);
        done = !have;
    }
    uint64_t clock = 0;  // recording time shown so far
    if (have) clock = f.type == FrameType::Snapshot ? f.snapshot.ts_ns : f.type == FrameType::End ? f.end.ts_ns : f.first_ts_ns;

    ModelSource src{r.header().backend + " (replay)", r.header().netns, [&] { return totals; },
                    [&](uint32_t netns) -> std::optional<TableState> {
                        for (const auto& t : tables)
                            if (t.netns == netns) return t;
                        return std::nullopt;
                    },
                    [&] { return clock; }};
    TableFacts facts;
    if (r.header().object_size > 0) {
        facts.object_size = r.header().object_size;
        facts.object_size_estimated = false;
    }
    LiveModel model(src, facts, baseline, baseline_entries);
    View view(a, mo, model, agg, drops);

    block_stop_signals();
    const UniqueFd sig = stop_signal_fd();
    auto last_real = std::chrono::steady_clock::now();
    while (true) {
        const auto now = std::chrono::steady_clock::now();
        clock += static_cast<uint64_t>(std::chrono::duration<double, std::nano>(now - last_real).count() * a.speed);
        last_real = now;
        // Apply every frame whose time has come.
        while (have) {
            const uint64_t at = f.type == FrameType::Events ? f.first_ts_ns
                                : f.type == FrameType::Snapshot ? f.snapshot.ts_ns
                                : f.type == FrameType::End ? f.end.ts_ns
                                : f.type == FrameType::Baseline ? f.first_ts_ns : clock;
            if (at > clock) break;
            if (f.type == FrameType::Events) {
                for (const Event& e : f.events) {
                    if (e.kind == EventKind::Drop) ++(e.reason == Reason::TableFull ? drops.table_full : drops.other);
                    if (!proto || e.proto == *proto) agg.add(e);
                }
            } else if (f.type == FrameType::Snapshot) {
                totals = f.snapshot.totals;
                tables = f.snapshot.tables;
            } else if (f.type == FrameType::End) {
                totals = f.end.totals;
            } else if (f.type == FrameType::Baseline) {
                add_baseline();  // not first in the file (hand-made): still counted
            }
            have = r.next(f);
        }
        if (!have && !done) {
            done = true;
            if (!view.full_screen()) {  // the last state, then stop
                view.tick(true);
                break;
            }
        }
        if (!view.tick()) break;
        signalfd_siginfo si{};
        if (read(sig.get(), &si, sizeof si) == sizeof si) break;
        usleep(50'000);
    }
    for (const auto& w : r.warnings()) fmt::print(stderr, "ctbpf: warning: {}\n", w);
    return 0;
}

}  // namespace

int cmd_watch(const WatchArgs& a) {
    if (!a.replay.empty()) return replay(a);
    ModelOptions mo = model_options(a);
    block_stop_signals();
    ObserverOptions oo;
    oo.netns = a.netns;
    oo.all_netns = a.all_netns;
    oo.backend = a.backend;
    oo.proto = a.proto;
    oo.baseline = a.baseline;
    oo.capacity = a.capacity;
    oo.model = true;
    oo.composition = a.composition_interval_s > 0;
    oo.composition_interval_s = a.composition_interval_s;
    Observer obs(oo);
    View view(a, mo, obs.model(), obs.aggregator(), obs.drops(), [&obs, &mo](LiveSnapshot& s) { obs.enrich(s, mo); });
    if (!view.full_screen()) fmt::print(stderr, "{}\n", watching_line(obs.session()));
    run_loop(obs.session(), LoopOptions{}, [&] { return view.tick(); });
    return 0;
}

}  // namespace ctbpf::cli
