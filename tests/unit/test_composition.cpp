// The table's composition: classes, the timeout holding each, idle and age histograms,
// predictions, and the timeout advice built on them, on synthetic dumps.
#include <netinet/in.h>

#include <gtest/gtest.h>

#include "ctbpf/composition.h"
#include "ctbpf/system.h"

using namespace ctbpf;

namespace {

Address v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    Address x;
    x.family = AF_INET;
    x.bytes[0] = a, x.bytes[1] = b, x.bytes[2] = c, x.bytes[3] = d;
    return x;
}

const std::map<std::string, uint64_t> kTimeouts = {
    {"tcp_timeout_established", 432000}, {"tcp_timeout_time_wait", 120}, {"tcp_timeout_syn_sent", 120},
    {"udp_timeout", 30},                 {"udp_timeout_stream", 120},    {"icmp_timeout", 30},
    {"generic_timeout", 600},            {"tcp_timeout_close_wait", 3600}};

DumpedEntry udp_unreplied(uint8_t src_last, uint16_t sport, uint32_t left) {
    DumpedEntry d;
    d.proto = IPPROTO_UDP;
    d.src = v4(10, 0, 0, src_last);
    d.dst = v4(10, 0, 1, 1);
    d.sport = sport;
    d.dport = 53;
    d.timeout_s = left;
    return d;
}

DumpedEntry tcp(uint8_t state, uint8_t src_last, uint16_t sport, uint32_t left) {
    DumpedEntry d;
    d.proto = IPPROTO_TCP;
    d.tcp_state = state;
    d.status = kStatusSeenReply | kStatusAssured;
    d.src = v4(10, 0, 0, src_last);
    d.dst = v4(10, 0, 2, 1);
    d.sport = sport;
    d.dport = 443;
    d.timeout_s = left;
    return d;
}

TableFacts facts_with(const Composition& c, int64_t max) {
    TableFacts f;
    f.table.count = static_cast<int64_t>(c.total);
    f.table.max = max;
    f.table.buckets = max;
    f.object_size = 320;
    f.timeouts = c.timeouts;
    f.netns.initial = true;
    f.composition = c;
    return f;
}

bool names(const Assessment& a, const std::string& sysctl) {
    for (const auto& i : a.advice)
        if (i.command.find("nf_conntrack_" + sysctl + "=") != std::string::npos) return true;
    return false;
}

}  // namespace

TEST(Classify, TcpByItsStateOthersByTheirStatusBits) {
    EXPECT_EQ(classify_entry(IPPROTO_TCP, 3, 0), (EntryClass{IPPROTO_TCP, EntryState::Established}));
    EXPECT_EQ(classify_entry(IPPROTO_TCP, 7, kStatusAssured), (EntryClass{IPPROTO_TCP, EntryState::TimeWait}));
    EXPECT_EQ(classify_entry(IPPROTO_TCP, 42, 0).state, EntryState::Unknown);
    EXPECT_EQ(classify_entry(IPPROTO_UDP, 0, 0).state, EntryState::Unreplied);
    EXPECT_EQ(classify_entry(IPPROTO_UDP, 0, kStatusSeenReply).state, EntryState::Replied);
    EXPECT_EQ(classify_entry(IPPROTO_UDP, 0, kStatusSeenReply | kStatusAssured).state, EntryState::Assured);
    EXPECT_EQ(class_name({IPPROTO_ICMP, EntryState::Replied}), "icmp REPLIED");

    Event e;
    e.proto = IPPROTO_TCP;
    EXPECT_EQ(classify_event(e).state, EntryState::Unknown);  // no state read (old recording)
    e.has_state = true;
    e.tcp_state = 7;
    EXPECT_EQ(classify_event(e).state, EntryState::TimeWait);
}

