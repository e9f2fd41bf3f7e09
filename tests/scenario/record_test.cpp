// `ctbpf record` and `ctbpf report` on a real incident: round trip against a live session
// and the kernel's counters, a recorder killed with SIGKILL, a trigger, a full disk.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;
using nlohmann::json;

namespace {

using Record = PrivilegedTest;

std::string tmp_path(const std::string& name) {
    return fmt::format("/tmp/ctbpf-test-{}-{}.ctbpf", name, getpid());
}

std::vector<json> lines_of(const std::string& out) {
    std::vector<json> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) v.push_back(json::parse(l));
    return v;
}

// What identifies an event across two sessions (each stamps its own ts and cpu).
std::vector<std::string> identities(const std::vector<json>& events) {
    std::vector<std::string> ids;
    for (const auto& e : events)
        if (e["type"] != "summary")
            ids.push_back(fmt::format("{} {} {} {} {} {}", e["type"].get<std::string>(), e["src"].get<std::string>(),
                                      e["dst"].get<std::string>(), e["sport"].get<int>(), e["dport"].get<int>(),
                                      e["reason"].get<std::string>()));
    std::sort(ids.begin(), ids.end());
    return ids;
}

// `ctbpf report --json` of a recording that may still be being written (frames reach the
// file about a second after their first event); null while it cannot be read yet.
json report_now(const std::string& file) {
    const auto r = sh(fmt::format("{} report --json {} 2>/dev/null", CTBPF_BIN, file));
    return r.status == 0 ? json::parse(r.out) : json();
}

// Waits until the recording's report satisfies `ok` (frames and once-a-second snapshots are
// written at times the test cannot know).
bool wait_for_report(const std::string& file, const std::function<bool(const json&)>& ok, int seconds = 15) {
    return wait_until([&] {
        const json r = report_now(file);
        return !r.is_null() && ok(r);
    }, std::chrono::seconds(seconds), std::chrono::milliseconds(200));
}

}  // namespace

