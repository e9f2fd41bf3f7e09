// Health and advice from TableFacts: pure arithmetic and wording, no I/O.
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include <fmt/format.h>

#include "ctbpf/system.h"

namespace ctbpf {

namespace {

uint64_t counter(const TableFacts& f, const std::string& name) {
    const auto it = f.counters.find(name);
    return it == f.counters.end() ? 0 : it->second;
}

std::string percent(double fill) { return fmt::format("{:.1f}%", fill * 100); }

}  // namespace

std::string_view level_name(Level l) {
    switch (l) {
        case Level::Ok: return "ok";
        case Level::Warning: return "warning";
        case Level::Critical: return "critical";
    }
    return "?";
}

uint64_t next_pow2(uint64_t n) {
    uint64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

namespace {
uint64_t nonneg(int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(0, v)); }
}  // namespace

Memory memory_of(const TableFacts& f) {
    return {nonneg(f.table.count) * f.object_size, nonneg(f.table.max) * f.object_size,
            nonneg(f.table.buckets) * kHashBucketSize};
}

uint64_t recommended_max(uint64_t count, uint64_t max) { return next_pow2(std::max(2 * count, 2 * max)); }

uint64_t recommended_buckets(uint64_t max) { return next_pow2(max); }

bool kernel_log_is_stale(const TableFacts& f) {
    const auto it = f.counters.find("drop");
    return f.kernel_log.table_full_total > 0 && it != f.counters.end() && it->second == 0;
}

std::string human_bytes(uint64_t bytes) {
    if (bytes < 1024) return fmt::format("{} B", bytes);
    const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes) / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        u++;
    }
    return fmt::format("{:.1f} {}", v, units[u]);
}

