// `ctbpf serve`: the exposition parsed back (names, types, label bounds, escaping), checked
// by Prometheus's own promtool and the Python client's OpenMetrics parser, and the HTTP
// side against misbehaving clients on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ctbpf/error.h"
#include "exposition.h"
#include "http.h"

using namespace ctbpf;
using namespace ctbpf::serve;

namespace {

Address v4(uint32_t host_order) {
    Address a;
    a.family = AF_INET;
    const uint32_t n = htonl(host_order);
    std::memcpy(a.bytes.data(), &n, 4);
    return a;
}

// A snapshot of a table under attack: `n` sources, the first the noisiest.
struct Fixture {
    LiveSnapshot snap;
    TopK top;
    explicit Fixture(size_t n) {
        snap.backend = "tracepoint";
        snap.tables = {{{1, 900, 1000, 1024}, "host"}, {{2, 10, 1000, 1024}, "we\"ird\\ns\nname"}};
        snap.object_size = 256;
        snap.seconds_to_full = 12.5;
        snap.totals.insert = 5000;
        snap.totals.drop = 70;
        snap.totals.destroy = 4100;
        snap.totals.early_drop = 3;
        snap.totals.insert_failed = 1;
        snap.totals.lost = 4;
        snap.totals.lost_drop = 3;
        snap.drops_full_total = 57;
        snap.drops_other_total = 10;
        snap.tracked = n;
        snap.capacity = 65536;
        for (size_t i = 0; i < n; ++i) {
            SourceRow r;
            r.addr = v4(0x0a000001u + static_cast<uint32_t>(i));
            r.inserts = 1000 - i;
            r.rate_10s = 100.5 - static_cast<double>(i) / 10;
            r.entries = static_cast<int64_t>(800 - i);
            r.drops = i < 3 ? 20 - i : 0;
            top.by_rate.push_back(r);
            top.by_entries.push_back(r);
            top.by_drops.push_back(r);
            DestRow d{v4(0x0a640000u + static_cast<uint32_t>(i)), static_cast<uint16_t>(3908 + i), 6, 30 - i, 0, ""};
            top.destinations.push_back(d);
            // As many workloads of each kind, a process per cgroup per namespace.
            for (WorkloadKind kind : {WorkloadKind::Netns, WorkloadKind::Cgroup, WorkloadKind::Process}) {
                WorkloadRow w;
                w.kind = kind;
                w.netns = static_cast<uint32_t>(100 + i);
                w.netns_name = "ns" + std::to_string(i);
                w.cgroup = kind == WorkloadKind::Netns ? 0 : 1000 + i;
                w.cgroup_path = "/kubepods/pod" + std::to_string(i);
                w.workload = i == 0 ? "pod default/web-0" : "";
                w.pid = kind == WorkloadKind::Process ? static_cast<uint32_t>(4000 + i) : 0;
                w.comm = "dig";
                w.inserts = 900 - i;
                w.drops = i < 2 ? 40 - i : 0;
                top.workloads_by_rate.push_back(w);
                top.workloads_by_drops.push_back(w);
            }
        }
    }
};

struct Family {
    std::string type, help, unit;
    std::vector<std::pair<std::map<std::string, std::string>, std::string>> samples;  // labels, value
};

// A strict reader of the two text formats: every sample must belong to the family announced
// before it, labels must be well-formed and escaped, OpenMetrics must end with # EOF.
std::map<std::string, Family> parse(const std::string& text, Format f) {
    std::map<std::string, Family> fams;
    std::istringstream in(text);
    std::string line, current;
    bool eof = false;
    const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
    while (std::getline(in, line)) {
        EXPECT_FALSE(eof) << "text after # EOF";
        if (line == "# EOF") {
            eof = true;
            continue;
        }
        if (line.rfind("# ", 0) == 0) {
            std::istringstream ls(line.substr(2));
            std::string kw, name, rest;
            ls >> kw >> name;
            std::getline(ls, rest);
            if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
            EXPECT_TRUE(std::regex_match(name, name_re)) << name;
            if (kw == "TYPE") {
                EXPECT_FALSE(fams.count(name) && !fams[name].type.empty()) << "family declared twice: " << name;
                fams[name].type = rest;
                current = name;
            } else if (kw == "HELP") {
                fams[name].help = rest;
            } else if (kw == "UNIT") {
                fams[name].unit = rest;
            } else {
                ADD_FAILURE() << "unknown comment: " << line;
            }
            continue;
        }
        // name{labels} value
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        const std::string name = line.substr(0, i);
        std::map<std::string, std::string> labels;
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (line.at(i) != '}') {
                const size_t eq = line.find('=', i);
                const std::string key = line.substr(i, eq - i);
                EXPECT_TRUE(std::regex_match(key, name_re)) << key;
                EXPECT_EQ(line.at(eq + 1), '"');
                std::string val;
                size_t j = eq + 2;
                for (; line.at(j) != '"'; ++j) {
                    if (line[j] == '\\') {
                        const char c = line.at(++j);
                        EXPECT_TRUE(c == '\\' || c == '"' || c == 'n') << "bad escape in " << line;
                        val += c == 'n' ? '\n' : c;
                    } else {
                        val += line[j];
                    }
                }
                EXPECT_FALSE(labels.count(key)) << "label twice: " << line;
                labels[key] = val;
                i = j + 1;
                if (line.at(i) == ',') ++i;
            }
            ++i;
        }
        EXPECT_EQ(line.at(i), ' ') << line;
        const std::string value = line.substr(i + 1);
        EXPECT_TRUE(std::regex_match(value, std::regex(R"([+-]Inf|NaN|-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?)"))) << line;
        // The sample belongs to the family announced last (counters add _total, info _info in OM).
        std::string fam = name;
        if (f == Format::OpenMetrics && fams[current].type == "counter") fam = name.substr(0, name.size() - 6);
        if (f == Format::OpenMetrics && fams[current].type == "info") fam = name.substr(0, name.size() - 5);
        if (fams[current].type == "histogram")
            for (const std::string suffix : {"_bucket", "_sum", "_count"})
                if (name.ends_with(suffix)) fam = name.substr(0, name.size() - suffix.size());
        EXPECT_EQ(fam, current) << "sample outside its family: " << line;
        fams[current].samples.push_back({labels, value});
    }
    EXPECT_EQ(eof, f == Format::OpenMetrics);
    return fams;
}

