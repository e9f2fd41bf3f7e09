// Real conntrack in network namespaces made by the test, checked against the kernel's own
// counters: /proc/net/stat/nf_conntrack, nf_conntrack_count, an nft `ct state new` counter
// and `conntrack -L`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;
using nlohmann::json;

namespace {

using Scenario = PrivilegedTest;

long long count_kind(const std::vector<json>& ev, const std::string& type, const std::string& reason = "") {
    long long n = 0;
    for (const auto& e : ev)
        if (e["type"] == type && (reason.empty() || e["reason"] == reason)) n++;
    return n;
}

std::string sources_args(const std::string& prefix, int n) {
    std::string s;
    for (int i = 1; i <= n; ++i) s += fmt::format(" --src {}{}", prefix, i);
    return s;
}

const json* find_source(const json& summary, const std::string& addr) {
    for (const auto& s : summary["sources"])
        if (s["addr"] == addr) return &s;
    return nullptr;
}

}  // namespace

TEST_F(Scenario, ManySourcesInsertsMatchKernelAndOccupancyMatchesConntrackList) {
    Netns ns("many");
    Ctbpf ct({"--netns", ns.name(), "--top", "100"});
    // 5 sources: 10, 20, 30, 40, 50 flows, so the per-source figures differ.
    for (int i = 1; i <= 5; ++i)
        ASSERT_EQ(loadgen(ns, fmt::format("--src 127.0.1.{} --flows {}", i, i * 10))["sent"], i * 10);
    const auto by_source = ns.conntrack_by_source();
    const long long nft_new = ns.nft_new_counter();
    ct.stop();

    const json& k = ct.summary()["kernel"];
    EXPECT_EQ(nft_new, 150);
    EXPECT_EQ(k["insert"], nft_new);
    EXPECT_EQ(count_kind(ct.events(), "insert"), nft_new);
    EXPECT_EQ(k["drop"], 0);
    EXPECT_EQ(ct.summary()["lost"], 0);
    ASSERT_EQ(by_source.size(), 5u);
    for (const auto& [addr, n] : by_source) {
        const json* s = find_source(ct.summary(), addr);
        ASSERT_NE(s, nullptr) << addr;
        EXPECT_EQ((*s)["entries"], n) << addr;
        EXPECT_EQ((*s)["inserts"], n) << addr;
    }
    for (const auto& e : ct.events()) {
        EXPECT_EQ(e["proto"], "udp");
        EXPECT_EQ(e["family"], "ipv4");
        EXPECT_EQ(e["dst"], "127.0.0.1");
        EXPECT_EQ(e["dport"], 9);
        EXPECT_EQ(e["netns"], ct.summary()["netns"][0]["inum"]);
    }
}

TEST_F(Scenario, Ipv6SourcesAreSeenWithTheirAddresses) {
    Netns ns("v6");
    for (int i = 1; i <= 3; ++i) ns.exec(fmt::format("ip -6 addr add fd00::1:{}/128 dev lo nodad", i));
    Ctbpf ct({"--netns", ns.name()});
    ASSERT_EQ(loadgen(ns, "--dst ::1 --flows 20" + sources_args("fd00::1:", 3))["sent"], 60);
    const auto by_source = ns.conntrack_by_source();
    ct.stop();

    EXPECT_EQ(ct.summary()["kernel"]["insert"], 60);
    EXPECT_EQ(ns.nft_new_counter(), 60);
    for (int i = 1; i <= 3; ++i) {
        const std::string a = fmt::format("fd00::1:{}", i);
        EXPECT_EQ(by_source.at(a), 20);
        const json* s = find_source(ct.summary(), a);
        ASSERT_NE(s, nullptr) << a;
        EXPECT_EQ((*s)["entries"], 20);
    }
    for (const auto& e : ct.events()) {
        EXPECT_EQ(e["family"], "ipv6");
        EXPECT_EQ(e["dst"], "::1");
    }
}

