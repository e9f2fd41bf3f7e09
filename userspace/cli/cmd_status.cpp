// `ctbpf status`: a one-shot diagnosis of the conntrack table of the current network
// namespace (fill, memory, timeouts, kernel counters, table-full log lines) with advice.
// Health describes now: the table's fill and what the kernel counted during a short
// window (--window); counters since boot and older kernel log lines are history.
// Exit code (monitoring-plugin convention): 0 ok, 1 warning, 2 critical, 3 unknown (bad
// usage, or the facts could not be read).
#include <algorithm>
#include <cstdio>
#include <string>
#include <iterator>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "ctbpf/baseline.h"
#include "ctbpf/clock.h"
#include "ctbpf/error.h"
#include "ctbpf/live_view.h"
#include "ctbpf/netns.h"
#include "ctbpf/system.h"
#include "ctbpf/units.h"
#include "ctbpf/workload.h"

namespace ctbpf::cli {

namespace {

constexpr int kCannotRead = 3;  // 1 and 2 already mean warning and critical

std::string to_json(const TableFacts& f, const Assessment& a, const std::string& composition_error) {
    nlohmann::json j;
    j["table"] = {{"count", f.table.count}, {"max", f.table.max}, {"buckets", f.table.buckets}, {"fill", a.fill}};
    j["memory"] = {{"object_size", f.object_size},       {"object_size_estimated", f.object_size_estimated},
                   {"now_bytes", a.memory.now_bytes},    {"at_max_bytes", a.memory.at_max_bytes},
                   {"hash_bytes", a.memory.hash_bytes}};
    j["timeouts"] = f.timeouts;
    j["counters"] = f.counters;
    auto lines = nlohmann::json::array();
    for (const auto& l : f.kernel_log.table_full) lines.push_back({{"seconds", l.seconds}, {"message", l.message}});
    j["kernel_log"] = {{"readable", f.kernel_log.readable},
                       {"table_full_total", f.kernel_log.table_full_total},
                       {"other_netns", f.kernel_log.other_netns},
                       {"stale", kernel_log_is_stale(f)},
                       {"lines", lines}};
    if (!f.kernel_log.readable) j["kernel_log"]["error"] = f.kernel_log.error;
    j["netns"] = {{"inode", f.netns.inode}, {"initial", f.netns.initial}};
    j["other_netns"] = nlohmann::json::array();
    for (const auto& o : f.other_incidents)
        j["other_netns"].push_back({{"inode", o.inode}, {"name", o.name}, {"lines", o.lines}, {"seconds_ago", o.ago_s}});
    if (f.netns.created_s) j["netns"]["created_s"] = *f.netns.created_s;
    j["health"] = {{"level", level_name(a.health.level)}, {"reasons", a.health.reasons}, {"history", a.health.history}};
    if (f.recent)
        j["window"] = {{"seconds", f.recent->seconds},
                       {"drop", f.recent->drop},
                       {"early_drop", f.recent->early_drop},
                       {"insert_failed", f.recent->insert_failed},
                       {"growth_per_s", f.recent->growth_per_s}};
    if (f.composition) j["composition"] = ctbpf::to_json(*f.composition, 0, f.object_size);
    else j["composition"] = {{"error", composition_error}};
    j["advice"] = nlohmann::json::array();
    for (const auto& x : a.advice) j["advice"].push_back({{"what", x.what}, {"command", x.command}, {"why", x.why}});
    return j.dump() + "\n";
}

// Greedy word wrap: `first` starts the first line, later lines are indented to match it.
std::string wrap(const std::string& first, const std::string& text, size_t width = 100) {
    const size_t indent = first.size();
    std::string out = first;
    size_t col = indent;
    size_t i = 0;
    while (i < text.size()) {
        const size_t e = std::min(text.find(' ', i), text.size());
        const std::string word = text.substr(i, e - i);
        if (col > indent && col + 1 + word.size() > width) {
            out += "\n" + std::string(indent, ' ');
            col = indent;
        } else if (col > indent) {
            out += ' ';
            col++;
        }
        out += word;
        col += word.size();
        i = e + 1;
    }
    return out + "\n";
}

std::string to_text(const TableFacts& f, const Assessment& a, const std::string& composition_error) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    auto row = [&](std::string_view label, const std::string& value) { fmt::format_to(out, "  {:<34} {}\n", label, value); };

