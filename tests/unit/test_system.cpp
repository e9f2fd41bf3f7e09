// Unit tests for the conntrack table facts (userspace/system/table.cpp) read from a fake
// /proc, /sys and /dev tree in a temporary directory, and for the pure health and advice
// arithmetic (userspace/system/advice.cpp). No privileges needed.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "ctbpf/error.h"
#include "ctbpf/system.h"

namespace {

namespace fs = std::filesystem;
using namespace ctbpf;

// Header and lines as Linux prints them (slabinfo - version: 2.1).
constexpr const char* kSlabinfo =
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> "
    "<batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
    "nf_conntrack_expect      0      0    208   19    1 : tunables    0    0    0 : slabdata      0      0      0\n"
    "nf_conntrack         192    192    256   16    1 : tunables    0    0    0 : slabdata     12     12      0\n"
    "kmalloc-256         1024   1024    256   16    1 : tunables    0    0    0 : slabdata     64     64      0\n";

// Two CPUs; "entries" (0x352 = 850) repeats on every line. Columns as on Linux 6.18.
constexpr const char* kStat =
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop "
    "icmp_error  expect_new expect_create expect_delete search_restart\n"
    "00000352  00000001 00000000 00000000 0000000a 00000000 00000000 00000000 00000000 00000002 0000000f "
    "00000003 00000000  00000000 00000000 00000000 000000ff\n"
    "00000352  00000002 00000000 00000000 00000010 00000000 00000000 00000000 00000000 00000000 00000005 "
    "00000001 00000000  00000000 00000000 00000000 00000001\n";

NetnsId netns(uint64_t inode, bool initial, std::optional<double> created_s = std::nullopt) {
    NetnsId id;
    id.inode = inode;
    id.initial = initial;
    id.created_s = created_s;
    return id;
}

class FakeTree : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ctbpf-system-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        roots_ = SystemRoots::under(dir_);
        write("proc/sys/net/netfilter/nf_conntrack_count", "850\n");
        write("proc/sys/net/netfilter/nf_conntrack_max", "1000\n");
        write("proc/sys/net/netfilter/nf_conntrack_buckets", "1024\n");
        write("proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established", "432000\n");
        write("proc/sys/net/netfilter/nf_conntrack_udp_timeout", "30\n");
        write("proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream", "120\n");
        write("proc/sys/net/netfilter/nf_conntrack_generic_timeout", "600\n");
        write("proc/sys/net/netfilter/nf_conntrack_acct", "0\n");   // not a timeout
        write("proc/sys/net/netfilter/nf_log/2", "NONE\n");         // not conntrack
        write("sys/module/nf_conntrack/parameters/hashsize", "1024\n");
        write("proc/slabinfo", kSlabinfo);
        write("proc/net/stat/nf_conntrack", kStat);
        write("proc/uptime", "1300.50 2000.00\n");
        write("proc/self/ns/net", "");
        write("dev/kmsg", "");
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& rel, const std::string& text) {
        fs::create_directories((dir_ / rel).parent_path());
        std::ofstream(dir_ / rel) << text;
    }
    uint64_t inode(const std::string& rel) {
        struct stat st {};
        EXPECT_EQ(stat((dir_ / rel).c_str(), &st), 0);
        return st.st_ino;
    }

    fs::path dir_;
    SystemRoots roots_;
};