TEST_F(Scenario, TableFullIncidentDropsAndEarlyDropsAreExact) {
    Netns ns("full");
    ConntrackMax max(300);
    Ctbpf ct({"--netns", ns.name(), "--top", "100"});
    const auto before = ns.stat();
    const auto r = loadgen(ns, "--flows 200" + sources_args("127.0.1.", 4));
    const auto after = ns.stat();
    const long long entries = ns.count();
    const long long nft_new = ns.nft_new_counter();
    ct.stop();

    const json& k = ct.summary()["kernel"];
    const long long drops = delta(before, after, "drop");
    const long long early = delta(before, after, "early_drop");
    ASSERT_GT(drops, 0) << "the table never filled";
    // Full, or a little under once the gc worker evicts unassured entries above 95% (a
    // destroy, not an early drop: seen on a 6.12 VM and in a CI run).
    EXPECT_LE(entries, 300);
    EXPECT_GE(entries, 270);
    EXPECT_EQ(k["drop"], drops);
    EXPECT_EQ(k["early_drop"], early);
    EXPECT_EQ(k["insert"], nft_new);
    EXPECT_LE(k["insert"].get<long long>() - k["early_drop"].get<long long>() - k["destroy"].get<long long>(), entries);
    EXPECT_GE(k["insert"].get<long long>() - k["early_drop"].get<long long>(), entries);
    EXPECT_EQ(r["failed"], drops);  // each dropped datagram failed its sendto
    EXPECT_EQ(ct.summary()["lost"], 0);

    // Every drop is delivered, with its source and destination, and seen as table-full.
    EXPECT_EQ(count_kind(ct.events(), "drop"), drops);
    EXPECT_EQ(count_kind(ct.events(), "drop", "table_full"), drops);
    EXPECT_EQ(count_kind(ct.events(), "early_drop"), early);
    long long per_source = 0;
    const std::set<std::string> srcs{"127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"};
    for (const auto& e : ct.events())
        if (e["type"] == "drop") EXPECT_TRUE(srcs.count(e["src"].get<std::string>())) << e.dump();
    for (const auto& s : ct.summary()["sources"]) per_source += s["drops"].get<long long>();
    EXPECT_EQ(per_source, drops);
    ASSERT_FALSE(ct.summary()["destinations"].empty());
    EXPECT_EQ(ct.summary()["destinations"][0]["port"], 9);
    EXPECT_EQ(ct.summary()["destinations"][0]["drops"], drops);

    // Occupancy still agrees with the table after evictions: the sources' entries are what
    // the events left (inserts - early drops - destroys), and `conntrack -L` lists at most
    // that per source (the gc worker may evict a few more after ctbpf stopped, above 95%).
    long long attributed = 0;
    for (const auto& s : ct.summary()["sources"]) attributed += s["entries"].get<long long>();
    EXPECT_EQ(attributed, k["insert"].get<long long>() - k["early_drop"].get<long long>() - k["destroy"].get<long long>());
    const auto by_source = ns.conntrack_by_source();
    long long listed = 0;
    for (const auto& [addr, n] : by_source) {
        EXPECT_LE(n, (*find_source(ct.summary(), addr))["entries"].get<long long>()) << addr;
        listed += n;
    }
    EXPECT_GE(listed, 270);
}

TEST_F(Scenario, FirewallDropsAreNotConntrackDrops) {
    Netns ns("fw");
    // One rule before conntrack (raw priority) and one after it (filter output).
    ns.exec("nft 'add table inet fw; "
            "add chain inet fw raw { type filter hook output priority -300; }; "
            "add rule inet fw raw udp dport 9998 drop; "
            "add chain inet fw out { type filter hook output priority 10; }; "
            "add rule inet fw out udp dport 9999 drop'");
    Ctbpf ct({"--netns", ns.name()});
    const auto before = ns.stat();
    EXPECT_EQ(loadgen(ns, "--src 127.0.1.1 --port 9998 --flows 25")["failed"], 25);
    EXPECT_EQ(loadgen(ns, "--src 127.0.1.1 --port 9999 --flows 25")["failed"], 25);
    EXPECT_EQ(loadgen(ns, "--src 127.0.1.1 --port 9 --flows 5")["sent"], 5);
    const auto after = ns.stat();
    ct.stop();

    EXPECT_EQ(delta(before, after, "drop"), 0);
    EXPECT_EQ(ct.summary()["kernel"]["drop"], 0);
    EXPECT_EQ(count_kind(ct.events(), "drop"), 0);
    // Entries dropped by the rule after conntrack were never inserted.
    EXPECT_EQ(ct.summary()["kernel"]["insert"], 5);
    EXPECT_EQ(ns.count(), 5);
}

