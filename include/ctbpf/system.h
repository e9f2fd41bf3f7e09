// The kernel's own view of the conntrack table of the current network namespace, read
// from /proc, /sys and /dev/kmsg (no BPF), and the health and advice derived from it.
// Reading (table.cpp) and judging (advice.cpp) are separate so the judging is pure and
// every path can point at a fake tree in tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctbpf/composition.h"
#include "ctbpf/table.h"

namespace ctbpf {

// Where /proc, /sys and /dev are; tests point them at a fake tree.
struct SystemRoots {
    std::filesystem::path proc = "/proc", sys = "/sys", dev = "/dev", run = "/run";
    static SystemRoots under(const std::filesystem::path& dir) {
        return {dir / "proc", dir / "sys", dir / "dev", dir / "run"};
    }
};

// sizeof(struct nf_conn) on common x86-64 distribution kernels, used when /proc/slabinfo
// cannot be read (it is root-only). The real size depends on the kernel's configuration.
inline constexpr uint64_t kDefaultConntrackObjectSize = 320;
// One hash bucket is a struct hlist_nulls_head: one pointer.
inline constexpr uint64_t kHashBucketSize = 8;
// The kernel log lines that mean a packet was dropped because the table was full.
inline constexpr std::string_view kTableFullMarker = "nf_conntrack: table full";
// Inode of the initial network namespace, fixed since Linux 6.18 (PROC_NET_INIT_INO).
inline constexpr uint64_t kInitialNetnsInode = 0xEFFFFFF9;

// Which network namespace we are reading, to tell our table-full messages from others'.
// Inode numbers are reused once a namespace is gone, so lines naming our inode from before
// our namespace existed are someone else's.
struct NetnsId {
    uint64_t inode = 0;    // of /proc/self/ns/net; 0 if unknown
    bool initial = true;   // the kernel logs table-full there without "in netns N"
    // Seconds since boot when the namespace's nsfs inode was made: its creation for `ip
    // netns` namespaces (the bind mount keeps the inode), its first opening otherwise.
    std::optional<double> created_s;
};

struct KernelLogLine {
    double seconds = 0;    // since boot
    std::string message;
};

struct KernelLog {
    bool readable = false;
    std::string error;                 // why not, when !readable
    std::vector<KernelLogLine> table_full;  // the last kMaxLines about this namespace, oldest first
    uint64_t table_full_total = 0;     // all table-full lines about this namespace still in the buffer
    uint64_t other_netns = 0;          // about other namespaces, or from before ours existed
    // Of those, the ones that name their namespace (6.17+), by namespace inode.
    struct Other {
        uint64_t lines = 0;
        double last_s = 0;  // seconds since boot of the newest
    };
    std::map<uint64_t, Other> others;
    static constexpr size_t kMaxLines = 10;
};

// Another namespace whose table was full lately: status and watch name it and say how to
// look at it, since an incident there is otherwise invisible from here.
struct OtherNetnsIncident {
    uint64_t inode = 0;
    std::string name;  // `ip netns` name, "" if it has none
    uint64_t lines = 0;
    double ago_s = 0;
};
// Names of `ip netns` namespaces by inode (/run/netns).
std::map<uint64_t, std::string> named_netns(const SystemRoots& roots = {});
// Whether this process has capability `cap` (its number, e.g. 21 = CAP_SYS_ADMIN) in its
// effective set (the CapEff line of /proc/self/status).
bool has_capability(int cap);
// The namespaces of `log.others` whose last line is at most `within_s` old, newest first.
std::vector<OtherNetnsIncident> other_netns_incidents(const KernelLog& log, const std::optional<double>& uptime_s,
                                                      const std::map<uint64_t, std::string>& names, double within_s);
std::string describe(const OtherNetnsIncident& i);  // one line, with the command to look

// What the kernel counted over a short window just now. Health describes this window, not
// the history since boot: after a fix, status must be able to say "ok" again.
struct RecentActivity {
    double seconds = 0;                                   // length of the window
    uint64_t drop = 0, early_drop = 0, insert_failed = 0;  // counter deltas over it
    double growth_per_s = 0;                              // entry count change per second
};

struct TableFacts {
    TableState table;                           // nf_conntrack_{count,max,buckets}; max 0 = no limit
    std::optional<uint64_t> hashsize;           // /sys/module/nf_conntrack/parameters/hashsize
    std::map<std::string, uint64_t> timeouts;   // "tcp_timeout_established" -> seconds
    uint64_t object_size = kDefaultConntrackObjectSize;
    bool object_size_estimated = true;          // slabinfo unreadable or without nf_conntrack
    // /proc/net/stat/nf_conntrack summed over CPUs, since boot (or since the namespace was
    // made). Without "entries", which every CPU line repeats. Empty if the file is absent.
    std::map<std::string, uint64_t> counters;
    KernelLog kernel_log;
    NetnsId netns;
    std::optional<double> uptime_s;             // /proc/uptime, to age the log lines
    // Other namespaces whose table-full lines are at most kOtherIncidentSeconds old.
    std::vector<OtherNetnsIncident> other_incidents;
    // The window health is judged on. Absent: the counters above are the window (a
    // recording's own span, in `report`).
    std::optional<RecentActivity> recent;
    // What the entries are (a netlink dump): timeout advice comes only from it.
    std::optional<Composition> composition;
};

// Reads everything. Throws ctbpf::Error "conntrack is not active ..." when the namespace
// has no conntrack sysctls. Missing optional sources are recorded, not fatal.
TableFacts read_table_facts(const SystemRoots& roots = {});

// The namespace's timeout sysctls, "tcp_timeout_established" -> seconds (of the namespace
// the calling thread is in: /proc/sys/net follows the opener's namespace).
std::map<std::string, uint64_t> read_timeouts(const SystemRoots& roots = {});

// Pieces of the above, exposed for tests.
std::optional<uint64_t> parse_slabinfo_objsize(std::string_view slabinfo);  // "nf_conntrack" line
std::map<std::string, uint64_t> parse_conntrack_stat(std::string_view text);
// Text of kmsg records ("prio,seq,usec,flags;message\n" plus " KEY=value" lines).
KernelLog parse_kmsg(std::string_view text, const NetnsId& netns);
KernelLog read_kmsg(const std::filesystem::path& path, const NetnsId& netns);
// Samples the drop counters and the entry count twice, `seconds` apart (status's window).
RecentActivity sample_recent(double seconds, const SystemRoots& roots = {});
// The same in two steps, for several namespaces over one window: a reading (of the
// namespace the calling thread is in), and the activity between two readings.
struct ActivityReading {
    std::map<std::string, uint64_t> counters;
    uint64_t count = 0, max = 0, buckets = 0;
    std::chrono::steady_clock::time_point at;
};
ActivityReading read_activity(const SystemRoots& roots = {});
RecentActivity activity_between(const ActivityReading& a, const ActivityReading& b);

// --- Judging: pure functions of TableFacts -------------------------------------------

enum class Level { Ok, Warning, Critical };
std::string_view level_name(Level l);  // "ok", "warning", "critical"

struct Health {
    Level level = Level::Ok;
    std::vector<std::string> reasons;  // why the level is not ok now, one per finding
    std::vector<std::string> history;  // what happened before the window: shown, not judged
};

struct AdviceItem {
    std::string what, command, why;
};

struct Memory {
    uint64_t now_bytes = 0;     // count * object size
    uint64_t at_max_bytes = 0;  // max * object size
    uint64_t hash_bytes = 0;    // buckets * 8
};

struct Assessment {
    double fill = 0;                    // count / max (0 when there is no limit)
    Memory memory;
    Health health;
    uint64_t recommended_max = 0;       // 0: no change advised
    uint64_t recommended_buckets = 0;   // 0: no change advised
    uint64_t recommended_tcp_established = 0;  // 0: no change advised
    // Timeouts advised, with their predicted effect (from TableFacts::composition).
    std::vector<TimeoutPrediction> timeout_changes;
    std::vector<std::string> sysctl_conf_lines;  // for /etc/sysctl.d/90-conntrack.conf
    std::vector<AdviceItem> advice;
};

// Critical from 90%, not 95%: above 95% the kernel's gc worker evicts unassured entries
// (nf_conntrack_max95), so a table that has just refused entries reads a few points under
// 95% once the load pauses; 90% is also where the shipped ConntrackTableNearlyFull alert fires.
inline constexpr double kWarnFill = 0.80, kCriticalFill = 0.90;
// A table that will be full within this long at its current growth is a warning. Shorter
// than the shipped ConntrackTableFullSoon alert (10 min, held 2 min): status and each watch
// interval judge one short window with no smoothing, and a steady table's count moves by
// its arrival rate in a window as the gc worker frees in batches.
inline constexpr double kFullSoonSeconds = 60;
// Another namespace's table-full kernel log line this recent is a warning in the host's view
// (its drop counters cannot be read from here; the log line is the only sign).
inline constexpr double kRecentLogSeconds = 60;
// Other namespaces' table-full lines up to this old are named (history beyond a minute).
inline constexpr double kOtherIncidentSeconds = 600;
inline constexpr uint64_t kMaxSensibleTcpEstablished = 86400;  // 1 day
// A timeout is advised only when the classes it holds are at least this share of the table,
// and its proposed value would free at least kMeaningfulGain of the table.
inline constexpr double kMeaningfulShare = 0.20, kMeaningfulGain = 0.10;

uint64_t next_pow2(uint64_t n);  // smallest power of two >= n (1 for 0)
Memory memory_of(const TableFacts& f);
// Next power of two >= max(2 * count, 2 * max): room for twice today's peak.
uint64_t recommended_max(uint64_t count, uint64_t max);
// One bucket per allowed entry (rounded up to a power of two): each entry is hashed twice,
// so chains stay at ~2 entries. The kernel's own default ratio since Linux 5.15.
uint64_t recommended_buckets(uint64_t max);
// Table-full lines name our namespace by inode number, and inode numbers are reused: if our
// drop counter is 0 the lines that survived the age check still came from an earlier one.
bool kernel_log_is_stale(const TableFacts& f);
Assessment assess(const TableFacts& f);

std::string human_bytes(uint64_t bytes);      // "512 B", "1.5 KiB", "320.0 MiB"
std::string human_seconds(uint64_t seconds);  // "5d", "1h30m", "45s"

}  // namespace ctbpf