TEST_F(FakeTree, ReadsTableTimeoutsSlabAndCounters) {
    const TableFacts f = read_table_facts(roots_);
    EXPECT_EQ(f.table.count, 850);
    EXPECT_EQ(f.table.max, 1000);
    EXPECT_EQ(f.table.buckets, 1024);
    ASSERT_TRUE(f.hashsize.has_value());
    EXPECT_EQ(*f.hashsize, 1024u);

    const std::map<std::string, uint64_t> timeouts{{"generic_timeout", 600},
                                                   {"tcp_timeout_established", 432000},
                                                   {"udp_timeout", 30},
                                                   {"udp_timeout_stream", 120}};
    EXPECT_EQ(f.timeouts, timeouts);

    EXPECT_EQ(f.object_size, 256u);  // the nf_conntrack line, not nf_conntrack_expect
    EXPECT_FALSE(f.object_size_estimated);

    // Summed over both CPU lines, hex; "entries" left out.
    EXPECT_EQ(f.counters.count("entries"), 0u);
    EXPECT_EQ(f.counters.at("drop"), 0x0fu + 0x05u);
    EXPECT_EQ(f.counters.at("early_drop"), 4u);
    EXPECT_EQ(f.counters.at("insert_failed"), 2u);
    EXPECT_EQ(f.counters.at("invalid"), 0x0au + 0x10u);
    EXPECT_EQ(f.counters.at("search_restart"), 0x100u);
    EXPECT_EQ(f.counters.at("clashres"), 3u);
    EXPECT_EQ(f.counters.size(), 16u);

    ASSERT_TRUE(f.uptime_s.has_value());
    EXPECT_DOUBLE_EQ(*f.uptime_s, 1300.5);
    EXPECT_EQ(f.netns.inode, inode("proc/self/ns/net"));
    EXPECT_FALSE(f.netns.initial);  // no proc/1/ns/net, and not the fixed 6.18 inode
    EXPECT_TRUE(f.kernel_log.readable);
    EXPECT_EQ(f.kernel_log.table_full_total, 0u);
}

TEST_F(FakeTree, MissingOptionalFilesAreNotFatal) {
    fs::remove(dir_ / "proc/slabinfo");
    fs::remove(dir_ / "proc/net/stat/nf_conntrack");
    fs::remove(dir_ / "proc/uptime");
    fs::remove(dir_ / "sys/module/nf_conntrack/parameters/hashsize");
    fs::remove(dir_ / "dev/kmsg");
    const TableFacts f = read_table_facts(roots_);
    EXPECT_EQ(f.object_size, 320u);
    EXPECT_EQ(f.object_size, kDefaultConntrackObjectSize);
    EXPECT_TRUE(f.object_size_estimated);
    EXPECT_TRUE(f.counters.empty());
    EXPECT_FALSE(f.uptime_s.has_value());
    EXPECT_FALSE(f.hashsize.has_value());
    EXPECT_FALSE(f.kernel_log.readable);
    EXPECT_NE(f.kernel_log.error.find("kmsg"), std::string::npos) << f.kernel_log.error;
}

TEST_F(FakeTree, SlabinfoWithoutConntrackFallsBackToEstimate) {
    write("proc/slabinfo", "slabinfo - version: 2.1\nkmalloc-256 1 1 256 16 1 : tunables 0 0 0 : slabdata 1 1 0\n");
    const TableFacts f = read_table_facts(roots_);
    EXPECT_EQ(f.object_size, 320u);
    EXPECT_TRUE(f.object_size_estimated);
}

TEST(Slabinfo, ObjsizeColumn) {
    EXPECT_EQ(parse_slabinfo_objsize(kSlabinfo), 256u);
    EXPECT_EQ(parse_slabinfo_objsize("nf_conntrack 10 20 320 25 2 : tunables 0 0 0 : slabdata 1 1 0"), 320u);
    EXPECT_FALSE(parse_slabinfo_objsize("").has_value());
}

TEST_F(FakeTree, MissingConntrackIsAClearError) {
    fs::remove_all(dir_ / "proc/sys/net/netfilter");
    try {
        read_table_facts(roots_);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()).rfind("conntrack is not active", 0), 0u) << e.what();
    }
    // nf_log alone makes the directory without conntrack.
    write("proc/sys/net/netfilter/nf_log/2", "NONE\n");
    EXPECT_THROW(read_table_facts(roots_), Error);
}

// Records as /dev/kmsg gives them, with a dictionary continuation line.
constexpr const char* kKmsg =
    "6,100,5000000,-;eth0: link up\n"
    "4,200,1266303293,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n"
    " SUBSYSTEM=net\n"
    "4,201,1266303309,-;nf_conntrack: nf_conntrack: table full in netns 4026532999, dropping packet\n"
    "4,202,1270000001,-,caller=T1;nf_conntrack: table full, dropping packet\n"
    "6,203,1280000000,-;something else\n";

