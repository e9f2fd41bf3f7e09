// Unit tests for RateWindow and Aggregator (include/ctbpf/aggregator.h,
// userspace/aggregate/aggregator.cpp), driven by synthetic events and clocks.
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "ctbpf/aggregator.h"
#include "ctbpf/decode.h"

namespace {

using ctbpf::Address;
using ctbpf::Aggregator;
using ctbpf::DestKey;
using ctbpf::DestKeyHash;
using ctbpf::DestStats;
using ctbpf::Event;
using ctbpf::EventKind;
using ctbpf::RateHistory;
using ctbpf::RateWindow;
using ctbpf::Reason;
using ctbpf::SortKey;
using ctbpf::SourceStats;

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

Address addr(std::string_view text) {
    auto a = Address::parse(text);
    EXPECT_TRUE(a.has_value()) << "cannot parse " << text;
    return a.value_or(Address{});
}

Event ev(EventKind kind, uint64_t ct_id, std::string_view src, uint64_t ts_sec = 0,
         std::string_view dst = "10.99.0.1", uint16_t dport = 80, uint8_t proto = IPPROTO_TCP,
         Reason reason = Reason::None) {
    Event e;
    e.kind = kind;
    e.reason = reason;
    e.ts_ns = ts_sec * kNsPerSec;
    e.ct_id = ct_id;
    e.netns = 4026531840u;
    e.proto = proto;
    e.sport = 40000;
    e.dport = dport;
    e.src = addr(src);
    e.dst = addr(dst);
    return e;
}

Event insert(uint64_t ct, std::string_view src, uint64_t ts_sec = 0) {
    return ev(EventKind::Insert, ct, src, ts_sec);
}
Event destroy(uint64_t ct, std::string_view src) {
    return ev(EventKind::Destroy, ct, src, 0, "10.99.0.1", 80, IPPROTO_TCP, Reason::Timeout);
}
Event early_drop(uint64_t ct, std::string_view src) { return ev(EventKind::EarlyDrop, ct, src); }
Event insert_failed(uint64_t ct, std::string_view src, Reason r = Reason::ClashDrop) {
    return ev(EventKind::InsertFailed, ct, src, 0, "10.99.0.1", 80, IPPROTO_TCP, r);
}
Event drop(std::string_view src, std::string_view dst, uint16_t dport, uint8_t proto) {
    return ev(EventKind::Drop, 0, src, 0, dst, dport, proto);
}

Aggregator::Options options(size_t max_sources, size_t max_destinations) {
    Aggregator::Options o;
    o.max_sources = max_sources;
    o.max_destinations = max_destinations;
    return o;
}

std::vector<std::string> names(const std::vector<const SourceStats*>& v) {
    std::vector<std::string> out;
    for (auto* s : v) out.push_back(s->addr.to_string());
    return out;
}

std::string dest_name(const DestStats* d) {
    return d->key.addr.to_string() + ":" + std::to_string(d->key.port) + "/" +
           ctbpf::proto_name(d->key.proto);
}

std::vector<std::string> names(const std::vector<const DestStats*>& v) {
    std::vector<std::string> out;
    for (auto* d : v) out.push_back(dest_name(d));
    return out;
}

// Helper for checks on one source; fails (not crashes) when it is missing.
const SourceStats& src_of(const Aggregator& agg, std::string_view a) {
    static const SourceStats missing{};
    const SourceStats* s = agg.source(addr(a));
    EXPECT_NE(s, nullptr) << "no source " << a;
    return s ? *s : missing;
}

// ================================================================ RateWindow

TEST(RateWindow, EmptyIsZero) {
    RateWindow w;
    EXPECT_EQ(w.rate(100, 1), 0.0);
    EXPECT_EQ(w.rate(100, 10), 0.0);
    EXPECT_EQ(w.rate(100, 60), 0.0);
    EXPECT_EQ(w.rate(0, 60), 0.0);
    EXPECT_EQ(w.at(100, 99), 0u);
}

TEST(RateWindow, SecondInProgressIsNotCounted) {
    RateWindow w;
    w.add(100, 5);
    w.add(100);  // n defaults to 1
    EXPECT_EQ(w.at(100, 100), 0u);  // second 100 is still in progress at now = 100
    EXPECT_EQ(w.rate(100, 1), 0.0);
    EXPECT_EQ(w.rate(100, 10), 0.0);
    EXPECT_EQ(w.rate(100, 60), 0.0);
    // Once second 100 is complete, all of it counts.
    EXPECT_EQ(w.at(101, 100), 6u);
    EXPECT_EQ(w.rate(101, 1), 6.0);
    EXPECT_EQ(w.rate(101, 10), 0.6);
    EXPECT_EQ(w.rate(101, 60), 0.1);
    // Seconds in the future of `now` are not counted either.
    EXPECT_EQ(w.at(99, 100), 0u);
    EXPECT_EQ(w.rate(99, 60), 0.0);
}

TEST(RateWindow, RatesOverOneTenAndSixtySeconds) {
    RateWindow w;
    // Second 40 + i holds i + 1 events: 1 .. 60 over seconds 40 .. 99.
    for (uint64_t s = 40; s < 100; ++s) w.add(s, static_cast<uint32_t>(s - 39));
    // And the second in progress, which must not count.
    w.add(100, 1000);
    const uint64_t now = 100;
    EXPECT_EQ(w.at(now, 99), 60u);
    EXPECT_EQ(w.at(now, 40), 1u);
    EXPECT_EQ(w.rate(now, 1), 60.0);                          // second 99
    EXPECT_EQ(w.rate(now, 10), (51.0 + 60.0) * 10 / 2 / 10);  // 51..60 -> 55.5
    EXPECT_EQ(w.rate(now, 10), 55.5);
    EXPECT_EQ(w.rate(now, 60), 1830.0 / 60);  // 1..60 -> 30.5
    EXPECT_EQ(w.rate(now, 60), 30.5);
    // A window wider than a minute is a minute.
    EXPECT_EQ(w.rate(now, 61), 30.5);
    EXPECT_EQ(w.rate(now, 1000), 30.5);
    EXPECT_EQ(w.rate(now, 0), 0.0);
    // A second later, second 100 (1000 events) is complete and second 40 falls out.
    EXPECT_EQ(w.rate(101, 1), 1000.0);
    EXPECT_EQ(w.rate(101, 10), (504.0 + 1000.0) / 10);  // 52..60 (504) + 1000
    EXPECT_EQ(w.rate(101, 60), (1830.0 - 1 + 1000) / 60);
}

TEST(RateWindow, DataOlderThanSixtySecondsIsForgotten) {
    RateWindow w;
    w.add(10, 7);
    EXPECT_EQ(w.at(70, 10), 7u);  // exactly 60 s back: still the last minute
    EXPECT_EQ(w.rate(70, 60), 7.0 / 60);
    EXPECT_EQ(w.rate(70, 59), 0.0);
    EXPECT_EQ(w.at(71, 10), 0u);  // 61 s back: gone
    EXPECT_EQ(w.rate(71, 60), 0.0);

    // Same when newer data has moved the window along.
    w.add(50, 3);
    w.add(71, 2);
    EXPECT_EQ(w.rate(72, 60), (3.0 + 2.0) / 60);  // 12..71: 10 is out
    EXPECT_EQ(w.at(72, 10), 0u);
    EXPECT_EQ(w.rate(110, 60), (3.0 + 2.0) / 60);  // 50..109
    EXPECT_EQ(w.rate(111, 60), 2.0 / 60);          // 51..110: 50 is out
}

TEST(RateWindow, GapOfMoreThanSixtyFourSecondsClearsEverything) {
    RateWindow w;
    for (uint64_t s = 100; s < 164; ++s) w.add(s, 1);  // every slot of the ring holds 1
    EXPECT_EQ(w.rate(164, 60), 1.0);
    w.add(240, 2);  // 76 s later
    for (uint64_t s = 180; s < 240; ++s) EXPECT_EQ(w.at(241, s), 0u) << "second " << s;
    EXPECT_EQ(w.at(241, 240), 2u);
    EXPECT_EQ(w.rate(241, 60), 2.0 / 60);
    EXPECT_EQ(w.rate(241, 10), 0.2);
    EXPECT_EQ(w.rate(241, 1), 2.0);
    // No stale count reappears on the seconds that reuse the old slots.
    w.add(241, 1);
    w.add(250, 1);
    EXPECT_EQ(w.rate(251, 60), 4.0 / 60);
}

TEST(RateWindow, GapOfExactlySixtyFourSecondsClearsEverything) {
    RateWindow w;
    for (uint64_t s = 100; s < 164; ++s) w.add(s, 1);
    w.add(227, 5);  // 163 + 64
    EXPECT_EQ(w.rate(228, 60), 5.0 / 60);
    EXPECT_EQ(w.rate(228, 1), 5.0);
    for (uint64_t s = 168; s < 227; ++s) EXPECT_EQ(w.at(228, s), 0u) << "second " << s;
}

TEST(RateWindow, ShortGapClearsOnlyTheSkippedSeconds) {
    RateWindow w;
    for (uint64_t s = 100; s < 164; ++s) w.add(s, 1);
    w.add(170, 4);  // skips 164..169, whose slots held 100..105
    for (uint64_t s = 164; s < 170; ++s) EXPECT_EQ(w.at(171, s), 0u) << "second " << s;
    EXPECT_EQ(w.at(171, 163), 1u);
    EXPECT_EQ(w.at(171, 170), 4u);
    // 111..170: 111..163 hold 1 each (53), 164..169 nothing, 170 holds 4.
    EXPECT_EQ(w.rate(171, 60), 57.0 / 60);
    EXPECT_EQ(w.rate(171, 10), 0.7);  // 161..170: 1 + 1 + 1 + 4
    EXPECT_EQ(w.rate(171, 1), 4.0);
}

TEST(RateWindow, LateAddToAnOldSecondInsideTheWindowCounts) {
    RateWindow w;
    w.add(100, 1);
    w.add(90, 2);  // late, but within the last minute
    w.add(41, 4);  // late, exactly 60 s before second 101
    EXPECT_EQ(w.at(101, 90), 2u);
    EXPECT_EQ(w.at(101, 41), 4u);
    EXPECT_EQ(w.rate(101, 60), (1.0 + 2.0 + 4.0) / 60);
    EXPECT_EQ(w.rate(101, 11), 3.0 / 11);  // 90..100
    EXPECT_EQ(w.rate(101, 10), 0.1);       // 91..100: 90 not inside
    EXPECT_EQ(w.rate(101, 1), 1.0);
}

TEST(RateWindow, AddTooOldIsIgnoredAndDoesNotCorruptNewerSeconds) {
    RateWindow w;
    w.add(100, 1);
    w.add(94, 3);
    w.add(30, 5);  // 70 s older than the newest second: its slot (30 % 64) belongs to 94
    EXPECT_EQ(w.at(101, 94), 3u);
    EXPECT_EQ(w.at(101, 30), 0u);
    EXPECT_EQ(w.rate(101, 60), 4.0 / 60);
}

TEST(RateWindow, NearTheEpoch) {
    RateWindow w;
    w.add(0, 4);
    EXPECT_EQ(w.at(1, 0), 4u);
    EXPECT_EQ(w.rate(1, 1), 4.0);
    EXPECT_EQ(w.rate(1, 10), 0.4);  // a window's mean is over the whole window
    EXPECT_EQ(w.rate(0, 10), 0.0);
}

// ================================================================ RateHistory

// RateHistory must answer exactly as RateWindow, byte-sized or widened: random adds (some
// large enough to widen), late and too-old seconds, gaps, removes, checked at many `now`s.
TEST(RateHistory, MatchesRateWindow) {
    std::mt19937_64 rng(11);
    for (int run = 0; run < 300; ++run) {
        RateWindow w;
        RateHistory h;
        uint64_t t = rng() % 200;
        const uint32_t big = run % 3 == 0 ? 400 : 40;  // a third of the runs widen
        for (int op = 0; op < 400; ++op) {
            const auto r = rng() % 20;
            if (r < 2) t += rng() % 90;  // gaps, some beyond the ring
            else if (r < 12) t += rng() % 2;
            const uint64_t sec = t >= 70 && rng() % 4 == 0 ? t - rng() % 70 : t;  // late, or too old
            const auto n = static_cast<uint32_t>(rng() % big);
            if (rng() % 5 == 0) {
                w.remove(sec, n);
                h.remove(sec, n);
            } else {
                w.add(sec, n);
                h.add(sec, n);
            }
            const uint64_t now = t + rng() % 3;
            for (unsigned win : {1u, 10u, 60u, 61u})
                ASSERT_EQ(h.rate(now, win), w.rate(now, win)) << "run " << run << " op " << op;
            for (uint64_t s = now > 62 ? now - 62 : 0; s <= now; ++s)
                ASSERT_EQ(h.at(now, s), w.at(now, s)) << "run " << run << " op " << op << " sec " << s;
        }
    }
}

TEST(RateHistory, CountAboveAByteMovesToAFullWindow) {
    RateHistory h;
    h.add(100, 200);
    h.add(99, 3);
    h.add(100, 55);  // 255: still fits
    EXPECT_FALSE(h.wide());
    EXPECT_EQ(h.heap_bytes(), 0u);
    h.add(100);  // 256 does not: no saturation, the history moves
    EXPECT_TRUE(h.wide());
    EXPECT_GT(h.heap_bytes(), 0u);
    EXPECT_EQ(h.at(101, 100), 256u);
    EXPECT_EQ(h.at(101, 99), 3u);
    EXPECT_EQ(h.rate(101, 1), 256.0);
    h.add(101, 100000);
    h.remove(101, 1);
    EXPECT_EQ(h.at(102, 101), 99999u);
    EXPECT_EQ(h.rate(102, 10), (3.0 + 256 + 99999) / 10);
    // A copy is deep; moving keeps the answers.
    RateHistory copy = h;
    h.add(102, 5);
    EXPECT_EQ(copy.at(103, 102), 0u);
    EXPECT_EQ(h.at(103, 102), 5u);
    RateHistory moved = std::move(copy);
    EXPECT_EQ(moved.at(102, 101), 99999u);
    // One huge add widens at once, without wrapping the byte.
    RateHistory g;
    g.add(5, 1u << 31);
    EXPECT_EQ(g.at(6, 5), 1u << 31);
}

TEST(RateHistory, WideningKeepsTheNewestSecondForLateAdds) {
    // Seconds 36..99 are in the ring (newest 99); widening must not forget that 99 is the
    // newest, or it would accept a late add to second 35 that the byte ring ignores.
    RateWindow w;
    RateHistory h;
    w.add(99, 1);
    w.add(40, 2);
    h.add(99, 1);
    h.add(40, 2);
    h.add(40, 300);  // widens while second 40 is not the newest
    w.add(40, 300);
    h.add(35, 7);    // too old for both
    w.add(35, 7);
    EXPECT_TRUE(h.wide());
    for (uint64_t s = 30; s <= 100; ++s) EXPECT_EQ(h.at(100, s), w.at(100, s)) << "second " << s;
    EXPECT_EQ(h.rate(100, 60), w.rate(100, 60));
}

TEST(RateHistory, IsSmallerThanRateWindow) {
    EXPECT_LE(sizeof(RateHistory), 80u);
    EXPECT_GT(sizeof(RateWindow), 256u);
    EXPECT_LE(sizeof(SourceStats), 168u);  // the per-source figure given in aggregator.h
}

// ================================================================ Aggregator: occupancy

TEST(Aggregator, InsertsAndLiveEntriesPerSource) {
    Aggregator agg;
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.1"));
    agg.add(insert(3, "10.0.0.1"));
    agg.add(insert(4, "10.0.0.2"));
    agg.add(insert(5, "10.0.0.2"));
    agg.add(insert(6, "fd00::1"));

    EXPECT_EQ(agg.source_count(), 3u);
    EXPECT_EQ(agg.live_entries(), 6u);
    const SourceStats& a = src_of(agg, "10.0.0.1");
    EXPECT_EQ(a.addr, addr("10.0.0.1"));
    EXPECT_EQ(a.inserts, 3u);
    EXPECT_EQ(a.entries, 3);
    EXPECT_EQ(a.drops, 0u);
    EXPECT_EQ(a.destroys, 0u);
    EXPECT_EQ(a.early_drops, 0u);
    EXPECT_EQ(a.insert_failed, 0u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").inserts, 2u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").entries, 2);
    EXPECT_EQ(src_of(agg, "fd00::1").inserts, 1u);
    EXPECT_EQ(src_of(agg, "fd00::1").entries, 1);
    EXPECT_EQ(agg.source(addr("10.0.0.3")), nullptr);
    EXPECT_EQ(agg.other().inserts, 0u);
    EXPECT_EQ(agg.other().entries, 0);
}