    fmt::format_to(out, "Table\n");
    row("entries", f.table.max ? fmt::format("{} of {} ({:.1f}% full)", f.table.count, f.table.max, a.fill * 100)
                         : fmt::format("{} (no maximum)", f.table.count));
    row("hash buckets", f.hashsize ? fmt::format("{} (hashsize parameter {})", f.table.buckets, *f.hashsize)
                                   : fmt::format("{}", f.table.buckets));

    fmt::format_to(out, "\nMemory\n");
    row("entry size", f.object_size_estimated
                          ? fmt::format("{} bytes (estimated: nf_conntrack not readable in /proc/slabinfo)",
                                        f.object_size)
                          : fmt::format("{} bytes (from /proc/slabinfo)", f.object_size));
    row("entries now", human_bytes(a.memory.now_bytes));
    row("entries at maximum", human_bytes(a.memory.at_max_bytes));
    row("hash table", fmt::format("{} ({} buckets x {} bytes)", human_bytes(a.memory.hash_bytes), f.table.buckets,
                                  kHashBucketSize));

    fmt::format_to(out, "\nTimeouts (net.netfilter.nf_conntrack_*)\n");
    for (const auto& [name, s] : f.timeouts) row(name, fmt::format("{:>8} s  {}", s, human_seconds(s)));

    fmt::format_to(out, "\nWhat the entries are (netlink dump)\n");
    if (!f.composition) fmt::format_to(out, "  unavailable: {}\n", composition_error);
    else b.append(composition_text(*f.composition, f.object_size));

    fmt::format_to(out, "\nKernel counters since boot (/proc/net/stat/nf_conntrack, all CPUs)\n");
    if (f.counters.empty()) fmt::format_to(out, "  (not available)\n");
    for (const auto& [name, v] : f.counters) row(name, fmt::format("{}", v));

    fmt::format_to(out, "\nRecent kernel log ('{}')\n", kTableFullMarker);
    const KernelLog& log = f.kernel_log;
    if (!log.readable) fmt::format_to(out, "  unreadable: {}\n", log.error);
    else if (log.table_full.empty()) fmt::format_to(out, "  none for this namespace\n");
    for (const auto& l : log.table_full) {
        std::string ago;
        if (f.uptime_s) ago = fmt::format("  ({} ago)", human_seconds(static_cast<uint64_t>(std::max(0.0, *f.uptime_s - l.seconds))));
        fmt::format_to(out, "  [{:>12.6f}] {}{}\n", l.seconds, l.message, ago);
    }
    if (log.table_full_total > log.table_full.size())
        fmt::format_to(out, "  ({} earlier such lines not shown)\n", log.table_full_total - log.table_full.size());
    if (kernel_log_is_stale(f))
        fmt::format_to(out, "  (these name this namespace's inode number, but its drop counter is 0: they are from an "
                            "earlier namespace that had the same number)\n");
    if (log.other_netns)
        fmt::format_to(out, "  ({} lines about other network namespaces: not this table{})\n", log.other_netns,
                       f.other_incidents.empty() ? "" : "; those of the last 10 minutes are named under Health");

