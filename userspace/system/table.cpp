// Reading the conntrack table's facts from /proc, /sys and /dev/kmsg of the current
// network namespace. Only reads; nothing here needs BPF.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <thread>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/fd.h"
#include "ctbpf/system.h"

namespace ctbpf {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return s.str();
}

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<uint64_t> to_u64(std::string_view s, int base = 10) {
    s = trim(s);
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::optional<uint64_t> read_u64(const fs::path& p) {
    const auto text = slurp(p);
    return text ? to_u64(*text) : std::nullopt;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> w;
    size_t i = 0;
    while (i < line.size()) {
        const size_t b = line.find_first_not_of(" \t", i);
        if (b == std::string_view::npos) break;
        const size_t e = std::min(line.find_first_of(" \t", b), line.size());
        w.push_back(line.substr(b, e - b));
        i = e;
    }
    return w;
}

// Calls f(line) for each line of text, without the newline.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        f(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

std::optional<struct stat> stat_of(const fs::path& p) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) return std::nullopt;
    return st;
}

NetnsId read_netns_id(const SystemRoots& r, std::optional<double> uptime_s) {
    NetnsId id;
    const auto own = stat_of(r.proc / "self/ns/net");
    if (!own) return id;  // unknown: untagged lines count as ours, tagged ones do not
    id.inode = own->st_ino;
    // Fixed inode since 6.18; before that, pid 1's namespace is the best guess (wrong in
    // a container with its own network namespace, where host lines would count as ours).
    const auto pid1 = stat_of(r.proc / "1/ns/net");
    id.initial = id.inode == kInitialNetnsInode || (pid1 && pid1->st_ino == own->st_ino);
    if (uptime_s) {
        // Wall clock to seconds since boot. Kernel log times come from another clock that
        // does not count suspend and is not NTP-adjusted: the two drift apart by up to a few
        // seconds a day, so lines that close to the namespace's birth may be misjudged.
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        const auto secs = [](const timespec& t) { return static_cast<double>(t.tv_sec) + t.tv_nsec / 1e9; };
        id.created_s = *uptime_s - (secs(now) - secs(own->st_mtim));
    }
    return id;
}

}  // namespace

std::optional<uint64_t> parse_slabinfo_objsize(std::string_view slabinfo) {
    // "name <active_objs> <num_objs> <objsize> ..." (slabinfo - version: 2.1)
    std::optional<uint64_t> size;
    for_each_line(slabinfo, [&](std::string_view line) {
        const auto w = words(line);
        if (!size && w.size() > 3 && w[0] == "nf_conntrack") size = to_u64(w[3]);
    });
    return size;
}

std::map<std::string, uint64_t> parse_conntrack_stat(std::string_view text) {
    // A header naming the columns, then one line of hex numbers per CPU.
    std::vector<std::string> cols;
    std::map<std::string, uint64_t> sum;
    for_each_line(text, [&](std::string_view line) {
        const auto w = words(line);
        if (cols.empty()) {
            cols.assign(w.begin(), w.end());
            return;
        }
        for (size_t i = 0; i < w.size() && i < cols.size(); ++i) {
            if (cols[i] == "entries") continue;  // the table size, repeated on every CPU line
            if (const auto v = to_u64(w[i], 16)) sum[cols[i]] += *v;
        }
    });
    return sum;
}