std::string sample_name(const std::string& fam, const Family& f, Format fmt) {
    if (fmt == Format::OpenMetrics && f.type == "counter") return fam + "_total";
    if (fmt == Format::OpenMetrics && f.type == "info") return fam + "_info";
    return fam;
}

}  // namespace

TEST(Exposition, ParsesBackInBothFormatsWithConventionalNames) {
    Fixture fx(30);
    for (Format f : {Format::OpenMetrics, Format::PrometheusText}) {
        const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 20}, f), f);
        for (const auto& [name, fam] : fams) {
            EXPECT_FALSE(fam.help.empty()) << name;
            EXPECT_TRUE(fam.type == "counter" || fam.type == "gauge" || fam.type == "info" || fam.type == "histogram")
                << name;
            EXPECT_EQ(name.rfind("ctbpf_", 0), 0u) << name;
            const std::string s = sample_name(name, fam, f);
            // Counters end in _total, and nothing else does; units are suffixes.
            EXPECT_EQ(s.ends_with("_total"), fam.type == "counter") << s;
            if (!fam.unit.empty()) {
                EXPECT_TRUE(name.ends_with("_" + fam.unit)) << name;
            }
        }
        const std::string inserts = f == Format::OpenMetrics ? "ctbpf_conntrack_inserts" : "ctbpf_conntrack_inserts_total";
        ASSERT_TRUE(fams.count(inserts));
        EXPECT_EQ(fams.at(inserts).samples.at(0).second, "5000");
        // Table-full, other and unknown (event lost) drops add up to the kernel's drop total.
        const std::string drops = f == Format::OpenMetrics ? "ctbpf_conntrack_drops" : "ctbpf_conntrack_drops_total";
        std::map<std::string, std::string> by_reason;
        for (const auto& [l, v] : fams.at(drops).samples) by_reason[l.at("reason")] = v;
        EXPECT_EQ(by_reason.at("table_full"), "57");
        EXPECT_EQ(by_reason.at("other"), "10");
        EXPECT_EQ(by_reason.at("unknown"), "3");
        EXPECT_EQ(fams.at("ctbpf_conntrack_time_to_full_seconds").samples.at(0).second, "12.5");
        EXPECT_EQ(fams.at("ctbpf_conntrack_fill_ratio").samples.at(0).second, "0.9");
    }
}

