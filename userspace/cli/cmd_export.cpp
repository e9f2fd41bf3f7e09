// `ctbpf export`: flame-style per-source summaries of a recording (or of a live capture):
// which networks, then hosts, then ports fill the table, as folded stacks, speedscope JSON,
// a self-contained SVG flame graph, JSON lines or CSV; --diff against a quiet recording.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <map>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

#include "commands.h"
#include "ctbpf/error.h"
#include "ctbpf/export.h"
#include "ctbpf/workload.h"
#include "ctbpf/recording.h"
#include "ctbpf/observe.h"
#include "ctbpf/units.h"
#include "format.h"

namespace ctbpf::cli {

namespace {

enum class Metric { Inserts, Drops, Entries, Lifetime };

Metric parse_metric(const std::string& m) {
    if (m == "inserts") return Metric::Inserts;
    if (m == "drops") return Metric::Drops;
    if (m == "entries") return Metric::Entries;
    if (m == "lifetime") return Metric::Lifetime;
    throw Error(fmt::format("--metric '{}': use inserts, drops, entries or lifetime", m), 2);
}

// Cgroup ids name the cgroup on the host they were seen on: resolved here once per id
// (a recording read elsewhere, or after the cgroup went, keeps the id).
class CgroupNames {
public:
    std::string_view name(uint64_t id) {
        if (id == 0) return {};
        auto [it, fresh] = names_.try_emplace(id);
        if (fresh) {
            if (!refreshed_) {
                resolver_.refresh();
                refreshed_ = true;
            }
            it->second = resolver_.cgroup_path(id).value_or("");
        }
        return it->second;
    }

private:
    WorkloadResolver resolver_{WorkloadResolver::Roots{.cgroup = cgroup2_mount()}};
    bool refreshed_ = false;
    std::unordered_map<uint64_t, std::string> names_;  // node-based: views stay valid
};
CgroupNames g_cgroup_names;

FlowKey key_of(const Event& e) {
    FlowKey k{e.netns, e.proto, e.src, e.dst, e.sport, e.dport};
    k.state = classify_event(e).state;
    k.cgroup = e.cgroup;
    k.pid = e.pid;
    k.comm = e.comm;
    k.cgroup_name = g_cgroup_names.name(e.cgroup);
    return k;
}

// Feeds events into stacks by metric. Entries: live at the end (inserted, not yet gone),
// plus what the start-up baseline found and no destroy took away since.
class Collector {
public:
    Collector(Metric m, StackAggregator& out) : m_(m), out_(out) {}
    void add_baseline(const Baseline& b) {
        if (m_ != Metric::Entries) return;
        for (const auto& [addr, n] : b.by_source)
            if (n > 0) existing_[key(b.netns, addr)] += n;
    }
    void add(const Event& e) {
        switch (m_) {
            case Metric::Inserts:
                if (e.kind == EventKind::Insert) out_.add(key_of(e));
                break;
            case Metric::Drops:
                if (e.kind == EventKind::Drop) out_.add(key_of(e));
                break;
            case Metric::Entries:
                if (e.kind == EventKind::Insert) {
                    live_[e.ct_id] = key_of(e);
                } else if (e.kind == EventKind::InsertFailed) {
                    live_.erase(e.ct_id);
                } else if (e.kind != EventKind::Drop && live_.erase(e.ct_id) == 0) {
                    // Not seen inserted: one of the entries the baseline counted, if any.
                    auto it = existing_.find(key(e.netns, e.src));
                    if (it != existing_.end() && --it->second == 0) existing_.erase(it);
                }
                break;
            case Metric::Lifetime:
                // Milliseconds each ended entry lived (insert seen to destroy), on the stack
                // of the state it ended in: what holds the table, weighted by how long.
                if (e.kind == EventKind::Insert) {
                    born_[e.ct_id] = e.ts_ns;
                } else if (e.kind == EventKind::InsertFailed) {
                    born_.erase(e.ct_id);
                } else if (e.kind == EventKind::Destroy || e.kind == EventKind::EarlyDrop) {
                    if (const auto it = born_.find(e.ct_id); it != born_.end()) {
                        const uint64_t ms = e.ts_ns > it->second ? (e.ts_ns - it->second) / 1'000'000 : 0;
                        if (ms > 0) out_.add(key_of(e), ms);
                        born_.erase(it);
                    }
                }
                break;
        }
    }
    void finish() {
        for (const auto& [id, k] : live_) out_.add(k);
        live_.clear();
        for (const auto& [k, n] : existing_) {
            FlowKey fk;
            fk.netns = std::get<0>(k);
            fk.src.family = std::get<1>(k);
            fk.src.bytes = std::get<2>(k);
            fk.existing = true;
            out_.add(fk, static_cast<uint64_t>(n));
        }
        existing_.clear();
    }

private:
    using SourceId = std::tuple<uint32_t, uint8_t, std::array<uint8_t, 16>>;  // netns, family, address
    static SourceId key(uint32_t netns, const Address& a) { return {netns, a.family, a.bytes}; }