TEST(Aggregator, InsertFeedsTheSourceInsertRate) {
    Aggregator agg;
    Event e = insert(1, "10.0.0.1");
    e.ts_ns = 5 * kNsPerSec + 999'999'999;  // still second 5
    agg.add(e);
    e.ct_id = 2;
    e.ts_ns = 5 * kNsPerSec;
    agg.add(e);
    e.ct_id = 3;
    e.ts_ns = 6 * kNsPerSec;  // second 6
    agg.add(e);
    const SourceStats& s = src_of(agg, "10.0.0.1");
    EXPECT_EQ(s.insert_rate.at(7, 5), 2u);
    EXPECT_EQ(s.insert_rate.at(7, 6), 1u);
    EXPECT_EQ(s.insert_rate.rate(6, 1), 2.0);
    EXPECT_EQ(s.insert_rate.rate(7, 1), 1.0);
    EXPECT_EQ(s.insert_rate.rate(7, 10), 0.3);
}

TEST(Aggregator, BusySourceRateIsExactBeyondAByte) {
    Aggregator agg;
    for (uint64_t ct = 1; ct <= 1000; ++ct) agg.add(insert(ct, "10.0.0.1", 5));
    for (uint64_t ct = 1001; ct <= 1010; ++ct) agg.add(insert(ct, "10.0.0.1", 6));
    agg.add(insert_failed(1000, "10.0.0.1"));  // taken back in second 0 (its ts), which holds nothing
    const SourceStats& s = src_of(agg, "10.0.0.1");
    EXPECT_EQ(s.insert_rate.at(7, 5), 1000u);
    EXPECT_EQ(s.insert_rate.at(7, 6), 10u);
    EXPECT_EQ(s.insert_rate.rate(6, 1), 1000.0);
    EXPECT_EQ(s.insert_rate.rate(7, 10), 101.0);
    EXPECT_EQ(s.insert_rate.rate(7, 60), 1010.0 / 60);
    EXPECT_EQ(s.inserts, 1009u);
    EXPECT_GT(agg.source_memory_bytes(), 0u);
}

