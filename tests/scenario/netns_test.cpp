// Namespaces as a new user meets them: an incident in another namespace seen from the host,
// the same namespace named twice, a watched namespace deleted while ctbpf runs.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <ranges>
#include <tuple>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;
using nlohmann::json;

namespace {

using Namespaces = PrivilegedTest;

uint64_t inode_of(const Netns& ns) {
    struct stat st {};
    if (stat(("/run/netns/" + ns.name()).c_str(), &st) != 0) return 0;
    return st.st_ino;
}

// Fills `ns` (nf_conntrack_max must be low) until the kernel has logged a table-full line
// naming it: net_ratelimit() (10 lines per 5 s, shared by all of networking) can swallow
// the first storm, so storms repeat until a line shows, within a deadline.
bool storm_until_logged(const Netns& ns, int& round) {
    // Inode numbers are reused and the kernel's log buffer wraps: only a line stamped after
    // the storms began counts (not one an earlier namespace with the same number left, and
    // not a count that old lines leaving the buffer keep level).
    double t0 = 0;
    std::ifstream("/proc/uptime") >> t0;
    const std::string fresh = fmt::format(
        "dmesg | grep 'table full in netns {},' | awk -F'[][]' '$2 + 0 >= {:.6f}' | wc -l", inode_of(ns), t0 - 0.5);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        loadgen(ns, fmt::format("--src 127.0.1.1 --flows 200 --sport-base {}", 10000 + 200 * (round++ % 200)));
        const auto deadline_line = std::chrono::steady_clock::now() + std::chrono::seconds(6);
        while (std::chrono::steady_clock::now() < deadline_line) {
            if (std::stol(sh(fresh).out) > 0) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
    }
    return false;
}

}  // namespace

// From the host, nc1's drops used to be "290 lines about other network namespaces ignored".
TEST_F(Namespaces, AnotherNamespacesIncidentIsNamedFromTheHost) {
    Netns ns("other-incident");
    ConntrackMax max(100);
    int round = 0;
    ASSERT_TRUE(storm_until_logged(ns, round)) << "the kernel never logged a table-full line for " << ns.name();

    const auto st = sh(fmt::format("{} status --json", CTBPF_BIN));
    ASSERT_TRUE(st.status == 1 || st.status == 2) << st.out << st.err;
    const json j = json::parse(st.out);
    bool named = false;
    for (const auto& o : j["other_netns"]) named = named || o["name"] == ns.name();
    EXPECT_TRUE(named) << j["other_netns"].dump();
    bool said = false;
    for (const auto& r : j["health"]["reasons"])
        said = said || r.get<std::string>().find("ctbpf status --netns " + ns.name()) != std::string::npos;
    EXPECT_TRUE(said) << j["health"].dump();

    // watch on the host says it too.
    const auto w = sh(fmt::format("{} watch --json --count 1 --interval 0.5 --baseline off", CTBPF_BIN));
    ASSERT_EQ(w.status, 0) << w.err;
    const json snap = json::parse(w.out.substr(0, w.out.find('\n')));
    bool alerted = false;
    for (const auto& a : snap["alerts"])
        alerted = alerted || a.get<std::string>().find("ctbpf watch --netns " + ns.name()) != std::string::npos;
    EXPECT_TRUE(alerted) << snap["alerts"].dump();
    EXPECT_NE(snap["level"], "ok");
}