TEST_F(Scenario, DestroyByFlushIsReportedAndEmptiesOccupancy) {
    Netns ns("flush");
    Ctbpf ct({"--netns", ns.name()});
    loadgen(ns, "--flows 25" + sources_args("127.0.1.", 2));
    ASSERT_EQ(ns.count(), 50);
    ns.exec("conntrack -F 2>/dev/null");
    ct.stop();

    EXPECT_EQ(ct.summary()["kernel"]["destroy"], 50);
    EXPECT_EQ(count_kind(ct.events(), "destroy", "deleted"), 50);
    for (const auto& s : ct.summary()["sources"]) EXPECT_EQ(s["entries"], 0) << s.dump();
}

TEST_F(Scenario, DestroyByTimeoutIsReportedAsTimeout) {
    Netns ns("timeout");
    ns.exec("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1");
    Ctbpf ct({"--netns", ns.name()});
    loadgen(ns, "--flows 30 --src 127.0.1.1");
    // Expired entries go at the gc worker's next pass, which on an otherwise idle table (the
    // kernel matrix's VMs) can be most of a minute away, or when a table dump meets them:
    // dump too, so it takes seconds. Either way the entry had expired: reason timeout.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (ns.count() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        ns.exec("conntrack -L >/dev/null 2>&1 || true");
    }
    ASSERT_EQ(ns.count(), 0) << "entries did not expire";
    ct.stop();

    EXPECT_EQ(ct.summary()["kernel"]["destroy"], 30);
    EXPECT_EQ(count_kind(ct.events(), "destroy", "timeout"), 30);
}

// Entries made through ctnetlink (`conntrack -I`) never pass confirm. The fentry and kprobe
// backends see them where ctnetlink inserts them (nf_conntrack_hash_check_insert); the
// tracepoint backend has no hook there and documents that it misses them
// (docs/ARCHITECTURE.md), so there it must report none rather than something else.
TEST_F(Scenario, CtnetlinkInsertsAreSeenByTheFentryAndKprobeBackends) {
    Netns ns("nl");
    Ctbpf ct({"--netns", ns.name()});
    for (int i = 1; i <= 3; ++i)
        ns.exec(fmt::format("conntrack -I -p udp -s 10.9.9.{} -d 10.9.9.254 --sport 1000 --dport 2000 -t 60 "
                            "2>/dev/null",
                            i));
    const long long entries = ns.count();
    ct.stop();

    EXPECT_EQ(entries, 3);
    const std::string backend = ct.summary()["backend"];
    const long long want = backend == "tracepoint" ? 0 : entries;
    EXPECT_EQ(ct.summary()["kernel"]["insert"], want) << "backend " << backend;
    EXPECT_EQ(count_kind(ct.events(), "insert"), want) << "backend " << backend;
    for (const auto& e : ct.events()) {
        EXPECT_EQ(e["src"].get<std::string>().rfind("10.9.9.", 0), 0u) << e.dump();
        EXPECT_EQ(e["dport"], 2000) << e.dump();
    }
    EXPECT_EQ(ct.summary()["lost"], 0);
}

namespace {

// What `conntrack -L` says of an entry: its TCP state, or for other protocols what its flags
// make it, in the names ctbpf gives (unreplied, replied, assured).
struct Listed {
    std::string proto, state;
};

// Entries by "proto src:sport" of their original direction.
std::map<std::string, Listed> conntrack_states(const Netns& ns) {
    std::map<std::string, Listed> out;
    std::istringstream in(ns.exec("conntrack -L 2>/dev/null || true"));
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        if (w.size() < 4) continue;
        Listed l{w[0], ""};
        std::string src, sport;
        bool unreplied = false, assured = false;
        for (const auto& x : w) {
            if (src.empty() && x.rfind("src=", 0) == 0) src = x.substr(4);
            if (sport.empty() && x.rfind("sport=", 0) == 0) sport = x.substr(6);
            unreplied |= x == "[UNREPLIED]";
            assured |= x == "[ASSURED]";
        }
        l.state = l.proto == "tcp" ? w[3] : assured ? "assured" : unreplied ? "unreplied" : "replied";
        out[l.proto + " " + src + ":" + sport] = l;
    }
    return out;
}

}  // namespace

