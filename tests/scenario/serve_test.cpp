// `ctbpf serve` scraped by a real Prometheus (Debian's package) during a reproduced
// table-full incident: Prometheus's query API must name the noisy source and agree with the
// kernel's own counters, the drop alert must fire, and the series count stays bounded; on a
// table that fills to 92% the shipped fill alert fires before anything is dropped.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
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

using Serve = PrivilegedTest;

int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    close(fd);
    return ntohs(sin.sin_port);
}

// `ctbpf serve` on loopback for one namespace, publishing twice a second, no start-up dump
// (every entry is made while it watches); `extra` adds options.
std::vector<std::string> serve_args(const Netns& ns, int port, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"--netns", ns.name(), "--listen", fmt::format("127.0.0.1:{}", port),
                               "--interval", "0.5", "--baseline", "off"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}

// A Prometheus server of our own on loopback, scraping ctbpf every second, with the alert
// rules shipped in deploy/prometheus. Killed and its data removed on destruction.
class Prometheus {
public:
    explicit Prometheus(int target_port) : port_(free_port()) {
        dir_ = sh_ok("mktemp -d /tmp/ctbpf-prom-XXXXXX");
        dir_.erase(dir_.find_last_not_of('\n') + 1);
        std::ofstream(dir_ + "/prometheus.yml") << fmt::format(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
            "rule_files: ['{}/deploy/prometheus/alerts.yml']\n"
            "scrape_configs:\n"
            "  - job_name: ctbpf\n"
            "    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            CTBPF_SOURCE_DIR, target_port);
        pid_ = std::stoi(sh_ok(fmt::format(
            "prometheus --config.file={0}/prometheus.yml --storage.tsdb.path={0}/data "
            "--web.listen-address=127.0.0.1:{1} >{0}/log 2>&1 & echo $!",
            dir_, port_)));
        for (int i = 0; i < 100; ++i) {
            if (sh(fmt::format("curl -sf http://127.0.0.1:{}/-/ready", port_)).status == 0) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        ADD_FAILURE() << "prometheus did not start:\n" << sh("cat " + dir_ + "/log").out;
    }
    ~Prometheus() {
        kill(pid_, SIGTERM);
        sh(fmt::format("while kill -0 {} 2>/dev/null; do sleep 0.1; done; rm -rf {}", pid_, dir_));
    }

    // Instant query through the HTTP API: the result vector.
    json query(const std::string& promql) const {
        const std::string out = sh_ok(fmt::format(
            "curl -sf --data-urlencode 'query={}' http://127.0.0.1:{}/api/v1/query", promql, port_));
        const json j = json::parse(out);
        EXPECT_EQ(j["status"], "success") << out;
        return j["data"]["result"];
    }
    // The single value of a query that must return exactly one series (-1 if it did not).
    double value(const std::string& promql) const {
        const json r = query(promql);
        if (r.size() != 1) return -1;
        return std::stod(r[0]["value"][1].get<std::string>());
    }
    // Polls until the query returns `want` (scrapes are once a second).
    double wait_for(const std::string& promql, double want, int seconds = 20) const {
        double v = -1;
        for (int i = 0; i < seconds * 4 && v != want; ++i) {
            v = value(promql);
            if (v != want) std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        return v;
    }

private:
    int port_;
    pid_t pid_ = -1;
    std::string dir_;
};

}  // namespace

TEST_F(Serve, PrometheusNamesTheNoisySourceAndAgreesWithTheKernel) {
    Netns ns("serve");
    ConntrackMax max(300);
    const int port = free_port();
    Ctbpf serve(serve_args(ns, port, {"--top-k", "5"}), "serve");
    Prometheus prom(port);
    ASSERT_EQ(prom.wait_for("up{job=\"ctbpf\"}", 1), 1) << "Prometheus cannot scrape ctbpf serve";

    // Eight sources: six quiet ones, one that fills the table, a health check to port 3908
    // that loses its packets.
    const auto before = ns.stat();
    for (int i = 2; i <= 7; ++i) loadgen(ns, fmt::format("--src 127.0.1.{} --flows 20", i));
    // The noisy one in four bursts, each in a scrape of its own, so Prometheus sees its rate:
    // the next burst starts once Prometheus holds the kernel's insert count after this one.
    for (int k = 0; k < 4; ++k) {
        loadgen(ns, fmt::format("--src 127.0.1.1 --flows 100 --sport-base {}", 20000 + 100 * k));
        const double inserted = static_cast<double>(ns.nft_new_counter());
        EXPECT_EQ(prom.wait_for("ctbpf_conntrack_inserts_total", inserted), inserted) << "burst " << k;
    }
    loadgen(ns, "--src 127.0.1.9 --flows 30 --port 3908");
    const auto after = ns.stat();
    const long long drops = delta(before, after, "drop"), early = delta(before, after, "early_drop");
    ASSERT_GT(drops, 0);

    // Totals, as Prometheus stored them, equal the kernel's counters.
    EXPECT_EQ(prom.wait_for("sum(ctbpf_conntrack_drops_total)", static_cast<double>(drops)), drops);
    EXPECT_EQ(prom.wait_for("ctbpf_conntrack_inserts_total", static_cast<double>(ns.nft_new_counter())),
              ns.nft_new_counter());
    EXPECT_EQ(prom.value("ctbpf_conntrack_early_drops_total"), early);
    EXPECT_EQ(prom.value("ctbpf_conntrack_drops_total{reason=\"table_full\"}"), drops);
    EXPECT_EQ(prom.value(fmt::format("ctbpf_conntrack_entries{{netns=\"{}\"}}", ns.name())), ns.count());

    // "Which source fills the table on which node": the noisy source, on this instance.
    const json top = prom.query("topk(1, ctbpf_source_entries)");
    ASSERT_EQ(top.size(), 1u) << top.dump();
    EXPECT_EQ(top[0]["metric"]["source"], "127.0.1.1");
    EXPECT_EQ(top[0]["metric"]["instance"], fmt::format("127.0.0.1:{}", port));
    // Per-source entries equal `conntrack -L` grouped by source, for every source listed.
    const auto by_source = ns.conntrack_by_source();
    for (const auto& s : prom.query("ctbpf_source_entries")) {
        const std::string src = s["metric"]["source"];
        EXPECT_EQ(std::stod(s["value"][1].get<std::string>()), by_source.count(src) ? by_source.at(src) : 0) << src;
    }
    // Its inserts: the entries it holds plus at most the entries removed since: evicted to
    // make room (early drops) or by the kernel's gc, which kills unassured entries while the
    // table is over 95% full and counts them nowhere (ctbpf sees those as destroys).
    const double noisy = prom.value("ctbpf_source_inserts_total{source=\"127.0.1.1\"}");
    const double destroys = prom.value("ctbpf_conntrack_destroys_total");
    EXPECT_GE(noisy, by_source.at("127.0.1.1"));
    EXPECT_LE(noisy, by_source.at("127.0.1.1") + early + destroys);
    // Every entry inserted is still there or was removed one of those two ways.
    EXPECT_EQ(prom.value("ctbpf_conntrack_inserts_total"), ns.count() + early + destroys);
    // Its insert rate, as Prometheus computes it (two scrapes of the series are needed).
    double rate = -1;
    for (int i = 0; i < 40 && rate <= 0; ++i) {
        rate = prom.value("rate(ctbpf_source_inserts_total{source=\"127.0.1.1\"}[30s])");
        if (rate <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_GT(rate, 0);
    EXPECT_LE(rate, noisy);  // never more than it inserted in all
    // Who loses packets: the health check's service, and every drop is on some destination.
    EXPECT_GT(prom.value("sum(ctbpf_destination_drops_total{port=\"3908\",proto=\"udp\"})"), 0);
    EXPECT_EQ(prom.value("sum(ctbpf_destination_drops_total)"), drops);

    // Bounded: eight sources seen, five series per per-source family.
    EXPECT_EQ(prom.value("ctbpf_tracked_sources"), 8);
    EXPECT_EQ(prom.value("count(ctbpf_source_entries)"), 5);
    EXPECT_EQ(prom.value("count(ctbpf_source_inserts_total)"), 5);

    // Every counter only grew while Prometheus scraped (a decrease reads as a reset and
    // makes rate() fire on a series that never moved), and every drop was table-full.
    for (const char* counter : {"ctbpf_conntrack_inserts_total", "ctbpf_conntrack_destroys_total",
                                "ctbpf_conntrack_drops_total", "ctbpf_conntrack_early_drops_total",
                                "ctbpf_conntrack_insert_failures_total", "ctbpf_events_lost_total",
                                "ctbpf_source_inserts_total", "ctbpf_source_drops_total",
                                "ctbpf_destination_drops_total"})
        EXPECT_EQ(prom.value(fmt::format("sum(resets({}[5m]))", counter)), 0) << counter;
    EXPECT_EQ(prom.value("ctbpf_conntrack_drops_total{reason=\"other\"}"), 0);
    EXPECT_EQ(prom.value("ctbpf_conntrack_drops_total{reason=\"unknown\"}"), 0);

    // The alert rules shipped in deploy/: drops fire at once; the fill rule's condition holds
    // (its `for: 1m` is longer than this test).
    EXPECT_EQ(prom.wait_for("count(ALERTS{alertname=\"ConntrackDroppingPackets\",alertstate=\"firing\"})", 1), 1);
    EXPECT_EQ(prom.query("max by (instance, netns) (ctbpf_conntrack_fill_ratio) > 0.9").size(), 1u);
    serve.stop_plain();
    EXPECT_EQ(serve.exit_status(), 0) << serve.stderr_text();
}

namespace {

long rss_kib(const std::string& pattern) {
    const std::string pid = sh_ok("pgrep -of '^[^ ]*ctbpf " + pattern + "'");  // not this shell
    return std::stol(sh_ok("awk '/^VmRSS/ {print $2}' /proc/" + pid.substr(0, pid.find('\n')) + "/status"));
}

// Seconds one scrape took (curl), or -1 if it was not a 200.
double scrape_seconds(int port, const std::string& from = "127.0.0.1") {
    const CmdResult r = sh(fmt::format(
        "curl -s -m 3 --interface {} -o /dev/null -w '%{{http_code}} %{{time_total}}' http://127.0.0.1:{}/metrics", from,
        port));
    if (r.out.rfind("200 ", 0) != 0) return -1;
    return std::stod(r.out.substr(4));
}

}  // namespace

TEST_F(Serve, KeepsServingDuringADropStormAndAgainstHostileClients) {
    Netns ns("servestorm");
    ConntrackMax max(300);
    const int port = free_port();
    Ctbpf serve(serve_args(ns, port), "serve");
    const auto before = ns.stat();
    // A table-full drop storm on both cores while we scrape.
    // (sh, not loadgen(): a failure must not throw out of the thread.)
    CmdResult storm_result;
    std::thread storm([&] {
        storm_result = sh(fmt::format("ip netns exec {} {} --fast --port 1 --src 127.0.1.1 --src 127.0.1.2 "
                                      "--src 127.0.1.3 --src 127.0.1.4 --flows 60000", ns.name(), LOADGEN_BIN));
    });
    double worst = 0;
    int scrapes = 0;
    for (; scrapes < 10; ++scrapes) {
        const double s = scrape_seconds(port);
        EXPECT_GE(s, 0) << "a scrape failed during the storm";
        worst = std::max(worst, s);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    storm.join();
    ASSERT_EQ(storm_result.status, 0) << storm_result.err;
    const long long drops = delta(before, ns.stat(), "drop");
    ASSERT_GT(drops, 100'000);
    std::printf("worst scrape during the storm: %.3f s over %d scrapes; %lld drops\n", worst, scrapes, drops);
    EXPECT_LT(worst, 1.0);
    // The exported drop total catches up with the kernel's exactly.
    std::string text;
    for (int i = 0; i < 20; ++i) {
        text = sh_ok(fmt::format("curl -s http://127.0.0.1:{}/metrics", port));
        if (text.find(fmt::format("ctbpf_conntrack_drops_total{{reason=\"table_full\"}} {}\n", drops)) != std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_NE(text.find(fmt::format("ctbpf_conntrack_drops_total{{reason=\"table_full\"}} {}\n", drops)), std::string::npos)
        << text;

    // Hostile clients: 300 connections from one address, half of them sending a request
    // that never ends (slowloris), none reading. Memory stays flat and a scraper on another
    // address is served at once.
    const std::string pattern = "serve --netns " + ns.name();
    const long rss0 = rss_kib(pattern);
    std::vector<int> fds;
    for (int i = 0; i < 300; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(static_cast<uint16_t>(port));
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 && i % 2 == 0) {
            const std::string partial = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            (void)!write(fd, partial.data(), partial.size());
        }
        fds.push_back(fd);
    }
    // Scrape once the server has taken every one of them off the listen queue (Recv-Q of a
    // listening socket), so the scraper competes with all 300.
    EXPECT_TRUE(wait_until([&] {
        const std::string q = sh(fmt::format("ss -Hltn 'sport = :{}' | awk '{{print $2}}'", port)).out;
        return q == "0\n";
    }, std::chrono::seconds(10))) << "the hostile connections were not accepted";
    const double other = scrape_seconds(port, "127.0.0.2");
    EXPECT_GE(other, 0) << "a scraper on another address was refused";
    EXPECT_LT(other, 1.0);
    const long rss1 = rss_kib(pattern);
    std::printf("RSS %ld KiB before, %ld KiB with 300 hostile connections\n", rss0, rss1);
    EXPECT_LT(rss1 - rss0, 8 * 1024);
    for (int fd : fds) close(fd);
    // Health: the observer kept publishing throughout.
    EXPECT_EQ(sh(fmt::format("curl -sf http://127.0.0.1:{}/healthz", port)).status, 0);
    serve.stop_plain();
    EXPECT_EQ(serve.exit_status(), 0) << serve.stderr_text();
}

// "Alert before the table is full", with the rules exactly as shipped: the table grows to
// 92% and stays there. While it grows the time-to-full rule is pending; a minute later
// (its `for:`) the fill rule fires, with no packet dropped and the table not full.
TEST_F(Serve, FillAlertFiresBeforeTheTableIsFull) {
    Netns ns("warn");
    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3600");  // entries stay
    ConntrackMax max(1000);
    const int port = free_port();
    Ctbpf serve(serve_args(ns, port), "serve");
    Prometheus prom(port);
    ASSERT_EQ(prom.wait_for("up{job=\"ctbpf\"}", 1), 1) << "Prometheus cannot scrape ctbpf serve";

    const auto before = ns.stat();
    // A quiet source, then a noisy one growing the table by 100 entries a second.
    loadgen(ns, "--src 127.0.1.2 --flows 20");
    // Paced, not in bursts: bursts a second apart alias with the 1 s snapshots, and growth
    // then reads 0 in some intervals (time to full +Inf) and 200 in others.
    const std::string pid = sh_ok(fmt::format("ip netns exec {} {} --src 127.0.1.1 --flows 900 --rate 100 "
                                              "--sport-base 20000 >/dev/null 2>&1 & echo $!",
                                              ns.name(), LOADGEN_BIN));
    bool soon_seen = false;
    wait_until([&] {
        soon_seen |= !prom.query("ALERTS{alertname=\"ConntrackTableFullSoon\"}").empty();
        return sh(fmt::format("kill -0 {} 2>/dev/null", pid.substr(0, pid.find('\n')))).status != 0;
    }, std::chrono::seconds(30), std::chrono::milliseconds(500));
    ASSERT_EQ(ns.count(), 920);
    EXPECT_TRUE(soon_seen) << "time to full never went under 10 minutes while growing 100/s";

    // The fill rule fires after holding for a minute (scrapes and evaluations every second).
    const json firing = [&] {
        for (int i = 0; i < 100; ++i) {
            const json r = prom.query("ALERTS{alertname=\"ConntrackTableNearlyFull\",alertstate=\"firing\"}");
            if (!r.empty()) return r;
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        return json::array();
    }();
    ASSERT_EQ(firing.size(), 1u) << "ConntrackTableNearlyFull did not fire within 100 s at 92%";
    EXPECT_EQ(firing[0]["metric"]["netns"], ns.name());
    EXPECT_EQ(firing[0]["metric"]["instance"], fmt::format("127.0.0.1:{}", port));
    // Before the table is full: nothing dropped, room left, and the noisy source named.
    const auto after = ns.stat();
    EXPECT_EQ(delta(before, after, "drop"), 0);
    EXPECT_EQ(delta(before, after, "early_drop"), 0);
    EXPECT_LT(ns.count(), 1000);
    EXPECT_EQ(prom.value("sum(ctbpf_conntrack_drops_total)"), 0);
    EXPECT_EQ(prom.query("ALERTS{alertname=\"ConntrackDroppingPackets\"}").size(), 0u);
    const json top = prom.query("topk(1, ctbpf_source_entries)");
    ASSERT_EQ(top.size(), 1u);
    EXPECT_EQ(top[0]["metric"]["source"], "127.0.1.1");
    EXPECT_EQ(top[0]["value"][1], "900");
    serve.stop_plain();
    EXPECT_EQ(serve.exit_status(), 0) << serve.stderr_text();
}