std::string human_seconds(uint64_t s) {
    const std::pair<uint64_t, const char*> units[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
    std::string out;
    int parts = 0;
    for (const auto& [size, name] : units) {
        if (s >= size && parts < 2) {
            out += fmt::format("{}{}", s / size, name);
            s %= size;
            parts++;
        } else if (parts > 0) {
            parts = 2;  // only adjacent units: "1d2h", never "1d5m"
        }
    }
    return out.empty() ? "0s" : out;
}

Assessment assess(const TableFacts& f) {
    Assessment a;
    a.memory = memory_of(f);
    a.fill = f.table.max ? static_cast<double>(f.table.count) / static_cast<double>(f.table.max) : 0.0;
    auto raise = [&](Level l, std::string why) {
        a.health.level = std::max(a.health.level, l);
        a.health.reasons.push_back(std::move(why));
    };

    // --- Health -------------------------------------------------------------------------
    const std::string fill_text = fmt::format("table is {} full ({} of {} entries)", percent(a.fill), f.table.count, f.table.max);
    if (a.fill >= kCriticalFill)
        raise(Level::Critical, fill_text + ": when it reaches 100% new connections are dropped");
    else if (a.fill >= kWarnFill)
        raise(Level::Warning, fill_text + fmt::format(", above the {:.0f}% warning mark", kWarnFill * 100));
    const KernelLog& log = f.kernel_log;
    const bool log_counts = log.table_full_total > 0 && !kernel_log_is_stale(f);
    auto ago = [&](double at) {
        std::string when = fmt::format("{:.0f} s after boot", at);
        if (f.uptime_s)
            when += fmt::format(", {} ago", human_seconds(static_cast<uint64_t>(std::max(0.0, *f.uptime_s - at))));
        return when;
    };
    if (f.recent) {
        // Now: the window just measured. What happened before it (the kernel log included:
        // the window's drop counter already says whether the table is full now) is history,
        // shown but not judged, so that a fixed table reads ok again at once.
        const RecentActivity& r = *f.recent;
        if (r.drop)
            raise(Level::Critical, fmt::format("conntrack dropped {} packets in the last {:.0f} s ({:.0f}/s): no entry "
                                               "could be made for them, almost always because the table is full",
                                               r.drop, r.seconds, static_cast<double>(r.drop) / r.seconds));
        if (r.early_drop)
            raise(Level::Warning, fmt::format("{} entries were evicted early in the last {:.0f} s to make room: the "
                                              "table is at its maximum",
                                              r.early_drop, r.seconds));
        if (f.table.max > 0 && f.table.count < f.table.max && r.growth_per_s > 0) {
            const double eta = static_cast<double>(f.table.max - f.table.count) / r.growth_per_s;
            if (eta < kFullSoonSeconds)
                raise(Level::Warning, fmt::format("the table grows by {:.0f} entries/s: full in {} at this rate",
                                                  r.growth_per_s, human_seconds(static_cast<uint64_t>(eta) + 1)));
        }
        if (const uint64_t drop = counter(f, "drop"))
            a.health.history.push_back(fmt::format("{} packets dropped since boot (counter 'drop')", drop));
        if (const uint64_t early = counter(f, "early_drop"))
            a.health.history.push_back(fmt::format("{} entries evicted early since boot (counter 'early_drop')", early));
        if (log_counts)
            a.health.history.push_back(fmt::format("{} 'table full' kernel log lines for this namespace, the last {}",
                                                   log.table_full_total, ago(log.table_full.back().seconds)));
    } else {
        if (const uint64_t drop = counter(f, "drop"))
            raise(Level::Critical, fmt::format("conntrack dropped {} packets since boot (counter 'drop'): no entry "
                                               "could be made for them, almost always because the table was full",
                                               drop));
        if (log_counts)
            raise(Level::Critical, fmt::format("kernel log has {} 'nf_conntrack: table full, dropping packet' "
                                               "messages naming this namespace, the last {}",
                                               log.table_full_total, ago(log.table_full.back().seconds)));
        if (const uint64_t early = counter(f, "early_drop"))
            raise(Level::Warning, fmt::format("{} entries were evicted early to make room (counter 'early_drop'): "
                                              "the table reached its maximum",
                                              early));
    }

    // Another namespace's incident is invisible from here otherwise: name it, and say how to
    // look. A warning while it is recent (the operator may be watching the wrong table).
    // This table's own pressure, not theirs, decides the advice below.
    const Level own_level = a.health.level;
    // Only the host's view warns: nf_conntrack_max is global and the host's operator owns
    // every namespace; from inside a container, other tables are someone else's (history).
    for (const auto& o : f.other_incidents) {
        if (f.netns.initial && o.ago_s <= kRecentLogSeconds) raise(Level::Warning, describe(o));
        else a.health.history.push_back(describe(o));
    }

    // --- Advice -------------------------------------------------------------------------
    // Global settings are read-only inside other namespaces: say where to run them.
    const std::string where = f.netns.initial ? ""
                                              : " This setting is global and read-only in this network namespace: "
                                                "run the command on the host (initial namespace).";
    // Raising the limit is advised for pressure now (or, without a window, in the span judged).
    const bool pressure = a.fill >= kWarnFill || own_level != Level::Ok;
    if (pressure && f.table.max > 0) {
        a.recommended_max = recommended_max(f.table.count, f.table.max);
        a.sysctl_conf_lines.push_back(fmt::format("net.netfilter.nf_conntrack_max = {}", a.recommended_max));
        a.advice.push_back(
            {fmt::format("raise nf_conntrack_max from {} to {}", f.table.max, a.recommended_max),
             fmt::format("sysctl -w net.netfilter.nf_conntrack_max={}", a.recommended_max),
             fmt::format("When the table is full the kernel drops the first packet of every new connection. {} is "
                         "the next power of two at or above twice the current entries and twice the current "
                         "maximum. Entries cost {} bytes each: {} at the new maximum (now {} at maximum), "
                         "allocated only as entries are made.{}",
                         a.recommended_max, f.object_size, human_bytes(a.recommended_max * f.object_size),
                         human_bytes(a.memory.at_max_bytes), where)});
    }
    const uint64_t target_max = a.recommended_max ? a.recommended_max : nonneg(f.table.max);
    if (f.table.buckets > 0 && nonneg(f.table.buckets) < target_max) {
        a.recommended_buckets = recommended_buckets(target_max);
        a.sysctl_conf_lines.push_back(fmt::format("net.netfilter.nf_conntrack_buckets = {}", a.recommended_buckets));
        a.advice.push_back(
            {fmt::format("grow the hash table from {} to {} buckets", f.table.buckets, a.recommended_buckets),
             fmt::format("echo {} > /sys/module/nf_conntrack/parameters/hashsize", a.recommended_buckets),
             fmt::format("Each entry is hashed twice (original and reply direction), so one bucket per allowed "
                         "entry keeps lookup chains at about 2 entries; that is the kernel's own default since "
                         "Linux 5.15 (older kernels used a quarter of that). Costs {} bytes per bucket: {} "
                         "(now {}). Only possible from the initial network namespace.",
                         kHashBucketSize, human_bytes(a.recommended_buckets * kHashBucketSize),
                         human_bytes(a.memory.hash_bytes))});
    }
    // Timeouts: only from what the entries are. An entry stays for its class's timeout after
    // its last packet, so the one that holds the table is the one worth changing; its effect
    // is predicted from how long the entries there have been idle (composition.h).
    if (f.composition && f.composition->total > 0) {
        const Composition& c = *f.composition;
        const double total = static_cast<double>(c.total);
        for (const TimeoutPrediction& p : c.predictions) {
            if (!proposed_timeout(p.sysctl, p.from_s) || p.to_s != *proposed_timeout(p.sysctl, p.from_s)) continue;
            const double share = static_cast<double>(p.entries_now) / total;
            const uint64_t freed = p.entries_now > p.entries_after ? p.entries_now - p.entries_after : 0;
            if (share < kMeaningfulShare || static_cast<double>(freed) < kMeaningfulGain * total) continue;
            a.timeout_changes.push_back(p);
            if (p.sysctl == "tcp_timeout_established") a.recommended_tcp_established = p.to_s;
            std::string held;
            for (const auto& cls : p.classes)
                for (const auto& cc : c.classes)
                    if (cc.cls == cls && cc.entries)
                        held += fmt::format("{}{} {} ({:.0f}%, idle median {})", held.empty() ? "" : ", ", cc.entries,
                                            class_name(cls), 100.0 * static_cast<double>(cc.entries) / total,
                                            human_seconds(static_cast<uint64_t>(cc.idle.quantile(0.5))));
            const std::string name = "nf_conntrack_" + p.sysctl;
            if (f.netns.initial) a.sysctl_conf_lines.push_back(fmt::format("net.netfilter.{} = {}", name, p.to_s));
            std::string why = fmt::format(
                "{} of the table's {} entries are held by this timeout: {}. Entries stay {} after their last "
                "packet; with {} those idle longer expire, leaving about {} of them ({} fewer entries, {} less "
                "memory at {} bytes each).",
                p.entries_now, c.total, held, human_seconds(p.from_s), human_seconds(p.to_s), p.entries_after, freed,
                human_bytes(freed * f.object_size), f.object_size);
            if (p.sysctl == "tcp_timeout_established")
                why += " Stay above the longest idle time of connections you need (TCP keepalive starts at 7200 s "
                       "by default), or idle connections lose their conntrack state.";
            if (!f.netns.initial) why += " Timeouts are per network namespace: run the command inside this one.";
            a.advice.push_back({fmt::format("lower {} from {} to {}: about {} fewer entries ({} -> {})", name,
                                            human_seconds(p.from_s), human_seconds(p.to_s), freed, c.total,
                                            c.total - freed),
                                fmt::format("sysctl -w net.netfilter.{}={}", name, p.to_s), why});
        }
        for (const auto& d : c.silent) {
            const std::string dst = d.addr.family == AF_INET6 ? "[" + d.addr.to_string() + "]" : d.addr.to_string();
            a.advice.push_back(
                {fmt::format("{}{} ({}) never answered: {} entries towards it are unreplied", dst,
                             d.proto == IPPROTO_TCP || d.proto == IPPROTO_UDP ? fmt::format(":{}", d.port) : std::string(),
                             proto_name(d.proto), d.unreplied),
                 fmt::format("conntrack -D -p {} --orig-dst {}{}", proto_name(d.proto), d.addr.to_string(),
                             d.proto == IPPROTO_TCP || d.proto == IPPROTO_UDP ? fmt::format(" --orig-port-dst {}", d.port)
                                                                              : std::string()),
                 "No entry towards this destination ever saw a reply: the service is down or gone. A client that "
                 "keeps sending refreshes its UNREPLIED entry forever, and behind NAT a stale mapping can blackhole "
                 "it after the service is back; deleting the entries makes the next packet create a fresh one."});
        }
    }
    if (!a.sysctl_conf_lines.empty()) {
        std::string quoted;
        for (const auto& l : a.sysctl_conf_lines) quoted += fmt::format(" '{}'", l);
        a.advice.push_back(
            {"make the settings survive a reboot",
             fmt::format("printf '%s\\n'{} > /etc/sysctl.d/90-conntrack.conf && "
                         "echo nf_conntrack > /etc/modules-load.d/conntrack.conf",
                         quoted),
             "sysctl -w lasts until reboot. systemd-sysctl applies /etc/sysctl.d at boot, but net.netfilter.* "
             "exists only once nf_conntrack is loaded, so modules-load.d loads it first."});
        a.advice.push_back({"verify",
                            "sysctl net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_buckets "
                            "net.netfilter.nf_conntrack_tcp_timeout_established; "
                            "cat /proc/sys/net/netfilter/nf_conntrack_count; ctbpf status",
                            "The new values are in effect and the count stays well below the maximum; ctbpf "
                            "status exits 0 when the table is healthy (1 warning, 2 critical)."});
    }
    return a;
}

}  // namespace ctbpf
