#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace scenario {

namespace {

// Reads both pipes until the child closes them, or for at most `timeout_ms`.
void pump(int out_fd, int err_fd, std::string& out, std::string& err, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (out_fd >= 0 || err_fd >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return;
        pollfd p[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
        if (poll(p, 2, static_cast<int>(left.count())) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[65536];
            const ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                (i == 0 ? out : err).append(buf, static_cast<size_t>(n));
            } else {
                close(p[i].fd);
                (i == 0 ? out_fd : err_fd) = -1;
            }
        }
    }
}

const char* env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

}  // namespace

const char* ctbpf_bin() { return env_or("CTBPF_TEST_BIN", CTBPF_BUILD_BIN); }
const char* loadgen_bin() { return env_or("CTBPF_TEST_LOADGEN", CTBPF_BUILD_LOADGEN); }
const char* source_dir() { return env_or("CTBPF_TEST_SOURCE_DIR", CTBPF_BUILD_SOURCE_DIR); }

const std::string& test_backend() {
    static const std::string backend = env_or("CTBPF_TEST_BACKEND", "");
    return backend;
}

std::string backend_arg() { return test_backend().empty() ? "" : " --backend " + test_backend(); }

CmdResult sh(const std::string& cmd) {
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    CmdResult r;
    pump(o[0], e[0], r.out, r.err, 120000);
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string sh_ok(const std::string& cmd) {
    CmdResult r = sh(cmd);
    EXPECT_EQ(r.status, 0) << "command failed: " << cmd << "\n" << r.err;
    return r.out;
}

std::string cannot_run_reason() {
    if (geteuid() != 0) return "not root";
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "kernel has no BTF";
    if (sh("command -v nft && command -v conntrack && command -v ip").status != 0)
        return "nft, conntrack or ip missing (run tools/setup.sh --tests)";
    return "";
}

Netns::Netns(const std::string& tag) : name_(fmt::format("ctbpf-t-{}-{}", tag, getpid())) {
    sh("ip netns del " + name_ + " 2>/dev/null");
    sh_ok("ip netns add " + name_);
    sh_ok("ip -n " + name_ + " link set lo up");
    // Conntrack only runs in a namespace once a ruleset needs it.
    exec("nft 'add table inet ctbpf_t; "
         "add chain inet ctbpf_t out { type filter hook output priority 0; }; "
         "add rule inet ctbpf_t out ct state new counter'");
}

Netns::~Netns() { sh("ip netns del " + name_); }

std::string Netns::exec(const std::string& cmd) const {
    return sh_ok(fmt::format("ip netns exec {} sh -c \"{}\"", name_, cmd));
}

std::map<std::string, long long> Netns::stat() const {
    std::istringstream in(exec("cat /proc/net/stat/nf_conntrack"));
    std::string line;
    std::vector<std::string> cols;
    std::map<std::string, long long> sum;
    std::getline(in, line);
    std::istringstream h(line);
    for (std::string c; h >> c;) cols.push_back(c);
    while (std::getline(in, line)) {
        std::istringstream v(line);
        std::string x;
        for (size_t i = 0; i < cols.size() && v >> x; ++i) sum[cols[i]] += std::stoll(x, nullptr, 16);
    }
    return sum;
}

long long Netns::count() const { return std::stoll(exec("cat /proc/sys/net/netfilter/nf_conntrack_count")); }

long long Netns::nft_new_counter() const {
    const std::string out = exec("nft list chain inet ctbpf_t out");
    const auto p = out.find("packets ");
    return p == std::string::npos ? -1 : std::stoll(out.substr(p + 8));
}

std::map<std::string, long long> Netns::conntrack_by_source() const {
    std::map<std::string, long long> by;
    std::istringstream in(exec("conntrack -L 2>/dev/null || true"));
    for (std::string line; std::getline(in, line);) {
        const auto p = line.find("src=");
        if (p == std::string::npos) continue;
        by[line.substr(p + 4, line.find(' ', p) - p - 4)]++;
    }
    return by;
}

ConntrackMax::ConntrackMax(long long value) {
    std::ifstream("/proc/sys/net/netfilter/nf_conntrack_max") >> old_;
    std::ofstream("/proc/sys/net/netfilter/nf_conntrack_max") << value;
}

ConntrackMax::~ConntrackMax() { std::ofstream("/proc/sys/net/netfilter/nf_conntrack_max") << old_; }

void PrivilegedTest::SetUp() {
    const std::string why = cannot_run_reason();
    if (why.empty()) return;
    if (const char* req = std::getenv("CTBPF_REQUIRE_PRIVILEGED"); req && std::string(req) == "1")
        FAIL() << "privileged scenario cannot run: " << why;
    GTEST_SKIP() << why;
}

void Ctbpf::read_output() {
    int fds[2] = {out_fd_, err_fd_};
    while ((fds[0] >= 0 || fds[1] >= 0) && !stop_reading_) {
        pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        // Bounded, so that a child that never closes its pipes cannot keep the thread.
        if (poll(p, 2, 100) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[65536];
            const ssize_t n = read(p[i].fd, buf, sizeof buf);
            std::lock_guard lock(mu_);
            if (n > 0) {
                (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
            } else {
                fds[i] = -1;
                (i == 0 ? out_eof_ : err_eof_) = true;
            }
            changed_.notify_all();
        }
    }
}

std::optional<std::string> Ctbpf::next_line(int timeout_ms) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return out_.find('\n') != std::string::npos || out_eof_; });
    const auto nl = out_.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    std::string line = out_.substr(0, nl);
    out_.erase(0, nl + 1);
    return line;
}

