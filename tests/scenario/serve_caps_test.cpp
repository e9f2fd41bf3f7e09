// `ctbpf serve` as an unprivileged user (uid 65534) holding exactly the capabilities that
// the committed systemd unit grants (deploy/systemd/ctbpf-serve.service): it must count every
// new entry, and without any one of them it must stop at once with a one-line error that
// names the missing capability.
//
// The user has no CAP_SYS_ADMIN, so it cannot enter the test namespace with --netns: the
// whole command runs inside it (ip netns exec NS setpriv ... ctbpf serve), which makes the
// test namespace ctbpf's own, as the host namespace is for the unit.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;

namespace {

const std::string kUnit = std::string(CTBPF_SOURCE_DIR) + "/deploy/systemd/ctbpf-serve.service";
constexpr const char* kListen = "127.0.0.1:9669";  // inside the test namespace: no clash

// Capability numbers, as in <linux/capability.h> (index = bit).
const char* const kCapNames[] = {
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore"};

// The capabilities of `Key=` in the unit, lower case without CAP_ (as setpriv names them).
std::set<std::string> unit_caps(const std::string& key) {
    std::ifstream in(kUnit);
    EXPECT_TRUE(in) << "cannot read " << kUnit;
    std::set<std::string> caps;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(key + "=", 0) != 0) continue;
        std::istringstream words(line.substr(key.size() + 1));
        for (std::string w; words >> w;) {
            std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
            caps.insert(w.rfind("cap_", 0) == 0 ? w.substr(4) : w);
        }
    }
    return caps;
}

uint64_t cap_mask(const std::set<std::string>& caps) {
    uint64_t m = 0;
    for (size_t bit = 0; bit < std::size(kCapNames); ++bit)
        if (caps.count(kCapNames[bit])) m |= uint64_t{1} << bit;
    return m;
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
}

// setpriv prefix: uid/gid 65534 (nobody), no groups, `caps` inheritable + ambient, and a
// bounding set of only `caps`: what systemd does with DynamicUser= and AmbientCapabilities=.
std::string as_nobody(const std::set<std::string>& caps) {
    std::string set = "-all";
    for (const auto& c : caps) set += ",+" + c;
    return fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps={0} "
                       "--ambient-caps={0} --bounding-set={0}",
                       set);
}

// A copy of ctbpf that uid 65534 can execute whatever the build directory's permissions.
class PublicCopy {
public:
    PublicCopy() {
        char tmpl[] = "/tmp/ctbpf-caps-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        sh_ok(fmt::format("chmod 755 {0} && install -m 0755 {1} {0}/ctbpf", dir_, CTBPF_BIN));
    }
    ~PublicCopy() { sh("rm -rf " + dir_); }
    std::string bin() const { return dir_ + "/ctbpf"; }
    std::string dir() const { return dir_; }

private:
    std::string dir_;
};

