// Helpers for the real-kernel scenarios: shell commands, network namespaces made and
// removed by the test, ctbpf run as a child process, the kernel's own counters.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace scenario {

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

// `ctbpf SUBCOMMAND [--json] ...` as a child (--json for events and watch); the constructor returns once it says on stderr
// that it is watching.
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
    const std::string& stderr_text() const { return err_; }
    // Reads the child's output until its stderr contains `text`; false if it did not within
    // `timeout_ms` (what it wrote so far is in stderr_text()).
    bool wait_for_stderr(const std::string& text, int timeout_ms);

private:
    void end_with(int sig);  // signal, read what is left, reap
    bool read_some(int timeout_ms);  // into out_/err_; false once both pipes are closed
    void settle();  // until standard output goes quiet

    pid_t pid_ = -1;
    int out_fd_ = -1, err_fd_ = -1;
    std::string out_, err_;
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