TEST(Kmsg, KeepsOnlyThisNamespacesTableFullLines) {
    const KernelLog log = parse_kmsg(kKmsg, netns(4026532177, false));
    EXPECT_TRUE(log.readable);
    ASSERT_EQ(log.table_full.size(), 1u);
    EXPECT_EQ(log.table_full_total, 1u);
    EXPECT_EQ(log.other_netns, 2u);  // the other netns and the untagged (initial) one
    EXPECT_DOUBLE_EQ(log.table_full[0].seconds, 1266.303293);
    EXPECT_EQ(log.table_full[0].message,
              "nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet");
}

TEST(Kmsg, UntaggedLinesBelongToTheInitialNamespace) {
    const KernelLog log = parse_kmsg(kKmsg, netns(kInitialNetnsInode, true));
    ASSERT_EQ(log.table_full.size(), 1u);
    EXPECT_EQ(log.other_netns, 2u);
    EXPECT_DOUBLE_EQ(log.table_full[0].seconds, 1270.000001);
    EXPECT_EQ(log.table_full[0].message, "nf_conntrack: table full, dropping packet");
}

TEST(Kmsg, KeepsTheLastTen) {
    std::string text;
    for (int i = 1; i <= 25; ++i) text += "4," + std::to_string(i) + "," + std::to_string(i * 1000000) +
                                          ",-;nf_conntrack: table full, dropping packet\n";
    const KernelLog log = parse_kmsg(text, NetnsId{});
    EXPECT_EQ(log.table_full_total, 25u);
    ASSERT_EQ(log.table_full.size(), 10u);
    EXPECT_DOUBLE_EQ(log.table_full.front().seconds, 16.0);
    EXPECT_DOUBLE_EQ(log.table_full.back().seconds, 25.0);
}

TEST_F(FakeTree, ReadsKmsgRecordsForItsOwnNamespaceSinceItWasMade) {
    // The namespace was made 100 s ago: at 1200.5 s after boot (uptime 1300.5).
    fs::last_write_time(dir_ / "proc/self/ns/net", fs::file_time_type::clock::now() - std::chrono::seconds(100));
    const std::string ours = "nf_conntrack: nf_conntrack: table full in netns " +
                             std::to_string(inode("proc/self/ns/net")) + ", dropping packet\n";
    write("dev/kmsg", "4,1,1100000000,-;" + ours +  // an earlier namespace with the same inode
                          "4,2,1250000000,-;" + ours + kKmsg);
    const TableFacts f = read_table_facts(roots_);
    ASSERT_TRUE(f.netns.created_s.has_value());
    EXPECT_NEAR(*f.netns.created_s, 1200.5, 2.0);
    ASSERT_TRUE(f.kernel_log.readable);
    ASSERT_EQ(f.kernel_log.table_full.size(), 1u);
    EXPECT_DOUBLE_EQ(f.kernel_log.table_full[0].seconds, 1250.0);
    EXPECT_EQ(f.kernel_log.table_full_total, 1u);
    EXPECT_EQ(f.kernel_log.other_netns, 4u);
}

TEST(Kmsg, LinesFromBeforeTheNamespaceExistedAreNotOurs) {
    const std::string line = ";nf_conntrack: table full in netns 4026532177, dropping packet\n";
    const std::string text = "4,1,998000000,-" + line + "4,2,999999999,-" + line + "4,3,1000000000,-" + line;
    const KernelLog log = parse_kmsg(text, netns(4026532177, false, 1000.0));
    EXPECT_EQ(log.table_full_total, 1u);
    EXPECT_EQ(log.other_netns, 2u);
    EXPECT_EQ(parse_kmsg(text, netns(4026532177, false)).table_full_total, 3u);  // age unknown
}