TEST(Aggregator, DestroyOfSeenEntryDecrementsEntries) {
    Aggregator agg;
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.1"));
    agg.add(insert(3, "10.0.0.1"));
    agg.add(destroy(1, "10.0.0.1"));
    const SourceStats& a = src_of(agg, "10.0.0.1");
    EXPECT_EQ(a.inserts, 3u);
    EXPECT_EQ(a.entries, 2);
    EXPECT_EQ(a.destroys, 1u);
    EXPECT_EQ(a.early_drops, 0u);
    EXPECT_EQ(agg.live_entries(), 2u);

    // The owner is found by ct_id, whatever address the destroy event carries.
    agg.add(destroy(2, "10.0.0.77"));
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.destroys, 2u);
    EXPECT_EQ(agg.source(addr("10.0.0.77")), nullptr);
    EXPECT_EQ(agg.source_count(), 1u);
    EXPECT_EQ(agg.live_entries(), 1u);
}

TEST(Aggregator, DestroyOfUnseenEntryCountsButKeepsEntries) {
    Aggregator agg;
    agg.add(insert(1, "10.0.0.1"));
    agg.add(destroy(99, "10.0.0.1"));  // inserted before we started watching
    const SourceStats& a = src_of(agg, "10.0.0.1");
    EXPECT_EQ(a.inserts, 1u);
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.destroys, 1u);
    EXPECT_EQ(agg.live_entries(), 1u);

    // A destroy alone does not start tracking a source: it is counted under other().
    agg.add(destroy(100, "10.0.0.2"));
    EXPECT_EQ(agg.source(addr("10.0.0.2")), nullptr);
    EXPECT_EQ(agg.other().destroys, 1u);
    EXPECT_EQ(agg.other().entries, 0);
    EXPECT_EQ(agg.source_count(), 1u);
    EXPECT_EQ(agg.live_entries(), 1u);

    // A second destroy of the same ct_id is an unseen one: entries do not go below.
    agg.add(destroy(1, "10.0.0.1"));
    agg.add(destroy(1, "10.0.0.1"));
    EXPECT_EQ(a.entries, 0);
    EXPECT_EQ(a.destroys, 3u);
    EXPECT_EQ(agg.live_entries(), 0u);
}