// Composition and lifetimes: entries by state per table, and a Prometheus histogram whose
// buckets are cumulative and end in +Inf = _count.
TEST(Exposition, EntriesByStateAndLifetimeHistogram) {
    Fixture fx(3);
    Composition c;
    c.netns = fx.snap.tables.front().netns;
    c.total = 30;
    ClassComposition k;
    k.cls = {17, EntryState::Unreplied};
    k.entries = 30;
    c.classes.push_back(k);
    fx.snap.composition.push_back(c);
    DurationHistogram h;
    h.add(1.5, 4);
    h.add(30, 6);
    fx.snap.lifetimes[{17, EntryState::Unreplied}] = h;
    for (Format f : {Format::OpenMetrics, Format::PrometheusText}) {
        const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 20}, f), f);
        const auto& st = fams.at("ctbpf_conntrack_entries_by_state").samples;
        ASSERT_EQ(st.size(), 1u);
        EXPECT_EQ(st[0].first.at("state"), "UNREPLIED");
        EXPECT_EQ(st[0].first.at("proto"), "udp");
        EXPECT_EQ(st[0].second, "30");
        const auto& lt = fams.at("ctbpf_conntrack_entry_lifetime_seconds");
        EXPECT_EQ(lt.type, "histogram");
        double last = 0;
        std::string inf, count;
        for (const auto& [labels, v] : lt.samples) {
            if (labels.count("le")) {
                EXPECT_GE(std::stod(v), last);
                last = std::stod(v);
                if (labels.at("le") == "+Inf") inf = v;
                if (labels.at("le") == "2") {
                    EXPECT_EQ(v, "4");
                }
            } else if (v == "10") {
                count = v;
            }
        }
        EXPECT_EQ(inf, "10");
        EXPECT_EQ(count, "10");
    }
}

TEST(Exposition, PerSourceSeriesAreBoundedByTopK) {
    Fixture fx(5000);  // far more sources than may be shown
    for (size_t k : {1u, 5u, 20u}) {
        const std::string text = render(fx.snap, fx.top, Exposition{"0.1.0", k}, Format::PrometheusText);
        const auto fams = parse(text, Format::PrometheusText);
        size_t series = 0;
        for (const auto& [name, fam] : fams) {
            series += fam.samples.size();
            if (name.rfind("ctbpf_source_", 0) == 0 || name.rfind("ctbpf_destination_", 0) == 0) {
                EXPECT_LE(fam.samples.size(), k) << name;
            }
            if (name.rfind("ctbpf_workload_", 0) == 0) {
                EXPECT_LE(fam.samples.size(), 3 * k) << name;
            }
        }
        // The top workload of each kind, named: the pod, the namespace, the process.
        const auto& wl = fams.at("ctbpf_workload_inserts_total").samples;
        ASSERT_EQ(wl.size(), 3 * k);
        std::map<std::string, std::string> first_of;
        for (const auto& [labels, value] : wl) first_of.try_emplace(labels.at("kind"), labels.at("workload"));
        EXPECT_EQ(first_of.at("netns"), "ns0");
        EXPECT_EQ(first_of.at("cgroup"), "pod default/web-0");
        EXPECT_EQ(first_of.at("process"), "dig 4000");
        EXPECT_EQ(fams.at("ctbpf_workload_drops_total").samples.size(), 3 * std::min<size_t>(k, 2));
        EXPECT_LE(series, series_ceiling(fx.snap.tables.size(), k));
        // The noisiest source is the one listed.
        const auto& ins = fams.at("ctbpf_source_inserts_total").samples;
        ASSERT_EQ(ins.size(), k);
        EXPECT_EQ(ins[0].first.at("source"), "10.0.0.1");
        EXPECT_EQ(ins[0].second, "1000");
        // Sources without drops are not listed as dropping.
        EXPECT_EQ(fams.at("ctbpf_source_drops_total").samples.size(), std::min<size_t>(k, 3));
        const auto& dest = fams.at("ctbpf_destination_drops_total").samples.at(0).first;
        EXPECT_EQ(dest.at("destination"), "10.100.0.0");
        EXPECT_EQ(dest.at("port"), "3908");
        EXPECT_EQ(dest.at("proto"), "tcp");
    }
}

TEST(Exposition, LabelValuesAreEscaped) {
    Fixture fx(1);
    const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 20}, Format::OpenMetrics), Format::OpenMetrics);
    const auto& s = fams.at("ctbpf_conntrack_entries").samples;
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[1].first.at("netns"), "we\"ird\\ns\nname");
}