// Issue 13: an entry's events say its state: at insert, and the state it ended in, as
// `conntrack -L` showed it just before a flush. TCP connections closed by both sides sit in
// TIME_WAIT; UDP flows answered once are replied, unanswered ones unreplied.
TEST_F(Scenario, EventsCarryTheEntryStateThatConntrackListShows) {
    Netns ns("state");
    Ctbpf ct({"--netns", ns.name()});
    ASSERT_EQ(loadgen(ns, "--proto tcp --answer --port 7100 --src 127.0.1.1 --flows 3")["sent"], 3);
    ASSERT_EQ(loadgen(ns, "--answer --port 7200 --src 127.0.1.2 --flows 4")["sent"], 4);
    ASSERT_EQ(loadgen(ns, "--port 7300 --src 127.0.1.3 --flows 5")["sent"], 5);  // nobody answers
    // The last ACK of a connection may still be on its way when loadgen returns.
    std::map<std::string, Listed> listed;
    auto settled = [&] {
        listed = conntrack_states(ns);
        long long time_wait = 0;
        for (const auto& [key, l] : listed) time_wait += l.state == "TIME_WAIT";
        return listed.size() == 12 && time_wait == 3;
    };
    const bool ok = wait_until(settled, std::chrono::seconds(10));
    std::string table;
    for (const auto& [key, l] : listed) table += key + " " + l.state + "\n";
    ASSERT_TRUE(ok) << table;
    ns.exec("conntrack -F 2>/dev/null");
    ct.stop();

    std::map<std::string, long long> destroyed;  // by state
    long long inserts = 0;
    for (const auto& e : ct.events()) {
        const std::string key = fmt::format("{} {}:{}", e["proto"].get<std::string>(), e["src"].get<std::string>(),
                                            e["sport"].get<int>());
        ASSERT_TRUE(e.contains("state")) << e.dump();
        // The raw status says CONFIRMED (bit 3) on every event of an entry in the table.
        const unsigned long status = std::stoul(e["status"].get<std::string>(), nullptr, 16);
        EXPECT_TRUE(status & 0x8) << e.dump();
        if (e["type"] == "insert") {
            ++inserts;
            EXPECT_EQ(e["state"], e["proto"] == "tcp" ? "SYN_SENT" : "unreplied") << e.dump();
            EXPECT_FALSE(status & 0x2) << e.dump();  // no reply seen yet
        } else if (e["type"] == "destroy") {
            ASSERT_TRUE(listed.count(key)) << e.dump() << "\n" << table;
            EXPECT_EQ(e["state"], listed[key].state) << e.dump() << "\n" << table;
            EXPECT_EQ(e["reason"], "deleted") << e.dump();
            ++destroyed[e["state"].get<std::string>()];
        } else {
            ADD_FAILURE() << "unexpected event " << e.dump();
        }
    }
    EXPECT_EQ(inserts, 12);
    EXPECT_EQ(destroyed["TIME_WAIT"], 3);
    EXPECT_EQ(destroyed["replied"], 4);
    EXPECT_EQ(destroyed["unreplied"], 5);
    EXPECT_EQ(ct.summary()["kernel"]["destroy"], 12);
    EXPECT_EQ(ct.summary()["lost"], 0);
}

TEST_F(Scenario, OtherNamespacesAreNotReported) {
    Netns watched("w"), other("o");
    Ctbpf ct({"--netns", watched.name()});
    loadgen(other, "--flows 40 --src 127.0.1.1");
    other.exec("conntrack -F 2>/dev/null");
    loadgen(watched, "--flows 7 --src 127.0.1.2");
    ct.stop();

    EXPECT_EQ(ct.summary()["kernel"]["insert"], 7);
    EXPECT_EQ(ct.summary()["kernel"]["destroy"], 0);
    for (const auto& e : ct.events()) EXPECT_EQ(e["src"], "127.0.1.2");
}