KernelLog parse_kmsg(std::string_view text, const NetnsId& netns) {
    KernelLog log;
    log.readable = true;
    for_each_line(text, [&](std::string_view line) {
        // Continuation lines (" SUBSYSTEM=...") start with a space; records with "prio,".
        const size_t semi = line.find(';');
        if (line.empty() || line[0] == ' ' || semi == std::string_view::npos) return;
        const std::string_view msg = line.substr(semi + 1);
        if (msg.find(kTableFullMarker) == std::string_view::npos) return;
        const auto fields = line.substr(0, semi);
        const size_t c1 = fields.find(','), c2 = fields.find(',', c1 + 1);
        if (c1 == std::string_view::npos || c2 == std::string_view::npos) return;
        const auto usec = to_u64(fields.substr(c2 + 1, fields.find(',', c2 + 1) - c2 - 1));
        if (!usec) return;

        // Since 6.17 other namespaces are named: "table full in netns 4026532177, ...".
        constexpr std::string_view tag = "table full in netns ";
        const size_t t = msg.find(tag);
        const double seconds = static_cast<double>(*usec) / 1e6;
        bool ours = netns.initial;
        std::optional<uint64_t> named;
        if (t != std::string_view::npos) {
            const auto rest = msg.substr(t + tag.size());
            named = to_u64(rest.substr(0, rest.find_first_not_of("0123456789")));
            ours = named == netns.inode && (!netns.created_s || seconds >= *netns.created_s);
        }
        if (!ours) {
            log.other_netns++;
            // Lines from before 6.17 name no namespace: only counted. Lines naming our own
            // inode from before we existed are an earlier namespace's: nobody to name.
            if (named && *named != netns.inode) {
                auto& o = log.others[*named];
                o.lines++;
                o.last_s = std::max(o.last_s, seconds);
            }
            return;
        }
        log.table_full_total++;
        log.table_full.push_back({seconds, std::string(msg)});
        if (log.table_full.size() > KernelLog::kMaxLines) log.table_full.erase(log.table_full.begin());
    });
    return log;
}

KernelLog read_kmsg(const fs::path& path, const NetnsId& netns) {
    const UniqueFd file(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    const int fd = file.get();
    if (fd < 0) {
        KernelLog log;
        log.error = fmt::format("cannot open {}: {}", path.string(), std::strerror(errno));
        return log;
    }
    // /dev/kmsg returns one record per read (the buffer must hold a whole one) and EAGAIN
    // at the end; a plain file (tests) returns chunks and then 0.
    std::string text;
    std::vector<char> buf(16384);
    std::string error;
    for (;;) {
        const ssize_t n = read(fd, buf.data(), buf.size());
        if (n > 0) {
            text.append(buf.data(), static_cast<size_t>(n));
            continue;
        }
        if (n == 0 || errno == EAGAIN) break;
        if (errno == EINTR || errno == EPIPE) continue;  // EPIPE: a record was overwritten
        error = fmt::format("reading {}: {}", path.string(), std::strerror(errno));
        break;
    }
    KernelLog log = parse_kmsg(text, netns);
    if (!error.empty() && text.empty()) {
        log.readable = false;
        log.error = error;
    }
    return log;
}

std::map<std::string, uint64_t> read_timeouts(const SystemRoots& roots) {
    std::map<std::string, uint64_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(roots.proc / "sys/net/netfilter", ec)) {
        const std::string name = e.path().filename().string();
        constexpr std::string_view prefix = "nf_conntrack_";
        if (name.rfind(prefix, 0) != 0 || name.find("timeout") == std::string::npos) continue;
        if (const auto v = read_u64(e.path())) out[name.substr(prefix.size())] = *v;
    }
    return out;
}

TableFacts read_table_facts(const SystemRoots& roots) {
    const fs::path nf = roots.proc / "sys/net/netfilter";
    TableFacts f;
    const auto count = read_u64(nf / "nf_conntrack_count");
    if (!count) {
        // /proc/sys/net/netfilter alone can exist without conntrack (nf_log).
        throw Error(fmt::format("conntrack is not active in this network namespace: {} is missing "
                                "(nf_conntrack not loaded; `modprobe nf_conntrack`, or any ct rule, loads it)",
                                (nf / "nf_conntrack_count").string()));
    }
    f.table.count = static_cast<int64_t>(*count);
    f.table.max = static_cast<int64_t>(read_u64(nf / "nf_conntrack_max").value_or(0));
    f.table.buckets = static_cast<int64_t>(read_u64(nf / "nf_conntrack_buckets").value_or(0));
    f.hashsize = read_u64(roots.sys / "module/nf_conntrack/parameters/hashsize");

    f.timeouts = read_timeouts(roots);

    if (const auto slab = slurp(roots.proc / "slabinfo")) {
        if (const auto size = parse_slabinfo_objsize(*slab)) {
            f.object_size = *size;
            f.object_size_estimated = false;
        }
    }
    if (const auto stat = slurp(roots.proc / "net/stat/nf_conntrack")) f.counters = parse_conntrack_stat(*stat);
    if (const auto up = slurp(roots.proc / "uptime")) {
        std::istringstream in(*up);
        if (double s = 0; in >> s) f.uptime_s = s;
    }
    f.netns = read_netns_id(roots, f.uptime_s);
    f.kernel_log = read_kmsg(roots.dev / "kmsg", f.netns);
    if (!f.kernel_log.others.empty())
        f.other_incidents = other_netns_incidents(f.kernel_log, f.uptime_s, named_netns(roots), kOtherIncidentSeconds);
    return f;
}

}  // namespace ctbpf

