// What the entries are, on a real kernel: a known mix made in a test namespace, compared
// with `conntrack -L` grouped the same way; a timeout change the advice names, applied, and
// the table settling where the prediction said; lifetimes of entries with a 2 s timeout.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <algorithm>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;
using nlohmann::json;

namespace {

class Composition : public PrivilegedTest {};

using Groups = std::map<std::string, long long>;  // "tcp ESTABLISHED" -> entries

// `conntrack -L` grouped as ctbpf groups: TCP by its state, others by their status flags;
// per source too ("127.0.1.1 tcp ESTABLISHED").
struct Listed {
    Groups by_class, by_source_class;
    long long total = 0;
    bool operator==(const Listed&) const = default;
};

Listed conntrack_list(const Netns& ns) {
    Listed l;
    std::istringstream in(ns.exec("conntrack -L 2>/dev/null || true"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream w(line);
        std::string proto, num, timeout, state;
        w >> proto >> num >> timeout >> state;
        if (proto != "tcp" && proto != "udp" && proto != "icmp") continue;
        std::string cls;
        if (proto == "tcp") cls = "tcp " + state;
        else if (line.find("[UNREPLIED]") != std::string::npos) cls = proto + " UNREPLIED";
        else if (line.find("[ASSURED]") != std::string::npos) cls = proto + " ASSURED";
        else cls = proto + " REPLIED";
        const auto p = line.find("src=");
        const std::string src = line.substr(p + 4, line.find(' ', p) - p - 4);
        l.by_class[cls]++;
        l.by_source_class[src + " " + cls]++;
        l.total++;
    }
    return l;
}

Listed from_composition(const json& c) {
    Listed l;
    l.total = c["total"].get<long long>();
    for (const auto& k : c["classes"])
        l.by_class[k["proto"].get<std::string>() + " " + k["state"].get<std::string>()] = k["entries"].get<long long>();
    for (const auto& s : c["sources"])
        for (const auto& k : s["by_state"])
            l.by_source_class[s["addr"].get<std::string>() + " " + k["proto"].get<std::string>() + " " +
                              k["state"].get<std::string>()] = k["entries"].get<long long>();
    return l;
}

// Smallest and largest seconds left of the UDP entries `conntrack -L` lists.
std::pair<long long, long long> udp_seconds_left(const Netns& ns) {
    long long lo = -1, hi = -1;
    std::istringstream in(ns.exec("conntrack -L -p udp 2>/dev/null || true"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream w(line);
        std::string proto, num;
        long long left = 0;
        if (!(w >> proto >> num >> left) || proto != "udp") continue;
        lo = lo < 0 ? left : std::min(lo, left);
        hi = std::max(hi, left);
    }
    return {lo, hi};
}

std::string dump(const Listed& l) {
    std::string out;
    for (const auto& [k, v] : l.by_source_class) out += fmt::format("  {} {}\n", k, v);
    return out;
}

// The list, once two readings a moment apart agree (connections finish closing).
Listed quiet_list(const Netns& ns) {
    Listed prev = conntrack_list(ns), now;
    wait_until(
        [&] {
            now = conntrack_list(ns);
            const bool same = now == prev;
            prev = now;
            return same;
        },
        std::chrono::seconds(20), std::chrono::milliseconds(300));
    return now;
}

// A background process in `ns`, killed at the end of the test.
class Background {
public:
    Background(const Netns& ns, const std::string& cmd, const std::string& tag) {
        out_ = fmt::format("/tmp/ctbpf-{}-{}.out", tag, getpid());
        pid_ = std::stoi(sh_ok(fmt::format("ip netns exec {} {} >{} 2>&1 </dev/null & echo $!", ns.name(), cmd, out_)));
    }
    ~Background() {
        sh(fmt::format("kill {} 2>/dev/null; while kill -0 {} 2>/dev/null; do sleep 0.1; done", pid_, pid_));
        unlink(out_.c_str());
    }
    std::string output() const {
        std::ifstream in(out_);
        return {std::istreambuf_iterator<char>(in), {}};
    }

private:
    int pid_ = 0;
    std::string out_;
};

std::string mix_script() { return std::string(CTBPF_SOURCE_DIR) + "/tests/scenario/mix.py"; }

}  // namespace

// The mix: idle ESTABLISHED from one source, unreplied UDP from a second, TCP churning
// through TIME_WAIT from a third, answered health checks from a fourth. status and watch count
// each state, overall and per source, exactly as `conntrack -L` lists them.
TEST_F(Composition, KnownMixMatchesConntrackListPerStateAndSource) {
    Netns ns("mix");
    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=600");  // nothing expires meanwhile
    Background mix(ns, fmt::format("python3 {} --established 40 --churn 60 --checks 25", mix_script()), "mix");
    ASSERT_TRUE(wait_until([&] { return mix.output().find("ready") != std::string::npos; }, std::chrono::seconds(30)))
        << mix.output();
    loadgen(ns, "--flows 80 --src 127.0.1.2 --dst 127.0.0.1 --port 9");

    Ctbpf w({"--netns", ns.name(), "--interval", "1", "--composition-interval", "1"}, "watch");
    const Listed want = quiet_list(ns);
    EXPECT_EQ(want.by_class.at("tcp ESTABLISHED"), 40) << dump(want);
    EXPECT_EQ(want.by_class.at("tcp TIME_WAIT"), 60) << dump(want);
    EXPECT_EQ(want.by_class.at("udp UNREPLIED"), 80) << dump(want);
    EXPECT_EQ(want.by_class.at("udp REPLIED"), 25) << dump(want);

    const auto st = sh(fmt::format("{} status --json --netns {}", CTBPF_BIN, ns.name()));
    const json sj = json::parse(st.out);
    ASSERT_TRUE(sj["composition"].contains("classes")) << st.out;
    const Listed got = from_composition(sj["composition"]);
    EXPECT_EQ(got, want) << "ctbpf status:\n" << dump(got) << "conntrack -L:\n" << dump(want);
    // The timeout holding each class is named, with the namespace's value.
    for (const auto& k : sj["composition"]["classes"])
        if (k["proto"] == "tcp" && k["state"] == "TIME_WAIT")
            EXPECT_EQ(k["timeout_sysctl"], "nf_conntrack_tcp_timeout_time_wait");
    // Nothing ever answered port 9: a silent destination.
    bool silent = false;
    for (const auto& d : sj["composition"]["silent_destinations"])
        silent |= d["port"] == 9 && d["unreplied"] == 80;
    EXPECT_TRUE(silent) << sj["composition"].dump(1);

    // watch's snapshot carries the same once a dump has run since the mix went quiet.
    json snap;
    ASSERT_TRUE(wait_until(
        [&] {
            const auto line = w.next_line(2000);
            if (!line) return false;
            snap = json::parse(*line);
            return !snap["composition"].empty() && from_composition(snap["composition"][0]) == want;
        },
        std::chrono::seconds(20)))
        << snap.dump(1);
    EXPECT_EQ(snap["composition"][0]["netns"], sj["netns"]["inode"]);
    w.stop_plain();
    EXPECT_EQ(w.exit_status(), 0) << w.stderr_text();
}

// The prediction holds: unreplied UDP arriving steadily with udp_timeout 20 s; the advice
// names nf_conntrack_udp_timeout (to 10 s) with a predicted count; applied inside the
// namespace, the table settles within 10% of it.
TEST_F(Composition, TimeoutAdviceNamesTheHoldingTimeoutAndItsPredictionHolds) {
    Netns ns("predict");
    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=20");
    // 200 flows/s for 75 s, each from a source port of its own.
    Background load(ns, fmt::format("{} --flows 15000 --rate 200 --sport-base 1024 --src 127.0.1.2 --dst 127.0.0.1 "
                                    "--port 9",
                                    LOADGEN_BIN),
                    "predict");
    // Steady once the first entries are about to expire: 20 s of arrivals in the table.
    ASSERT_TRUE(wait_until([&] { const auto [lo, hi] = udp_seconds_left(ns); return lo >= 0 && lo <= 1; },
                           std::chrono::seconds(60), std::chrono::milliseconds(500)));
    const auto st = sh(fmt::format("{} status --json --netns {}", CTBPF_BIN, ns.name()));
    const json j = json::parse(st.out);
    ASSERT_TRUE(j["composition"].contains("predictions")) << st.out;
    json advised;
    for (const auto& a : j["advice"])
        if (a["command"].get<std::string>().find("nf_conntrack_udp_timeout=10") != std::string::npos) advised = a;
    ASSERT_FALSE(advised.is_null()) << j["advice"].dump(1);
    for (const auto& a : j["advice"])
        EXPECT_EQ(a["command"].get<std::string>().find("tcp_timeout_established"), std::string::npos) << a;
    long long predicted = -1;
    for (const auto& p : j["composition"]["predictions"])
        if (p["sysctl"] == "nf_conntrack_udp_timeout" && p["to_s"] == 10) predicted = p["table_after"].get<long long>();
    ASSERT_GT(predicted, 0);
    const long long before = j["composition"]["total"].get<long long>();
    EXPECT_NEAR(static_cast<double>(predicted), before / 2.0, before * 0.15) << "20 s -> 10 s halves steady arrivals";

    // watch says the same from its own dumps, among its alerts.
    {
        Ctbpf w({"--netns", ns.name(), "--interval", "1", "--composition-interval", "1", "--baseline", "off"}, "watch");
        json alerts;
        EXPECT_TRUE(wait_until(
            [&] {
                const auto line = w.next_line(2000);
                if (!line) return false;
                alerts = json::parse(*line)["alerts"];
                for (const auto& a : alerts)
                    if (a.get<std::string>().find("nf_conntrack_udp_timeout=10") != std::string::npos) return true;
                return false;
            },
            std::chrono::seconds(10)))
            << alerts.dump(1);
        w.stop_plain();
    }

    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=10");
    // Entries made before the change keep their 20 s: the table has settled once they are all
    // gone, 20 s after the change (a kernel timeout, not a guess about ctbpf). Then the mean of
    // ten readings, as the gc worker frees in batches.
    const auto changed = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until([&] { return std::chrono::steady_clock::now() - changed > std::chrono::seconds(21); },
                           std::chrono::seconds(30), std::chrono::milliseconds(500)));
    double settled = 0;
    for (int i = 0; i < 10; ++i) {
        settled += static_cast<double>(conntrack_list(ns).total) / 10;
        std::this_thread::sleep_for(std::chrono::milliseconds(400));  // spaces the readings
    }
    EXPECT_NEAR(settled, static_cast<double>(predicted), predicted * 0.10)
        << "before " << before << ", predicted " << predicted << ", settled " << settled;
}

// Lifetimes: 50 unreplied UDP entries with a 2 s timeout end as UNREPLIED after about 2 s
// (the gc worker reaps them a little later), never sooner.
TEST_F(Composition, LifetimesOfEntriesWithATwoSecondTimeout) {
    Netns ns("lifetime");
    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2");
    Ctbpf w({"--netns", ns.name(), "--interval", "1", "--composition-interval", "1", "--baseline", "off"}, "watch");
    loadgen(ns, "--flows 50 --src 127.0.1.5 --dst 127.0.0.1 --port 9");
    json lt;
    ASSERT_TRUE(wait_until(
        [&] {
            const auto line = w.next_line(2000);
            if (!line) return false;
            const json snap = json::parse(*line);
            for (const auto& row : snap["lifetimes"])
                if (row["proto"] == "udp" && row["count"].get<long long>() >= 50) lt = row;
            return !lt.is_null();
        },
        std::chrono::seconds(90)))
        << "the 50 entries did not end";
    EXPECT_EQ(lt["state"], "UNREPLIED") << lt;
    EXPECT_EQ(lt["count"], 50);
    for (const auto& b : lt["buckets"])
        if (b["le"].is_number()) {
            EXPECT_GE(b["le"].get<double>(), 2.0) << "an entry ended before its 2 s timeout: " << lt;
        }
    // Lifetimes are kept in tenths of a second: at least 1.9 s each.
    EXPECT_GE(lt["sum_s"].get<double>(), 50 * 1.9) << lt;
    w.stop_plain();
    EXPECT_EQ(w.exit_status(), 0) << w.stderr_text();
}