std::string Ctbpf::stderr_text() const {
    std::lock_guard lock(mu_);
    return err_;
}

Ctbpf::Ctbpf(const std::vector<std::string>& args, const std::string& subcommand) {
    int o[2], e[2];
    if (pipe2(o, O_CLOEXEC) != 0 || pipe2(e, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    const char* bin = CTBPF_BIN;
    std::vector<char*> argv{const_cast<char*>(bin), const_cast<char*>(subcommand.c_str())};
    if (subcommand == "events" || subcommand == "watch") argv.push_back(const_cast<char*>("--json"));
    // Only the subcommands that attach take --backend (export --live has no such option).
    const bool takes_backend =
        subcommand == "events" || subcommand == "watch" || subcommand == "record" || subcommand == "serve";
    if (takes_backend && !test_backend().empty()) {
        argv.push_back(const_cast<char*>("--backend"));
        argv.push_back(const_cast<char*>(test_backend().c_str()));
    }
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        execv(bin, argv.data());
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    out_fd_ = o[0];
    err_fd_ = e[0];
    reader_ = std::thread([this] { read_output(); });
    // Ready once it says so on stderr (attached), or failed if it exits first.
    bool ready, closed;
    {
        std::unique_lock lock(mu_);
        changed_.wait_for(lock, std::chrono::seconds(20),
                          [&] { return err_.find("watching") != std::string::npos || err_eof_; });
        ready = err_.find("watching") != std::string::npos;
        closed = err_eof_;
    }
    if (!ready) {
        int st = 0;
        // A closed stderr means it is exiting: reap it rather than racing its exit.
        const bool exited = waitpid(pid_, &st, closed ? 0 : WNOHANG) == pid_;
        if (exited) pid_ = -1;
        ADD_FAILURE() << "ctbpf did not start ("
                      << (!exited ? "still running after 20 s"
                          : WIFEXITED(st) ? fmt::format("exit status {}{}", WEXITSTATUS(st),
                                                        WEXITSTATUS(st) == 127 ? fmt::format(": could not execute {}", bin) : "")
                                          : fmt::format("killed by signal {}", WTERMSIG(st)))
                      << "): " << stderr_text();
    }
}

Ctbpf::~Ctbpf() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    stop_reading_ = true;
    if (reader_.joinable()) reader_.join();
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
}

void Ctbpf::end_with(int sig) {
    // Never kill(-1, ...): that would signal every process there is.
    if (pid_ > 0) kill(pid_, sig);
    {
        // Its output up to the end: both pipes closed, or 30 s.
        std::unique_lock lock(mu_);
        changed_.wait_for(lock, std::chrono::seconds(30), [&] { return out_eof_ && err_eof_; });
    }
    stop_reading_ = true;
    if (reader_.joinable()) reader_.join();
    int st = 0;
    if (pid_ > 0 && waitpid(pid_, &st, 0) == pid_) status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    pid_ = -1;
}

void Ctbpf::kill9() { end_with(SIGKILL); }

void Ctbpf::stop_plain() { end_with(SIGTERM); }

void Ctbpf::stop() {
    // ctbpf drains the ring buffer on SIGTERM; what it cannot drain is what the kernel is
    // still producing for the scenario (deferred softirq work, frees): let that arrive first.
    settle();
    end_with(SIGTERM);
    std::istringstream in(out_);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line);
        if (j["type"] == "summary") summary_ = j;
        else events_.push_back(j);
    }
    ASSERT_EQ(status_, 0) << err_;
    ASSERT_TRUE(summary_.is_object()) << "no summary line in output";
    // A run meant for one backend must not pass on another one.
    if (!test_backend().empty()) EXPECT_EQ(summary_["backend"], test_backend());
}

nlohmann::json loadgen(const Netns& ns, const std::string& args) {
    return nlohmann::json::parse(ns.exec(std::string(LOADGEN_BIN) + " " + args));
}

long long delta(const std::map<std::string, long long>& before, const std::map<std::string, long long>& after,
                const std::string& column) {
    return after.at(column) - before.at(column);
}

bool Ctbpf::wait_for_stderr(const std::string& text, int timeout_ms) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [&] { return err_.find(text) != std::string::npos || err_eof_; }) &&
           err_.find(text) != std::string::npos;
}

void Ctbpf::settle() {
    // The reader drains the ring buffer at least every 100 ms, so 250 ms without output
    // means nothing was waiting; a stream still flowing keeps extending the wait (bounded).
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + seconds(10);
    std::unique_lock lock(mu_);
    while (steady_clock::now() < deadline && !out_eof_) {
        const size_t seen = out_.size();
        if (!changed_.wait_for(lock, milliseconds(250), [&] { return out_.size() != seen || out_eof_; })) return;
    }
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (done()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(every);
    }
}

}  // namespace scenario