TEST_F(Scenario, ClearErrorsForBadInput) {
    auto r = sh(std::string(CTBPF_BIN) + " events --netns ctbpf-no-such-ns");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown network namespace 'ctbpf-no-such-ns'"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

    r = sh(std::string(CTBPF_BIN) + " events --duration -3");
    EXPECT_EQ(r.status, 2);
    r = sh(std::string(CTBPF_BIN) + " events --no-such-flag");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos);
    // A backend this kernel lacks is named in the error: fentry on the project's machines.
    // The kernel matrix's VMs may offer every backend; then there is none to ask for.
    const json probe = json::parse(sh(std::string(CTBPF_BIN) + " probe --json").out);
    const std::string lacking = !probe["fentry"].get<bool>()           ? "fentry"
                                : !probe["kprobes"].get<bool>()        ? "kprobe"
                                : !probe["netfilter_link"].get<bool>() ? "tracepoint"
                                                                       : "";
    if (!lacking.empty()) {
        r = sh(std::string(CTBPF_BIN) + " events --backend " + lacking + " --duration 1");
        EXPECT_EQ(r.status, 1);
        EXPECT_NE(r.err.find(lacking), std::string::npos) << r.err;
    }

    // Without privileges: says which capability is missing.
    r = sh(fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} events --duration 1",
                       CTBPF_BIN));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("missing privileges: CAP_BPF"), std::string::npos) << r.err;
}

TEST_F(Scenario, ProbeNamesTheBackend) {
    const auto r = sh(std::string(CTBPF_BIN) + " probe --json");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto j = json::parse(r.out);
    EXPECT_TRUE(j["btf"].get<bool>());
    EXPECT_TRUE(j["ringbuf"].get<bool>());
    EXPECT_FALSE(j["backend"].get<std::string>().empty());
}

