// The rules the live-observation library applies to every command: when a table is full,
// why a drop happened, and the command-line values it parses (triggers, protocols,
// backends, durations, sizes). Pure: time and the table are injected.
#include <gtest/gtest.h>

#include "ctbpf/error.h"
#include "ctbpf/observe.h"
#include "ctbpf/table.h"
#include "ctbpf/units.h"

using namespace ctbpf;

TEST(TableIsFull, OneEntryPerCpuOrOnePercentBelowMax) {
    EXPECT_FALSE(table_is_full(TableState{1, 0, 0, 0}));        // no limit
    EXPECT_TRUE(table_is_full(TableState{1, 300, 300, 0}));
    EXPECT_TRUE(table_is_full(TableState{1, 297, 300, 0}));     // 1% of 300 = 3
    EXPECT_FALSE(table_is_full(TableState{1, 296, 300, 0}));
    EXPECT_TRUE(table_is_full(TableState{1, 99, 100, 0}));      // at least one entry
    EXPECT_FALSE(table_is_full(TableState{1, 98, 100, 0}));
    EXPECT_TRUE(table_is_full(TableState{1, 92, 100, 0}, 8));   // 8 CPUs: 8 phantom slots
    EXPECT_FALSE(table_is_full(TableState{1, 91, 100, 0}, 8));
    EXPECT_TRUE(table_is_full(TableState{1, 65000, 65536, 0}, 2));  // 1% of 65536 = 655
    EXPECT_FALSE(table_is_full(TableState{1, 64880, 65536, 0}, 2));
    EXPECT_TRUE(table_is_full(TableState{1, 400, 300, 0}));     // max lowered below count
    EXPECT_DOUBLE_EQ((TableState{1, 150, 300, 0}).fill(), 0.5);
}

namespace {
struct FakeTable {
    uint64_t now = 10'000'000'000ull;
    TableState t{7, 0, 300, 0};
    int reads = 0;
    TableReader reader() {
        return TableReader{[this](uint32_t netns) -> std::optional<TableState> {
                               ++reads;
                               if (netns != t.netns) return std::nullopt;
                               return t;
                           },
                           [this] { return now; }, 2};
    }
};
}  // namespace

TEST(AttributeDrop, KernelReasonWinsOverTheFill) {
    FakeTable f;
    DropAttribution a(f.reader());
    f.t.count = 300;
    EXPECT_EQ(a.attribute_drop(7, f.now, Reason::NoEntry), Reason::NoEntry);
    f.t.count = 0;
    EXPECT_EQ(a.attribute_drop(7, f.now, Reason::TableFull), Reason::TableFull);
    EXPECT_EQ(f.reads, 0);  // the kernel knew: no read needed
}

TEST(AttributeDrop, WithoutAKernelReasonAFullTableWithinASecond) {
    FakeTable f;
    DropAttribution a(f.reader());
    f.t.count = 299;  // full: within 2 CPUs' slack
    EXPECT_EQ(a.attribute_drop(7, f.now, Reason::None), Reason::TableFull);
    // A drop delivered 0.9 s after the reading, without a new reading (within 5 ms): full.
    f.now += 1'000'000;
    f.t.count = 10;
    EXPECT_EQ(a.attribute_drop(7, f.now + 899'000'000ull, Reason::None), Reason::TableFull);
    // The table emptied and was read again; a drop 1.5 s after the last full reading is not.
    f.now += 1'500'000'000ull;
    EXPECT_EQ(a.attribute_drop(7, f.now, Reason::None), Reason::NoEntry);
    // A namespace that cannot be read is never called full.
    EXPECT_EQ(a.attribute_drop(8, f.now, Reason::None), Reason::NoEntry);
}

TEST(AttributeDrop, ReadsAtMostEveryFiveMillisecondsPerNamespace) {
    FakeTable f;
    DropAttribution a(f.reader());
    f.t.count = 300;
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(a.attribute_drop(7, f.now, Reason::None), Reason::TableFull);
    EXPECT_EQ(f.reads, 1);
    f.now += 6'000'000;
    a.attribute_drop(7, f.now, Reason::None);
    EXPECT_EQ(f.reads, 2);
}