TEST(Classify, EachClassNamesTheTimeoutThatRefreshesIt) {
    EXPECT_EQ(timeout_sysctl({IPPROTO_TCP, EntryState::Established}), "tcp_timeout_established");
    EXPECT_EQ(timeout_sysctl({IPPROTO_TCP, EntryState::CloseWait}), "tcp_timeout_close_wait");
    EXPECT_EQ(timeout_sysctl({IPPROTO_TCP, EntryState::SynSent2}), "");
    EXPECT_EQ(timeout_sysctl({IPPROTO_UDP, EntryState::Unreplied}), "udp_timeout");
    EXPECT_EQ(timeout_sysctl({IPPROTO_UDP, EntryState::Replied}), "udp_timeout");
    EXPECT_EQ(timeout_sysctl({IPPROTO_UDP, EntryState::Assured}), "udp_timeout_stream");
    EXPECT_EQ(timeout_sysctl({IPPROTO_ICMPV6, EntryState::Unreplied}), "icmpv6_timeout");
    EXPECT_EQ(timeout_sysctl({IPPROTO_GRE, EntryState::Unreplied}), "");
    EXPECT_EQ(timeout_sysctl({IPPROTO_ESP, EntryState::Unreplied}), "generic_timeout");
}

TEST(DurationHistogramTest, LogBucketsAndQuantiles) {
    DurationHistogram h;
    for (int i = 0; i < 90; ++i) h.add(1.5);  // bucket (1, 2]
    for (int i = 0; i < 10; ++i) h.add(400);  // bucket (200, 500]
    h.add(1e9);                                // +Inf
    EXPECT_EQ(h.count, 101u);
    EXPECT_EQ(h.counts[4], 90u);
    EXPECT_EQ(h.counts[11], 10u);
    EXPECT_EQ(h.counts.back(), 1u);
    EXPECT_DOUBLE_EQ(h.quantile(0.5), 2);
    EXPECT_DOUBLE_EQ(h.quantile(0.95), 500);
    EXPECT_DOUBLE_EQ(h.quantile(1.0), 500000);  // +Inf bucket: the last finite bound
    DurationHistogram g;
    g.merge(h);
    EXPECT_EQ(g.count, 101u);
    EXPECT_DOUBLE_EQ(g.sum_s, h.sum_s);
}

TEST(Predict, ShorterTimeoutKeepsTheEntriesIdleLessThanIt) {
    std::vector<uint32_t> idle;
    // 100/s arriving, each idle until 30 s; idle is rounded up (timeout minus seconds left,
    // which the kernel rounds down): 1..30.
    for (uint32_t i = 1; i <= 30; ++i)
        for (int k = 0; k < 100; ++k) idle.push_back(i);
    EXPECT_EQ(predict_entries(idle, 30, 10), 1000u);
    EXPECT_EQ(predict_entries(idle, 30, 30), 3000u);
    // Longer: 100/s reach the end of 30 s, each would stay 30 s more.
    EXPECT_EQ(predict_entries(idle, 30, 60), 6000u);
    EXPECT_EQ(predict_entries({}, 30, 10), 0u);
}

