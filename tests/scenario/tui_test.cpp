// The full-screen view at the size of a plain terminal (80x24) during the seed's incident
// with a realistic mix: a flood of unanswered UDP over seven ports fills the table, and a
// TCP health check to :3908 (the keepalived check that died) loses its packets. The victim
// must be on screen, every column readable, and the advice's command whole.
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;

namespace {

using Tui = PrivilegedTest;

std::string capture(const std::string& session) { return sh_ok(fmt::format("tmux capture-pane -p -t {}", session)); }

}  // namespace

TEST_F(Tui, At80x24TheVictimOfAFloodOverManyPortsIsOnScreen) {
    if (sh("command -v tmux").status != 0) GTEST_FAIL() << "tmux missing (tools/setup.sh --tests installs it)";
    Netns ns("tui80");
    // The first port fills the table: the six others and the health check lose packets,
    // more victims than the five rows the view used to have.
    ConntrackMax max(100);
    const std::string session = fmt::format("ctbpf-tui80-{}", getpid());
    sh_ok(fmt::format("tmux new-session -d -s {} -x 80 -y 24 '{} watch --netns {} --baseline off'", session,
                      CTBPF_BIN, ns.name()));
    // Attached once the header is drawn.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (capture(session).find("ctbpf watch") == std::string::npos && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));

    for (int port = 5353; port <= 5359; ++port)
        loadgen(ns, fmt::format("--src 127.0.0.38 --flows 100 --port {} --sport-base {}", port, 20000 + 100 * (port - 5353)));
    loadgen(ns, "--src 127.0.0.5 --flows 5 --port 3908 --proto tcp");

    // Poll the screen until the victim's drops are drawn (a refresh a second).
    std::string screen;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        screen = capture(session);
    } while (screen.find("127.0.0.1:3908") == std::string::npos && std::chrono::steady_clock::now() < until);
    sh(fmt::format("tmux kill-session -t {}", session));

    EXPECT_NE(screen.find("127.0.0.1:3908"), std::string::npos) << screen;
    EXPECT_TRUE(std::regex_search(screen, std::regex("127\\.0\\.0\\.1:535[3-9]-5359 "))) << screen;
    EXPECT_NE(screen.find("SHARE"), std::string::npos) << screen;
    EXPECT_NE(screen.find("127.0.0.38"), std::string::npos) << screen;
    // The advice's command is whole: the value after '=' is on the screen.
    EXPECT_TRUE(std::regex_search(screen, std::regex("nf_conntrack_max=[0-9]+"))) << screen;
}
