// Unit tests for FlatMap (include/ctbpf/flat_map.h): the aggregator's ct_id -> owner map.
#include <cstdint>
#include <random>
#include <unordered_map>

#include <gtest/gtest.h>

#include "ctbpf/flat_map.h"

namespace {

using ctbpf::FlatMap;

struct Val {
    uint32_t a;
    uint32_t b;
};

TEST(FlatMap, InsertFindTake) {
    FlatMap<Val> m;
    EXPECT_TRUE(m.empty());
    EXPECT_EQ(m.find(7), nullptr);
    EXPECT_TRUE(m.insert_or_assign(7, {1, 2}));
    EXPECT_FALSE(m.insert_or_assign(7, {3, 4}));  // assigns
    ASSERT_NE(m.find(7), nullptr);
    EXPECT_EQ(m.find(7)->a, 3u);
    EXPECT_EQ(m.size(), 1u);
    const auto v = m.take(7);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->b, 4u);
    EXPECT_FALSE(m.take(7).has_value());
    EXPECT_FALSE(m.erase(7));
    EXPECT_TRUE(m.empty());
}

TEST(FlatMap, KeyZeroIsAValidKey) {
    FlatMap<Val> m;
    EXPECT_EQ(m.find(0), nullptr);
    EXPECT_TRUE(m.insert_or_assign(0, {5, 6}));
    EXPECT_TRUE(m.insert_or_assign(1, {7, 8}));
    EXPECT_EQ(m.size(), 2u);
    ASSERT_NE(m.find(0), nullptr);
    EXPECT_EQ(m.find(0)->a, 5u);
    EXPECT_FALSE(m.insert_or_assign(0, {9, 9}));
    EXPECT_EQ(m.take(0)->a, 9u);
    EXPECT_EQ(m.find(0), nullptr);
    EXPECT_EQ(m.size(), 1u);
    EXPECT_EQ(m.find(1)->b, 8u);
}

TEST(FlatMap, GrowsAndShrinksWithTheLiveCount) {
    FlatMap<Val> m;
    EXPECT_EQ(m.cell_count(), FlatMap<Val>::kMinCells);
    for (uint64_t k = 1; k <= 10000; ++k) m.insert_or_assign(k * 4096, {uint32_t(k), 0});
    EXPECT_EQ(m.size(), 10000u);
    EXPECT_GE(m.cell_count(), 20000u);  // load at most 1/2
    EXPECT_LE(m.cell_count(), 32768u);
    for (uint64_t k = 1; k <= 10000; ++k) ASSERT_EQ(m.find(k * 4096)->a, k);
    for (uint64_t k = 1; k <= 9990; ++k) ASSERT_TRUE(m.erase(k * 4096));
    EXPECT_EQ(m.size(), 10u);
    EXPECT_LE(m.cell_count(), 128u);  // memory follows the live count back down
    for (uint64_t k = 9991; k <= 10000; ++k) EXPECT_EQ(m.find(k * 4096)->a, k);
}

// Random inserts, assigns and erases against std::unordered_map, on a small key space so
// that runs are long and backward-shift deletion moves cells across runs and the wrap.
TEST(FlatMap, MatchesUnorderedMapUnderChurn) {
    std::mt19937_64 rng(7);
    for (uint64_t space : {40ull, 1000ull, 1ull << 40}) {
        FlatMap<Val> m;
        std::unordered_map<uint64_t, Val> ref;
        std::uniform_int_distribution<uint64_t> key(0, space);
        for (int i = 0; i < 200000; ++i) {
            const uint64_t k = key(rng);
            const auto op = rng() % 3;
            if (op < 2) {
                const Val v{uint32_t(i), uint32_t(k)};
                EXPECT_EQ(m.insert_or_assign(k, v), !ref.contains(k));
                ref[k] = v;
            } else {
                const auto got = m.take(k);
                const auto it = ref.find(k);
                ASSERT_EQ(got.has_value(), it != ref.end()) << "key " << k;
                if (got) {
                    EXPECT_EQ(got->a, it->second.a);
                    ref.erase(it);
                }
            }
            ASSERT_EQ(m.size(), ref.size());
        }
        for (const auto& [k, v] : ref) {
            ASSERT_NE(m.find(k), nullptr) << "key " << k;
            EXPECT_EQ(m.find(k)->a, v.a);
        }
    }
}

}  // namespace
