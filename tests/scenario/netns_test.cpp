// Namespaces as a new user meets them: an incident in another namespace seen from the host,
// the same namespace named twice, a watched namespace deleted while ctbpf runs.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
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
