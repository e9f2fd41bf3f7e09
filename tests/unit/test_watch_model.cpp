// The live view's model with a fake source: rates from the kernel totals, growth and the
// time-to-full projection, the fullest table first, alerts, and CIDR-filtered rows.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "ctbpf/recording.h"
#include "ctbpf/composition.h"
#include "ctbpf/live_view.h"

using namespace ctbpf;

namespace {

struct Fake {
    uint64_t now = 1'000'000'000'000ull;  // ns
    KernelTotals totals;
    std::vector<TableState> tables;  // count, max, buckets per netns

    ModelSource source() {
        return ModelSource{"fake", {{"a", 1}, {"b", 2}}, [this] { return totals; },
                           [this](uint32_t netns) -> std::optional<TableState> {
                               for (const auto& t : tables)
                                   if (t.netns == netns) return t;
                               return std::nullopt;
                           },
                           [this] { return now; }, {}, [this] { return others; }, {}};
    }
    std::vector<OtherNetnsIncident> others;
};

Event insert(uint64_t ct, const char* src, uint64_t ts_ns) {
    Event e;
    e.kind = EventKind::Insert;
    e.ct_id = ct;
    e.ts_ns = ts_ns;
    e.proto = 17;
    e.src = *Address::parse(src);
    e.dst = *Address::parse("10.9.9.9");
    return e;
}

}  // namespace

TEST(WatchModel, RatesGrowthAndTimeToFull) {
    Fake f;
    f.tables = {{1, 100, 1000, 1024}, {2, 600, 1000, 1024}};
    LiveModel m(f.source(), TableFacts{}, false, 0);
    Aggregator agg;

    // Two seconds later: 800 inserts, 200 destroys, 100 early drops; table b grew by 400.
    f.now += 2'000'000'000ull;
    f.totals.insert = 800;
    f.totals.destroy = 200;
    f.totals.early_drop = 100;
    f.tables[1].count = 1000 - 0;  // b is now full
    f.tables[0].count = 100;
    LiveSnapshot s = m.take(agg, DropCounts{0, 0}, ModelOptions{});
    EXPECT_DOUBLE_EQ(s.inserts_s, 400);
    EXPECT_DOUBLE_EQ(s.destroys_s, 150);  // destroys and early drops
    EXPECT_DOUBLE_EQ(s.early_drops_s, 50);
    ASSERT_EQ(s.tables.size(), 2u);
    EXPECT_EQ(s.tables[0].name, "b");  // the fullest first
    EXPECT_DOUBLE_EQ(s.tables[0].fill(), 1.0);
    ASSERT_TRUE(s.seconds_to_full.has_value());
    EXPECT_DOUBLE_EQ(*s.seconds_to_full, 0);  // full now
    EXPECT_EQ(s.level, Level::Critical);

    // One second later b lost 100 and a gained 300: net growth +200/s; b (fullest) has 100
    // free at that rate: 0.5 s to full.
    f.now += 1'000'000'000ull;
    f.tables[1].count = 900;
    f.tables[0].count = 400;
    s = m.take(agg, DropCounts{0, 0}, ModelOptions{});
    EXPECT_DOUBLE_EQ(s.growth_s, 200);
    ASSERT_TRUE(s.seconds_to_full.has_value());
    EXPECT_DOUBLE_EQ(*s.seconds_to_full, 0.5);

    // Shrinking: no projection.
    f.now += 1'000'000'000ull;
    f.tables[1].count = 800;
    s = m.take(agg, DropCounts{0, 0}, ModelOptions{});
    EXPECT_LT(s.growth_s, 0);
    EXPECT_FALSE(s.seconds_to_full.has_value());
}

TEST(WatchModel, DropsRaiseAnAlertWithAdvice) {
    Fake f;
    f.tables = {{1, 50, 100, 128}};
    LiveModel m(f.source(), TableFacts{}, false, 0);
    Aggregator agg;
    f.now += 1'000'000'000ull;
    f.totals.drop = 30;
    const LiveSnapshot s = m.take(agg, DropCounts{30, 0}, ModelOptions{});
    EXPECT_DOUBLE_EQ(s.drops_s, 30);
    EXPECT_DOUBLE_EQ(s.drops_full_s, 30);
    EXPECT_EQ(s.level, Level::Critical);
    ASSERT_FALSE(s.alerts.empty());
    EXPECT_NE(s.alerts[0].find("dropping packets"), std::string::npos);
}