TEST_F(Record, RoundTripMatchesALiveSessionAndTheKernel) {
    Netns ns("rec");
    ConntrackMax max(300);
    const std::string file = tmp_path("roundtrip");
    Ctbpf live({"--netns", ns.name()});
    Ctbpf rec({"-o", file, "--netns", ns.name()}, "record");
    const auto before = ns.stat();
    loadgen(ns, "--flows 150 --src 127.0.1.1 --src 127.0.1.2 --src 127.0.1.3");
    loadgen(ns, "--flows 20 --src 127.0.1.9 --port 3908");
    const auto after = ns.stat();
    // Snapshots come once a second: one must see the full table, and one the flush.
    EXPECT_TRUE(wait_for_report(file, [](const json& r) { return r["table"]["peak_count"] == 300; }))
        << "no snapshot of the full table";
    ns.exec("conntrack -F 2>/dev/null");
    EXPECT_TRUE(wait_for_report(file, [](const json& r) { return r["totals"]["destroy"] == 300; }))
        << "no snapshot after the flush";
    live.stop();
    rec.stop_plain();
    ASSERT_EQ(rec.exit_status(), 0) << rec.stderr_text();

    struct stat st {};
    ASSERT_EQ(stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    const auto replay = sh(fmt::format("{} events --from {} --json", CTBPF_BIN, file));
    ASSERT_EQ(replay.status, 0) << replay.err;
    const auto recorded = lines_of(replay.out);
    ASSERT_FALSE(recorded.empty());
    EXPECT_EQ(identities(recorded), identities(live.events()));

    const auto rep = sh(fmt::format("{} report --json {}", CTBPF_BIN, file));
    ASSERT_EQ(rep.status, 0) << rep.err;
    const json r = json::parse(rep.out);
    const long long drops = delta(before, after, "drop"), early = delta(before, after, "early_drop");
    ASSERT_GT(drops, 0);
    EXPECT_TRUE(r["clean_close"].get<bool>());
    EXPECT_EQ(r["totals"]["drop"], drops);
    EXPECT_EQ(r["totals"]["early_drop"], early);
    EXPECT_EQ(r["totals"]["insert"], 300 + early);
    EXPECT_EQ(r["totals"]["destroy"], 300);
    EXPECT_EQ(r["table"]["peak_count"], 300);
    EXPECT_FALSE(r["first_full_ns"].is_null());
    EXPECT_FALSE(r["drops_begin_ns"].is_null());
    long long dest_drops = 0;
    for (const auto& d : r["destinations"]) dest_drops += d["drops"].get<long long>();
    EXPECT_EQ(dest_drops, drops);
    EXPECT_EQ(r["health"], "critical");
    // The live view replays it: the last snapshot has the recording's totals and table.
    const auto rp = sh(fmt::format("{} watch --replay {} --speed 20 --json", CTBPF_BIN, file));
    ASSERT_EQ(rp.status, 0) << rp.err;
    const auto snaps = lines_of(rp.out);
    ASSERT_FALSE(snaps.empty());
    EXPECT_EQ(snaps.back()["totals"]["drop"], drops);
    EXPECT_EQ(snaps.back()["table"]["max"], 300);
    long long replay_drops = 0;
    for (const auto& d : snaps.back()["destinations"]) replay_drops += d["drops"].get<long long>();
    EXPECT_EQ(replay_drops, drops);
    // Flame-style export of the same file: the drops by source add up.
    const auto folded = sh(fmt::format("{} export {} --format folded --metric drops --by src,dport", CTBPF_BIN, file));
    ASSERT_EQ(folded.status, 0) << folded.err;
    long long folded_drops = 0;
    std::istringstream fin(folded.out);
    for (std::string l; std::getline(fin, l);)
        if (!l.empty()) folded_drops += std::stoll(l.substr(l.rfind(' ') + 1));
    EXPECT_EQ(folded_drops, drops);
    EXPECT_NE(folded.out.find("127.0.1.9;:3908 "), std::string::npos) << folded.out;
    // The human report reads the same file.
    const auto text = sh(fmt::format("{} report {}", CTBPF_BIN, file));
    EXPECT_EQ(text.status, 0);
    EXPECT_NE(text.out.find("table first full"), std::string::npos);
    EXPECT_NE(text.out.find("nf_conntrack_max"), std::string::npos);
    std::remove(file.c_str());
}

TEST_F(Record, KilledRecorderLeavesAReadableFile) {
    Netns ns("kill");
    const std::string file = tmp_path("kill9");
    Ctbpf rec({"-o", file, "--netns", ns.name()}, "record");
    loadgen(ns, "--flows 50 --src 127.0.1.1");
    // Frames are written once their oldest event is a second old: kill once all 50 are on disk.
    EXPECT_TRUE(wait_for_report(file, [](const json& r) { return r["events"] == 50; }));
    rec.kill9();

    const auto rep = sh(fmt::format("{} report --json {}", CTBPF_BIN, file));
    ASSERT_EQ(rep.status, 0) << rep.err;
    const json r = json::parse(rep.out);
    EXPECT_FALSE(r["clean_close"].get<bool>());
    EXPECT_EQ(r["events"], 50);  // nothing before the last flush is lost
    EXPECT_EQ(r["top_by_inserts"][0]["addr"], "127.0.1.1");
    EXPECT_EQ(r["top_by_inserts"][0]["inserts"], 50);
    std::remove(file.c_str());
}

TEST_F(Record, TriggerWritesThePreBufferAndTheIncident) {
    Netns ns("trig");
    ConntrackMax max(100);
    const std::string file = tmp_path("trigger");
    Ctbpf rec({"-o", file, "--netns", ns.name(), "--trigger", "drops", "--pre", "30s", "--post", "1s"}, "record");
    loadgen(ns, "--flows 40 --src 127.0.1.1");  // quiet: before the trigger, kept in memory
    loadgen(ns, "--flows 100 --src 127.0.1.2");  // fills the table: drops fire the trigger
    EXPECT_TRUE(rec.wait_for_stderr("trigger fired", 15000)) << rec.stderr_text();
    // The capture runs --post (1 s) past the last drop, then its frames are on disk.
    EXPECT_TRUE(rec.wait_for_stderr("capture ended", 15000)) << rec.stderr_text();
    rec.stop_plain();
    ASSERT_EQ(rec.exit_status(), 0) << rec.stderr_text();
    EXPECT_NE(rec.stderr_text().find("trigger fired"), std::string::npos) << rec.stderr_text();

    const json r = json::parse(sh_ok(fmt::format("{} report --json {}", CTBPF_BIN, file)));
    ASSERT_FALSE(r["markers"].empty());
    EXPECT_NE(r["markers"][0]["text"].get<std::string>().find("trigger fired"), std::string::npos);
    bool quiet_seen = false;
    for (const auto& s : r["top_by_inserts"])
        if (s["addr"] == "127.0.1.1") quiet_seen = s["inserts"] == 40;
    EXPECT_TRUE(quiet_seen) << "the pre-trigger minute is in the file: " << r["top_by_inserts"].dump();
    EXPECT_GT(r["totals"]["drop"].get<long long>(), 0);
    std::remove(file.c_str());
}

TEST_F(Record, FullDiskStopsWithAClearErrorAndKeepsWhatWasWritten) {
    const std::string dir = fmt::format("/tmp/ctbpf-test-full-{}", getpid());
    sh_ok("mkdir -p " + dir + " && mount -t tmpfs -o size=64k tmpfs " + dir);
    Netns ns("disk");
    ConntrackMax max(200);
    const std::string file = dir + "/rec.ctbpf";
    {
        Ctbpf rec({"-o", file, "--netns", ns.name()}, "record");
        // A drop storm: far more events than 64 KiB holds, even compressed.
        loadgen(ns, "--fast --port 1000 --flows 20000 --seconds 3 --src 127.0.1.1 --src 127.0.1.2");
        // It stops by itself once a frame does not fit.
        rec.wait_for_stderr("No space left on device", 15000);
        rec.stop_plain();
        EXPECT_EQ(rec.exit_status(), 1);
        EXPECT_NE(rec.stderr_text().find("No space left on device"), std::string::npos) << rec.stderr_text();
    }
    const auto rep = sh(fmt::format("{} report --json {}", CTBPF_BIN, file));
    EXPECT_EQ(rep.status, 0) << rep.err;
    if (rep.status == 0) EXPECT_GT(json::parse(rep.out)["events"].get<long long>(), 0);
    sh("umount " + dir + " && rmdir " + dir);
}

TEST_F(Record, BadFilesGiveOneLineErrors) {
    const std::string foreign = tmp_path("foreign");
    sh_ok("head -c 4096 /bin/sh > " + foreign);
    auto r = sh(fmt::format("{} report {}", CTBPF_BIN, foreign));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("not a ctbpf recording"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
    r = sh(fmt::format("{} report /nonexistent/file", CTBPF_BIN));
    EXPECT_EQ(r.status, 1);
    r = sh(fmt::format("{} record -o /nonexistent/dir/x.ctbpf --duration 1", CTBPF_BIN));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
    r = sh(fmt::format("{} record -o {} --trigger 'fill>=150%'", CTBPF_BIN, foreign));
    EXPECT_EQ(r.status, 2);
    r = sh(fmt::format("{} record -o {} --max-size lots", CTBPF_BIN, foreign));
    EXPECT_EQ(r.status, 2);
    std::remove(foreign.c_str());
}

TEST_F(Record, RotationKeepsTheNewestFiles) {
    Netns ns("rot");
    const std::string file = tmp_path("rotate");
    Ctbpf rec({"-o", file, "--netns", ns.name(), "--rotate", "2K", "--keep", "2"}, "record");
    for (int round = 0; round < 6; ++round) {
        const std::string src = fmt::format("127.0.{}.1", round + 1);
        loadgen(ns, fmt::format("--flows 200 --src {} --sport-base 30000", src));
        // A frame per round: this round's events on disk (the file may have rotated meanwhile).
        auto has_round = [&](const json& r) {
            for (const auto& s : r["top_by_inserts"])
                if (s["addr"] == src) return true;
            return false;
        };
        EXPECT_TRUE(wait_until([&] {
            for (const std::string f : {file, file + ".1"})
                if (const json r = report_now(f); !r.is_null() && has_round(r)) return true;
            return false;
        }, std::chrono::seconds(15), std::chrono::milliseconds(200))) << "round " << round;
    }
    rec.stop_plain();
    ASSERT_EQ(rec.exit_status(), 0) << rec.stderr_text();
    for (const std::string f : {file, file + ".1", file + ".2"}) {
        const auto r = sh(fmt::format("{} report --json {}", CTBPF_BIN, f));
        EXPECT_EQ(r.status, 0) << f << ": " << r.err;
        if (r.status == 0) EXPECT_TRUE(json::parse(r.out)["clean_close"].get<bool>()) << f;
    }
    EXPECT_NE(access((file + ".3").c_str(), F_OK), 0) << "only --keep 2 old files";
    sh(fmt::format("rm -f {} {}.1 {}.2 {}.3", file, file, file, file));
}

TEST_F(Record, LiveExportWritesAFlameGraph) {
    Netns ns("live");
    const std::string svg = tmp_path("live") + ".svg";
    Ctbpf ex({"--live", "--duration", "3s", "--netns", ns.name(), "--format", "svg", "--by", "src/24,src", "-o", svg},
             "export");
    loadgen(ns, "--flows 30 --src 127.0.5.1");
    ex.stop_plain();  // SIGTERM ends the capture early and still writes the graph
    ASSERT_EQ(ex.exit_status(), 0) << ex.stderr_text();
    const std::string out = sh_ok("cat " + svg);
    EXPECT_EQ(out.rfind("<?xml", 0) == 0 || out.rfind("<svg", 0) == 0, true) << out.substr(0, 80);
    EXPECT_NE(out.find("127.0.5.1"), std::string::npos);
    EXPECT_NE(out.find("127.0.5.0/24"), std::string::npos);
    std::remove(svg.c_str());
}

namespace {

// sizeof(struct nf_conn) as this kernel's /proc/slabinfo says.
long long slab_object_size() {
    const auto line = sh_ok("awk '$1 == \"nf_conntrack\" {print $4}' /proc/slabinfo");
    return line.empty() ? 0 : std::stoll(line);
}

// "2026-11-30T12:34:56.123456Z" -> seconds since the epoch (UTC).
double parse_wall(const std::string& s) {
    std::tm tmv{};
    EXPECT_NE(strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tmv), nullptr) << s;
    EXPECT_EQ(s.size(), 27u) << s;  // microseconds and the Z
    return static_cast<double>(timegm(&tmv)) + std::stod(s.substr(19, 7));
}

}  // namespace

// Issue "What a new user hit" (2): a host that held the table before recording began is
// named by report (top by entries), export --metric entries, watch --replay and events,
// and the recording carries the slab object size and wall-clock times.
TEST_F(Record, EntriesThatPredateTheRecordingKeepTheirOwner) {
    Netns ns("old");
    const std::string file = tmp_path("baseline");
    loadgen(ns, "--src 127.0.4.1 --flows 60");  // before recording: only a baseline knows them
    Ctbpf rec({"-o", file, "--netns", ns.name()}, "record");
    loadgen(ns, "--src 127.0.4.2 --flows 10");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    rec.stop_plain();
    ASSERT_EQ(rec.exit_status(), 0) << rec.stderr_text();
    const double now = static_cast<double>(std::time(nullptr));

    const json r = json::parse(sh_ok(fmt::format("{} report --json {}", CTBPF_BIN, file)));
    ASSERT_TRUE(r.contains("top_by_entries")) << r.dump();
    ASSERT_GE(r["top_by_entries"].size(), 2u) << r.dump();
    EXPECT_EQ(r["top_by_entries"][0]["addr"], "127.0.4.1");
    EXPECT_EQ(r["top_by_entries"][0]["entries"], 60);
    EXPECT_EQ(r["top_by_entries"][0]["entries_existing"], 60);
    EXPECT_EQ(r["top_by_entries"][1]["addr"], "127.0.4.2");
    EXPECT_EQ(r["top_by_entries"][1]["entries"], 10);
    EXPECT_TRUE(r["baseline"]["recorded"].get<bool>());
    EXPECT_EQ(r["baseline"]["entries"], 60);
    const long long objsize = slab_object_size();
    ASSERT_GT(objsize, 0);
    EXPECT_EQ(r["object_size"], objsize);
    EXPECT_FALSE(r["object_size_estimated"].get<bool>());
    const auto text = sh_ok(fmt::format("{} report {}", CTBPF_BIN, file));
    EXPECT_NE(text.find("Top sources by entries"), std::string::npos) << text;
    EXPECT_NE(text.find(fmt::format("entry size           {} bytes", objsize)), std::string::npos) << text;

    // Export: the old entries under their source, with "(existing)" where no port is known.
    const auto folded = sh_ok(fmt::format("{} export {} --format folded --metric entries --by src,dport", CTBPF_BIN, file));
    EXPECT_NE(folded.find("127.0.4.1;(existing) 60\n"), std::string::npos) << folded;
    EXPECT_NE(folded.find("127.0.4.2;:9 10\n"), std::string::npos) << folded;

    // Replay counts them as live watch would have.
    const auto rp = sh_ok(fmt::format("{} watch --replay {} --speed 20 --json", CTBPF_BIN, file));
    const auto snaps = lines_of(rp);
    ASSERT_FALSE(snaps.empty());
    const json& last = snaps.back();
    EXPECT_TRUE(last["table"]["baseline"].get<bool>());
    EXPECT_EQ(last["table"]["baseline_entries"], 60);
    long long old_entries = -1;
    for (const auto& s : last["sources"])
        if (s["addr"] == "127.0.4.1") old_entries = s["entries"].get<long long>();
    EXPECT_EQ(old_entries, 60) << last.dump();

    // events --from: the summary counts them, and every event has a wall-clock time.
    const auto ev = lines_of(sh_ok(fmt::format("{} events --from {} --json", CTBPF_BIN, file)));
    ASSERT_EQ(ev.size(), 11u);
    for (size_t i = 0; i + 1 < ev.size(); ++i) EXPECT_NEAR(parse_wall(ev[i]["ts_wall"]), now, 30) << ev[i].dump();
    bool found = false;
    for (const auto& s : ev.back()["sources"])
        if (s["addr"] == "127.0.4.1") found = s["entries"] == 60 && s["entries_existing"] == 60;
    EXPECT_TRUE(found) << ev.back().dump();
    std::remove(file.c_str());
}

// Issue (2): live `events` takes the baseline too, and says which figures are since start.
TEST_F(Record, EventsSummaryCountsEntriesThatPredateIt) {
    Netns ns("evold");
    loadgen(ns, "--src 127.0.4.1 --flows 50");
    Ctbpf ev({"--netns", ns.name()});
    loadgen(ns, "--src 127.0.4.1 --flows 5 --sport-base 40000");
    ev.stop();
    const json& s = ev.summary();
    EXPECT_TRUE(s["baseline"]["taken"].get<bool>()) << s.dump();
    EXPECT_EQ(s["baseline"]["entries"], 50);
    EXPECT_TRUE(s["entries_include_existing"].get<bool>());
    ASSERT_EQ(s["sources"].size(), 1u) << s.dump();
    EXPECT_EQ(s["sources"][0]["entries"], 55);
    EXPECT_EQ(s["sources"][0]["entries_existing"], 50);
    EXPECT_EQ(s["sources"][0]["inserts"], 5);  // since start, as since_start says
    EXPECT_NE(std::find(s["since_start"].begin(), s["since_start"].end(), "inserts"), s["since_start"].end());
    ASSERT_EQ(ev.events().size(), 5u);
    const double now = static_cast<double>(std::time(nullptr));
    for (const auto& e : ev.events()) EXPECT_NEAR(parse_wall(e["ts_wall"]), now, 30) << e.dump();
}