TEST(Aggregator, EarlyDropChargesTheOwner) {
    Aggregator agg;
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.1"));
    agg.add(insert(3, "10.0.0.2"));
    // The event's own address differs: the owner is the source of insert 1.
    agg.add(early_drop(1, "10.0.0.2"));
    const SourceStats& a = src_of(agg, "10.0.0.1");
    const SourceStats& b = src_of(agg, "10.0.0.2");
    EXPECT_EQ(a.inserts, 2u);
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.early_drops, 1u);
    EXPECT_EQ(a.destroys, 0u);  // early drops are not destroys
    EXPECT_EQ(b.inserts, 1u);
    EXPECT_EQ(b.entries, 1);
    EXPECT_EQ(b.early_drops, 0u);
    EXPECT_EQ(agg.live_entries(), 2u);

    // Early drop of an unseen entry: counted on the event's source, no occupancy change.
    agg.add(early_drop(50, "10.0.0.2"));
    EXPECT_EQ(b.early_drops, 1u);
    EXPECT_EQ(b.entries, 1);
    EXPECT_EQ(agg.live_entries(), 2u);

    // The entry is gone: a later destroy of the same ct_id changes no occupancy.
    agg.add(destroy(1, "10.0.0.1"));
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.destroys, 1u);
    EXPECT_EQ(a.early_drops, 1u);
    EXPECT_EQ(agg.live_entries(), 2u);
}

TEST(Aggregator, InsertFailedTakesBackTheInsert) {
    Aggregator agg;
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.1"));
    agg.add(insert(3, "10.0.0.2"));
    agg.add(insert_failed(2, "10.0.0.9"));  // owner found by ct_id
    const SourceStats& a = src_of(agg, "10.0.0.1");
    EXPECT_EQ(a.inserts, 1u);
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.insert_failed, 1u);
    EXPECT_EQ(a.destroys, 0u);
    EXPECT_EQ(agg.source(addr("10.0.0.9")), nullptr);
    EXPECT_EQ(agg.live_entries(), 2u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").inserts, 1u);

    // Clash resolved is taken back the same way.
    agg.add(insert_failed(3, "10.0.0.2", Reason::ClashResolved));
    const SourceStats& b = src_of(agg, "10.0.0.2");
    EXPECT_EQ(b.inserts, 0u);
    EXPECT_EQ(b.entries, 0);
    EXPECT_EQ(b.insert_failed, 1u);
    EXPECT_EQ(agg.live_entries(), 1u);

    // The entry is no longer live: its destroy changes no occupancy.
    agg.add(destroy(2, "10.0.0.1"));
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.destroys, 1u);
    EXPECT_EQ(agg.live_entries(), 1u);

    // insert_failed of an unseen ct_id: counted on the event's source, nothing taken back.
    agg.add(insert_failed(77, "10.0.0.1"));
    EXPECT_EQ(a.inserts, 1u);
    EXPECT_EQ(a.entries, 1);
    EXPECT_EQ(a.insert_failed, 2u);
    // ... and on other() for a source that is not tracked.
    agg.add(insert_failed(78, "10.0.0.3"));
    EXPECT_EQ(agg.source(addr("10.0.0.3")), nullptr);
    EXPECT_EQ(agg.other().insert_failed, 1u);
    EXPECT_EQ(agg.other().inserts, 0u);
    EXPECT_EQ(agg.other().entries, 0);
    EXPECT_EQ(agg.live_entries(), 1u);
}

TEST(Aggregator, LiveEntriesFollowsEveryWayOut) {
    Aggregator agg;
    for (uint64_t ct = 1; ct <= 5; ++ct) agg.add(insert(ct, "10.0.0.1"));
    EXPECT_EQ(agg.live_entries(), 5u);
    agg.add(destroy(1, "10.0.0.1"));
    EXPECT_EQ(agg.live_entries(), 4u);
    agg.add(early_drop(2, "10.0.0.1"));
    EXPECT_EQ(agg.live_entries(), 3u);
    agg.add(insert_failed(3, "10.0.0.1"));
    EXPECT_EQ(agg.live_entries(), 2u);
    agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_TCP));  // drops create no entry
    agg.add(destroy(1000, "10.0.0.1"));                         // unseen
    EXPECT_EQ(agg.live_entries(), 2u);
    const SourceStats& a = src_of(agg, "10.0.0.1");
    EXPECT_EQ(a.entries, 2);
    EXPECT_EQ(a.inserts, 4u);
    EXPECT_EQ(static_cast<uint64_t>(a.entries), agg.live_entries());
}

// ================================================================ Aggregator: drops