// watch says which timeout to change from what the entries are, as status does: a table
// full of unreplied UDP names udp_timeout with its effect, never tcp_timeout_established.
TEST(WatchModel, CompositionAdviceNamesTheTimeoutThatHoldsTheTable) {
    LiveSnapshot s;
    TableRow t;
    t.netns = 7;
    t.count = 900;
    t.max = 1000;
    s.tables.push_back(t);
    s.object_size = 320;
    CompositionBuilder b(7, {{"udp_timeout", 30}, {"tcp_timeout_established", 432000}}, {}, 0);
    for (uint16_t i = 0; i < 900; ++i) {
        DumpedEntry d;
        d.proto = 17;
        d.src.family = d.dst.family = 2;
        d.src.bytes[0] = 10;
        d.dst.bytes[0] = 11;
        d.dst.bytes[3] = static_cast<uint8_t>(i % 200);  // many destinations: none silent
        d.sport = i;
        d.dport = 53;
        d.timeout_s = 29 - i % 30;
        b.add(d);
    }
    s.composition.push_back(b.finish(0));
    add_composition_advice(s);
    ASSERT_EQ(s.alerts.size(), 1u);
    EXPECT_NE(s.alerts[0].find("nf_conntrack_udp_timeout=10"), std::string::npos) << s.alerts[0];
    EXPECT_NE(s.alerts[0].find("about 600 fewer entries"), std::string::npos) << s.alerts[0];
}

// Every level above ok carries its reason, and a table filling fast is worth a word
// before it reaches 80% (the issue: "critical" with no alerts; silence while "full in 8s").
TEST(WatchModel, EveryLevelAboveOkSaysWhyAndFillingFastSpeaksEarly) {
    Fake f;
    f.tables = {{1, 1500, 3000, 4096}};
    TableFacts history;
    history.counters["drop"] = 5000;  // an incident long ago: not this view's business
    history.kernel_log.table_full_total = 290;
    history.kernel_log.table_full = {{1.0, "nf_conntrack: table full, dropping packet"}};
    LiveModel m(f.source(), history, false, 0);
    Aggregator agg;
    f.now += 1'000'000'000ull;
    LiveSnapshot s = m.take(agg, DropCounts{}, ModelOptions{});
    EXPECT_EQ(s.level, Level::Ok) << (s.alerts.empty() ? "" : s.alerts[0]);
    EXPECT_TRUE(s.alerts.empty());
    // 2360 of 3000 (79%), growing by 80 entries a second: full in about 8 s.
    for (int i = 0; i < 2; ++i) {
        f.now += 1'000'000'000ull;
        f.tables[0].count += 390;
        f.totals.insert += 390;
        s = m.take(agg, DropCounts{}, ModelOptions{});
    }
    f.now += 1'000'000'000ull;
    f.tables[0].count = 2360;
    f.totals.insert += 80;
    s = m.take(agg, DropCounts{}, ModelOptions{});
    EXPECT_LT(s.tables[0].fill(), kWarnFill);
    EXPECT_EQ(s.level, Level::Warning);
    ASSERT_FALSE(s.alerts.empty());
    EXPECT_NE(s.alerts[0].find("grows by 80 entries/s: full in 9s"), std::string::npos) << s.alerts[0];
    bool advice = false;
    for (const auto& a : s.alerts) advice = advice || a.find("advice: raise nf_conntrack_max") == 0;
    EXPECT_TRUE(advice);
    // Whatever the level, a reason comes with it.
    for (int64_t count : {2400, 2900, 3000}) {
        f.now += 1'000'000'000ull;
        f.tables[0].count = count;
        s = m.take(agg, DropCounts{}, ModelOptions{});
        if (s.level != Level::Ok) {
            EXPECT_FALSE(s.alerts.empty()) << count;
        }
    }
    EXPECT_EQ(s.level, Level::Critical);
}

// Another namespace's incident is invisible from here otherwise: the view names it.
TEST(WatchModel, AnotherNamespacesIncidentIsNamedWithHowToLook) {
    Fake f;
    f.tables = {{1, 10, 3000, 4096}};
    f.others = {{4026532177u, "nc1", 290, 3.0}};
    LiveModel m(f.source(), TableFacts{}, false, 0);
    Aggregator agg;
    f.now += 1'000'000'000ull;
    const LiveSnapshot s = m.take(agg, DropCounts{}, ModelOptions{});
    EXPECT_EQ(s.level, Level::Warning);
    ASSERT_FALSE(s.alerts.empty());
    EXPECT_NE(s.alerts[0].find("network namespace nc1 (4026532177) logged 'table full"), std::string::npos) << s.alerts[0];
    EXPECT_NE(s.alerts[0].find("ctbpf watch --netns nc1"), std::string::npos) << s.alerts[0];
    for (const auto& a : s.alerts) EXPECT_EQ(a.find("advice: raise"), std::string::npos) << a;  // not this table's fault
}