    if (f.recent)
        fmt::format_to(out, "\nHealth: {}  (now: fill, and the last {:.1f} s: {} drops, {} early drops, {:+.0f} entries/s)\n",
                       level_name(a.health.level), f.recent->seconds, f.recent->drop, f.recent->early_drop,
                       f.recent->growth_per_s);
    else
        fmt::format_to(out, "\nHealth: {}\n", level_name(a.health.level));
    for (const auto& r : a.health.reasons) b.append(wrap("  - ", r));
    if (!a.health.history.empty()) fmt::format_to(out, "  History (not judged: before the window)\n");
    for (const auto& h : a.health.history) b.append(wrap("    . ", h));

    fmt::format_to(out, "\nAdvice\n");
    if (a.advice.empty()) fmt::format_to(out, "  nothing to change\n");
    for (size_t i = 0; i < a.advice.size(); ++i) {
        const auto& x = a.advice[i];
        fmt::format_to(out, "  {}. {}\n     $ {}\n", i + 1, x.what, x.command);
        b.append(wrap("     ", x.why));
    }
    if (!a.sysctl_conf_lines.empty()) {
        fmt::format_to(out, "\n  /etc/sysctl.d/90-conntrack.conf:\n");
        for (const auto& l : a.sysctl_conf_lines) fmt::format_to(out, "    {}\n", l);
    }
    return fmt::to_string(b);
}

// --all-netns: every namespace on the host, judged over one window with status's rules.
struct NetnsHealth {
    HostNetns host;
    std::string name;
    ActivityReading before, after;
    TableFacts facts;
    Assessment assessment;
};

std::vector<NetnsHealth> judge_every_netns(double window) {
    WorkloadResolver names(WorkloadResolver::Roots{.cgroup = cgroup2_mount()});
    names.refresh();
    std::vector<NetnsHealth> all;
    for (const HostNetns& h : list_host_netns()) {
        NetnsHealth n;
        n.host = h;
        try {
            NetnsFile f(h.path);
            NetnsEntry inside(f);
            n.before = read_activity();
        } catch (const Error&) {
            continue;  // gone meanwhile
        }
        const auto info = names.netns(h.inum);
        n.name = !h.ip_name.empty() ? h.ip_name : info && info->label() != "unknown" ? info->label() : h.path;
        all.push_back(std::move(n));
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(window));
    for (auto& n : all) {
        try {
            NetnsFile f(n.host.path);
            NetnsEntry inside(f);
            n.after = read_activity();
        } catch (const Error&) {
            n.after = n.before;  // gone during the window: judged on what it had
        }
        n.facts.table = TableState{n.host.inum, static_cast<int64_t>(n.after.count), static_cast<int64_t>(n.after.max),
                                   static_cast<int64_t>(n.after.buckets)};
        n.facts.recent = activity_between(n.before, n.after);
        n.assessment = assess(n.facts);
    }
    // Worst first: level, then fill.
    std::stable_sort(all.begin(), all.end(), [](const NetnsHealth& a, const NetnsHealth& b) {
        if (a.assessment.health.level != b.assessment.health.level)
            return a.assessment.health.level > b.assessment.health.level;
        return a.facts.table.fill() > b.facts.table.fill();
    });
    return all;
}

nlohmann::json namespaces_json(const std::vector<NetnsHealth>& all) {
    auto arr = nlohmann::json::array();
    for (const auto& n : all)
        arr.push_back({{"inode", n.host.inum},
                       {"name", n.name},
                       {"count", n.facts.table.count},
                       {"max", n.facts.table.max},
                       {"fill", n.facts.table.fill()},
                       {"drop", n.facts.recent->drop},
                       {"early_drop", n.facts.recent->early_drop},
                       {"growth_per_s", n.facts.recent->growth_per_s},
                       {"level", level_name(n.assessment.health.level)}});
    return arr;
}

std::string namespaces_text(const std::vector<NetnsHealth>& all, double window) {
    fmt::memory_buffer b;
    auto out = std::back_inserter(b);
    size_t shown = 0, quiet = 0;
    fmt::format_to(out, "\nNetwork namespaces ({} on the host; judged over the same {:.1f} s; worst first)\n", all.size(),
                   window);
    fmt::format_to(out, "  {:<44} {:>12} {:>7} {:>7} {:>7}  {}\n", "namespace", "entries", "fill", "drops", "early",
                   "health");
    for (const auto& n : all) {
        const bool idle = n.facts.table.count == 0 && n.facts.recent->drop == 0 && n.facts.recent->early_drop == 0;
        if (idle || shown >= 40) {
            ++quiet;
            continue;
        }
        ++shown;
        std::string name = fmt::format("{} ({})", n.name, n.host.inum);
        if (name.size() > 44) name = name.substr(0, 41) + "...";
        fmt::format_to(out, "  {:<44} {:>12} {:>6.1f}% {:>7} {:>7}  {}\n", name,
                       fmt::format("{}/{}", n.facts.table.count, n.facts.table.max), n.facts.table.fill() * 100,
                       n.facts.recent->drop, n.facts.recent->early_drop, level_name(n.assessment.health.level));
    }
    if (quiet) fmt::format_to(out, "  ({} more: empty and quiet, or past the first 40)\n", quiet);
    return fmt::to_string(b);
}

}  // namespace