TEST(Kmsg, UnreadableIsRecorded) {
    const KernelLog log = read_kmsg("/nonexistent/kmsg", NetnsId{});
    EXPECT_FALSE(log.readable);
    EXPECT_NE(log.error.find("/nonexistent/kmsg"), std::string::npos);
}

// --- Advice arithmetic ---------------------------------------------------------------

TableFacts facts(uint64_t count, uint64_t max = 1000, uint64_t buckets = 1024) {
    TableFacts f;
    f.table.count = static_cast<int64_t>(count);
    f.table.max = static_cast<int64_t>(max);
    f.table.buckets = static_cast<int64_t>(buckets);
    f.object_size = 320;
    f.timeouts = {{"tcp_timeout_established", 3600}, {"udp_timeout", 30}};
    f.counters = {{"drop", 0}, {"early_drop", 0}, {"insert_failed", 0}};
    f.netns = netns(kInitialNetnsInode, true);
    return f;
}

bool has_command(const Assessment& a, const std::string& cmd) {
    for (const auto& x : a.advice)
        if (x.command == cmd) return true;
    return false;
}

TEST(Advice, HalfFullIsOkWithNothingToChange) {
    const Assessment a = assess(facts(500));
    EXPECT_DOUBLE_EQ(a.fill, 0.5);
    EXPECT_EQ(a.health.level, Level::Ok);
    EXPECT_TRUE(a.health.reasons.empty());
    EXPECT_EQ(a.memory.now_bytes, 160000u);
    EXPECT_EQ(a.memory.at_max_bytes, 320000u);
    EXPECT_EQ(a.memory.hash_bytes, 8192u);
    EXPECT_EQ(a.recommended_max, 0u);
    EXPECT_EQ(a.recommended_buckets, 0u);
    EXPECT_TRUE(a.advice.empty());
    EXPECT_TRUE(a.sysctl_conf_lines.empty());
}

TEST(Advice, EightyFivePercentWarnsAndDoublesTheMaximum) {
    const Assessment a = assess(facts(850));
    EXPECT_DOUBLE_EQ(a.fill, 0.85);
    EXPECT_EQ(a.health.level, Level::Warning);
    ASSERT_EQ(a.health.reasons.size(), 1u);
    EXPECT_NE(a.health.reasons[0].find("85.0% full (850 of 1000 entries)"), std::string::npos);
    EXPECT_EQ(a.memory.now_bytes, 272000u);
    EXPECT_EQ(a.recommended_max, 2048u);  // next power of two >= max(2*850, 2*1000)
    EXPECT_EQ(a.recommended_buckets, 2048u);
    EXPECT_TRUE(has_command(a, "sysctl -w net.netfilter.nf_conntrack_max=2048"));
    EXPECT_TRUE(has_command(a, "echo 2048 > /sys/module/nf_conntrack/parameters/hashsize"));
    EXPECT_NE(a.advice[0].why.find("640.0 KiB at the new maximum (now 312.5 KiB at maximum)"), std::string::npos)
        << a.advice[0].why;  // 2048 * 320 = 655360, 1000 * 320 = 320000
    EXPECT_NE(a.advice[1].why.find("16.0 KiB (now 8.0 KiB)"), std::string::npos) << a.advice[1].why;
    const std::vector<std::string> conf{"net.netfilter.nf_conntrack_max = 2048",
                                        "net.netfilter.nf_conntrack_buckets = 2048"};
    EXPECT_EQ(a.sysctl_conf_lines, conf);
    EXPECT_TRUE(has_command(a, "printf '%s\\n' 'net.netfilter.nf_conntrack_max = 2048' "
                               "'net.netfilter.nf_conntrack_buckets = 2048' > /etc/sysctl.d/90-conntrack.conf && "
                               "echo nf_conntrack > /etc/modules-load.d/conntrack.conf"));
    EXPECT_EQ(a.advice.back().what, "verify");
    EXPECT_NE(a.advice.back().command.find("sysctl net.netfilter.nf_conntrack_max"), std::string::npos);
    EXPECT_NE(a.advice.back().command.find("cat /proc/sys/net/netfilter/nf_conntrack_count"), std::string::npos);
    EXPECT_NE(a.advice.back().command.find("ctbpf status"), std::string::npos);
}