TEST(Exposition, NotGrowingIsInfinityAndIpv6Sources) {
    Fixture fx(1);
    fx.snap.seconds_to_full.reset();
    Address a;
    a.family = AF_INET6;
    a.bytes[15] = 1;
    fx.top.by_rate[0].addr = a;
    const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 20}, Format::PrometheusText), Format::PrometheusText);
    EXPECT_EQ(fams.at("ctbpf_conntrack_time_to_full_seconds").samples.at(0).second, "+Inf");
    EXPECT_EQ(fams.at("ctbpf_source_inserts_total").samples.at(0).first.at("source"), "::1");
}

TEST(Exposition, NegotiatesFormatFromAccept) {
    EXPECT_EQ(negotiate("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"), Format::OpenMetrics);
    EXPECT_EQ(negotiate("*/*"), Format::PrometheusText);
    EXPECT_EQ(negotiate(""), Format::PrometheusText);
}

// Prometheus's own linter and the Python client's strict OpenMetrics parser (Debian packages
// prometheus and python3-prometheus-client, installed by tools/setup.sh --tests).
TEST(Exposition, AcceptedByPromtoolAndThePythonParser) {
    Fixture fx(25);
    const std::string dir = ::testing::TempDir();
    const std::string text = dir + "/ctbpf-metrics.txt", om = dir + "/ctbpf-metrics.om";
    std::ofstream(text) << render(fx.snap, fx.top, Exposition{"0.1.0", 20}, Format::PrometheusText);
    std::ofstream(om) << render(fx.snap, fx.top, Exposition{"0.1.0", 20}, Format::OpenMetrics);
    ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0) << "promtool missing: run tools/setup.sh --tests";
    EXPECT_EQ(std::system(("promtool check metrics < " + text).c_str()), 0);
    const std::string py =
        "/usr/bin/python3 -c 'import sys\n"
        "from prometheus_client.openmetrics.parser import text_string_to_metric_families as om\n"
        "fams = list(om(open(sys.argv[1]).read()))\n"
        "names = {f.name: f.type for f in fams}\n"
        "assert names[\"ctbpf_conntrack_drops\"] == \"counter\", names\n"
        "assert names[\"ctbpf_build\"] == \"info\", names\n"
        "assert sum(len(f.samples) for f in fams if f.name == \"ctbpf_source_entries\") == 20\n' ";
    EXPECT_EQ(std::system((py + om).c_str()), 0);
}

// --- HTTP ---------------------------------------------------------------------------------

namespace {

std::shared_ptr<Published> published(const std::string& body) {
    auto p = std::make_shared<Published>();
    p->openmetrics = body + "# EOF\n";
    p->text = body;
    p->at = std::chrono::steady_clock::now();
    return p;
}

// `rcvbuf` > 0: a fixed, small receive buffer (set before connecting, so the window
// advertised is small too and the kernel does not grow it).
int connect_to(const std::string& address, int rcvbuf = 0) {
    const auto la = parse_listen(address);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(la.port);
    inet_pton(AF_INET, la.host.c_str(), &sin.sin_addr);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// One request on a new connection; the whole reply (the server closes after it).
std::string request(const std::string& address, const std::string& raw, int timeout_ms = 3000) {
    const int fd = connect_to(address);
    if (fd < 0) return "";
    if (write(fd, raw.data(), raw.size()) < 0) {
        close(fd);
        return "";
    }
    std::string out;
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) == 1) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return out;
}

std::string get(const std::string& address, const std::string& path, const std::string& extra = "") {
    return request(address, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n");
}

// The server's end of its TCP connections, from the kernel's table (/proc/net/tcp): how many
// wait in the listen queue for it to accept them, and how many sockets it holds open (a
// socket it has closed is orphaned: inode 0). That is what its per-address limit counts: a
// connection it has shut down may linger open until the client goes, and one it closed no
// longer counts even while the kernel still flushes it. A client cannot otherwise tell how
// far the server's thread has got, and under CPU load it may be far behind.
struct ServerSide {
    int backlog = 0, held = 0;
};

ServerSide server_side(const std::string& address) {
    const uint16_t port = parse_listen(address).port;
    ServerSide s;
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
        if (!(f >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) continue;
        if (std::stoul(local.substr(local.find(':') + 1), nullptr, 16) != port) continue;
        if (std::stoi(state, nullptr, 16) == 0x0A)  // LISTEN: the receive queue is the accept queue
            s.backlog += std::stoi(queues.substr(queues.find(':') + 1), nullptr, 16);
        else if (inode != "0")
            ++s.held;
    }
    return s;
}

// Polls until `done` or `timeout`; its last answer.
template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

}  // namespace

