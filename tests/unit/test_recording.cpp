// Unit tests for recordings (include/ctbpf/recording.h, userspace/record/): round trips,
// crash and corruption recovery, limits, write errors, the pre-trigger buffer.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ctbpf/decode.h"
#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/incident.h"
#include "ctbpf/recording.h"

namespace {

namespace fs = std::filesystem;
using namespace ctbpf;

constexpr uint64_t kSec = 1000000000ull;

// Every kind with a reason it can carry, both families, every field set.
Event make_event(uint32_t i) {
    static const std::pair<EventKind, Reason> kinds[] = {
        {EventKind::Insert, Reason::None},          {EventKind::Drop, Reason::None},
        {EventKind::EarlyDrop, Reason::None},       {EventKind::InsertFailed, Reason::ClashDrop},
        {EventKind::InsertFailed, Reason::ClashResolved}, {EventKind::Destroy, Reason::Timeout},
        {EventKind::Destroy, Reason::Deleted}};
    Event e;
    e.kind = kinds[i % 7].first;
    e.reason = kinds[i % 7].second;
    e.ts_ns = 1000 * kSec + i * 1000003ull;
    e.ct_id = 0x1234567890abcdefull ^ (uint64_t(i) * 0x9e3779b97f4a7c15ull);
    e.netns = 4026531840u + i % 3;
    e.zone = uint16_t(i * 7);
    e.cpu = uint16_t(i % 64);
    e.proto = i % 2 ? 6 : 17;
    e.sport = uint16_t(1024 + i);
    e.dport = uint16_t(443 + i * 13);
    if (i % 2) {
        e.src = *Address::parse("10.1." + std::to_string(i % 256) + ".7");
        e.dst = *Address::parse("192.0.2." + std::to_string(i % 200 + 1));
    } else {
        e.src = *Address::parse("2001:db8::" + std::to_string(i % 9999 + 1));
        e.dst = *Address::parse("fd00:1:2:3:4:5:6:" + std::to_string(i % 9999 + 1));
    }
    if (e.kind != EventKind::Drop) {  // drops have no entry, so no state
        e.has_state = true;
        e.ct_status = uint16_t(0x0008 | (i % 4) << 1 | (i % 3 == 0 ? 0x0200 : 0));
        e.tcp_state = e.proto == 6 ? uint8_t(i % 10) : 0;
    }
    return e;
}

RecordingHeader test_header() {
    RecordingHeader h = host_header();
    h.backend = "tracepoint";
    h.netns = {{"self", 4026531840u}, {"blue", 4026532001u}};
    h.ring_bytes = 8u << 20;
    h.wakeup_bytes = 256u << 10;
    return h;
}

KernelTotals totals(int64_t base) {
    return {base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7};
}

void expect_totals_eq(const KernelTotals& a, const KernelTotals& b) {
    EXPECT_EQ(a.insert, b.insert);
    EXPECT_EQ(a.drop, b.drop);
    EXPECT_EQ(a.early_drop, b.early_drop);
    EXPECT_EQ(a.insert_failed, b.insert_failed);
    EXPECT_EQ(a.clash_resolved, b.clash_resolved);
    EXPECT_EQ(a.destroy, b.destroy);
    EXPECT_EQ(a.lost, b.lost);
}

struct ReadBack {
    RecordingHeader header;
    std::vector<Frame> frames;
    std::vector<std::string> warnings;
    bool clean = false;
    KernelTotals end_totals;
    size_t events = 0;
};

ReadBack read_all(const std::string& path) {
    RecordingReader r(path);
    ReadBack out;
    out.header = r.header();
    Frame f;
    while (r.next(f)) {
        out.events += f.events.size();
        out.frames.push_back(f);
    }
    out.warnings = r.warnings();
    out.clean = r.clean_close();
    out.end_totals = r.end_totals();
    return out;
}

std::string load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

void store(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

std::string error_of(const std::string& path) {
    try {
        RecordingReader r(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

class Recording : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ctbpf_rec_test.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string file(const std::string& name) const { return (dir_ / name).string(); }

    // Three event frames of 5 events, a snapshot, a marker, a clean close.
    std::string write_sample(const std::string& name) {
        WriterOptions o;
        o.max_frame_events = 5;
        RecordingWriter w(file(name), test_header(), o);
        for (uint32_t i = 0; i < 10; ++i) w.add_event(encode_event(make_event(i)));
        w.add_snapshot({1001 * kSec, totals(10), {{4026531840u, 100, 262144, 65536}}});
        w.add_marker("trigger fired: fill>=90%", 1002 * kSec);
        for (uint32_t i = 10; i < 15; ++i) w.add_event(encode_event(make_event(i)));
        w.close(totals(100));
        return file(name);
    }

    fs::path dir_;
};

TEST_F(Recording, RoundTripsHeaderEventsSnapshotsMarkersAndEnd) {
    const RecordingHeader h = test_header();
    std::vector<Event> sent;
    {
        RecordingWriter w(file("r.ctrec"), h);
        for (uint32_t i = 0; i < 20; ++i) {
            sent.push_back(make_event(i));
            EXPECT_TRUE(w.add_event(encode_event(sent.back())));
        }
        Snapshot s{1005 * kSec, totals(1000),
                   {{4026531840u, 12345, 262144, 65536}, {4026532001u, 7, 1024, 256}}};
        EXPECT_TRUE(w.add_snapshot(s));
        EXPECT_TRUE(w.add_marker("trigger fired: fill>=90%", 1006 * kSec));
        for (uint32_t i = 20; i < 25; ++i) {
            sent.push_back(make_event(i));
            EXPECT_TRUE(w.add_event(encode_event(sent.back())));
        }
        w.close(totals(5000));
        EXPECT_EQ(w.events(), 25u);
        EXPECT_EQ(w.frames(), 5u);
        EXPECT_EQ(w.bytes(), fs::file_size(file("r.ctrec")));
    }

    ReadBack rb = read_all(file("r.ctrec"));
    EXPECT_TRUE(rb.warnings.empty()) << rb.warnings.front();
    EXPECT_EQ(rb.header.version, kRecordingVersion);
    EXPECT_EQ(rb.header.event_version, CTBPF_EVENT_VERSION);
    EXPECT_EQ(rb.header.created_wall_ns, h.created_wall_ns);
    EXPECT_EQ(rb.header.mono_to_wall_ns, h.mono_to_wall_ns);
    EXPECT_EQ(rb.header.hostname, h.hostname);
    EXPECT_EQ(rb.header.kernel_release, h.kernel_release);
    EXPECT_EQ(rb.header.backend, "tracepoint");
    ASSERT_EQ(rb.header.netns.size(), 2u);
    EXPECT_EQ(rb.header.netns[1].name, "blue");
    EXPECT_EQ(rb.header.netns[1].inum, 4026532001u);
    EXPECT_EQ(rb.header.ring_bytes, 8u << 20);
    EXPECT_EQ(rb.header.wakeup_bytes, 256u << 10);
    EXPECT_EQ(rb.header.wall_ns(5), h.mono_to_wall_ns + 5);

    ASSERT_EQ(rb.frames.size(), 5u);
    const FrameType types[] = {FrameType::Events, FrameType::Snapshot, FrameType::Marker,
                               FrameType::Events, FrameType::End};
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(rb.frames[i].type, types[i]) << i;
        EXPECT_EQ(rb.frames[i].seq, i);
    }

    std::vector<Event> got = rb.frames[0].events;
    got.insert(got.end(), rb.frames[3].events.begin(), rb.frames[3].events.end());
    ASSERT_EQ(got.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(encode_event(got[i]), encode_event(sent[i])) << i;
        EXPECT_EQ(got[i].kind, sent[i].kind);
        EXPECT_EQ(got[i].has_state, sent[i].has_state);
        EXPECT_EQ(state_name(got[i]), state_name(sent[i]));
        EXPECT_EQ(got[i].reason, sent[i].reason);
        EXPECT_EQ(got[i].ts_ns, sent[i].ts_ns);
        EXPECT_EQ(got[i].ct_id, sent[i].ct_id);
        EXPECT_EQ(got[i].netns, sent[i].netns);
        EXPECT_EQ(got[i].zone, sent[i].zone);
        EXPECT_EQ(got[i].cpu, sent[i].cpu);
        EXPECT_EQ(got[i].proto, sent[i].proto);
        EXPECT_EQ(got[i].sport, sent[i].sport);
        EXPECT_EQ(got[i].dport, sent[i].dport);
        EXPECT_EQ(got[i].src, sent[i].src);
        EXPECT_EQ(got[i].dst, sent[i].dst);
    }
    EXPECT_EQ(got[0].src.family, AF_INET6);
    EXPECT_EQ(got[1].src.family, AF_INET);
    EXPECT_EQ(rb.frames[0].first_ts_ns, sent[0].ts_ns);
    EXPECT_EQ(rb.frames[0].last_ts_ns, sent[19].ts_ns);
    EXPECT_EQ(rb.frames[0].undecodable, 0u);

    const Snapshot& s = rb.frames[1].snapshot;
    EXPECT_EQ(s.ts_ns, 1005 * kSec);
    expect_totals_eq(s.totals, totals(1000));
    ASSERT_EQ(s.tables.size(), 2u);
    EXPECT_EQ(s.tables[0], (TableState{4026531840u, 12345, 262144, 65536}));
    EXPECT_EQ(s.tables[1], (TableState{4026532001u, 7, 1024, 256}));

    EXPECT_EQ(rb.frames[2].marker, "trigger fired: fill>=90%");
    EXPECT_EQ(rb.frames[2].first_ts_ns, 1006 * kSec);

    EXPECT_TRUE(rb.clean);
    expect_totals_eq(rb.end_totals, totals(5000));
    EXPECT_EQ(rb.frames[4].end.events, 25u);
    EXPECT_EQ(rb.frames[4].end.frames, 4u);
    EXPECT_EQ(rb.frames[4].end.refused, 0u);
}

TEST_F(Recording, SplitsFramesByCountAndAge) {
    WriterOptions o;
    o.max_frame_events = 10;
    o.max_frame_age_ms = 20;
    RecordingWriter w(file("split.ctrec"), test_header(), o);
    for (uint32_t i = 0; i < 25; ++i) w.add_event(encode_event(make_event(i)));
    EXPECT_EQ(w.frames(), 2u);  // 10 + 10, five waiting
    w.tick();
    EXPECT_EQ(w.frames(), 2u);  // not old enough yet
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    w.tick();
    EXPECT_EQ(w.frames(), 3u);
    EXPECT_EQ(w.events(), 25u);
    w.close({});
    ReadBack rb = read_all(file("split.ctrec"));
    ASSERT_EQ(rb.frames.size(), 4u);
    EXPECT_EQ(rb.frames[2].events.size(), 5u);
    EXPECT_EQ(rb.events, 25u);
}

TEST_F(Recording, FileModeIs0600WhateverTheUmask) {
    const mode_t old = umask(0);
    store(file("m.ctrec"), "old contents");
    chmod(file("m.ctrec").c_str(), 0666);
    {
        RecordingWriter w(file("m.ctrec"), test_header());
        w.close({});
    }
    RecordingWriter w2(file("new.ctrec"), test_header());
    umask(old);
    struct stat st{};
    ASSERT_EQ(stat(file("m.ctrec").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    ASSERT_EQ(stat(file("new.ctrec").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_TRUE(read_all(file("m.ctrec")).clean);
}

TEST_F(Recording, TruncationAtEveryOffsetKeepsEarlierFrames) {
    const std::string full = load(write_sample("t.ctrec"));
    ReadBack whole = read_all(file("t.ctrec"));
    ASSERT_EQ(whole.frames.size(), 6u);
    const size_t header_size = whole.frames[0].offset;
    std::vector<uint64_t> starts;
    for (const Frame& f : whole.frames) starts.push_back(f.offset);
    starts.push_back(full.size());

    for (size_t cut = 0; cut < header_size; ++cut) {
        store(file("cut"), full.substr(0, cut));
        const std::string err = error_of(file("cut"));
        EXPECT_NE(err.find(cut == 0 ? "empty file" : "truncated header"), std::string::npos)
            << cut << ": " << err;
    }
    for (size_t cut = header_size; cut <= full.size(); ++cut) {
        store(file("cut"), full.substr(0, cut));
        ReadBack rb = read_all(file("cut"));
        size_t complete = 0;  // frames that end at or before the cut
        while (complete < whole.frames.size() && starts[complete + 1] <= cut) ++complete;
        ASSERT_EQ(rb.frames.size(), complete) << "cut at " << cut;
        EXPECT_EQ(rb.clean, cut == full.size());
        if (cut == starts[complete]) {
            EXPECT_TRUE(rb.warnings.empty()) << cut << ": " << rb.warnings.front();
        } else {
            ASSERT_EQ(rb.warnings.size(), 1u) << cut;
            EXPECT_EQ(rb.warnings[0], "file ends inside a frame at offset " +
                                          std::to_string(starts[complete]) +
                                          " (recording was interrupted)");
        }
    }
}

TEST_F(Recording, FlippedByteSkipsOnlyThatFrame) {
    const std::string full = load(write_sample("f.ctrec"));
    ReadBack whole = read_all(file("f.ctrec"));
    ASSERT_EQ(whole.frames.size(), 6u);  // events, events, snapshot, marker, events, end
    const uint64_t begin = whole.frames[1].offset, end = whole.frames[2].offset;
    for (uint64_t at = begin; at < end; ++at) {
        std::string bad = full;
        bad[at] = char(bad[at] ^ 0x5a);
        store(file("bad"), bad);
        ReadBack rb = read_all(file("bad"));
        ASSERT_EQ(rb.frames.size(), 5u) << at;
        EXPECT_EQ(rb.frames[0].events.size(), 5u);
        EXPECT_EQ(rb.frames[1].type, FrameType::Snapshot);
        EXPECT_EQ(rb.frames[3].events.size(), 5u);
        EXPECT_TRUE(rb.clean);
        ASSERT_EQ(rb.warnings.size(), 1u) << at;
        const std::string prefix = "frame at offset " + std::to_string(begin) + ": ";
        const std::string expected = at < begin + 48
            ? prefix + "bad frame header, skipped to offset " + std::to_string(end) +
                  ", 1 frames lost"
            : prefix + "checksum mismatch, skipped";
        EXPECT_EQ(rb.warnings[0], expected) << at;
    }
}

TEST_F(Recording, GarbageBetweenFramesIsSkipped) {
    std::string data = load(write_sample("g.ctrec"));
    ReadBack whole = read_all(file("g.ctrec"));
    // Garbage that even contains a frame magic, inserted before the snapshot frame.
    data.insert(whole.frames[2].offset, std::string("xxCTFRyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"));
    store(file("g2"), data);
    ReadBack rb = read_all(file("g2"));
    EXPECT_EQ(rb.frames.size(), 6u);
    ASSERT_EQ(rb.warnings.size(), 1u);
    EXPECT_NE(rb.warnings[0].find("bad frame header, skipped to offset"), std::string::npos);
    EXPECT_TRUE(rb.clean);
}

TEST_F(Recording, UnknownFrameTypeIsSkipped) {
    std::string data = load(write_sample("u.ctrec"));
    ReadBack whole = read_all(file("u.ctrec"));
    const uint64_t at = whole.frames[3].offset;  // the marker
    data[at + 4] = 42;                           // a frame type from the future
    const uint32_t c = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(&data[at]), 44));
    for (int i = 0; i < 4; ++i) data[at + 44 + i] = char(c >> (8 * i));
    store(file("u2"), data);
    ReadBack rb = read_all(file("u2"));
    EXPECT_EQ(rb.frames.size(), 5u);
    ASSERT_EQ(rb.warnings.size(), 1u);
    EXPECT_EQ(rb.warnings[0],
              "frame at offset " + std::to_string(at) + ": unknown frame type 42, skipped");
}

TEST_F(Recording, RejectsForeignEmptyAndNewerFiles) {
    store(file("png"), std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
    EXPECT_EQ(error_of(file("png")),
              "reading recording " + file("png") + ": not a ctbpf recording (bad magic)");

    store(file("empty"), "");
    EXPECT_EQ(error_of(file("empty")),
              "reading recording " + file("empty") + ": empty file (not a ctbpf recording)");

    std::string data = load(write_sample("v.ctrec"));
    data[8] = 99;
    data[9] = 0;
    store(file("newer"), data);
    EXPECT_EQ(error_of(file("newer")),
              "reading recording " + file("newer") +
                  ": recording format version 99 is newer than this ctbpf supports (4)");

    data = load(file("v.ctrec"));
    data[60] ^= 1;  // inside the metadata block
    store(file("hdr"), data);
    EXPECT_NE(error_of(file("hdr")).find("corrupt header (checksum mismatch)"), std::string::npos);

    EXPECT_NE(error_of(file("missing")).find("opening recording"), std::string::npos);
}

TEST_F(Recording, MaxBytesIsHonoured) {
    WriterOptions o;
    o.max_bytes = 8192;
    o.max_frame_events = 64;
    std::mt19937_64 rng(7);
    size_t accepted = 0, refused = 0;
    RecordingWriter w(file("max.ctrec"), test_header(), o);
    for (uint32_t i = 0; i < 2000; ++i) {
        Event e = make_event(i);
        e.ct_id = rng();  // poorly compressible
        if (w.add_event(encode_event(e)))
            ++accepted;
        else
            ++refused;
    }
    EXPECT_TRUE(w.limit_reached());
    EXPECT_GT(accepted, 50u);
    EXPECT_FALSE(w.add_marker("too late"));
    EXPECT_FALSE(w.add_snapshot({}));
    w.close(totals(1));
    EXPECT_LE(fs::file_size(file("max.ctrec")), 8192u);
    EXPECT_GT(fs::file_size(file("max.ctrec")), 6000u);  // and the room was used

    ReadBack rb = read_all(file("max.ctrec"));
    EXPECT_TRUE(rb.clean);
    EXPECT_TRUE(rb.warnings.empty());
    EXPECT_EQ(rb.events, accepted);  // every accepted event made it
    EXPECT_EQ(rb.frames.back().end.refused, refused);

    o.max_bytes = 100;
    EXPECT_THROW(RecordingWriter(file("tiny.ctrec"), test_header(), o), Error);
}

TEST_F(Recording, FullDiskGivesOneLineError) {
    struct stat before{}, after{};
    ASSERT_EQ(stat("/dev/full", &before), 0);
    try {
        RecordingWriter w("/dev/full", test_header());
        FAIL() << "writing to /dev/full succeeded";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "writing recording /dev/full: No space left on device; 0 frames (0 events) kept");
    }
    ASSERT_EQ(stat("/dev/full", &after), 0);
    EXPECT_EQ(before.st_mode, after.st_mode);  // never chmod a device
}

// A write that fails part-way through a frame (here: the file size limit) must leave the
// file ending on the last complete frame.
TEST_F(Recording, FailedWriteCutsBackToLastFrame) {
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    auto old_handler = signal(SIGXFSZ, SIG_IGN);
    std::string err;
    uint64_t frames = 0, events = 0;
    {
        WriterOptions o;
        o.max_frame_events = 16;
        RecordingWriter w(file("fsize.ctrec"), test_header(), o);
        rlimit lim = old;
        lim.rlim_cur = 5000;
        ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
        std::mt19937_64 rng(1);
        try {
            for (uint32_t i = 0; i < 10000; ++i) {
                Event e = make_event(i);
                e.ct_id = rng();
                w.add_event(encode_event(e));
            }
        } catch (const Error& e) {
            err = e.what();
        }
        setrlimit(RLIMIT_FSIZE, &old);
        frames = w.frames();
        events = w.events();
        EXPECT_THROW(w.add_event(encode_event(make_event(0))), Error);
        w.close({});  // after a failure: just closes
    }
    signal(SIGXFSZ, old_handler);
    EXPECT_EQ(err, "writing recording " + file("fsize.ctrec") + ": File too large; " +
                       std::to_string(frames) + " frames (" + std::to_string(events) +
                       " events) kept");
    EXPECT_GT(frames, 0u);
    ReadBack rb = read_all(file("fsize.ctrec"));
    EXPECT_TRUE(rb.warnings.empty()) << rb.warnings.front();
    EXPECT_FALSE(rb.clean);
    EXPECT_EQ(rb.frames.size(), frames);
    EXPECT_EQ(rb.events, events);
}

TEST_F(Recording, SurvivesSigkillUpToLastFlushedFrame) {
    const std::string path = file("kill.ctrec");
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the child must never return into the test runner
        try {
            RecordingWriter w(path, test_header());
            for (uint32_t i = 0; i < 30; ++i) w.add_event(encode_event(make_event(i)));
            w.flush();
            w.add_marker("after flush");
            for (uint32_t i = 30; i < 40; ++i) w.add_event(encode_event(make_event(i)));  // lost
            raise(SIGKILL);
        } catch (...) {
        }
        _exit(2);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    ReadBack rb = read_all(path);
    EXPECT_FALSE(rb.clean);
    EXPECT_TRUE(rb.warnings.empty());
    ASSERT_EQ(rb.frames.size(), 2u);
    EXPECT_EQ(rb.events, 30u);
    EXPECT_EQ(rb.frames[1].marker, "after flush");
}

TEST_F(Recording, DestructorFlushesWithoutEndFrame) {
    {
        RecordingWriter w(file("d.ctrec"), test_header());
        for (uint32_t i = 0; i < 3; ++i) w.add_event(encode_event(make_event(i)));
    }
    ReadBack rb = read_all(file("d.ctrec"));
    EXPECT_EQ(rb.events, 3u);
    EXPECT_FALSE(rb.clean);
}

TEST_F(Recording, EmptyMarkerAndTablelessSnapshotRoundTrip) {
    {
        RecordingWriter w(file("e.ctrec"), test_header());
        EXPECT_TRUE(w.add_marker("", 5));
        EXPECT_TRUE(w.add_snapshot({6, totals(0), {}}));
        w.close({});
    }
    ReadBack rb = read_all(file("e.ctrec"));
    EXPECT_TRUE(rb.warnings.empty()) << rb.warnings.front();
    ASSERT_EQ(rb.frames.size(), 3u);
    EXPECT_EQ(rb.frames[0].marker, "");
    EXPECT_EQ(rb.frames[1].snapshot.ts_ns, 6u);
    EXPECT_TRUE(rb.frames[1].snapshot.tables.empty());
}

TEST_F(Recording, ManyDamagedFramesDoNotFloodWarnings) {
    {
        RecordingWriter w(file("many.ctrec"), test_header());
        for (uint64_t i = 0; i < 300; ++i) w.add_marker("marker " + std::to_string(i), i + 1);
        w.close({});
    }
    std::string data = load(file("many.ctrec"));
    for (const Frame& f : read_all(file("many.ctrec")).frames)
        if (f.type == FrameType::Marker) data[f.offset + 48] ^= 1;  // every payload
    store(file("many2"), data);
    ReadBack rb = read_all(file("many2"));
    EXPECT_EQ(rb.frames.size(), 1u);  // the end frame
    EXPECT_TRUE(rb.clean);
    ASSERT_EQ(rb.warnings.size(), 101u);
    EXPECT_NE(rb.warnings.back().find("further warnings suppressed"), std::string::npos);
}

TEST_F(Recording, CloseIsFinal) {
    RecordingWriter w(file("c.ctrec"), test_header());
    w.close({});
    w.close({});
    EXPECT_THROW(w.add_event(encode_event(make_event(0))), Error);
}

TEST(PreBuffer, KeepsOnlyTheLastSeconds) {
    PreBuffer pb(3 * kSec, 1u << 20);
    for (uint32_t i = 0; i <= 100; ++i) {  // one event every 100 ms for 10 s
        Event e = make_event(i);
        e.ts_ns = i * kSec / 10;
        pb.add_event(encode_event(e));
        if (i % 10 == 0) pb.add_snapshot({i * kSec / 10, totals(i), {}});
    }
    EXPECT_EQ(pb.events(), 31u);   // 7.0 s .. 10.0 s
    EXPECT_EQ(pb.snapshots(), 4u);  // 7, 8, 9, 10 s

    char tmpl[] = "/tmp/ctbpf_prebuf.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string path = std::string(tmpl) + "/p.ctrec";
    {
        RecordingWriter w(path, test_header());
        w.add_marker("trigger fired: fill>=90%", 10 * kSec);
        EXPECT_EQ(pb.drain_into(w), 31u);
        w.close({});
    }
    EXPECT_EQ(pb.events(), 0u);
    EXPECT_EQ(pb.bytes(), 0u);
    ReadBack rb = read_all(path);
    fs::remove_all(tmpl);
    EXPECT_EQ(rb.events, 31u);
    uint64_t last = 0;
    size_t snaps = 0;
    for (const Frame& f : rb.frames) {
        for (const Event& e : f.events) {
            EXPECT_GE(e.ts_ns, 7 * kSec);
            EXPECT_GE(e.ts_ns, last);
            last = e.ts_ns;
        }
        if (f.type == FrameType::Snapshot) {
            EXPECT_GE(f.snapshot.ts_ns, last);  // merged in time order
            ++snaps;
        }
    }
    EXPECT_EQ(snaps, 4u);
}

TEST(PreBuffer, HonoursByteCapAndExpiry) {
    PreBuffer pb(60 * kSec, kEventRecordSize * 10);
    for (uint32_t i = 0; i < 100; ++i) {
        Event e = make_event(i);
        e.ts_ns = kSec + i;
        pb.add_event(encode_event(e));
    }
    EXPECT_EQ(pb.events(), 10u);
    EXPECT_LE(pb.bytes(), kEventRecordSize * 10);
    pb.expire(30 * kSec);
    EXPECT_EQ(pb.events(), 10u);
    pb.expire(62 * kSec);  // a quiet minute
    EXPECT_EQ(pb.events(), 0u);
    EXPECT_EQ(pb.bytes(), 0u);
}

}  // namespace

// Issue "What a new user hit" (2): a recording keeps what the table held when it began, and
// the slab object size, so that reports need not guess.
TEST_F(Recording, BaselineFramesAndObjectSizeRoundTrip) {
    RecordingHeader h = test_header();
    h.object_size = 256;
    Baseline b;
    b.netns = 4026532001u;
    b.total = 1407;
    b.by_source = {{*Address::parse("10.1.2.3"), 1400}, {*Address::parse("2001:db8::7"), 7}};
    {
        RecordingWriter w(file("b.ctrec"), h);
        EXPECT_TRUE(w.add_baseline(b, 999 * kSec));
        w.add_event(encode_event(make_event(0)));
        w.close(totals(1));
    }
    ReadBack rb = read_all(file("b.ctrec"));
    EXPECT_TRUE(rb.warnings.empty());
    EXPECT_EQ(rb.header.version, kRecordingVersion);
    EXPECT_EQ(rb.header.object_size, 256u);
    ASSERT_EQ(rb.frames.size(), 3u);
    const Frame& f = rb.frames[0];
    ASSERT_EQ(f.type, FrameType::Baseline);
    EXPECT_EQ(frame_type_name(f.type), "baseline");
    EXPECT_EQ(f.count, 2u);
    EXPECT_EQ(f.first_ts_ns, 999 * kSec);
    EXPECT_EQ(f.baseline.netns, 4026532001u);
    EXPECT_EQ(f.baseline.total, 1407);
    ASSERT_EQ(f.baseline.by_source.size(), 2u);
    EXPECT_EQ(f.baseline.by_source[0].first, *Address::parse("10.1.2.3"));
    EXPECT_EQ(f.baseline.by_source[0].second, 1400);
    EXPECT_EQ(f.baseline.by_source[1].first, *Address::parse("2001:db8::7"));
    EXPECT_EQ(f.baseline.by_source[1].second, 7);
    EXPECT_EQ(rb.frames[1].type, FrameType::Events);
}

namespace {

// Recordings of the formats before this one, written byte by byte from
// docs/recording-format.md rather than by the writer, which only knows today's.
void le(std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(char(v >> (8 * i)));
}

uint32_t crc_of(std::string_view s) {
    return uint32_t(crc32(0, reinterpret_cast<const Bytef*>(s.data()), uInt(s.size())));
}

// One record of event layout 1: the 64 bytes of struct ctbpf_event before the state fields.
std::string layout1_record(const Event& e) {
    std::string r;
    le(r, e.ts_ns, 8);
    le(r, e.ct_id, 8);
    le(r, e.netns, 4);
    le(r, e.zone, 2);
    le(r, e.cpu, 2);
    for (uint16_t port : {e.sport, e.dport}) r += {char(port >> 8), char(port)};  // network order
    r += {char(e.kind), char(e.src.family), char(e.proto), char(e.reason)};
    r.append(reinterpret_cast<const char*>(e.src.bytes.data()), 16);
    r.append(reinterpret_cast<const char*>(e.dst.bytes.data()), 16);
    return r;
}

std::string hand_frame(uint8_t type, uint32_t seq, const std::string& payload, uint32_t count, uint64_t first,
                       uint64_t last) {
    std::string z(ZSTD_compressBound(payload.size()), '\0');
    const size_t clen = ZSTD_compress(z.data(), z.size(), payload.data(), payload.size(), 3);
    EXPECT_FALSE(ZSTD_isError(clen));
    z.resize(clen);
    std::string h;
    le(h, 0x52465443, 4);  // "CTFR"
    le(h, type, 4);        // type, 3 reserved bytes
    le(h, seq, 4);
    le(h, clen, 4);
    le(h, payload.size(), 4);
    le(h, count, 4);
    le(h, first, 8);
    le(h, last, 8);
    le(h, crc_of(z), 4);
    le(h, crc_of(h), 4);
    return h + z;
}

// A clean recording of format `version` (1 or 2) with event layout 1, as ctbpf wrote them
// before the entry state: 64-byte events, one events frame, an end frame.
std::string hand_old_recording(uint16_t version, const std::vector<Event>& events, uint16_t event_version = 1,
                               uint16_t event_size = 64) {
    std::string meta;
    auto str = [&meta](std::string_view t) {
        le(meta, t.size(), 2);
        meta += t;
    };
    str("oldhost");
    str("6.1.0-test");
    str("kprobe");
    le(meta, 1, 2);
    le(meta, 4026531840u, 4);
    str("self");
    if (version >= 2) le(meta, 320, 4);  // object_size
    std::string f = "CTBPFREC";
    le(f, version, 2);
    le(f, 0, 2);  // flags
    le(f, meta.size(), 4);
    le(f, 1'700'000'000'000'000'000ull, 8);  // created_wall_ns
    le(f, 1'600'000'000'000'000'000ull, 8);  // mono_to_wall_ns
    le(f, 8u << 20, 8);
    le(f, 256u << 10, 8);
    le(f, event_version, 2);
    le(f, event_size, 2);
    le(f, 0, 4);
    f += meta;
    le(f, crc_of(f), 4);
    std::string payload;
    for (const Event& e : events) {
        if (event_version == 2 && event_size == 72) {  // layout 2: today's record without the process
            const auto r = encode_event(e);
            payload.append(reinterpret_cast<const char*>(r.data()), 72);
        } else {
            payload += layout1_record(e);
        }
    }
    f += hand_frame(1, 0, payload, uint32_t(events.size()), events.front().ts_ns, events.back().ts_ns);
    std::string end;
    le(end, 2000 * kSec, 8);
    for (int i = 0; i < 7; ++i) le(end, uint64_t(i + 1), 8);  // kernel totals
    le(end, events.size(), 8);
    le(end, 1, 8);  // frames before the end frame
    le(end, 0, 8);
    f += hand_frame(4, 1, end, 1, 2000 * kSec, 2000 * kSec);
    return f;
}

}  // namespace

// Files of formats 1 and 2 (64-byte events of layout 1; format 1 also without the object
// size) still read: every event as written, without a state, which they never had.
TEST_F(Recording, OlderFormatsWith64ByteEventsStillRead) {
    std::vector<Event> sent;
    for (uint32_t i = 0; i < 21; ++i) sent.push_back(make_event(i));
    for (uint16_t version : {1, 2}) {
        SCOPED_TRACE("format version " + std::to_string(version));
        const std::string path = file("old" + std::to_string(version) + ".ctrec");
        store(path, hand_old_recording(version, sent));
        ReadBack rb = read_all(path);
        EXPECT_TRUE(rb.warnings.empty()) << rb.warnings.front();
        EXPECT_EQ(rb.header.version, version);
        EXPECT_EQ(rb.header.event_version, 1);
        EXPECT_EQ(rb.header.object_size, version >= 2 ? 320u : 0u);
        EXPECT_EQ(rb.header.backend, "kprobe");
        ASSERT_EQ(rb.header.netns.size(), 1u);
        EXPECT_TRUE(rb.clean);
        EXPECT_EQ(rb.end_totals.insert, 1);
        ASSERT_EQ(rb.frames.size(), 2u);
        const Frame& f = rb.frames[0];
        EXPECT_EQ(f.record_size, kEventRecordSizeV1);
        EXPECT_EQ(f.undecodable, 0u);
        ASSERT_EQ(f.events.size(), sent.size());
        for (size_t i = 0; i < sent.size(); ++i) {
            const Event& got = f.events[i];
            EXPECT_FALSE(got.has_state) << i;
            EXPECT_EQ(got.ct_status, 0) << i;
            // Everything else as sent; a layout-2 encoding of both compares every field.
            Event want = sent[i];
            want.has_state = false;
            EXPECT_EQ(encode_event(got), encode_event(want)) << i;
            EXPECT_EQ(f.record(i).size(), 64u);
        }
    }
}

// The record size must be the one the event layout has: a 64-byte layout 2 or a 72-byte
// layout 1 is a foreign or damaged file, refused in one line.
TEST_F(Recording, EventSizeMustMatchTheEventLayout) {
    const std::vector<Event> one{make_event(0)};
    store(file("a.ctrec"), hand_old_recording(2, one, 1, 72));
    EXPECT_NE(error_of(file("a.ctrec")).find("unsupported event record size 72"), std::string::npos)
        << error_of(file("a.ctrec"));
    store(file("b.ctrec"), hand_old_recording(2, one, 2, 64));
    EXPECT_NE(error_of(file("b.ctrec")).find("unsupported event record size 64"), std::string::npos)
        << error_of(file("b.ctrec"));
    store(file("c.ctrec"), hand_old_recording(2, one, 1, 0));
    EXPECT_NE(error_of(file("c.ctrec")).find("unsupported event record size 0"), std::string::npos);
    // A new file: format 4, event layout 3, 96-byte records carrying the state and the process.
    const std::string data = load(write_sample("new.ctrec"));
    EXPECT_EQ(uint8_t(data[8]), kRecordingVersion);
    EXPECT_EQ(uint8_t(data[48]), CTBPF_EVENT_VERSION);
    EXPECT_EQ(uint8_t(data[50]), 96);
}

// Format 3 files (72-byte events of layout 2, before the process) still read: the state as
// written, no process.
TEST_F(Recording, Format3With72ByteEventsStillReads) {
    std::vector<Event> sent;
    for (uint32_t i = 0; i < 5; ++i) {
        Event e = make_event(i);
        e.has_state = true;
        e.ct_status = 0x000e;
        e.pid = 77;  // not in layout 2: must not come back
        sent.push_back(e);
    }
    store(file("f3.ctrec"), hand_old_recording(3, sent, 2, 72));
    ReadBack rb = read_all(file("f3.ctrec"));
    ASSERT_EQ(rb.frames.size(), 2u);
    const Frame& f = rb.frames[0];
    EXPECT_EQ(f.record_size, 72u);
    ASSERT_EQ(f.events.size(), sent.size());
    for (const Event& got : f.events) {
        EXPECT_TRUE(got.has_state);
        EXPECT_EQ(got.ct_status, 0x000e);
        EXPECT_EQ(got.pid, 0u);
    }
}

// A version 1 file's truncations are still told apart from foreign files.
TEST_F(Recording, TruncatedOldFormatFilesAreReportedNotMisread) {
    const std::string full = hand_old_recording(1, {make_event(0), make_event(1), make_event(2)});
    const size_t header_size = 56 + 4 + (full[12] & 0xff);
    for (size_t cut : {size_t(5), size_t(40), header_size - 1}) {
        store(file("cut"), full.substr(0, cut));
        EXPECT_NE(error_of(file("cut")).find("truncated header"), std::string::npos) << cut;
    }
    store(file("cut"), full.substr(0, full.size() - 10));  // inside the end frame
    ReadBack rb = read_all(file("cut"));
    EXPECT_FALSE(rb.clean);
    EXPECT_EQ(rb.events, 3u);
    ASSERT_FALSE(rb.warnings.empty());
    EXPECT_NE(rb.warnings.back().find("file ends inside a frame"), std::string::npos) << rb.warnings.back();
}

// report reads the baseline into its aggregator: a host that held most of the table before
// recording began is listed by entries, and destroys of its old entries count down.
TEST_F(Recording, IncidentCountsTheBaselineInEntries) {
    RecordingHeader h = test_header();
    h.object_size = 256;
    const Address old_host = *Address::parse("10.5.5.5"), new_host = *Address::parse("10.6.6.6");
    {
        RecordingWriter w(file("i.ctrec"), h);
        Baseline b;
        b.netns = 4026531840u;
        b.total = 1400;
        b.by_source = {{old_host, 1400}};
        w.add_baseline(b, 999 * kSec);
        for (uint32_t i = 0; i < 20; ++i) {
            Event e;
            e.kind = EventKind::Insert;
            e.ts_ns = 1000 * kSec + i;
            e.ct_id = 100 + i;
            e.netns = 4026531840u;
            e.proto = 17;
            e.src = new_host;
            e.dst = *Address::parse("10.9.9.9");
            w.add_event(encode_event(e));
        }
        Event d;  // one of the old entries times out
        d.kind = EventKind::Destroy;
        d.reason = Reason::Timeout;
        d.ts_ns = 1001 * kSec;
        d.ct_id = 5;
        d.netns = 4026531840u;
        d.proto = 17;
        d.src = old_host;
        d.dst = *Address::parse("10.9.9.9");
        w.add_event(encode_event(d));
        w.close(totals(1));
    }
    const Incident in = read_incident(file("i.ctrec"));
    EXPECT_TRUE(in.baseline);
    EXPECT_EQ(in.baseline_entries, 1400);
    EXPECT_EQ(in.header.object_size, 256u);
    const auto top = in.agg->top_sources(SortKey::Entries, 5, 0);
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0]->addr, old_host);
    EXPECT_EQ(top[0]->entries, 1399);
    EXPECT_EQ(top[0]->netns, 4026531840u);
    EXPECT_EQ(top[1]->addr, new_host);
    EXPECT_EQ(top[1]->entries, 20);
}
