// Namespaces as a new user meets them: an incident in another namespace seen from the host,
// the same namespace named twice, a watched namespace deleted while ctbpf runs.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
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
    const std::string tag = fmt::format("table full in netns {},", inode_of(ns));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        loadgen(ns, fmt::format("--src 127.0.1.1 --flows 200 --sport-base {}", 10000 + 200 * (round++ % 200)));
        const auto deadline_line = std::chrono::steady_clock::now() + std::chrono::seconds(6);
        while (std::chrono::steady_clock::now() < deadline_line) {
            if (sh(fmt::format("dmesg | grep -q '{}'", tag)).status == 0) return true;
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