TEST(Http, ParsesListenAddresses) {
    EXPECT_EQ(parse_listen("127.0.0.1:9669").port, 9669);
    EXPECT_EQ(parse_listen("[::1]:80").host, "::1");
    EXPECT_TRUE(is_loopback(parse_listen("localhost:1")));
    EXPECT_FALSE(is_loopback(parse_listen("0.0.0.0:9669")));
    for (const char* bad : {"9669", "127.0.0.1", "127.0.0.1:99999", "host.example:80", "[::1]80", ":80", "1.2.3.4:x"})
        EXPECT_THROW(parse_listen(bad), Error) << bad;
}

TEST(Http, AnswersPerPathMethodAndAccept) {
    MetricsServer server("127.0.0.1:0", ServerLimits{});
    EXPECT_EQ(server.answer("GET", "/metrics", "").status, 503u);  // nothing published yet
    EXPECT_EQ(server.answer("GET", "/healthz", "").status, 503u);
    server.publish(published("m 1\n"));
    auto r = server.answer("GET", "/metrics?x=1", "application/openmetrics-text; version=1.0.0");
    EXPECT_EQ(r.status, 200u);
    EXPECT_EQ(*r.body, "m 1\n# EOF\n");
    EXPECT_EQ(r.content_type.rfind("application/openmetrics-text", 0), 0u);
    r = server.answer("GET", "/metrics", "text/plain");
    EXPECT_EQ(*r.body, "m 1\n");
    EXPECT_EQ(server.answer("HEAD", "/metrics", "").status, 200u);
    EXPECT_EQ(server.answer("GET", "/healthz", "").status, 200u);
    EXPECT_EQ(server.answer("POST", "/metrics", "").status, 405u);
    EXPECT_EQ(server.answer("GET", "/../etc/passwd", "").status, 404u);
}

TEST(Http, HealthFailsWhenTheObserverStalls) {
    ServerLimits l;
    l.stale = std::chrono::seconds(0);
    MetricsServer server("127.0.0.1:0", l);
    auto p = published("m 1\n");
    p->at -= std::chrono::seconds(3);
    server.publish(p);
    const auto r = server.answer("GET", "/healthz", "");
    EXPECT_EQ(r.status, 503u);
    EXPECT_NE(r.body->find("stale"), std::string::npos);
}

TEST(Http, BusyPortIsAOneLineError) {
    MetricsServer first("127.0.0.1:0", ServerLimits{});
    try {
        MetricsServer second(first.address(), ServerLimits{});
        FAIL() << "bound twice";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Address already in use"), std::string::npos) << e.what();
    }
}