int cmd_status(const StatusArgs& args) {
    TableFacts facts;
    std::vector<NetnsHealth> every;
    std::string composition_error;
    try {
        const double window = parse_duration(args.window, "--window");
        if (window <= 0 || window > 60) throw Error("--window must be more than 0 and at most 60 s", kCannotRead);
        // Everything is read inside the namespace: sysctls, /proc/net and the netns inode
        // follow the reading thread's namespace.
        std::optional<NetnsFile> ns;
        std::optional<NetnsEntry> inside;
        std::optional<RecentActivity> judged;
        if (args.all_netns) {
            if (!args.netns.empty()) throw Error("--all-netns judges every namespace: give it or --netns, not both");
            // Entering each namespace is what needs it; nothing here loads BPF.
            constexpr int kSysAdmin = 21;
            if (!has_capability(kSysAdmin))
                throw Error("missing privileges: CAP_SYS_ADMIN (to enter each network namespace for --all-netns)");
            every = judge_every_netns(window);
            if (every.empty()) throw Error("no network namespace could be read");
            // The worst is diagnosed in full, on the window it was judged on.
            ns.emplace(every.front().host.path);
            inside.emplace(*ns);
            judged = every.front().facts.recent;
        } else if (!args.netns.empty()) {
            ns.emplace(args.netns);
            inside.emplace(*ns);
        }
        // The window first, then the facts: what is shown is the table at the end of it.
        const RecentActivity recent = judged ? *judged : sample_recent(window);
        facts = read_table_facts();
        facts.recent = recent;
        // What the entries are: one netlink dump (about 2.5 us per entry). Without it
        // (CAP_NET_ADMIN missing) status still reports, but names no timeout.
        try {
            facts.composition = dump_composition("self", {}, monotonic_ns());
        } catch (const Error& e) {
            composition_error = e.what();
        }
    } catch (const Error& e) {
        throw Error(e.what(), kCannotRead);
    }
    const Assessment a = assess(facts);
    std::string text = args.json ? to_json(facts, a, composition_error) : to_text(facts, a, composition_error);
    if (args.all_netns) {
        if (args.json) {
            auto j = nlohmann::json::parse(text);
            j["namespaces"] = namespaces_json(every);
            j["diagnosed"] = {{"inode", every.front().host.inum}, {"name", every.front().name}};
            text = j.dump() + "\n";
        } else {
            text = fmt::format("Diagnosed: {} ({}), the worst of {} namespaces\n", every.front().name,
                               every.front().host.inum, every.size()) +
                   text + namespaces_text(every, parse_duration(args.window, "--window"));
        }
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    switch (a.health.level) {
        case Level::Ok: return 0;
        case Level::Warning: return 1;
        case Level::Critical: return 2;
    }
    return 2;
}

}  // namespace ctbpf::cli