TEST(Aggregator, DropsPerSourceAndPerDestination) {
    Aggregator agg;
    for (int i = 0; i < 3; ++i) agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_TCP));
    agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_UDP));
    for (int i = 0; i < 2; ++i) agg.add(drop("10.0.0.2", "10.99.0.1", 443, IPPROTO_TCP));
    agg.add(drop("10.0.0.2", "10.99.0.2", 80, IPPROTO_TCP));

    EXPECT_EQ(src_of(agg, "10.0.0.1").drops, 4u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").drops, 3u);
    EXPECT_EQ(src_of(agg, "10.0.0.1").inserts, 0u);
    EXPECT_EQ(src_of(agg, "10.0.0.1").entries, 0);
    EXPECT_EQ(agg.live_entries(), 0u);

    auto top = agg.top_destinations(10);
    ASSERT_EQ(top.size(), 4u);
    EXPECT_EQ(names(top), (std::vector<std::string>{"10.99.0.1:80/tcp", "10.99.0.1:443/tcp",
                                                    "10.99.0.1:80/udp", "10.99.0.2:80/tcp"}));
    EXPECT_EQ(top[0]->drops, 3u);
    EXPECT_EQ(top[1]->drops, 2u);
    EXPECT_EQ(top[2]->drops, 1u);
    EXPECT_EQ(top[3]->drops, 1u);
    // The events' namespace is part of the key now (issue "What a new user hit" (5)).
    EXPECT_EQ(top[0]->key, (DestKey{addr("10.99.0.1"), 80, IPPROTO_TCP, 4026531840u}));
    EXPECT_EQ(top[2]->key, (DestKey{addr("10.99.0.1"), 80, IPPROTO_UDP, 4026531840u}));
}

TEST(Aggregator, TopDestinationsOrderAndTruncation) {
    Aggregator agg;
    // drops: fd00::5:80/tcp 7, .3:53/udp 5, and ties at 2 (added in reverse of the expected
    // order): .2:22/tcp, .1:8080/tcp, .1:443/tcp, .1:22/tcp, .1:21/tcp
    for (int i = 0; i < 5; ++i) agg.add(drop("10.0.0.1", "10.99.0.3", 53, IPPROTO_UDP));
    for (int i = 0; i < 2; ++i) {
        agg.add(drop("10.0.0.1", "10.99.0.2", 22, IPPROTO_TCP));
        agg.add(drop("10.0.0.1", "10.99.0.1", 8080, IPPROTO_TCP));
        agg.add(drop("10.0.0.1", "10.99.0.1", 443, IPPROTO_TCP));
        agg.add(drop("10.0.0.1", "10.99.0.1", 22, IPPROTO_TCP));
        agg.add(drop("10.0.0.1", "10.99.0.1", 21, IPPROTO_TCP));
    }
    for (int i = 0; i < 7; ++i) agg.add(drop("10.0.0.1", "fd00::5", 80, IPPROTO_TCP));

    EXPECT_EQ(names(agg.top_destinations(100)),
              (std::vector<std::string>{"fd00::5:80/tcp", "10.99.0.3:53/udp", "10.99.0.1:21/tcp",
                                        "10.99.0.1:22/tcp", "10.99.0.1:443/tcp",
                                        "10.99.0.1:8080/tcp", "10.99.0.2:22/tcp"}));
    EXPECT_EQ(names(agg.top_destinations(3)),
              (std::vector<std::string>{"fd00::5:80/tcp", "10.99.0.3:53/udp", "10.99.0.1:21/tcp"}));
    EXPECT_EQ(agg.top_destinations(0).size(), 0u);
    EXPECT_EQ(src_of(agg, "10.0.0.1").drops, 22u);
}

// Ties between destinations that differ only in protocol, or only in address family (same 16
// address bytes): the output must not depend on the order the destinations were first seen
// (stable output, as top_sources guarantees for sources).
TEST(Aggregator, TopDestinationsTieIsStableAcrossInsertionOrder) {
    auto run = [](const DestKey& first, const DestKey& second) {
        Aggregator agg;
        agg.add(drop("10.0.0.1", first.addr.to_string(), first.port, first.proto));
        agg.add(drop("10.0.0.1", second.addr.to_string(), second.port, second.proto));
        return names(agg.top_destinations(10));
    };
    const DestKey tcp{addr("10.99.0.1"), 53, IPPROTO_TCP};
    const DestKey udp{addr("10.99.0.1"), 53, IPPROTO_UDP};
    const auto tu = run(tcp, udp);
    const auto ut = run(udp, tcp);
    ASSERT_EQ(tu.size(), 2u);
    EXPECT_EQ(tu, ut) << "order of tied destinations differing only in proto";

    const DestKey v4{addr("1.2.3.4"), 53, IPPROTO_UDP};
    const DestKey v6{addr("102:304::"), 53, IPPROTO_UDP};
    ASSERT_EQ(v4.addr.bytes, v6.addr.bytes);
    const auto a46 = run(v4, v6);
    const auto a64 = run(v6, v4);
    ASSERT_EQ(a46.size(), 2u);
    EXPECT_EQ(a46, a64) << "order of tied destinations differing only in family";
}

TEST(Aggregator, MaxDestinationsBound) {
    Aggregator agg(options(1 << 10, 2));
    agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_TCP));
    agg.add(drop("10.0.0.1", "10.99.0.2", 80, IPPROTO_TCP));
    for (int i = 0; i < 3; ++i) agg.add(drop("10.0.0.1", "10.99.0.3", 80, IPPROTO_TCP));  // evicts one

    auto top = agg.top_destinations(10);
    ASSERT_EQ(top.size(), 2u);
    // The heaviest destination is found, with its exact drops (counted since it was tracked).
    EXPECT_EQ(names(top)[0], "10.99.0.3:80/tcp");
    EXPECT_EQ(top[0]->drops, 3u);
    EXPECT_EQ(top[1]->drops, 1u);
    // Per-source counting is not affected by the destination bound.
    EXPECT_EQ(src_of(agg, "10.0.0.1").drops, 5u);
}

// ================================================================ Aggregator: ranking

// Four sources with different figures under each key:
//            inserts  rate1s@1000  entries  drops
//  10.0.0.1     3          0          3       1
//  10.0.0.2     5          1          1       2
//  10.0.0.3     3          3          1       0
//  fd00::1      2          0          1       2
class AggregatorRanking : public ::testing::Test {
protected:
    static constexpr uint64_t kNow = 1000;