TEST(Advice, NinetySevenPercentIsCritical) {
    const Assessment a = assess(facts(970));
    EXPECT_DOUBLE_EQ(a.fill, 0.97);
    EXPECT_EQ(a.health.level, Level::Critical);
    ASSERT_EQ(a.health.reasons.size(), 1u);
    EXPECT_NE(a.health.reasons[0].find("97.0% full"), std::string::npos);
    EXPECT_EQ(a.memory.now_bytes, 310400u);
    EXPECT_EQ(a.recommended_max, 2048u);
}

TEST(Advice, DropCounterIsCriticalEvenWhenTheTableIsEmptyNow) {
    TableFacts f = facts(100);
    f.counters["drop"] = 15;
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Critical);
    ASSERT_EQ(a.health.reasons.size(), 1u);
    EXPECT_NE(a.health.reasons[0].find("dropped 15 packets since boot (counter 'drop')"), std::string::npos);
    EXPECT_EQ(a.recommended_max, 2048u);
}

TEST(Advice, TableFullLogLinesAreCriticalAndSaySo) {
    TableFacts f = facts(300, 300);
    f.counters["drop"] = 40;
    f.uptime_s = 1300;
    f.kernel_log.readable = true;
    f.kernel_log.table_full_total = 12;
    f.kernel_log.table_full = {{1000.25, "nf_conntrack: table full, dropping packet"},
                               {1266.4, "nf_conntrack: table full, dropping packet"}};
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Critical);
    ASSERT_EQ(a.health.reasons.size(), 3u);  // 100% full, drop counter, kernel log
    EXPECT_NE(a.health.reasons[0].find("100.0% full (300 of 300 entries)"), std::string::npos);
    EXPECT_NE(a.health.reasons[1].find("dropped 40 packets"), std::string::npos);
    EXPECT_NE(a.health.reasons[2].find("has 12 'nf_conntrack: table full"), std::string::npos);
    EXPECT_NE(a.health.reasons[2].find("the last 1266 s after boot, 33s ago"), std::string::npos)
        << a.health.reasons[2];
    EXPECT_EQ(a.recommended_max, 1024u);  // next power of two >= 600
    EXPECT_EQ(a.recommended_buckets, 0u);  // 1024 buckets already cover 1024 entries
    EXPECT_FALSE(kernel_log_is_stale(f));
}

TEST(Advice, LogLinesOfAnEarlierNamespaceWithTheSameInodeAreIgnored) {
    TableFacts f = facts(10);
    f.kernel_log.table_full_total = 1;
    f.kernel_log.table_full = {{5.0, "nf_conntrack: table full in netns 4026532177, dropping packet"}};
    EXPECT_TRUE(kernel_log_is_stale(f));
    EXPECT_EQ(assess(f).health.level, Level::Ok);
    f.counters.clear();  // no counters to tell: believe the log
    EXPECT_FALSE(kernel_log_is_stale(f));
    EXPECT_EQ(assess(f).health.level, Level::Critical);
}

TEST(Advice, EarlyDropsWarn) {
    TableFacts f = facts(100);
    f.counters["early_drop"] = 7;
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Warning);
    EXPECT_NE(a.health.reasons[0].find("7 entries were evicted early"), std::string::npos);
    EXPECT_EQ(a.recommended_max, 2048u);
}

// What holds the table decides timeout advice (test_composition.cpp); a long timeout alone
// is not a reason: without a dump of the entries no timeout is named.
TEST(Advice, NoTimeoutAdviceWithoutKnowingWhatTheEntriesAre) {
    TableFacts f = facts(100);
    f.timeouts["tcp_timeout_established"] = 432000;
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Ok);
    EXPECT_EQ(a.recommended_tcp_established, 0u);
    EXPECT_TRUE(a.advice.empty());
}