TEST(Composition, CountsClassesSourcesAndIdleAndPredicts) {
    CompositionBuilder b(7, kTimeouts, {}, 0);
    for (uint16_t i = 0; i < 900; ++i) b.add(udp_unreplied(1, static_cast<uint16_t>(1000 + i), 29 - i % 30));
    for (uint16_t i = 0; i < 100; ++i) b.add(tcp(3, 2, static_cast<uint16_t>(2000 + i), 431000));
    const Composition c = b.finish(0.01);
    EXPECT_EQ(c.total, 1000u);
    ASSERT_EQ(c.classes.size(), 2u);
    EXPECT_EQ(c.classes[0].cls, (EntryClass{IPPROTO_UDP, EntryState::Unreplied}));
    EXPECT_EQ(c.classes[0].entries, 900u);
    EXPECT_EQ(c.classes[0].sysctl, "udp_timeout");
    EXPECT_EQ(c.classes[0].timeout_s, 30u);
    EXPECT_EQ(c.classes[0].idle.count, 900u);
    EXPECT_EQ(c.classes[1].cls, (EntryClass{IPPROTO_TCP, EntryState::Established}));
    ASSERT_EQ(c.sources.size(), 2u);
    EXPECT_EQ(c.sources[0].addr, v4(10, 0, 0, 1));
    EXPECT_EQ(c.sources[0].entries, 900u);
    ASSERT_EQ(c.sources[1].by_class.size(), 1u);
    EXPECT_EQ(c.sources[1].by_class[0].second, 100u);
    // 10.0.1.1:53 never answered: silent.
    ASSERT_EQ(c.silent.size(), 1u);
    EXPECT_EQ(c.silent[0].addr, v4(10, 0, 1, 1));
    EXPECT_EQ(c.silent[0].unreplied, 900u);
    // udp_timeout 30 -> 10: idle 0..29 uniform, a third stays.
    const TimeoutPrediction* udp = nullptr;
    for (const auto& p : c.predictions)
        if (p.sysctl == "udp_timeout") udp = &p;
    ASSERT_NE(udp, nullptr);
    EXPECT_EQ(udp->to_s, 10u);
    EXPECT_EQ(udp->entries_now, 900u);
    EXPECT_EQ(udp->entries_after, 300u);
}

TEST(Advice, ATableFullOfUnrepliedUdpIsNotToldToLowerTheEstablishedTimeout) {
    CompositionBuilder b(7, kTimeouts, {}, 0);
    for (uint16_t i = 0; i < 900; ++i) b.add(udp_unreplied(static_cast<uint8_t>(1 + i % 4), i, 29 - i % 30));
    // Established entries idle for days, but few of them.
    for (uint16_t i = 0; i < 50; ++i) b.add(tcp(3, 9, i, 1000));
    const Assessment a = assess(facts_with(b.finish(0), 1000));
    EXPECT_TRUE(names(a, "udp_timeout"));
    EXPECT_FALSE(names(a, "tcp_timeout_established"));
    EXPECT_EQ(a.recommended_tcp_established, 0u);
    ASSERT_FALSE(a.timeout_changes.empty());
    EXPECT_EQ(a.timeout_changes[0].sysctl, "udp_timeout");
    EXPECT_EQ(a.timeout_changes[0].entries_after, 300u);
    bool said_effect = false;
    for (const auto& i : a.advice)
        if (i.what.find("about 600 fewer entries") != std::string::npos &&
            i.why.find(human_bytes(600 * 320)) != std::string::npos)
            said_effect = true;
    EXPECT_TRUE(said_effect);
}

TEST(Advice, EstablishedLeftoversNameTheEstablishedTimeoutWithItsEffect) {
    CompositionBuilder b(7, kTimeouts, {}, 0);
    // 800 connections that vanished days ago (idle 2..4 days), 200 busy ones.
    for (uint16_t i = 0; i < 800; ++i) b.add(tcp(3, 1, i, 432000 - (172800 + i * 200)));
    for (uint16_t i = 0; i < 200; ++i) b.add(tcp(3, 2, i, 431990));
    const Assessment a = assess(facts_with(b.finish(0), 1200));
    EXPECT_TRUE(names(a, "tcp_timeout_established"));
    EXPECT_EQ(a.recommended_tcp_established, 86400u);
    EXPECT_FALSE(names(a, "udp_timeout"));
    ASSERT_EQ(a.timeout_changes.size(), 1u);
    EXPECT_EQ(a.timeout_changes[0].entries_after, 200u);
}

TEST(Advice, AClassWithALittleShareIsNeverNamed) {
    CompositionBuilder b(7, kTimeouts, {}, 0);
    for (uint16_t i = 0; i < 950; ++i) b.add(tcp(3, 1, i, 431990));  // busy, nothing to gain
    for (uint16_t i = 0; i < 50; ++i) b.add(tcp(7, 2, i, 10));       // TIME_WAIT, 5%
    const Assessment a = assess(facts_with(b.finish(0), 1000));
    EXPECT_TRUE(a.timeout_changes.empty());
    EXPECT_FALSE(names(a, "tcp_timeout_time_wait"));
    EXPECT_FALSE(names(a, "tcp_timeout_established"));
}

