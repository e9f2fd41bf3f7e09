// Helpers for the real-kernel scenarios: shell commands, network namespaces made and
// removed by the test, ctbpf run as a child process, the kernel's own counters.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace scenario {

// The programs under test: the build tree's by default; the environment variables
// CTBPF_TEST_BIN, CTBPF_TEST_LOADGEN and CTBPF_TEST_SOURCE_DIR point the same test binary at
// copies elsewhere, where no build tree exists (the kernel matrix's VMs, tools/vmtest).
const char* ctbpf_bin();
const char* loadgen_bin();
const char* source_dir();

// The backend every attaching ctbpf command is told to use: CTBPF_TEST_BACKEND (fentry,
// kprobe or tracepoint), or "" to leave the choice to ctbpf (auto), as on the host. It lets
// one test binary check each backend on kernels that offer several.
const std::string& test_backend();
// " --backend X" for a ctbpf command line given to sh() that attaches, or "".
std::string backend_arg();

struct CmdResult {
    int status = -1;  // exit code, or -1 if it did not exit normally
    std::string out, err;
};

// Runs `cmd` with /bin/sh, capturing stdout and stderr.
CmdResult sh(const std::string& cmd);
// Same, but fails the current test if the exit code is not 0.
std::string sh_ok(const std::string& cmd);

// Why this machine cannot run the scenarios, or "" if it can.
std::string cannot_run_reason();

// A network namespace with lo up and conntrack switched on by an nft ruleset that counts
// new entries. Deleted on destruction.
class Netns {
public:
    explicit Netns(const std::string& tag);
    ~Netns();
    const std::string& name() const { return name_; }
    std::string exec(const std::string& cmd) const;  // ip netns exec NAME sh -c CMD, must succeed
    // Sum of each column of /proc/net/stat/nf_conntrack inside the namespace.
    std::map<std::string, long long> stat() const;
    long long count() const;  // nf_conntrack_count
    long long nft_new_counter() const;  // packets of the `ct state new counter` rule
    // Entries per original source address, from `conntrack -L`.
    std::map<std::string, long long> conntrack_by_source() const;

private:
    std::string name_;
};

// Sets nf_conntrack_max (global) and puts the old value back on destruction.
class ConntrackMax {
public:
    explicit ConntrackMax(long long value);
    ~ConntrackMax();

private:
    std::string old_;
};

// Base for the scenarios: skips (saying why) only where the machine truly cannot run
// them; with CTBPF_REQUIRE_PRIVILEGED=1 (CI) a skip becomes a failure.
class PrivilegedTest : public ::testing::Test {
protected:
    void SetUp() override;
};

// `ctbpf SUBCOMMAND [--json] [--backend X] ...` as a child (--json for events and watch,
// --backend from test_backend() for the subcommands that take it); the constructor returns
// once it says on stderr that it is watching. A thread reads its output all along: a child
// blocked on a full pipe would stop reading its ring buffer, and a late reader sees its
// events late (drops then lose their table-full reason, which is judged within a second).
class Ctbpf {
public:
    explicit Ctbpf(const std::vector<std::string>& args, const std::string& subcommand = "events");
    // Next line of standard output, waiting at most `timeout_ms`.
    std::optional<std::string> next_line(int timeout_ms);
    ~Ctbpf();
    // SIGTERM, wait, parse: every line but the last is an event, the last the summary.
    void stop();
    void stop_plain();  // SIGTERM and wait; output not parsed (record)
    void kill9();       // SIGKILL: what a crash leaves behind
    const std::vector<nlohmann::json>& events() const { return events_; }
    const nlohmann::json& summary() const { return summary_; }
    int exit_status() const { return status_; }
    std::string stderr_text() const;
    // Waits until the child's stderr contains `text`; false if it did not within
    // `timeout_ms` (what it wrote so far is in stderr_text()).
    bool wait_for_stderr(const std::string& text, int timeout_ms);

private:
    void read_output();      // the reader thread
    void end_with(int sig);  // signal, read what is left, reap
    void settle();  // until standard output goes quiet

    pid_t pid_ = -1;
    int out_fd_ = -1, err_fd_ = -1;
    std::thread reader_;
    std::atomic<bool> stop_reading_{false};
    mutable std::mutex mu_;
    std::condition_variable changed_;
    std::string out_, err_;          // guarded by mu_
    bool out_eof_ = false, err_eof_ = false;  // guarded by mu_
    std::vector<nlohmann::json> events_;
    nlohmann::json summary_;
    int status_ = -1;
};

// Runs the load generator inside `ns`; returns its JSON report.
nlohmann::json loadgen(const Netns& ns, const std::string& args);

// Kernel counter deltas between two stat() readings.
long long delta(const std::map<std::string, long long>& before, const std::map<std::string, long long>& after,
                const std::string& column);

// Polls `done` until it returns true or `timeout` has passed, and returns its last answer:
// for what happens at a moment the test cannot know (a recording's frame written, a snapshot
// taken, a screen drawn), instead of sleeping for a guess of how long that takes.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(100));

}  // namespace scenario

// The names the tests use; compile definitions CTBPF_BUILD_* hold the build tree's paths.
#define CTBPF_BIN (::scenario::ctbpf_bin())
#define LOADGEN_BIN (::scenario::loadgen_bin())
#define CTBPF_SOURCE_DIR (::scenario::source_dir())