TEST(ParseTriggers, FillDropsAndCombinations) {
    Trigger t = parse_triggers({"fill>=90%"});
    ASSERT_TRUE(t.fill);
    EXPECT_DOUBLE_EQ(*t.fill, 0.9);
    EXPECT_FALSE(t.drops);
    EXPECT_TRUE(t.fires(0.9, 0));
    EXPECT_FALSE(t.fires(0.89, 5));
    t = parse_triggers({"fill > 50 , drops"});
    EXPECT_DOUBLE_EQ(*t.fill, 0.5);
    EXPECT_TRUE(t.drops);
    EXPECT_EQ(t.text, "fill>50 or drops");
    EXPECT_TRUE(t.fires(0.1, 1));
    t = parse_triggers({"drops|fill>=75%"});
    EXPECT_TRUE(t.drops && t.fill);
    EXPECT_FALSE(parse_triggers({}).armed());
    for (const char* bad : {"fill>=0%", "fill>=101%", "fill>=abc", "fill>=", "drop", "fill<90%"}) {
        try {
            parse_triggers({bad});
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.exit_code(), 2) << bad;
            EXPECT_NE(std::string(e.what()).find("--trigger"), std::string::npos) << e.what();
        }
    }
}

TEST(ParseProto, NamesNumbersAndErrors) {
    EXPECT_FALSE(parse_proto(""));
    EXPECT_EQ(parse_proto("tcp"), 6);
    EXPECT_EQ(parse_proto("udp"), 17);
    EXPECT_EQ(parse_proto("icmpv6"), 58);
    EXPECT_EQ(parse_proto("250"), 250);  // unnamed protocols go by number
    try {
        parse_proto("tcpp");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.exit_code(), 2);
        EXPECT_NE(std::string(e.what()).find("unknown protocol 'tcpp'"), std::string::npos);
    }
    EXPECT_EQ(parse_backend_option("kprobe"), Backend::Kprobe);
    EXPECT_THROW(parse_backend_option("ebpf"), Error);
}

TEST(Units, DurationsAndSizes) {
    EXPECT_DOUBLE_EQ(parse_duration("30", "--d"), 30);
    EXPECT_DOUBLE_EQ(parse_duration("30s", "--d"), 30);
    EXPECT_DOUBLE_EQ(parse_duration("250ms", "--d"), 0.25);
    EXPECT_DOUBLE_EQ(parse_duration("1.5m", "--d"), 90);
    EXPECT_DOUBLE_EQ(parse_duration("2h", "--d"), 7200);
    EXPECT_DOUBLE_EQ(parse_duration("1d", "--d"), 86400);
    for (const char* bad : {"", "s", "-1", "5x", "nan", "inf"}) EXPECT_THROW(parse_duration(bad, "--d"), Error) << bad;
    EXPECT_EQ(parse_size("1048576", "--s"), 1048576u);
    EXPECT_EQ(parse_size("512K", "--s"), 512u * 1024);
    EXPECT_EQ(parse_size("64M", "--s"), 64u << 20);
    EXPECT_EQ(parse_size("2GiB", "--s"), 2ull << 30);
    for (const char* bad : {"", "0", "0.5", "12Q", "-3M"}) EXPECT_THROW(parse_size(bad, "--s"), Error) << bad;
    try {
        parse_size("12Q", "--max-size");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_EQ(e.exit_code(), 2);
        EXPECT_EQ(std::string(e.what()), "--max-size '12Q' is not a size (e.g. 512K, 64M, 2G)");
    }
}

TEST(Units, EveryDurationOptionTakesTheSameSyntaxAndRefusesZero) {
    EXPECT_FALSE(parse_duration_option("", "--duration"));
    EXPECT_DOUBLE_EQ(*parse_duration_option("30", "--duration"), 30);
    EXPECT_DOUBLE_EQ(*parse_duration_option("5m", "--duration"), 300);
    for (const char* bad : {"0", "0s", "-1", "1e400"}) {
        try {
            parse_duration_option(bad, "--duration");
            ADD_FAILURE() << bad;
        } catch (const Error& e) {
            EXPECT_EQ(e.exit_code(), 2);
            EXPECT_LT(std::string(e.what()).size(), 100u) << e.what();  // one readable line
        }
    }
}