    void SetUp() override {
        uint64_t ct = 1;
        // Added in an order that is not the expected output order.
        agg.add(insert(ct++, "fd00::1", kNow));  // second in progress: not in Rate1s
        agg.add(insert(ct++, "fd00::1", kNow));
        agg.add(destroy(2, "fd00::1"));

        for (int i = 0; i < 3; ++i) agg.add(insert(ct++, "10.0.0.3", kNow - 1));
        agg.add(destroy(ct - 1, "10.0.0.3"));
        agg.add(destroy(ct - 2, "10.0.0.3"));

        agg.add(insert(ct++, "10.0.0.2", kNow - 1));
        for (int i = 0; i < 4; ++i) {
            agg.add(insert(ct, "10.0.0.2", kNow - 10));
            agg.add(destroy(ct, "10.0.0.2"));
            ++ct;
        }

        for (int i = 0; i < 3; ++i) agg.add(insert(ct++, "10.0.0.1", kNow - 2));

        agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_TCP));
        agg.add(drop("fd00::1", "10.99.0.1", 80, IPPROTO_TCP));
        agg.add(drop("fd00::1", "10.99.0.1", 80, IPPROTO_TCP));
        agg.add(drop("10.0.0.2", "10.99.0.1", 80, IPPROTO_TCP));
        agg.add(drop("10.0.0.2", "10.99.0.1", 80, IPPROTO_TCP));
    }

    using V = std::vector<std::string>;
    Aggregator agg;
};