TEST(WatchModel, RowsFollowSortAndCidr) {
    Fake f;
    f.tables = {{1, 10, 1000, 1024}};
    LiveModel m(f.source(), TableFacts{}, false, 0);
    Aggregator agg;
    const uint64_t ts = f.now - 1'500'000'000ull;  // in the last complete second
    uint64_t ct = 1;
    for (int i = 0; i < 5; ++i) agg.add(insert(ct++, "10.0.0.1", ts));
    for (int i = 0; i < 3; ++i) agg.add(insert(ct++, "192.168.1.7", ts));
    ModelOptions o;
    LiveSnapshot s = m.take(agg, DropCounts{0, 0}, o);
    ASSERT_EQ(s.sources.size(), 2u);
    EXPECT_EQ(s.sources[0].addr.to_string(), "10.0.0.1");
    EXPECT_DOUBLE_EQ(s.sources[0].share, 0.5);  // 5 of the table's 10
    o.cidr = Cidr::parse("192.168.0.0/16");
    m.rows(s, agg, o);
    ASSERT_EQ(s.sources.size(), 1u);
    EXPECT_EQ(s.sources[0].addr.to_string(), "192.168.1.7");
    EXPECT_EQ(s.sources[0].entries, 3);
}

// Issue "What a new user hit" (4): what no source accounts for is shown as its own row, so
// that sources + other + unattributed always equals the table's count.
TEST(WatchModel, UnattributedIsTheTableCountMinusEveryAttributedEntry) {
    Fake f;
    f.tables = {{1, 30, 1000, 1024}, {2, 12, 1000, 1024}};
    LiveModel m(f.source(), TableFacts{}, true, 10);
    Aggregator agg(Aggregator::Options{2, 2});
    agg.add_baseline(1, *Address::parse("10.0.0.9"), 10);
    uint64_t ct = 1;
    for (int s = 1; s <= 4; ++s)
        for (int i = 0; i < 5; ++i) {
            Event e = insert(ct++, ("10.0.0." + std::to_string(s)).c_str(), f.now - 1'500'000'000ull);
            e.netns = 1 + s % 2;
            agg.add(e);
        }
    ModelOptions o;
    o.top = 1;  // rows shown do not matter: the figure covers every source
    const LiveSnapshot s = m.take(agg, DropCounts{0, 0}, o);
    EXPECT_EQ(s.unattributed, 42 - 30);
    const auto j = to_json(s);
    EXPECT_EQ(j["tracking"]["unattributed"], 12);
    EXPECT_NE(to_text(s).find("(unattributed)"), std::string::npos) << to_text(s);
}

// Issue (5): rows carry their namespace (inode and name), in JSON and, with several
// namespaces, in the text view.
TEST(WatchModel, SourceRowsNameTheirNamespace) {
    Fake f;
    f.tables = {{1, 10, 1000, 1024}, {2, 10, 1000, 1024}};
    LiveModel m(f.source(), TableFacts{}, false, 0);
    Aggregator agg;
    uint64_t ct = 1;
    for (uint32_t ns : {1u, 2u, 2u}) {
        Event e = insert(ct++, "127.0.1.1", f.now - 1'500'000'000ull);
        e.netns = ns;
        agg.add(e);
    }
    ModelOptions o;
    o.sort = SourceSort::Entries;
    const LiveSnapshot s = m.take(agg, DropCounts{0, 0}, o);
    ASSERT_EQ(s.sources.size(), 2u);
    EXPECT_EQ(s.sources[0].netns, 2u);
    EXPECT_EQ(s.sources[0].netns_name, "b");
    EXPECT_EQ(s.sources[0].entries, 2);
    EXPECT_EQ(s.sources[1].netns_name, "a");
    const auto j = to_json(s);
    EXPECT_EQ(j["sources"][0]["netns"], 2);
    EXPECT_EQ(j["sources"][0]["netns_name"], "b");
    EXPECT_EQ(j["sources"][1]["netns"], 1);
    const std::string text = to_text(s);
    EXPECT_NE(text.find("127.0.1.1 [b]"), std::string::npos) << text;
    EXPECT_NE(text.find("127.0.1.1 [a]"), std::string::npos) << text;
}