namespace ctbpf {

ActivityReading read_activity(const SystemRoots& roots) {
    const fs::path nf = roots.proc / "sys/net/netfilter";
    ActivityReading r;
    if (const auto stat = slurp(roots.proc / "net/stat/nf_conntrack")) r.counters = parse_conntrack_stat(*stat);
    r.count = read_u64(nf / "nf_conntrack_count").value_or(0);
    r.max = read_u64(nf / "nf_conntrack_max").value_or(0);
    r.buckets = read_u64(nf / "nf_conntrack_buckets").value_or(0);
    r.at = std::chrono::steady_clock::now();
    return r;
}

RecentActivity sample_recent(double seconds, const SystemRoots& roots) {
    const ActivityReading a = read_activity(roots);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    return activity_between(a, read_activity(roots));
}

RecentActivity activity_between(const ActivityReading& a, const ActivityReading& b) {
    auto delta = [&](const char* name) -> uint64_t {
        const auto x = a.counters.find(name), y = b.counters.find(name);
        if (x == a.counters.end() || y == b.counters.end() || y->second < x->second) return 0;
        return y->second - x->second;
    };
    RecentActivity r;
    r.seconds = std::max(1e-3, std::chrono::duration<double>(b.at - a.at).count());
    r.drop = delta("drop");
    r.early_drop = delta("early_drop");
    r.insert_failed = delta("insert_failed");
    r.growth_per_s = (static_cast<double>(b.count) - static_cast<double>(a.count)) / r.seconds;
    return r;
}

}  // namespace ctbpf

namespace ctbpf {

bool has_capability(int cap) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> cap) & 1ull;
    return false;
}

std::map<uint64_t, std::string> named_netns(const SystemRoots& roots) {
    std::map<uint64_t, std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(roots.run / "netns", ec)) {
        struct stat st {};
        if (stat(e.path().c_str(), &st) == 0) names.emplace(st.st_ino, e.path().filename().string());
    }
    return names;
}

std::vector<OtherNetnsIncident> other_netns_incidents(const KernelLog& log, const std::optional<double>& uptime_s,
                                                      const std::map<uint64_t, std::string>& names,
                                                      double within_s) {
    std::vector<OtherNetnsIncident> out;
    for (const auto& [inode, o] : log.others) {
        if (uptime_s && *uptime_s - o.last_s > within_s) continue;
        OtherNetnsIncident i;
        i.inode = inode;
        if (auto it = names.find(inode); it != names.end()) i.name = it->second;
        i.lines = o.lines;
        if (uptime_s) i.ago_s = std::max(0.0, *uptime_s - o.last_s);
        out.push_back(std::move(i));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ago_s < b.ago_s; });
    return out;
}

std::string describe(const OtherNetnsIncident& i) {
    const std::string who = i.name.empty() ? fmt::format("network namespace {}", i.inode)
                                           : fmt::format("network namespace {} ({})", i.name, i.inode);
    const std::string look = i.name.empty()
                                 ? fmt::format("find it with 'lsns -t net' (inode {}), then ctbpf status --netns /proc/PID/ns/net",
                                               i.inode)
                                 : fmt::format("ctbpf status --netns {}; ctbpf watch --netns {}", i.name, i.name);
    return fmt::format("{} logged 'table full, dropping packet' {} time{}, the last {} ago: look with {}", who,
                       i.lines, i.lines == 1 ? "" : "s", human_seconds(static_cast<uint64_t>(i.ago_s)), look);
}

}  // namespace ctbpf