TEST(Advice, OutsideTheInitialNamespaceSaysWhereToRunIt) {
    TableFacts f = facts(990);
    f.netns = netns(4026532177, false);
    const Assessment a = assess(f);
    ASSERT_FALSE(a.advice.empty());
    EXPECT_NE(a.advice[0].why.find("run the command on the host"), std::string::npos);
}

TEST(Advice, NoMaximumMeansNoFillAndNoRaise) {
    const Assessment a = assess(facts(5000, 0));
    EXPECT_DOUBLE_EQ(a.fill, 0.0);
    EXPECT_EQ(a.health.level, Level::Ok);
    EXPECT_EQ(a.recommended_max, 0u);
    EXPECT_EQ(a.memory.at_max_bytes, 0u);
}

TEST(Advice, Arithmetic) {
    EXPECT_EQ(next_pow2(0), 1u);
    EXPECT_EQ(next_pow2(1), 1u);
    EXPECT_EQ(next_pow2(600), 1024u);
    EXPECT_EQ(next_pow2(1024), 1024u);
    EXPECT_EQ(next_pow2(1025), 2048u);
    EXPECT_EQ(recommended_max(300, 300), 1024u);
    EXPECT_EQ(recommended_max(262144, 262144), 524288u);
    EXPECT_EQ(recommended_max(0, 262144), 524288u);
    EXPECT_EQ(recommended_buckets(524288), 524288u);
    EXPECT_EQ(recommended_buckets(300000), 524288u);
    EXPECT_EQ(human_bytes(512), "512 B");
    EXPECT_EQ(human_bytes(1536), "1.5 KiB");
    EXPECT_EQ(human_bytes(83886080), "80.0 MiB");  // 262144 entries * 320 bytes
    EXPECT_EQ(human_seconds(432000), "5d");
    EXPECT_EQ(human_seconds(5400), "1h30m");
    EXPECT_EQ(human_seconds(30), "30s");
    EXPECT_EQ(human_seconds(0), "0s");
    EXPECT_EQ(level_name(Level::Critical), "critical");
}

}  // namespace

// Health describes now (issue: `status` stayed critical after the fix): with a window,
// since-boot drops and old log lines are history, not the level.
TEST(Advice, AfterTheFixHealthIsOkAndTheIncidentIsHistory) {
    TableFacts f = facts(8000, 16384, 16384);
    f.counters["drop"] = 4000;
    f.counters["early_drop"] = 12;
    f.uptime_s = 5000;
    f.kernel_log.readable = true;
    f.kernel_log.table_full_total = 290;
    f.kernel_log.table_full = {{4000.0, "nf_conntrack: table full, dropping packet"}};
    f.recent = RecentActivity{1.0, 0, 0, 0, 0.0};
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Ok);
    EXPECT_TRUE(a.health.reasons.empty());
    ASSERT_EQ(a.health.history.size(), 3u);
    EXPECT_NE(a.health.history[0].find("4000 packets dropped since boot"), std::string::npos);
    EXPECT_NE(a.health.history[2].find("290 'table full' kernel log lines"), std::string::npos);
    EXPECT_EQ(a.recommended_max, 0u);  // nothing to raise: the fix holds
}

TEST(Advice, DropsInTheWindowAreCriticalAndEarlyDropsAWarning) {
    TableFacts f = facts(300, 300);
    f.recent = RecentActivity{2.0, 50, 0, 0, 0.0};
    Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Critical);
    EXPECT_NE(a.health.reasons.back().find("dropped 50 packets in the last 2 s (25/s)"), std::string::npos);
    f = facts(500, 1000);
    f.recent = RecentActivity{1.0, 0, 3, 0, 0.0};
    a = assess(f);
    EXPECT_EQ(a.health.level, Level::Warning);
    EXPECT_NE(a.recommended_max, 0u);  // evictions: the limit is too low
}

TEST(Advice, FillingFastIsAWarningBelowEightyPercent) {
    TableFacts f = facts(2360, 3000);  // 79%
    f.recent = RecentActivity{1.0, 0, 0, 0, 80.0};
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Warning);
    ASSERT_EQ(a.health.reasons.size(), 1u);
    EXPECT_NE(a.health.reasons[0].find("grows by 80 entries/s: full in 9s"), std::string::npos) << a.health.reasons[0];
    EXPECT_FALSE(a.advice.empty());
    f.recent->growth_per_s = 1.0;  // full in 640 s: beyond the horizon
    EXPECT_EQ(assess(f).health.level, Level::Ok);
}