    Metric m_;
    StackAggregator& out_;
    std::unordered_map<uint64_t, FlowKey> live_;
    std::unordered_map<uint64_t, uint64_t> born_;  // ct_id -> insert time (lifetime)
    std::map<SourceId, int64_t> existing_;
};

void collect_file(const std::string& path, Collector& c) {
    RecordingReader r(path);
    Frame f;
    while (r.next(f)) {
        if (f.type == FrameType::Baseline) c.add_baseline(f.baseline);
        if (f.type == FrameType::Events)
            for (const Event& e : f.events) c.add(e);
    }
    for (const auto& w : r.warnings()) fmt::print(stderr, "ctbpf: warning: {}: {}\n", path, w);
    c.finish();
}

}  // namespace

int cmd_export(const ExportArgs& a) {
    const Metric metric = parse_metric(a.metric);
    const Hierarchy h = Hierarchy::parse(a.by);
    if (a.live == !a.file.empty())
        throw Error("give a recording file, or --live (with --duration) to capture now", 2);
    if (a.live && !a.diff.empty()) throw Error("--diff compares two recordings: it does not go with --live", 2);

    StackAggregator stacks(h);
    Collector c(metric, stacks);
    if (a.live) {
        const double secs = parse_duration_option(a.duration.empty() ? "10s" : a.duration, "--duration").value();
        block_stop_signals();
        ObserverOptions oo;
        oo.netns = a.netns;
        oo.all_netns = a.all_netns;
        oo.aggregate = false;
        if (metric == Metric::Entries) oo.baseline = "auto";  // as a recording would have it
        Observer obs(oo, [&](const Event& e, EventRecordView) { c.add(e); });
        for (const Baseline& b : obs.baselines()) c.add_baseline(b);
        fmt::print(stderr, "{}\nctbpf: capturing for {:g} s\n", watching_line(obs.session()), secs);
        LoopOptions lo;
        lo.duration = std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
        run_loop(obs.session(), lo, [] { return true; });
        obs.finish();
        c.finish();
    } else {
        collect_file(a.file, c);
    }

    // -o writes a temporary file beside the target and renames it at the end: a full disk
    // or an error halfway leaves the old file (or none), never a truncated one.
    std::ofstream file;
    std::string tmp;
    if (!a.output.empty()) {
        tmp = fmt::format("{}.tmp.{}", a.output, getpid());
        errno = 0;
        file.open(tmp, std::ios::binary | std::ios::trunc);
        if (!file)
            throw Error(fmt::format("cannot write {}: {}", a.output, std::strerror(errno ? errno : EIO)));
    }
    struct RemoveOnError {
        const std::string& path;
        bool keep = false;
        ~RemoveOnError() {
            if (!path.empty() && !keep) std::remove(path.c_str());
        }
    } cleanup{tmp};
    std::ostream& out = a.output.empty() ? std::cout : file;

    SvgOptions svg;
    svg.metric = a.metric == "lifetime" ? "ms of entry lifetime" : a.metric;
    svg.title = fmt::format("conntrack {} by {}", a.metric, h.to_string());
    svg.subtitle = a.live ? std::string("live capture") : a.file;
    if (!a.diff.empty()) {
        StackAggregator base(h);
        Collector bc(metric, base);
        collect_file(a.diff, bc);
        if (a.format == "folded") write_folded_diff(out, base, stacks);
        else if (a.format == "svg") {
            svg.subtitle = fmt::format("{} against {}: red grew, blue shrank", a.file, a.diff);
            write_svg_diff(out, base, stacks, svg);
        } else {
            throw Error("--diff writes folded (difffolded format) or svg", 2);
        }
    } else if (a.format == "folded") {
        stacks.write_folded(out);
    } else if (a.format == "speedscope") {
        stacks.write_speedscope(out, svg.title);
    } else if (a.format == "svg") {
        stacks.write_svg(out, svg);
    } else if (a.format == "jsonl") {
        stacks.write_jsonl(out);
    } else if (a.format == "csv") {
        stacks.write_csv(out);
    } else {
        throw Error(fmt::format("--format '{}': use folded, speedscope, svg, jsonl or csv", a.format), 2);
    }
    errno = 0;
    out.flush();
    if (!a.output.empty()) file.close();
    if (!out || (!a.output.empty() && !file))
        throw Error(fmt::format("writing {}: {}", a.output.empty() ? "standard output" : a.output,
                                std::strerror(errno ? errno : EIO)));
    if (!tmp.empty()) {
        if (std::rename(tmp.c_str(), a.output.c_str()) != 0)
            throw Error(fmt::format("writing {}: {}", a.output, std::strerror(errno)));
        cleanup.keep = true;
    }
    if (stacks.total() == 0) fmt::print(stderr, "ctbpf: no {} in {}\n", a.metric, a.live ? "the capture" : a.file);
    return 0;
}

}  // namespace ctbpf::cli