TEST(EntryClockTest, LifetimeFromInsertToDestroyAndAgesAcrossDumps) {
    EntryClock clock(0);
    Event ins;
    ins.kind = EventKind::Insert;
    ins.proto = IPPROTO_UDP;
    ins.netns = 7;
    ins.src = v4(10, 0, 0, 1);
    ins.dst = v4(10, 0, 1, 1);
    ins.sport = 1000;
    ins.dport = 53;
    ins.ts_ns = 1'000'000'000;
    EXPECT_FALSE(clock.on_event(ins));
    const uint64_t k = tuple_key(7, 0, IPPROTO_UDP, ins.src, ins.dst, 1000, 53);
    ASSERT_TRUE(clock.age(k, 3'500'000'000));
    EXPECT_DOUBLE_EQ(clock.age(k, 3'500'000'000)->first, 2.5);
    EXPECT_TRUE(clock.age(k, 3'500'000'000)->second);

    // A dump holding another entry: that one is first seen now, not exact.
    const uint64_t other = tuple_key(7, 0, IPPROTO_UDP, ins.src, ins.dst, 1001, 53);
    clock.after_dump({k, other}, 4'000'000'000, 4'000'000'000);
    EXPECT_FALSE(clock.age(other, 5'000'000'000)->second);
    EXPECT_DOUBLE_EQ(clock.age(other, 5'000'000'000)->first, 1.0);

    Event d = ins;
    d.kind = EventKind::Destroy;
    d.ts_ns = 31'000'000'000;
    const auto lived = clock.on_event(d);
    ASSERT_TRUE(lived);
    EXPECT_DOUBLE_EQ(*lived, 30.0);
    EXPECT_FALSE(clock.age(k, 31'000'000'000));
    // An entry first seen in a dump has no known lifetime.
    d.sport = 1001;
    EXPECT_FALSE(clock.on_event(d));
    EXPECT_EQ(clock.size(), 0u);
    // An expired entry the gc worker has not freed yet is not in a dump: its clock is kept for
    // a few dumps, so its destroy still gives its lifetime...
    ins.sport = 1002;
    clock.on_event(ins);
    clock.after_dump({}, 40'000'000'000, 40'000'000'000, 3);
    clock.after_dump({}, 41'000'000'000, 41'000'000'000, 3);
    d.sport = 1002;
    d.ts_ns = 42'000'000'000;
    ASSERT_TRUE(clock.on_event(d));
    // ...and forgotten after more than that many dumps in a row (its destroy was lost).
    clock.on_event(ins);
    for (int i = 0; i < 3; ++i) clock.after_dump({}, 50'000'000'000, 50'000'000'000, 3);
    EXPECT_EQ(clock.size(), 1u);
    clock.after_dump({}, 60'000'000'000, 60'000'000'000, 3);
    EXPECT_EQ(clock.size(), 0u);
}

TEST(LifetimesTest, ByEndClassAndBoundedPerSource) {
    Lifetimes l(2);
    Event e;
    e.kind = EventKind::Destroy;
    e.proto = IPPROTO_TCP;
    e.has_state = true;
    e.tcp_state = 7;
    for (uint8_t s = 1; s <= 3; ++s) {
        e.src = v4(10, 0, 0, s);
        for (int i = 0; i < s; ++i) l.add(e, 120);
    }
    EXPECT_EQ(l.by_class().at(EntryClass{IPPROTO_TCP, EntryState::TimeWait}).count, 6u);
    EXPECT_EQ(l.total().count, 6u);
    // Two sources kept: source 1 (fewest) gave way to source 3.
    EXPECT_EQ(l.source({v4(10, 0, 0, 1), 0}), nullptr);
    ASSERT_NE(l.source({v4(10, 0, 0, 3), 0}), nullptr);
    EXPECT_EQ(l.source({v4(10, 0, 0, 3), 0})->count, 3u);
}
