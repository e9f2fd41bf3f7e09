// `ctbpf report FILE`: what a person reads the morning after: when the table filled, when
// drops began and ended, a per-second timeline, who filled it and who lost packets, and
// the advice `ctbpf status` would have given.
#include <time.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "ctbpf/recording.h"
#include "ctbpf/live_view.h"
#include "ctbpf/composition.h"
#include "ctbpf/error.h"
#include "ctbpf/incident.h"
#include "ctbpf/workload.h"
#include "ctbpf/system.h"

namespace ctbpf::cli {

namespace {

std::string wall(int64_t ns) {
    if (ns == 0) return "-";
    const time_t t = static_cast<time_t>(ns / 1'000'000'000);
    tm tmv{};
    gmtime_r(&t, &tmv);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tmv);
    return fmt::format("{}.{:03d} UTC", buf, static_cast<int>((ns / 1'000'000) % 1000));
}

std::string opt_wall(const std::optional<int64_t>& ns) { return ns ? wall(*ns) : std::string("never"); }

std::string netns_name(const Incident& in, uint32_t inum) {
    if (const auto it = in.netns_names.find(inum); it != in.netns_names.end()) return it->second;
    return std::to_string(inum);
}

// Cgroup ids name cgroups on the host they were recorded on: resolved here (if the
// report runs there and the cgroup still exists), else shown as the id.
std::string cgroup_name(WorkloadResolver& r, uint64_t id) {
    if (id == 0) return "";
    return r.cgroup_path(id).value_or(fmt::format("cgroup {}", id));
}

struct WorkloadLine {
    std::string kind, name, netns;
    uint64_t inserts, drops, early_drops, error;
};

std::vector<WorkloadLine> workload_lines(const Incident& in, size_t top) {
    std::vector<WorkloadLine> out;
    WorkloadResolver names(WorkloadResolver::Roots{.cgroup = cgroup2_mount()});
    for (WorkloadKind k : {WorkloadKind::Netns, WorkloadKind::Cgroup, WorkloadKind::Process})
        for (const WorkloadStats* w : in.workloads->top(k, SortKey::Inserts, top, 0)) {
            WorkloadLine l{std::string(workload_kind_name(k)), "", netns_name(in, w->key.netns), w->inserts,
                           w->drops, w->early_drops, w->activity_error};
            if (k == WorkloadKind::Netns) l.name = l.netns;
            else if (k == WorkloadKind::Cgroup) l.name = cgroup_name(names, w->key.cgroup);
            else
                l.name = fmt::format("{} {} ({})", std::string(w->key.comm.data(), strnlen(w->key.comm.data(), 16)),
                                     w->key.pid, cgroup_name(names, w->key.cgroup));
            out.push_back(std::move(l));
        }
    return out;
}

// The advice `status` gives, for the table as it was at its peak.
Assessment advice_for(const Incident& in) {
    TableFacts f;
    f.table = TableState{0, std::max<int64_t>(0, in.peak_count), std::max<int64_t>(0, in.max),
                         std::max<int64_t>(0, in.buckets)};
    f.counters["drop"] = static_cast<uint64_t>(std::max<int64_t>(0, in.totals.drop));
    f.counters["early_drop"] = static_cast<uint64_t>(std::max<int64_t>(0, in.totals.early_drop));
    f.kernel_log.readable = true;
    // The recorder's own slab object size (version 2); older files leave the estimate.
    if (in.header.object_size > 0) {
        f.object_size = in.header.object_size;
        f.object_size_estimated = false;
    }
    return assess(f);
}

}  // namespace

// How long the recorded entries lived (insert and destroy both recorded), by the state they
// ended in: recordings of event layout 2 carry it; older ones say "UNKNOWN".
std::map<EntryClass, DurationHistogram> recorded_lifetimes(const std::string& file) {
    RecordingReader r(file);
    std::map<uint32_t, EntryClock> clocks;
    Lifetimes l(0);
    Frame f;
    while (r.next(f)) {
        if (f.type != FrameType::Events) continue;
        for (const Event& e : f.events)
            if (const auto lived = clocks[e.netns].on_event(e)) l.add(e, *lived);
    }
    return l.by_class();
}

int cmd_report(const ReportArgs& a) {
    const Incident in = read_incident(a.file);
    const auto lifetimes = recorded_lifetimes(a.file);
    for (const auto& w : in.warnings) fmt::print(stderr, "ctbpf: warning: {}\n", w);
    const Assessment as = advice_for(in);
    const auto by_inserts = in.agg->top_sources(SortKey::Inserts, a.top, 0);
    const auto by_drops = in.agg->top_sources(SortKey::Drops, a.top, 0);
    const auto by_entries = in.agg->top_sources(SortKey::Entries, a.top, 0);
    const auto dests = in.agg->top_destinations(a.top);
    const KernelTotals& t = in.totals;

    if (a.json) {
        using nlohmann::json;
        json j;
        j["file"] = a.file;
        j["host"] = in.header.hostname;
        j["kernel"] = in.header.kernel_release;
        j["backend"] = in.header.backend;
        j["clean_close"] = in.clean_close;
        j["warnings"] = in.warnings;
        j["start_ns"] = in.first_wall_ns;
        j["end_ns"] = in.last_wall_ns;
        j["first_full_ns"] = in.first_full_wall_ns ? json(*in.first_full_wall_ns) : json(nullptr);
        j["drops_begin_ns"] = in.drops_begin_wall_ns ? json(*in.drops_begin_wall_ns) : json(nullptr);
        j["drops_end_ns"] = in.drops_end_wall_ns ? json(*in.drops_end_wall_ns) : json(nullptr);
        j["table"] = {{"peak_count", in.peak_count}, {"max", in.max}, {"buckets", in.buckets}};
        j["totals"] = {{"insert", t.insert},       {"drop", t.drop},   {"early_drop", t.early_drop},
                       {"insert_failed", t.insert_failed}, {"destroy", t.destroy}, {"lost", t.lost}};
        j["events"] = in.events;
        j["object_size"] = in.header.object_size ? uint64_t{in.header.object_size} : kDefaultConntrackObjectSize;
        j["object_size_estimated"] = in.header.object_size == 0;
        j["memory_at_peak_bytes"] = as.memory.now_bytes;
        j["baseline"] = {{"recorded", in.baseline}, {"entries", in.baseline_entries}};
        // inserts, drops and early drops are counted over the recording; entries are the
        // ones live at its end, including those older than it when a baseline was recorded.
        j["entries_include_existing"] = in.baseline;
        j["timeline"] = json::array();
        for (const auto& p : in.timeline)
            j["timeline"].push_back({{"ns", p.wall_ns}, {"count", p.count}, {"max", p.max}, {"fill", p.fill},
                                     {"inserts_per_s", p.inserts_s}, {"drops_per_s", p.drops_s},
                                     {"early_drops_per_s", p.early_drops_s}});
        auto rows = [&](const std::vector<const SourceStats*>& v) {
            json arr = json::array();
            for (const auto* s : v)
                arr.push_back({{"addr", s->addr.to_string()}, {"netns", s->netns},
                               {"netns_name", netns_name(in, s->netns)}, {"inserts", s->inserts},
                               {"drops", s->drops}, {"early_drops", s->early_drops}, {"entries", s->entries},
                               {"entries_existing", s->baseline}});
            return arr;
        };
        j["top_by_inserts"] = rows(by_inserts);
        j["top_by_drops"] = rows(by_drops);
        j["top_by_entries"] = rows(by_entries);
        j["destinations"] = json::array();
        for (const auto* d : dests)
            j["destinations"].push_back({{"addr", d->key.addr.to_string()}, {"netns", d->key.netns}, {"port", d->key.port},
                                         {"proto", proto_name(d->key.proto)}, {"drops", d->drops}});
        j["workloads"] = json::array();
        for (const auto& l : workload_lines(in, a.top))
            j["workloads"].push_back({{"kind", l.kind}, {"name", l.name}, {"netns_name", l.netns}, {"inserts", l.inserts},
                                      {"drops", l.drops}, {"early_drops", l.early_drops}, {"activity_error", l.error}});
        j["markers"] = json::array();
        for (const auto& m : in.markers) j["markers"].push_back({{"ns", m.wall_ns}, {"text", m.text}});
        j["lifetimes"] = lifetimes_json(lifetimes);
        j["health"] = std::string(level_name(as.health.level));
        j["advice"] = json::array();
        for (const auto& ad : as.advice) j["advice"].push_back({{"what", ad.what}, {"command", ad.command}, {"why", ad.why}});
        fmt::print("{}\n", j.dump());
        return 0;
    }

    auto out = fmt::memory_buffer();
    auto o = std::back_inserter(out);
    fmt::format_to(o, "Recording {} ({}, kernel {}, backend {}){}\n", a.file, in.header.hostname,
                   in.header.kernel_release, in.header.backend,
                   in.clean_close ? "" : "\n  the recorder did not close it cleanly: read up to its last complete frame");
    fmt::format_to(o, "  from {} to {}\n\n", wall(in.first_wall_ns), wall(in.last_wall_ns));
    fmt::format_to(o, "Incident\n");
    fmt::format_to(o, "  table first full     {}\n", opt_wall(in.first_full_wall_ns));
    fmt::format_to(o, "  drops began          {}\n", opt_wall(in.drops_begin_wall_ns));
    fmt::format_to(o, "  drops ended          {}\n", opt_wall(in.drops_end_wall_ns));
    fmt::format_to(o, "  table peak           {} of {} entries ({:.1f}%)\n", in.peak_count, in.max,
                   in.max > 0 ? 100.0 * static_cast<double>(in.peak_count) / static_cast<double>(in.max) : 0.0);
    fmt::format_to(o, "  kernel totals        insert {}  drop {}  early_drop {}  insert_failed {}  destroy {}\n",
                   t.insert, t.drop, t.early_drop, t.insert_failed, t.destroy);
    fmt::format_to(o, "  events recorded      {} (lost in the ring buffer: {})\n", in.events, t.lost);
    fmt::format_to(o, "  entry size           {} bytes{}  (memory at the peak {})\n",
                   in.header.object_size ? in.header.object_size : kDefaultConntrackObjectSize,
                   in.header.object_size ? " (recorded from /proc/slabinfo)" : " (estimated: not in the recording)",
                   human_bytes(as.memory.now_bytes));
    fmt::format_to(o, "  existing entries     {}\n",
                   in.baseline ? fmt::format("{} in the table when recording began (attributed below)", in.baseline_entries)
                               : std::string("not recorded: entries below count only those made during the recording"));
    for (const auto& m : in.markers) fmt::format_to(o, "  {}  {}\n", wall(m.wall_ns), m.text);

    fmt::format_to(o, "\nTimeline (per second)\n  {:<27} {:>7} {:>10} {:>10} {:>12}\n", "time", "fill", "inserts/s",
                   "drops/s", "early drops/s");
    // Long recordings: at most ~120 rows, each the worst second of its group.
    const size_t step = std::max<size_t>(1, (in.timeline.size() + 119) / 120);
    for (size_t i = 0; i < in.timeline.size(); i += step) {
        TimelinePoint worst = in.timeline[i];
        for (size_t k = i; k < std::min(in.timeline.size(), i + step); ++k)
            if (in.timeline[k].drops_s > worst.drops_s || in.timeline[k].fill > worst.fill) worst = in.timeline[k];
        fmt::format_to(o, "  {:<27} {:>6.1f}% {:>10.0f} {:>10.0f} {:>12.0f}\n", wall(worst.wall_ns), worst.fill * 100,
                       worst.inserts_s, worst.drops_s, worst.early_drops_s);
    }
    if (step > 1) fmt::format_to(o, "  (one row per {} s: the worst second of each)\n", step);

    // With several namespaces the same address can be two hosts: name the namespace.
    const bool many = in.netns_names.size() > 1;
    auto who = [&](const Address& addr, uint32_t netns) {
        return many ? fmt::format("{} [{}]", addr.to_string(), netns_name(in, netns)) : addr.to_string();
    };
    auto table = [&](const char* title, const std::vector<const SourceStats*>& v) {
        fmt::format_to(o, "\n{}\n  {:<39} {:>10} {:>10} {:>11}\n", title, "source", "inserts", "drops", "early drops");
        for (const auto* s : v)
            fmt::format_to(o, "  {:<39} {:>10} {:>10} {:>11}\n", who(s->addr, s->netns), s->inserts, s->drops,
                           s->early_drops);
    };
    table("Top sources by inserts", by_inserts);
    table("Top sources by drops", by_drops);
    fmt::format_to(o, "\nTop sources by entries (live at the end{})\n  {:<39} {:>10} {:>10}\n",
                   in.baseline ? ", including those older than the recording" : ", made during the recording only",
                   "source", "entries", "existing");
    for (const auto* s : by_entries)
        fmt::format_to(o, "  {:<39} {:>10} {:>10}\n", who(s->addr, s->netns), s->entries, s->baseline);
    fmt::format_to(o, "\nWho lost packets\n  {:<39} {:>6} {:>6} {:>10}\n", "destination", "port", "proto", "drops");
    for (const auto* d : dests)
        fmt::format_to(o, "  {:<39} {:>6} {:>6} {:>10}\n", who(d->key.addr, d->key.netns), d->key.port,
                       proto_name(d->key.proto), d->drops);
    {
        const auto lines = workload_lines(in, std::min<size_t>(a.top, 5));
        if (lines.size() > 1 || (lines.size() == 1 && in.netns_names.size() > 1)) {
            fmt::format_to(o, "\nWorkloads (the local process behind inserts and drops; forwarded traffic has none)\n");
            fmt::format_to(o, "  {:<8} {:<48} {:>10} {:>10} {:>11}\n", "", "workload", "inserts", "drops", "early drops");
            for (const auto& l : lines)
                fmt::format_to(o, "  {:<8} {:<48} {:>10} {:>10} {:>11}\n", l.kind,
                               l.name.size() > 48 ? l.name.substr(0, 45) + "..." : l.name, l.inserts, l.drops,
                               l.kind == "netns" ? std::to_string(l.early_drops) : std::string());
        }
    }
    if (!lifetimes.empty()) fmt::format_to(o, "\nLifetimes of entries that ended while recording\n{}", lifetimes_text(lifetimes));
    fmt::format_to(o, "\nHealth at the peak: {}\n", level_name(as.health.level));
    for (const auto& r : as.health.reasons) fmt::format_to(o, "  - {}\n", r);
    if (!as.advice.empty()) fmt::format_to(o, "\nAdvice\n");
    for (size_t i = 0; i < as.advice.size(); ++i)
        fmt::format_to(o, "  {}. {}\n     $ {}\n", i + 1, as.advice[i].what, as.advice[i].command);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace ctbpf::cli