TEST(Http, ServesOverLoopbackDespiteHostileClients) {
    ServerLimits l;
    l.connections = 8;
    l.per_ip = 4;
    l.idle_timeout_s = 1;
    MetricsServer server("127.0.0.1:0", l);
    // Bigger than the server's largest send buffer plus the hog's receive buffer, or a slow
    // reader's reply fits in the kernel, the server closes it and its slot is free again
    // (200 kB used to: loopback buffers take that, and whether the next connections found
    // the slot taken depended on timing).
    long wmem_max = 4 << 20;
    {
        std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
        long lo = 0, def = 0;
        in >> lo >> def >> wmem_max;
    }
    const std::string body(static_cast<size_t>(wmem_max) + (1 << 20), 'x');
    server.publish(published("big " + std::to_string(body.size()) + "\n# " + body + "\n"));
    const std::string addr = server.address();

    // A well-behaved scrape.
    std::string r = get(addr, "/metrics");
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r.substr(0, 200);
    EXPECT_NE(r.find("text/plain; version=0.0.4"), std::string::npos);

    // Garbage is refused with 400, not a crash.
    r = request(addr, "\x16\x03\x01garbage\r\n\r\n");
    EXPECT_TRUE(r.empty() || r.rfind("HTTP/1.1 400", 0) == 0) << r.substr(0, 100);
    r = request(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + std::string(100'000, 'a') + "\r\n\r\n");
    EXPECT_TRUE(r.empty() || r.find(" 200 ") == std::string::npos) << r.substr(0, 100);

    // Slow readers and idle connections: more than the limit, held open without reading.
    // The server must first have let go of the requests above (it may still hold them for a
    // moment), or they take slots the hogs should get; and it must have taken in every hog
    // before the check below, or that connection gets a slot a hog would have held.
    EXPECT_TRUE(eventually([&] {
        const auto s = server_side(addr);
        return s.backlog == 0 && s.held == 0;
    })) << "the server did not finish the requests above";
    std::vector<int> hogs;
    for (int i = 0; i < 12; ++i) {
        const int fd = connect_to(addr, 4096);
        if (fd < 0) continue;
        const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        if (i % 2 == 0 && write(fd, req.data(), req.size()) < 0) ADD_FAILURE();  // asks, never reads
        hogs.push_back(fd);
    }
    // It accepts a connection over the limit before closing it: held settles at the limit.
    ServerSide now;
    EXPECT_TRUE(eventually([&] {
        now = server_side(addr);
        return now.backlog == 0 && now.held == static_cast<int>(l.per_ip);
    })) << "held " << now.held << " of " << hogs.size() << " connections, " << now.backlog << " not accepted";
    // The idle timeout frees the slots: within a few seconds a normal scrape is served again.
    // The per-address limit holds: this client's next connection is turned away for now.
    EXPECT_EQ(get(addr, "/healthz").find("200"), std::string::npos) << "connection limit not enforced";
    bool served = false;
    int waited = 0;
    for (; waited < 50 && !served; ++waited) {
        served = get(addr, "/healthz").rfind("HTTP/1.1 200", 0) == 0;
        if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(served) << "hogging clients stalled the server beyond the idle timeout";
    std::printf("served again after %d00 ms\n", waited);
    // Publishing (what the observer does) never waits for clients.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) server.publish(published("m " + std::to_string(i) + "\n"));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    // Hogs still held count against this address until the server sees them close, which
    // its thread may do after accepting the next connection (and turning it away).
    for (int fd : hogs) close(fd);
    std::string last;
    eventually([&] { return (last = get(addr, "/metrics")).find("m 999") != std::string::npos; });
    EXPECT_NE(last.find("m 999"), std::string::npos);
}

// Issue "What a new user hit" (5) and (4): per-source series name their namespace, so the
// same address in two namespaces is two series; unattributed entries are a gauge.
TEST(Exposition, SourcesCarryTheirNamespaceAndUnattributedIsExposed) {
    Fixture fx(2);
    fx.snap.unattributed = -3;
    fx.top.by_entries[1].addr = fx.top.by_entries[0].addr;
    fx.top.by_entries[0].netns_name = "host";
    fx.top.by_entries[1].netns_name = "blue";
    fx.top.destinations[0].netns_name = "host";
    const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 20}, Format::PrometheusText),
                            Format::PrometheusText);
    const auto& entries = fams.at("ctbpf_source_entries").samples;
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].first.at("source"), entries[1].first.at("source"));
    EXPECT_EQ(entries[0].first.at("netns"), "host");
    EXPECT_EQ(entries[1].first.at("netns"), "blue");
    EXPECT_EQ(fams.at("ctbpf_destination_drops_total").samples[0].first.at("netns"), "host");
    ASSERT_EQ(fams.at("ctbpf_unattributed_entries").samples.size(), 1u);
    EXPECT_EQ(fams.at("ctbpf_unattributed_entries").samples[0].second, "-3");
}

// --all-netns on a host of hundreds of containers: the per-table families list the top-K
// fullest tables, not a series per namespace.
TEST(Exposition, PerTableSeriesAreBoundedByTopKWithManyNamespaces) {
    Fixture fx(3);
    fx.snap.tables.clear();
    for (int i = 0; i < 300; ++i)
        fx.snap.tables.push_back({{static_cast<uint32_t>(1000 + i), 900 - i, 1000, 1024}, "ns" + std::to_string(i)});
    const auto fams = parse(render(fx.snap, fx.top, Exposition{"0.1.0", 5}, Format::OpenMetrics), Format::OpenMetrics);
    const auto& entries = fams.at("ctbpf_conntrack_entries").samples;
    ASSERT_EQ(entries.size(), 5u);
    EXPECT_EQ(entries[0].first.at("netns"), "ns0");  // the fullest first (the model sorts them)
    size_t series = 0;
    for (const auto& [name, fam] : fams) series += fam.samples.size();
    EXPECT_LE(series, series_ceiling(fx.snap.tables.size(), 5));
}