TEST_F(AggregatorRanking, FiguresAreAsDesigned) {
    EXPECT_EQ(agg.source_count(), 4u);
    EXPECT_EQ(src_of(agg, "10.0.0.1").inserts, 3u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").inserts, 5u);
    EXPECT_EQ(src_of(agg, "10.0.0.3").inserts, 3u);
    EXPECT_EQ(src_of(agg, "fd00::1").inserts, 2u);
    EXPECT_EQ(src_of(agg, "10.0.0.1").entries, 3);
    EXPECT_EQ(src_of(agg, "10.0.0.2").entries, 1);
    EXPECT_EQ(src_of(agg, "10.0.0.3").entries, 1);
    EXPECT_EQ(src_of(agg, "fd00::1").entries, 1);
    EXPECT_EQ(src_of(agg, "10.0.0.1").insert_rate.rate(kNow, 1), 0.0);
    EXPECT_EQ(src_of(agg, "10.0.0.2").insert_rate.rate(kNow, 1), 1.0);
    EXPECT_EQ(src_of(agg, "10.0.0.3").insert_rate.rate(kNow, 1), 3.0);
    EXPECT_EQ(src_of(agg, "fd00::1").insert_rate.rate(kNow, 1), 0.0);
    EXPECT_EQ(src_of(agg, "10.0.0.2").insert_rate.rate(kNow, 10), 0.5);  // (1 + 4) / 10
    EXPECT_EQ(src_of(agg, "10.0.0.1").drops, 1u);
    EXPECT_EQ(src_of(agg, "10.0.0.2").drops, 2u);
    EXPECT_EQ(src_of(agg, "10.0.0.3").drops, 0u);
    EXPECT_EQ(src_of(agg, "fd00::1").drops, 2u);
    EXPECT_EQ(agg.live_entries(), 6u);
}

TEST_F(AggregatorRanking, ByInserts) {
    EXPECT_EQ(names(agg.top_sources(SortKey::Inserts, 10, kNow)),
              (V{"10.0.0.2", "10.0.0.1", "10.0.0.3", "fd00::1"}));
}

TEST_F(AggregatorRanking, ByRate1s) {
    // 10.0.0.1 and fd00::1 tie at 0 in the last second: the 10 s rate decides (0.3 vs 0).
    EXPECT_EQ(names(agg.top_sources(SortKey::Rate1s, 10, kNow)),
              (V{"10.0.0.3", "10.0.0.2", "10.0.0.1", "fd00::1"}));
    // One second later fd00::1's two inserts (second 1000) are the last complete second.
    // The others tie at 0 there; by 10 s rate 10.0.0.1 and 10.0.0.3 have 0.3 (and equal
    // inserts: the address decides), 10.0.0.2 has 0.1.
    EXPECT_EQ(names(agg.top_sources(SortKey::Rate1s, 10, kNow + 1)),
              (V{"fd00::1", "10.0.0.1", "10.0.0.3", "10.0.0.2"}));
}

TEST_F(AggregatorRanking, ByRate10s) {
    // 10.0.0.2 has 0.5/s over ten seconds; 10.0.0.3 and 10.0.0.1 tie at 0.3 and the last
    // second decides (3 vs 0); fd00::1's inserts are in the second still in progress.
    EXPECT_EQ(names(agg.top_sources(SortKey::Rate10s, 10, kNow)),
              (V{"10.0.0.2", "10.0.0.3", "10.0.0.1", "fd00::1"}));
    // Eleven seconds on, 10.0.0.2's inserts at second 990 have left the window: 4 of 5 gone.
    EXPECT_EQ(src_of(agg, "10.0.0.2").insert_rate.rate(kNow + 1, 10), 0.1);
}

TEST_F(AggregatorRanking, ByEntries) {
    EXPECT_EQ(names(agg.top_sources(SortKey::Entries, 10, kNow)),
              (V{"10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1"}));
}

TEST_F(AggregatorRanking, ByDrops) {
    EXPECT_EQ(names(agg.top_sources(SortKey::Drops, 10, kNow)),
              (V{"10.0.0.2", "fd00::1", "10.0.0.1", "10.0.0.3"}));
}

TEST_F(AggregatorRanking, Truncation) {
    EXPECT_EQ(names(agg.top_sources(SortKey::Inserts, 2, kNow)), (V{"10.0.0.2", "10.0.0.1"}));
    EXPECT_EQ(names(agg.top_sources(SortKey::Drops, 1, kNow)), (V{"10.0.0.2"}));
    EXPECT_EQ(agg.top_sources(SortKey::Inserts, 0, kNow).size(), 0u);
    EXPECT_EQ(agg.top_sources(SortKey::Entries, 4, kNow).size(), 4u);
}

TEST(Aggregator, TopSourcesTieBreakIsByAddressBytesNotText) {
    Aggregator agg;
    // As text "10.0.0.10" < "10.0.0.9"; as address bytes 9 < 10.
    agg.add(insert(1, "10.0.0.10"));
    agg.add(insert(2, "10.0.0.9"));
    agg.add(insert(3, "9.255.255.255"));
    agg.add(insert(4, "::1"));
    agg.add(insert(5, "0.0.0.1"));
    EXPECT_EQ(names(agg.top_sources(SortKey::Inserts, 10, 0)),
              (std::vector<std::string>{"0.0.0.1", "9.255.255.255", "10.0.0.9", "10.0.0.10",
                                        "::1"}));
}

TEST(Aggregator, TopSourcesEmpty) {
    Aggregator agg;
    EXPECT_EQ(agg.top_sources(SortKey::Inserts, 10, 0).size(), 0u);
    EXPECT_EQ(agg.top_destinations(10).size(), 0u);
    EXPECT_EQ(agg.source_count(), 0u);
    EXPECT_EQ(agg.live_entries(), 0u);
}

// ================================================================ Aggregator: bounds, seen

TEST(Aggregator, MaxSourcesBound) {
    Aggregator agg(options(16, 1 << 10));
    // One heavy source, then 300 distinct light ones: tracking stays at 16 sources, the
    // heavy one (50 > total/capacity = 350/16) is kept with exact figures, and nothing is
    // lost from the totals.
    for (uint64_t ct = 1; ct <= 50; ++ct) agg.add(insert(ct, "10.0.0.1"));
    for (uint64_t i = 0; i < 300; ++i)
        agg.add(insert(1000 + i, "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)));
    EXPECT_EQ(agg.source_count(), 16u);
    EXPECT_EQ(agg.source_capacity(), 16u);
    const SourceStats& heavy = src_of(agg, "10.0.0.1");
    EXPECT_EQ(heavy.inserts, 50u);
    EXPECT_EQ(heavy.entries, 50);
    EXPECT_EQ(heavy.activity_error, 0u);
    EXPECT_EQ(agg.top_sources(SortKey::Inserts, 1, 0)[0]->addr, addr("10.0.0.1"));

    uint64_t inserts = agg.other().inserts;
    int64_t entries = agg.other().entries;
    for (const auto* s : agg.top_sources(SortKey::Inserts, 100, 0)) {
        inserts += s->inserts;
        entries += s->entries;
    }
    EXPECT_EQ(inserts, 350u);
    EXPECT_EQ(entries, 350);
    EXPECT_EQ(agg.live_entries(), 350u);
    // Any untracked source had at most this many events (Space-Saving: <= total/capacity).
    EXPECT_LE(agg.untracked_bound(), 350u / 16);

    // Entries of an evicted source stay with other(): their destroys come off there, even
    // if the same address is tracked again later.
    agg.add(destroy(1000, "10.1.0.0"));
    EXPECT_EQ(agg.other().destroys + (agg.source(addr("10.1.0.0")) ? agg.source(addr("10.1.0.0"))->destroys : 0), 1u);
    for (uint64_t ct = 1001; ct < 1300; ++ct) {
        const std::string a = "10.1." + std::to_string((ct - 1000) / 256) + "." + std::to_string((ct - 1000) % 256);
        agg.add(destroy(ct, a));
    }
    for (uint64_t ct = 1; ct <= 50; ++ct) agg.add(destroy(ct, "10.0.0.1"));
    int64_t left = agg.other().entries;
    for (const auto* s : agg.top_sources(SortKey::Inserts, 100, 0)) {
        EXPECT_GE(s->entries, 0) << s->addr.to_string();
        left += s->entries;
    }
    EXPECT_EQ(left, 0);
    EXPECT_EQ(agg.live_entries(), 0u);
}

// The slot of an evicted source is reused at once by the next one: entries the old source
// inserted must come off other() (where its figures went), never off the new owner.
TEST(Aggregator, EntriesOfAnEvictedSourceDoNotFollowItsSlot) {
    Aggregator agg(options(1, 16));
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.2"));  // takes over the only slot
    EXPECT_EQ(agg.source(addr("10.0.0.1")), nullptr);
    const SourceStats& b = src_of(agg, "10.0.0.2");
    EXPECT_EQ(b.entries, 1);
    EXPECT_EQ(b.activity_error, 1u);
    EXPECT_EQ(agg.other().entries, 1);
    agg.add(destroy(1, "10.0.0.1"));
    EXPECT_EQ(b.entries, 1);
    EXPECT_EQ(b.destroys, 0u);
    EXPECT_EQ(agg.other().entries, 0);
    EXPECT_EQ(agg.other().destroys, 1u);
    // The first source back in the same slot is a new period: ct 2 is still not its own.
    agg.add(insert(3, "10.0.0.1"));
    agg.add(insert(4, "10.0.0.1"));
    agg.add(insert(5, "10.0.0.1"));
    const SourceStats& a = src_of(agg, "10.0.0.1");
    agg.add(early_drop(2, "10.0.0.2"));
    EXPECT_EQ(a.entries, 3);
    EXPECT_EQ(a.early_drops, 0u);
    EXPECT_EQ(agg.other().early_drops, 1u);
    agg.add(destroy(4, "10.0.0.1"));
    EXPECT_EQ(a.entries, 2);
    EXPECT_EQ(agg.live_entries(), 2u);
}

// top_sources selects the best n without sorting everything: it must give exactly the
// first n of a full sort under every key, with many ties.
TEST(Aggregator, TopSourcesEqualsTheFullSortPrefix) {
    Aggregator agg(options(300, 16));
    std::mt19937_64 rng(3);
    uint64_t ct = 1;
    for (int i = 0; i < 5000; ++i) {
        const std::string a = "10.0." + std::to_string(rng() % 2) + "." + std::to_string(rng() % 200);
        switch (rng() % 4) {
            case 0: agg.add(drop(a, "10.99.0.1", 80, IPPROTO_TCP)); break;
            case 1: agg.add(destroy(ct - rng() % 50, a)); break;
            default: agg.add(insert(ct++, a, 990 + rng() % 11)); break;
        }
    }
    for (SortKey key : {SortKey::Inserts, SortKey::Rate1s, SortKey::Rate10s, SortKey::Entries, SortKey::Drops}) {
        const auto all = agg.top_sources(key, agg.source_count(), 1000);
        ASSERT_EQ(all.size(), agg.source_count());
        for (size_t n : {0, 1, 2, 20, 100, 299}) {
            const auto top = agg.top_sources(key, n, 1000);
            ASSERT_EQ(top.size(), std::min(n, all.size()));
            EXPECT_TRUE(std::equal(top.begin(), top.end(), all.begin())) << "n " << n;
        }
    }
}

TEST(Aggregator, ZeroCapacityIsRejected) {
    EXPECT_THROW(Aggregator(options(0, 16)), std::invalid_argument);
    EXPECT_THROW(Aggregator(options(16, 0)), std::invalid_argument);
}

TEST(Aggregator, SeenCountsEachKind) {
    Aggregator agg;
    EXPECT_EQ(agg.seen(), (std::array<uint64_t, 6>{0, 0, 0, 0, 0, 0}));
    agg.add(insert(1, "10.0.0.1"));
    agg.add(insert(2, "10.0.0.1"));
    agg.add(insert(3, "10.0.0.2"));
    agg.add(insert(4, "10.0.0.2"));
    agg.add(drop("10.0.0.1", "10.99.0.1", 80, IPPROTO_TCP));
    agg.add(drop("10.0.0.3", "10.99.0.1", 80, IPPROTO_UDP));
    agg.add(drop("10.0.0.3", "10.99.0.1", 80, IPPROTO_UDP));
    agg.add(early_drop(1, "10.0.0.1"));
    agg.add(insert_failed(2, "10.0.0.1"));
    agg.add(insert_failed(500, "10.0.0.1"));  // unseen ct_id: still seen
    agg.add(destroy(3, "10.0.0.2"));
    agg.add(destroy(600, "10.0.0.2"));  // unseen ct_id: still seen
    agg.add(destroy(601, "10.0.0.2"));
    const auto& seen = agg.seen();
    EXPECT_EQ(seen[0], 0u);
    EXPECT_EQ(seen[static_cast<size_t>(EventKind::Insert)], 4u);
    EXPECT_EQ(seen[static_cast<size_t>(EventKind::Drop)], 3u);
    EXPECT_EQ(seen[static_cast<size_t>(EventKind::EarlyDrop)], 1u);
    EXPECT_EQ(seen[static_cast<size_t>(EventKind::InsertFailed)], 2u);
    EXPECT_EQ(seen[static_cast<size_t>(EventKind::Destroy)], 3u);
    EXPECT_EQ(agg.live_entries(), 1u);
}

TEST(Aggregator, DefaultOptions) {
    const Aggregator::Options o;
    EXPECT_EQ(o.max_sources, size_t{1} << 16);
    EXPECT_EQ(o.max_destinations, size_t{1} << 16);
}

TEST(DestKey, EqualityAndHash) {
    const DestKeyHash h;
    const DestKey a{addr("10.99.0.1"), 80, IPPROTO_TCP};
    const DestKey b{addr("10.99.0.1"), 80, IPPROTO_TCP};
    EXPECT_EQ(a, b);
    EXPECT_EQ(h(a), h(b));
    EXPECT_NE(a, (DestKey{addr("10.99.0.1"), 80, IPPROTO_UDP}));
    EXPECT_NE(a, (DestKey{addr("10.99.0.1"), 81, IPPROTO_TCP}));
    EXPECT_NE(a, (DestKey{addr("10.99.0.2"), 80, IPPROTO_TCP}));
}

}  // namespace

// Issue "What a new user hit" (5): the same address in two namespaces is two hosts.
TEST(AggregatorNamespaces, SameAddressInTwoNamespacesIsTwoSources) {
    Aggregator agg;
    auto in = [](uint64_t ct, uint32_t netns) {
        Event e = insert(ct, "127.0.1.1");
        e.netns = netns;
        return e;
    };
    for (uint64_t i = 0; i < 3; ++i) agg.add(in(100 + i, 11));
    for (uint64_t i = 0; i < 5; ++i) agg.add(in(200 + i, 22));
    Event gone = destroy(200, "127.0.1.1");
    gone.netns = 22;
    agg.add(gone);

    ASSERT_NE(agg.source(addr("127.0.1.1"), 11), nullptr);
    ASSERT_NE(agg.source(addr("127.0.1.1"), 22), nullptr);
    EXPECT_EQ(agg.source(addr("127.0.1.1"), 11)->entries, 3);
    EXPECT_EQ(agg.source(addr("127.0.1.1"), 22)->entries, 4);
    EXPECT_EQ(agg.source(addr("127.0.1.1"), 22)->netns, 22u);
    EXPECT_EQ(agg.source_count(), 2u);
    // Without a namespace the address is ambiguous now.
    EXPECT_EQ(agg.source(addr("127.0.1.1")), nullptr);
    const auto top = agg.top_sources(SortKey::Entries, 10, 0);
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[0]->netns, 22u);
    EXPECT_EQ(top[1]->netns, 11u);
}

TEST(AggregatorNamespaces, BaselineAndDestinationsArePerNamespace) {
    Aggregator agg;
    agg.add_baseline(11, addr("10.0.0.1"), 40);
    agg.add_baseline(22, addr("10.0.0.1"), 7);
    // A destroy of an entry we never saw inserted takes from its own namespace's baseline.
    Event d = destroy(999, "10.0.0.1");
    d.netns = 22;
    agg.add(d);
    EXPECT_EQ(agg.source(addr("10.0.0.1"), 11)->entries, 40);
    EXPECT_EQ(agg.source(addr("10.0.0.1"), 22)->entries, 6);
    EXPECT_EQ(agg.source(addr("10.0.0.1"), 22)->baseline, 6u);

    Event a = drop("10.0.0.1", "10.99.0.1", 53, IPPROTO_UDP), b = a;
    a.netns = 11;
    b.netns = 22;
    agg.add(a);
    agg.add(b);
    agg.add(b);
    const auto dests = agg.top_destinations(10);
    ASSERT_EQ(dests.size(), 2u);
    EXPECT_EQ(dests[0]->key.netns, 22u);
    EXPECT_EQ(dests[0]->drops, 2u);
    EXPECT_EQ(dests[1]->key.netns, 11u);
}

// Issue (4): every entry the aggregator counts is attributed somewhere, so that the live
// view can show the table's count minus this as "unattributed".
TEST(AggregatorAttribution, AttributedEntriesIsTheSumOfSourcesAndOther) {
    Aggregator agg(options(2, 2));
    agg.add_baseline(4026531840u, addr("10.0.0.9"), 10);
    uint64_t ct = 1;
    for (int s = 1; s <= 5; ++s)
        for (int i = 0; i < s; ++i) agg.add(insert(ct++, "10.0.0." + std::to_string(s)));
    agg.add(destroy(1, "10.0.0.1"));
    agg.add(destroy(5000, "10.0.0.9"));  // a baseline entry (or other's) going away
    agg.add(insert_failed(2, "10.0.0.2"));
    int64_t sum = agg.other().entries;
    for (const auto* s : agg.top_sources(SortKey::Entries, 100, 0)) sum += s->entries;
    EXPECT_EQ(agg.attributed_entries(), sum);
    EXPECT_EQ(agg.attributed_entries(), 10 + 15 - 1 - 1 - 1);
}