namespace {

// Holds `n` TCP connections from `src` to a listener on 127.0.0.1:7000 inside `ns`
// (established and assured: early_drop never evicts them) until destroyed.
class HeldTcp {
public:
    HeldTcp(const Netns& ns, const std::string& src, int n) {
        script_ = fmt::format("/tmp/ctbpf-held-tcp-{}.py", getpid());
        FILE* f = std::fopen(script_.c_str(), "w");
        std::fprintf(f,
                     "import socket, sys, time\n"
                     "srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                     "srv.bind(('127.0.0.1', 7000)); srv.listen(128)\n"
                     "held = []\n"
                     "for i in range(%d):\n"
                     "    c = socket.socket(); c.bind(('%s', 0)); c.connect(('127.0.0.1', 7000))\n"
                     "    held += [c, srv.accept()[0]]\n"
                     "print('ready', flush=True)\n"
                     "time.sleep(120)\n",
                     n, src.c_str());
        std::fclose(f);
        pid_ = sh_ok(fmt::format("ip netns exec {} /usr/bin/python3 {} > {}.out 2>&1 & echo $!", ns.name(), script_,
                                 script_));
        while (!pid_.empty() && (pid_.back() == '\n' || pid_.back() == ' ')) pid_.pop_back();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (sh("grep -q ready " + script_ + ".out").status != 0 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~HeldTcp() {
        sh(fmt::format("kill {} 2>/dev/null; rm -f {} {}.out", pid_, script_, script_));
    }

private:
    std::string script_, pid_;
};

long long sum_entries(const json& snap) {
    long long n = 0;
    for (const auto& s : snap["sources"]) n += s["entries"].get<long long>();
    return n;
}

}  // namespace

// Issue "What a new user hit" (4): per-source entries must add up to the table. With entries
// from before ctbpf started, TCP connections held open, unreplied UDP from another source
// filling the table (drops and early drops), the rows (+ other + unattributed) equal
// nf_conntrack_count at a quiet moment, and nothing is left unattributed.
TEST_F(Scenario, PerSourceEntriesAddUpToTheTable) {
    Netns ns("sum");
    ConntrackMax max(300);
    loadgen(ns, "--src 127.0.1.5 --flows 60");  // before ctbpf: found by the baseline
    Ctbpf w({"--netns", ns.name(), "--interval", "0.5", "--top", "100"}, "watch");
    HeldTcp tcp(ns, "127.0.1.6", 20);
    const auto before = ns.stat();
    loadgen(ns, "--src 127.0.1.7 --flows 400");  // fills the table: drops and early drops
    const auto after = ns.stat();
    ASSERT_GT(delta(before, after, "drop"), 0);
    // Early drops usually come with the drops, but not always: early_drop() only scans a few
    // buckets, and above 95% fill the gc worker may already have evicted (uncounted) the
    // unassured entries it would take. The sum below must hold either way.
    RecordProperty("early_drops", std::to_string(delta(before, after, "early_drop")));

    // A quiet moment: the kernel's count is the same before and after the snapshot.
    json snap;
    bool quiet = false;
    for (int i = 0; i < 20 && !quiet; ++i) {
        const long long c0 = ns.count();
        auto line = w.next_line(3000);
        ASSERT_TRUE(line);
        snap = json::parse(*line);
        quiet = c0 == ns.count() && snap["table"]["count"] == c0;
    }
    ASSERT_TRUE(quiet) << snap.dump();
    const long long count = snap["table"]["count"].get<long long>();
    const json& tr = snap["tracking"];
    ASSERT_TRUE(tr.contains("unattributed")) << tr.dump();
    EXPECT_EQ(sum_entries(snap) + tr["other"]["entries"].get<long long>() + tr["unattributed"].get<long long>(), count)
        << snap.dump();
    EXPECT_EQ(tr["unattributed"], 0) << snap.dump();
    // And each source's figure is the kernel's.
    const auto by_source = ns.conntrack_by_source();
    for (const auto& s : snap["sources"]) {
        const auto it = by_source.find(s["addr"].get<std::string>());
        const long long real = it == by_source.end() ? 0 : it->second;
        EXPECT_EQ(s["entries"], real) << s.dump();
    }
    EXPECT_EQ(by_source.at("127.0.1.6"), 20);
}

// Issue (5): the same address in two namespaces is two sources, each with its own count,
// in events' summary and in watch's JSON.
TEST_F(Scenario, SameAddressInTwoNamespacesIsTwoSources) {
    Netns a("nsa"), b("nsb");
    Ctbpf ev({"--netns", a.name(), "--netns", b.name()});
    Ctbpf w({"--netns", a.name(), "--netns", b.name(), "--interval", "0.5", "--baseline", "off"}, "watch");
    loadgen(a, "--src 127.0.1.1 --flows 7");
    loadgen(b, "--src 127.0.1.1 --flows 13");
    ev.stop();

    std::map<std::string, long long> inum;  // name -> inode
    for (const auto& n : ev.summary()["netns"]) inum[n["name"].get<std::string>()] = n["inum"].get<long long>();
    ASSERT_EQ(inum.size(), 2u);
    std::map<long long, long long> entries;  // inode -> entries of 127.0.1.1
    for (const auto& s : ev.summary()["sources"]) {
        ASSERT_EQ(s["addr"], "127.0.1.1") << s.dump();
        entries[s["netns"].get<long long>()] = s["entries"].get<long long>();
    }
    ASSERT_EQ(entries.size(), 2u) << ev.summary().dump();
    EXPECT_EQ(entries[inum[a.name()]], 7);
    EXPECT_EQ(entries[inum[b.name()]], 13);

    json snap;
    for (int i = 0; i < 10; ++i) {
        auto line = w.next_line(3000);
        ASSERT_TRUE(line);
        snap = json::parse(*line);
        if (snap["sources"].size() == 2 && snap["totals"]["insert"] == 20) break;
    }
    ASSERT_EQ(snap["sources"].size(), 2u) << snap.dump();
    std::map<std::string, long long> by_name;
    for (const auto& s : snap["sources"]) {
        EXPECT_EQ(s["addr"], "127.0.1.1");
        EXPECT_EQ(s["netns"], inum[s["netns_name"].get<std::string>()]) << s.dump();
        by_name[s["netns_name"].get<std::string>()] = s["entries"].get<long long>();
    }
    EXPECT_EQ(by_name[a.name()], 7);
    EXPECT_EQ(by_name[b.name()], 13);
}