// `ctbpf serve` started in `ns` as nobody; stderr goes to a file. Waits until it serves.
class Serve {
public:
    Serve(const Netns& ns, const PublicCopy& copy, const std::set<std::string>& caps)
        : err_path_(copy.dir() + "/serve.err") {
        const std::string cmd = fmt::format("exec ip netns exec {} {} {} serve --listen {}{} 2>{} >/dev/null",
                                            ns.name(), as_nobody(caps), copy.bin(), kListen, backend_arg(),
                                            err_path_);
        pid_ = fork();
        if (pid_ == 0) {
            execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
            _exit(127);
        }
        // ip netns exec and setpriv exec in place: pid_ ends up being ctbpf itself.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            if (stderr_text().find("serving http") != std::string::npos) return;
            int st = 0;
            if (waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                ADD_FAILURE() << "ctbpf serve exited: " << stderr_text();
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ADD_FAILURE() << "ctbpf serve did not start: " << stderr_text();
    }
    ~Serve() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
    pid_t pid() const { return pid_; }
    std::string stderr_text() const {
        std::ifstream in(err_path_);
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    std::string err_path_;
    pid_t pid_ = -1;
};

// Value of the first sample line starting with `series` (name plus labels, if any).
std::optional<double> sample(const std::string& metrics, const std::string& series) {
    std::istringstream in(metrics);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return std::nullopt;
}

// "Uid:" or "CapEff:" line of /proc/PID/status, after the colon.
std::string status_field(pid_t pid, const std::string& field) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
    return "";
}

class ServeCaps : public PrivilegedTest {
protected:
    void SetUp() override {
        PrivilegedTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        if (sh("command -v setpriv && command -v curl").status != 0)
            GTEST_FAIL() << "setpriv (util-linux) or curl missing (tools/setup.sh --tests installs curl)";
        caps_ = unit_caps("AmbientCapabilities");
        ASSERT_FALSE(caps_.empty()) << "no AmbientCapabilities= in " << kUnit;
        // The bounding set must not be narrower than what is granted (else systemd drops it).
        ASSERT_EQ(unit_caps("CapabilityBoundingSet"), caps_) << kUnit;
        for (const auto& c : caps_)
            ASSERT_NE(std::find(std::begin(kCapNames), std::end(kCapNames), c), std::end(kCapNames))
                << "unknown capability " << c << " in " << kUnit;
    }
    std::set<std::string> caps_;
};

TEST_F(ServeCaps, UnitCapabilitiesSufficeAsNobodyAndCountEveryInsert) {
    Netns ns("caps");
    PublicCopy copy;
    Serve serve(ns, copy, caps_);
    ASSERT_GT(serve.pid(), 0);

    // Not root, and holding exactly the unit's capabilities.
    std::istringstream uids(status_field(serve.pid(), "Uid"));
    for (std::string id; uids >> id;) EXPECT_NE(id, "0") << "ctbpf runs with a root uid";
    EXPECT_EQ(std::stoull(status_field(serve.pid(), "CapEff"), nullptr, 16), cap_mask(caps_));

    const auto report = loadgen(ns, "--src 127.0.0.5 --flows 50 --port 7 --sport-base 20000");
    ASSERT_EQ(report["sent"], 50) << report.dump();

    // Every scrape is itself a new connection (one more entry, one more nft count), so
    // compare the counter read just before a scrape with the snapshot that scrape returns,
    // waiting for a snapshot (one per second) newer than the load.
    long long want = -1;
    std::optional<double> got;
    std::string metrics;
    wait_until([&] {
        want = ns.nft_new_counter();
        metrics = ns.exec(fmt::format("curl -sf http://{}/metrics", kListen));
        got = sample(metrics, "ctbpf_conntrack_inserts_total");
        return got && static_cast<long long>(*got) == want;
    }, std::chrono::seconds(24), std::chrono::milliseconds(300));
    ASSERT_TRUE(got) << metrics;
    EXPECT_GE(want, 50);
    EXPECT_EQ(static_cast<long long>(*got), want) << metrics;
    EXPECT_EQ(sample(metrics, "ctbpf_source_inserts_total{source=\"127.0.0.5\",netns=\"self\"}"), 50.0) << metrics;
    EXPECT_EQ(ns.exec(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' http://{}/healthz", kListen)), "200");
    EXPECT_EQ(serve.stderr_text().find("warning"), std::string::npos) << serve.stderr_text();
}

TEST_F(ServeCaps, EachMissingCapabilityIsNamedInAOneLineError) {
    Netns ns("nocap");
    PublicCopy copy;
    for (const auto& missing : caps_) {
        std::set<std::string> fewer = caps_;
        fewer.erase(missing);
        // --duration bounds the run should it start anyway.
        const CmdResult r = sh(fmt::format("ip netns exec {} {} {} serve --listen {} --duration 5{}", ns.name(),
                                           as_nobody(fewer), copy.bin(), kListen, backend_arg()));
        EXPECT_NE(r.status, 0) << "started without CAP_" << upper(missing);
        std::string err = r.err;
        while (!err.empty() && err.back() == '\n') err.pop_back();
        EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line without CAP_" << upper(missing) << ":\n"
                                                     << r.err;
        EXPECT_NE(err.find("CAP_" + upper(missing)), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "");
    }
}

}  // namespace