// Right after the fix the log still has a line from seconds ago; the window's drop counter
// says whether the table is full now, so the line is history (status must say ok at once).
TEST(Advice, ARecentLogLineOfThisTableIsHistoryOnceTheWindowIsQuiet) {
    TableFacts f = facts(100, 1000);
    f.counters["drop"] = 10;
    f.uptime_s = 1001;
    f.kernel_log.readable = true;
    f.kernel_log.table_full_total = 1;
    f.kernel_log.table_full = {{1000.0, "nf_conntrack: table full, dropping packet"}};
    f.recent = RecentActivity{1.0, 0, 0, 0, 0.0};
    const Assessment a = assess(f);
    EXPECT_EQ(a.health.level, Level::Ok);
    ASSERT_EQ(a.health.history.size(), 2u);
    EXPECT_NE(a.health.history[1].find("1s ago"), std::string::npos) << a.health.history[1];
}

// Lines naming our inode from before our namespace existed belong to an earlier namespace
// with the same number: neither ours nor another one to name.
TEST(KernelLog, AnEarlierNamespaceWithOurInodeIsNotNamed) {
    NetnsId ours;
    ours.inode = 4026532177u;
    ours.initial = false;
    ours.created_s = 2000.0;
    const KernelLog log = parse_kmsg(
        "4,200,1266303293,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n", ours);
    EXPECT_EQ(log.table_full_total, 0u);
    EXPECT_EQ(log.other_netns, 1u);
    EXPECT_TRUE(log.others.empty());
}

TEST(KernelLog, OtherNamespacesAreNamedWithTheirInodeAndName) {
    const std::string text =
        "4,200,1266303293,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n"
        "4,201,1266303309,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n"
        "4,202,1100000000,-;nf_conntrack: nf_conntrack: table full in netns 4026532999, dropping packet\n"
        "4,203,1270000001,-;nf_conntrack: table full, dropping packet\n";
    NetnsId host;  // the initial namespace: unnamed lines are ours
    const KernelLog log = parse_kmsg(text, host);
    EXPECT_EQ(log.table_full_total, 1u);
    EXPECT_EQ(log.other_netns, 3u);
    ASSERT_EQ(log.others.size(), 2u);
    EXPECT_EQ(log.others.at(4026532177u).lines, 2u);
    EXPECT_DOUBLE_EQ(log.others.at(4026532177u).last_s, 1266.303309);
    const auto inc = other_netns_incidents(log, 1270.0, {{4026532177u, "nc1"}}, 600);
    ASSERT_EQ(inc.size(), 2u);
    EXPECT_EQ(inc[0].name, "nc1");
    EXPECT_NEAR(inc[0].ago_s, 3.7, 0.01);
    EXPECT_EQ(inc[1].name, "");
    EXPECT_NE(describe(inc[0]).find("ctbpf status --netns nc1"), std::string::npos) << describe(inc[0]);
    EXPECT_NE(describe(inc[1]).find("lsns -t net"), std::string::npos) << describe(inc[1]);
    EXPECT_EQ(other_netns_incidents(log, 1270.0, {}, 60).size(), 1u);  // the 170 s old one is past 60 s
    // A namespace listed under /run/netns is named by its inode.
    const auto dir = std::filesystem::temp_directory_path() / ("ctbpf-netns-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir / "run/netns");
    std::ofstream(dir / "run/netns/blue").put('x');
    struct stat st {};
    ASSERT_EQ(stat((dir / "run/netns/blue").c_str(), &st), 0);
    const auto names = named_netns(SystemRoots::under(dir));
    ASSERT_EQ(names.size(), 1u);
    EXPECT_EQ(names.at(st.st_ino), "blue");
    std::filesystem::remove_all(dir);
}