namespace {

// `ctbpf ARGS` in the background with its output in files; stopped by SIGTERM.
struct Background {
    std::string dir, pid;
    explicit Background(const std::string& args) {
        dir = sh_ok("mktemp -d /tmp/ctbpf-netns-XXXXXX");
        dir.erase(dir.find_last_not_of('\n') + 1);
        pid = sh_ok(fmt::format("{} {} >{}/out 2>{}/err & echo $!", CTBPF_BIN, args, dir, dir));
        pid.erase(pid.find_last_not_of('\n') + 1);
    }
    ~Background() {
        sh(fmt::format("kill {} 2>/dev/null; rm -rf {}", pid, dir));
    }
    std::string err() const { return sh(fmt::format("cat {}/err", dir)).out; }
    bool wait_err(const std::string& text, int seconds) const {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (std::chrono::steady_clock::now() < deadline) {
            if (err().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }
    int fds(const std::string& what) const {
        return std::stoi(sh(fmt::format("ls -l /proc/{}/fd | grep -c '{}'", pid, what)).out);
    }
    // SIGTERM, wait for the exit, the last line of standard output (the summary).
    json stop() {
        sh(fmt::format("kill -TERM {}; while kill -0 {} 2>/dev/null; do sleep 0.05; done", pid, pid));
        const std::string out = sh(fmt::format("tail -n 1 {}/out", dir)).out;
        return json::parse(out);
    }
};

}  // namespace

// "--netns nc1 --netns nc1", or nc1 and /proc/PID/ns/net of a process in it, doubled every
// count: a namespace is its inode.
TEST_F(Namespaces, TheSameNamespaceNamedTwiceIsWatchedOnce) {
    Netns ns("twice");
    const std::string holder = sh_ok(fmt::format("ip netns exec {} sleep 60 >/dev/null 2>&1 & echo $!", ns.name()));
    const std::string pid = holder.substr(0, holder.find('\n'));
    Background ct(fmt::format("events --json --netns {} --netns {} --netns /proc/{}/ns/net", ns.name(), ns.name(), pid));
    ASSERT_TRUE(ct.wait_err("watching", 10)) << ct.err();
    loadgen(ns, "--src 127.0.1.1 --flows 40");
    const long long nft_new = ns.nft_new_counter();
    const json summary = ct.stop();
    sh("kill " + pid);
    EXPECT_EQ(summary["netns"].size(), 1u) << summary["netns"].dump();
    EXPECT_EQ(summary["kernel"]["insert"], nft_new);
    EXPECT_EQ(summary["kernel"]["insert"], 40);
}

// `ip netns del` while ctbpf watches it (and another): ctbpf says so, lets it go (no
// links or files kept), and stays exact for the namespace that remains.
TEST_F(Namespaces, ADeletedNamespaceIsReportedGoneAndLetGo) {
    Netns keep("gone-keep");
    Netns drop("gone-drop");
    Background ct(fmt::format("events --json --netns {} --netns {}", keep.name(), drop.name()));
    ASSERT_TRUE(ct.wait_err("watching", 10)) << ct.err();
    const int links_before = ct.fds("bpf_link"), files_before = ct.fds("nf_conntrack_count");
    EXPECT_EQ(files_before, 2);
    loadgen(keep, "--src 127.0.1.1 --flows 30");
    loadgen(drop, "--src 127.0.1.2 --flows 20");
    sh_ok("ip netns del " + drop.name());
    ASSERT_TRUE(ct.wait_err(drop.name() + " (", 5) && ct.wait_err("is gone", 5)) << ct.err();
    EXPECT_EQ(ct.fds("nf_conntrack_count"), 1);
    EXPECT_LT(ct.fds("bpf_link"), links_before);
    loadgen(keep, "--src 127.0.1.1 --flows 25 --sport-base 30000");
    const long long kept_new = keep.nft_new_counter();
    const json summary = ct.stop();
    EXPECT_EQ(kept_new, 55);
    // Everything inserted before the deletion, and everything after in the namespace that
    // remains; the deleted one's entries die with it (destroys), nothing is lost.
    EXPECT_EQ(summary["kernel"]["insert"], 55 + 20);
    EXPECT_EQ(summary["lost"], 0);
}

// --- --all-netns: every namespace on the host, named, with the cgroup and the process -----

namespace {

// A cgroup v2 directory of our own (under the cgroup2 mount: /sys/fs/cgroup, or
// /sys/fs/cgroup/unified on a hybrid host), removed on destruction.
struct TestCgroup {
    std::string root, path;
    explicit TestCgroup(const std::string& tag) {
        root = sh_ok("awk '$3 == \"cgroup2\" { print $2; exit }' /proc/self/mounts");
        root.erase(root.find_last_not_of('\n') + 1);
        path = fmt::format("{}/ctbpf-t-{}-{}", root, tag, getpid());
        sh_ok("mkdir -p " + path);
    }
    ~TestCgroup() {
        // Its processes have exited by now; move any straggler out first.
        sh(fmt::format("for p in $(cat {0}/cgroup.procs 2>/dev/null); do echo $p > {1}/cgroup.procs; done; rmdir {0}",
                       path, root));
    }
    std::string rel() const { return path.substr(root.size()); }  // as /proc/PID/cgroup says
};

// The load generator inside `ns`, as a process of cgroup `cg`: the "container".
json loadgen_in(const Netns& ns, const TestCgroup& cg, const std::string& args) {
    return json::parse(sh_ok(fmt::format("sh -c 'echo $$ > {}/cgroup.procs; exec ip netns exec {} {} {}'", cg.path,
                                         ns.name(), LOADGEN_BIN, args)));
}

// How many times ctbpf said it began watching the namespace of inode `inode` (a namespace
// found while `ip netns add` runs is named by its process first; inodes are reused).
size_t watch_lines(const std::string& err, uint64_t inode) {
    size_t n = 0;
    const std::string head = "ctbpf: watching network namespace ", tail = fmt::format(" ({})", inode);
    for (const auto& part : err | std::views::split('\n')) {
        const std::string l(part.begin(), part.end());
        n += l.starts_with(head) && l.ends_with(tail);
    }
    return n;
}

// The last complete JSON line of a file.
json last_snapshot(const std::string& file) {
    const std::string out = sh(fmt::format("tail -n 2 {} | head -n 1", file)).out;  // the last may be partial
    try {
        return json::parse(out);
    } catch (const std::exception&) {
        return json();
    }
}

const json* row_named(const json& rows, const std::string& key, const std::string& value) {
    for (const auto& r : rows)
        if (r.contains(key) && r[key].is_string() && r[key].get<std::string>().find(value) != std::string::npos) return &r;
    return nullptr;
}

}  // namespace

// Three "containers" made after ctbpf started: a namespace each, a process in a cgroup of
// its own; one fills its table. watch --all-netns names the namespace, the cgroup and the
// process, with the kernel's own counts; then one namespace is deleted and ctbpf goes on.
TEST_F(Namespaces, AllNetnsNamesTheNamespaceCgroupAndProcessThatFillTheirTables) {
    ConntrackMax max(300);
    Background ct("watch --json --all-netns --interval 0.5 --composition-interval 0 --baseline off --top 50");
    ASSERT_TRUE(ct.wait_err("watching netns", 20)) << ct.err();
    Netns full("wl-full"), calm("wl-calm"), idle("wl-idle");
    TestCgroup cg_full("full"), cg_calm("calm"), cg_idle("idle");
    for (const Netns* ns : {&full, &calm, &idle})
        ASSERT_TRUE(wait_until([&] { return watch_lines(ct.err(), inode_of(*ns)) > 0; }, std::chrono::seconds(15)))
            << ct.err();
    const auto b_full = full.stat(), b_calm = calm.stat(), b_idle = idle.stat();
    loadgen_in(full, cg_full, "--src 127.0.1.1 --flows 500");
    loadgen_in(calm, cg_calm, "--src 127.0.1.2 --flows 60");
    loadgen_in(idle, cg_idle, "--src 127.0.1.3 --flows 7");
    const auto a_full = full.stat(), a_calm = calm.stat(), a_idle = idle.stat();
    // Inserts as the namespace's own `ct state new` rule counts them (new kernels no longer
    // count `insert` in /proc/net/stat/nf_conntrack); drops as the kernel counts them.
    const long long full_inserts = full.nft_new_counter(), full_drops = delta(b_full, a_full, "drop");
    ASSERT_GT(full_drops, 0) << "the table never filled";
    const std::string comm = std::string(LOADGEN_BIN).substr(std::string(LOADGEN_BIN).rfind('/') + 1).substr(0, 15);

    json snap;
    const json* ns_row = nullptr;
    const bool settled = wait_until([&] {
        snap = last_snapshot(ct.dir + "/out");
        if (!snap.contains("workloads")) return false;
        ns_row = row_named(snap["workloads"]["netns"], "netns_name", full.name());
        // Every namespace's events in one snapshot (the last loadgen may still be in the ring).
        const json* c = row_named(snap["workloads"]["netns"], "netns_name", calm.name());
        const json* i = row_named(snap["workloads"]["netns"], "netns_name", idle.name());
        return ns_row && (*ns_row)["inserts"] == full_inserts && (*ns_row)["drops"] == full_drops && c &&
               (*c)["inserts"] == calm.nft_new_counter() && i && (*i)["inserts"] == idle.nft_new_counter();
    }, std::chrono::seconds(15));
    ASSERT_TRUE(settled) << "kernel: " << full_inserts << " inserts, " << full_drops << " drops; "
                         << (snap.contains("workloads") ? snap["workloads"].dump() : snap.dump().substr(0, 2000));
    // Per namespace: the kernel's insert and drop deltas, and its table's count.
    const json& w = snap["workloads"];
    for (auto [ns, before, after] : {std::tuple{&calm, b_calm, a_calm}, std::tuple{&idle, b_idle, a_idle}}) {
        const json* r = row_named(w["netns"], "netns_name", ns->name());
        ASSERT_NE(r, nullptr) << ns->name() << " " << w["netns"].dump();
        EXPECT_EQ((*r)["inserts"], ns->nft_new_counter()) << ns->name();
        EXPECT_EQ((*r)["drops"], delta(before, after, "drop")) << ns->name();
        EXPECT_EQ((*r)["entries"], ns->count()) << ns->name();
        long long listed = 0;  // what `conntrack -L` lists there
        for (const auto& [src, n] : ns->conntrack_by_source()) listed += n;
        EXPECT_EQ((*r)["entries"], listed) << ns->name();
    }
    EXPECT_EQ((*ns_row)["entries"], full.count());
    // The cgroup and the process behind them, exact (the namespaces' only senders).
    const json* cg = row_named(w["cgroup"], "cgroup", cg_full.rel());
    ASSERT_NE(cg, nullptr) << w["cgroup"].dump();
    EXPECT_EQ((*cg)["inserts"], full_inserts);
    EXPECT_EQ((*cg)["drops"], full_drops);
    EXPECT_EQ((*cg)["netns_name"], full.name());
    const json* proc = nullptr;
    for (const auto& r : w["process"])
        if (r["comm"] == comm && r["cgroup"] == cg_full.rel()) proc = &r;
    ASSERT_NE(proc, nullptr) << w["process"].dump();
    EXPECT_EQ((*proc)["inserts"], full_inserts);
    EXPECT_EQ((*proc)["drops"], full_drops);
    EXPECT_GT((*proc)["pid"].get<long long>(), 0);
    // Ranked by drops or by rate, the noisy one comes first among the three.
    const json* calm_cg = row_named(w["cgroup"], "cgroup", cg_calm.rel());
    ASSERT_NE(calm_cg, nullptr);
    EXPECT_EQ((*calm_cg)["inserts"], calm.nft_new_counter());

    // One namespace deleted while ctbpf runs: said gone, the others still counted.
    const uint64_t calm_inode = inode_of(calm);
    sh_ok("ip netns del " + calm.name());
    ASSERT_TRUE(ct.wait_err(fmt::format("({}) is gone", calm_inode), 15)) << ct.err();
    loadgen_in(idle, cg_idle, "--src 127.0.1.3 --flows 5 --sport-base 30000");
    const long long idle_total = idle.nft_new_counter();
    EXPECT_TRUE(wait_until([&] {
        snap = last_snapshot(ct.dir + "/out");
        const json* r = snap.contains("workloads") ? row_named(snap["workloads"]["netns"], "netns_name", idle.name()) : nullptr;
        return r && (*r)["inserts"] == idle_total;
    }, std::chrono::seconds(10))) << snap.dump().substr(0, 2000);
    EXPECT_EQ(sh(fmt::format("kill -0 {}", ct.pid)).status, 0) << "ctbpf exited: " << ct.err();
}

// Namespaces coming and going all day: 200 made and deleted while ctbpf runs. Each one's
// inserts are all delivered, named; no file descriptor or link is kept for a gone one and
// memory stays flat.
TEST_F(Namespaces, TwoHundredNamespacesComeAndGoWithoutLeaks) {
    Background ct("events --json --all-netns");
    ASSERT_TRUE(ct.wait_err("watching netns", 20)) << ct.err();
    auto rss_kib = [&] {
        return std::stol(sh(fmt::format("awk '/VmRSS/ {{print $2}}' /proc/{}/status", ct.pid)).out);
    };
    auto fd_count = [&] { return std::stoi(sh(fmt::format("ls /proc/{}/fd | wc -l", ct.pid)).out); };
    std::map<std::string, long long> sent;
    std::map<std::string, std::string> made;  // names made per inode, to explain a miss
    std::map<uint64_t, size_t> seen;  // watch lines per inode so far
    auto one = [&](int i) {
        Netns ns(fmt::format("churn{}", i));
        const uint64_t inode = inode_of(ns);
        const size_t before = seen[inode];
        ASSERT_TRUE(wait_until([&] { return watch_lines(ct.err(), inode) > before; }, std::chrono::seconds(15)))
            << ns.name() << " (" << inode << ") never watched: " << ct.err().substr(ct.err().size() > 3000 ? ct.err().size() - 3000 : 0);
        seen[inode] = before + 1;
        loadgen(ns, "--src 127.0.1.1 --flows 3");
        sent[std::to_string(inode)] += ns.nft_new_counter();  // inodes are reused: summed per inode
        made[std::to_string(inode)] += ns.name() + " ";
    };
    for (int i = 0; i < 20; ++i) one(i);
    ASSERT_FALSE(HasFatalFailure());
    // Warmed up (caches, the ring's pages): measure from here.
    const long rss0 = rss_kib();
    const int fds0 = fd_count();
    for (int i = 20; i < 200; ++i) {
        one(i);
        ASSERT_FALSE(HasFatalFailure());
    }
    // Every namespace seen gone (the last one within a scan period): as many gone lines as
    // watch lines, but for our own namespace.
    auto count_of = [&](const std::string& what) {
        const std::string e = ct.err();
        size_t n = 0;
        for (size_t at = e.find(what); at != std::string::npos; at = e.find(what, at + 1)) ++n;
        return n;
    };
    EXPECT_TRUE(wait_until([&] { return count_of(") is gone") >= count_of("ctbpf: watching network namespace "); },
                           std::chrono::seconds(15)))
        << ct.err().substr(ct.err().size() > 2000 ? ct.err().size() - 2000 : 0);
    const int fds1 = fd_count();
    const long rss1 = rss_kib();
    EXPECT_LE(fds1, fds0 + 2) << "file descriptors kept for gone namespaces";
    EXPECT_LT(rss1 - rss0, 8 * 1024) << "resident memory grew from " << rss0 << " KiB to " << rss1 << " KiB";
    std::printf("churn: fds %d -> %d, rss %ld -> %ld KiB\n", fds0, fds1, rss0, rss1);

    const json summary = ct.stop();
    std::map<std::string, long long> got, by_name;
    size_t named = 0;
    for (const auto& line : sh(fmt::format("cat {}/out", ct.dir)).out | std::views::split('\n')) {
        const std::string l(line.begin(), line.end());
        if (l.find("\"type\":\"insert\"") == std::string::npos) continue;
        const json e = json::parse(l);
        ++got[std::to_string(e["netns"].get<uint64_t>())];
        ++by_name[e["netns_name"].get<std::string>()];
        named += e["netns_name"].get<std::string>().starts_with("ctbpf-t-churn");
    }
    for (const auto& [inode, n] : sent) {
        std::string lines;  // what ctbpf said about that inode, to see a miss's cause
        for (const auto& part : ct.err() | std::views::split('\n')) {
            const std::string l(part.begin(), part.end());
            if (l.find("(" + inode + ")") != std::string::npos) lines += l + "\n";
        }
        std::string odd;  // namespaces whose inserts were not 3 each, by the name events carry
        for (const auto& [name, c] : by_name)
            if (c != 3) odd += fmt::format("{}: {}\n", name, c);
        for (const auto& part : made[inode] | std::views::split(' ')) {
            const std::string name(part.begin(), part.end());
            if (!name.empty() && !by_name.count(name)) odd += name + ": no event\n";
        }
        if (got[inode] != n) std::ofstream("/tmp/churn-err.txt") << ct.err();
        EXPECT_EQ(got[inode], n) << "namespaces of inode " << inode << ":\n" << lines << "by name:\n" << odd << "made: " << made[inode];
    }
    // Named by their `ip netns` name (a namespace caught while `ip netns add` ran is named by
    // its process until the next scan).
    EXPECT_GT(named, 0u);
    EXPECT_EQ(summary["lost"], 0);
}

// record --all-netns names each namespace it finds in the file; report and export then
// show the namespace, the cgroup and the process with the kernel's counts.
TEST_F(Namespaces, RecordAllNetnsThenReportAndExportNameTheWorkload) {
    const std::string file = sh_ok("mktemp -u /tmp/ctbpf-wl-XXXXXX.ctbpf");
    const std::string path = file.substr(0, file.find('\n'));
    {
        Background ct("record --all-netns -o " + path);
        ASSERT_TRUE(ct.wait_err("recording to", 20)) << ct.err();
        Netns ns("wl-rec");
        TestCgroup cg("rec");
        ASSERT_TRUE(wait_until([&] { return watch_lines(ct.err(), inode_of(ns)) > 0; }, std::chrono::seconds(15)))
            << ct.err();
        loadgen_in(ns, cg, "--src 127.0.1.9 --flows 40");
        const long long sent = ns.nft_new_counter();
        ASSERT_EQ(sent, 40);
        sh(fmt::format("kill -TERM {}; while kill -0 {} 2>/dev/null; do sleep 0.05; done", ct.pid, ct.pid));

        const auto rep = sh(fmt::format("{} report --json {}", CTBPF_BIN, path));
        ASSERT_EQ(rep.status, 0) << rep.err;
        const json j = json::parse(rep.out);
        bool ns_row = false, cg_row = false, proc_row = false;
        for (const auto& w : j["workloads"]) {
            if (w["kind"] == "netns" && w["name"] == ns.name()) ns_row = w["inserts"] == sent;
            if (w["kind"] == "cgroup" && w["name"] == cg.rel()) cg_row = w["inserts"] == sent;
            if (w["kind"] == "process" && w["name"].get<std::string>().starts_with("ctbpf-loadgen ") &&
                w["netns_name"] == ns.name())
                proc_row = w["inserts"] == sent;
        }
        EXPECT_TRUE(ns_row && cg_row && proc_row) << j["workloads"].dump();
        for (const auto& m : j["markers"]) EXPECT_FALSE(m["text"].get<std::string>().starts_with("netns ")) << m.dump();

        const auto ex = sh(fmt::format("{} export {} --by netns,cgroup,comm --format folded", CTBPF_BIN, path));
        ASSERT_EQ(ex.status, 0) << ex.err;
        EXPECT_NE(ex.out.find(fmt::format("netns {};{};ctbpf-loadgen {}", inode_of(ns), cg.rel(), sent)),
                  std::string::npos)
            << ex.out;
    }
    sh("rm -f " + path);
}
