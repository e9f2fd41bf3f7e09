// Unit tests for SpaceSaving (include/ctbpf/heavy_hitters.h): exact counts while keys fit,
// the Space-Saving bounds on adversarial, random, skewed and weighted streams (checked
// against exact counts), payloads and eviction callbacks, and no allocation in add().
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

#include "ctbpf/decode.h"
#include "ctbpf/heavy_hitters.h"

// Counts every allocation in this test binary, so a test can prove add() makes none.
// Replacing the global operator new is allowed once per program; this file is the one.
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Not inlined: GCC would otherwise see free() meet a pointer from new and warn.
// Every form that the replaced delete may free is replaced too: the standard's nothrow and
// array forms call these, but ASan's own versions of them do not, so under ASan memory from
// its nothrow new (std::stable_sort's temporary buffer) reached free() here.
[[gnu::noinline]] void* operator new(std::size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, const std::nothrow_t& nt) noexcept { return operator new(n, nt); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using ctbpf::Address;
using ctbpf::AddressHash;
using ctbpf::SpaceSaving;
using Exact = std::unordered_map<uint64_t, uint64_t>;

// Checks every Space-Saving guarantee of `ss` against the exact weights of all keys added.
template <class SS>
::testing::AssertionResult guarantees_hold(const SS& ss, const Exact& exact) {
    const uint64_t total = ss.total();
    const uint64_t cap = ss.capacity();
    const uint64_t m = ss.min_count();
    auto fail = [](auto... what) { return (::testing::AssertionFailure() << ... << what); };

    if (ss.size() != std::min<size_t>(exact.size(), cap))
        return fail("size ", ss.size(), ", distinct keys ", exact.size());
    if (m * cap > total) return fail("min_count ", m, " > total/capacity ", total, "/", cap);

    const auto all = ss.top(ss.size());
    uint64_t sum = 0, smallest = UINT64_MAX;
    for (size_t i = 0; i < all.size(); ++i) {
        const auto& e = *all[i];
        const auto it = exact.find(e.key);
        if (it == exact.end()) return fail("tracks unseen key ", e.key);
        const uint64_t truth = it->second;
        if (e.error > e.count || e.count - e.error > truth || truth > e.count)
            return fail("key ", e.key, ": count ", e.count, " error ", e.error, " true ", truth);
        if (e.error > m) return fail("key ", e.key, ": error ", e.error, " > min_count ", m);
        if (ss.find(e.key) != &e) return fail("find(", e.key, ") is not its entry");
        if (i > 0 && (all[i - 1]->count < e.count ||
                      (all[i - 1]->count == e.count && all[i - 1]->error > e.error)))
            return fail("top() out of order at ", i);
        sum += e.count;
        smallest = std::min(smallest, e.count);
    }
    // Each add raises the counts by exactly its weight, including when it takes a slot over.
    if (sum != total) return fail("sum of counts ", sum, " != total ", total);
    if (ss.size() == cap && smallest != m) return fail("min_count ", m, " != ", smallest);
    if (ss.size() < cap && m != 0) return fail("min_count ", m, " while not full");
    for (const auto& [key, truth] : exact) {
        // Untracked keys weigh at most min_count, so any key above total/capacity is kept.
        if (ss.find(key) == nullptr && truth > m)
            return fail("untracked key ", key, " weighs ", truth, " > min_count ", m);
    }
    return ::testing::AssertionSuccess();
}

// Adds the stream, checking all guarantees after every event.
template <class SS>
void run_checked(SS& ss, Exact& exact, const std::vector<uint64_t>& keys,
                 const std::vector<uint64_t>& weights = {}) {
    for (size_t i = 0; i < keys.size(); ++i) {
        const uint64_t w = weights.empty() ? 1 : weights[i];
        ss.add(keys[i], w);
        exact[keys[i]] += w;
        ASSERT_TRUE(guarantees_hold(ss, exact)) << "after event " << i;
    }
}

// Zipf(s) over ranks 0..n-1 by inverse CDF: std:: distributions differ between libraries,
// this gives the same stream everywhere for one seed.
class Zipf {
public:
    Zipf(size_t n, double s) : cdf_(n) {
        double sum = 0;
        for (size_t i = 0; i < n; ++i) cdf_[i] = sum += 1.0 / std::pow(double(i + 1), s);
    }
    size_t operator()(std::mt19937_64& rng) const {
        const double u = double(rng() >> 11) * 0x1p-53 * cdf_.back();
        const size_t i = std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
        return std::min(i, cdf_.size() - 1);
    }

private:
    std::vector<double> cdf_;
};

// Rank -> key: an odd multiplier is a bijection, so keys are distinct but not ordered.
uint64_t key_of(size_t rank) { return (rank + 1) * 0x9E3779B97F4A7C15ull; }

TEST(SpaceSaving, RejectsZeroCapacity) {
    EXPECT_THROW(SpaceSaving<uint64_t>(0), std::invalid_argument);
    EXPECT_NO_THROW(SpaceSaving<uint64_t>(1));
}

TEST(SpaceSaving, ExactWhileKeysFit) {
    for (size_t cap : {3u, 4u, 100u}) {  // 3 distinct keys: room to spare and exactly full
        SCOPED_TRACE(cap);
        SpaceSaving<uint64_t> ss(cap);
        EXPECT_EQ(ss.size(), 0u);
        EXPECT_TRUE(ss.top(5).empty());
        for (uint64_t k : {7, 9, 7, 8, 7, 9}) ss.add(k);
        EXPECT_EQ(ss.size(), 3u);
        EXPECT_EQ(ss.capacity(), cap);
        EXPECT_EQ(ss.total(), 6u);
        EXPECT_EQ(ss.min_count(), cap == 3 ? 1u : 0u);  // nothing evicted yet
        EXPECT_EQ(ss.find(1), nullptr);

        const auto t = ss.top(10);
        ASSERT_EQ(t.size(), 3u);
        EXPECT_EQ(t[0]->key, 7u);
        EXPECT_EQ(t[0]->count, 3u);
        EXPECT_EQ(t[1]->key, 9u);
        EXPECT_EQ(t[1]->count, 2u);
        EXPECT_EQ(t[2]->key, 8u);
        EXPECT_EQ(t[2]->count, 1u);
        for (const auto* e : t) EXPECT_EQ(e->error, 0u);
        EXPECT_EQ(ss.top(1).size(), 1u);
        EXPECT_TRUE(ss.top(0).empty());
        EXPECT_TRUE(ss.top_guaranteed(2));
    }
}

TEST(SpaceSaving, FirstEvictionInheritsMinimum) {
    SpaceSaving<uint64_t> ss(2);
    ss.add(1);
    ss.add(1);
    ss.add(2);
    const auto& e = ss.add(3);  // takes over 2, the only key with the minimum count 1
    EXPECT_EQ(e.key, 3u);
    EXPECT_EQ(e.count, 2u);
    EXPECT_EQ(e.error, 1u);
    EXPECT_EQ(e.lower_bound(), 1u);
    EXPECT_EQ(ss.find(2), nullptr);
    EXPECT_EQ(ss.min_count(), 2u);
    EXPECT_FALSE(ss.guaranteed(e));              // 1 is not > 2
    EXPECT_FALSE(ss.guaranteed(*ss.find(1)));   // 2 is not > 2 either
}

// Streams built to hurt Space-Saving: every event evicts, heavy keys hide behind floods,
// counts arrive in increasing or decreasing blocks.
std::vector<std::pair<std::string, std::vector<uint64_t>>> adversarial_streams(size_t cap) {
    std::vector<std::pair<std::string, std::vector<uint64_t>>> out;
    std::vector<uint64_t> s;
    for (size_t i = 0; i < 2000; ++i) s.push_back(i % (cap + 1));  // cycle one key too many
    out.emplace_back("round robin", s);
    s.clear();
    for (size_t i = 0; i < 2000; ++i) s.push_back(1000 + i);  // all distinct
    out.emplace_back("all distinct", s);
    s.clear();
    for (size_t i = 0; i < 1500; ++i) s.push_back(1000 + i);  // flood, then the heavy key
    s.insert(s.end(), 500, 1);
    out.emplace_back("late heavy", s);
    s.clear();
    for (size_t i = 0; i < 1500; ++i) {  // heavy keys interleaved with fresh noise
        s.push_back(i % 3 == 0 ? i % 2 : 1000 + i);
    }
    out.emplace_back("interleaved", s);
    s.clear();
    for (uint64_t k = 1; k <= 60; ++k) s.insert(s.end(), k, k);  // ascending blocks
    out.emplace_back("ascending blocks", s);
    std::reverse(s.begin(), s.end());
    out.emplace_back("descending blocks", s);
    return out;
}

TEST(SpaceSaving, GuaranteesOnAdversarialStreams) {
    for (size_t cap : {1u, 2u, 7u, 32u}) {
        for (const auto& [name, keys] : adversarial_streams(cap)) {
            SCOPED_TRACE(name + ", capacity " + std::to_string(cap));
            SpaceSaving<uint64_t> ss(cap);
            Exact exact;
            run_checked(ss, exact, keys);
            if (name == "late heavy") {  // 500 of 2000 events: above total/capacity for cap >= 4
                const auto* e = ss.find(1);
                if (cap >= 4) {
                    ASSERT_NE(e, nullptr);
                    EXPECT_GE(e->count, 500u);
                    EXPECT_TRUE(ss.guaranteed(*e));
                }
            }
        }
    }
}

TEST(SpaceSaving, GuaranteesOnRandomStreams) {
    std::mt19937_64 rng(42);
    for (size_t cap : {1u, 5u, 16u, 64u}) {
        for (size_t alphabet : {8u, 100u, 3000u}) {
            SCOPED_TRACE("capacity " + std::to_string(cap) + ", keys " + std::to_string(alphabet));
            std::vector<uint64_t> keys(3000);
            for (auto& k : keys) k = rng() % alphabet;
            SpaceSaving<uint64_t> ss(cap);
            Exact exact;
            run_checked(ss, exact, keys);
        }
    }
}

// Hashes that collide on purpose: long probe runs, and deletions shifting cells back.
struct ConstHash {
    size_t operator()(uint64_t) const { return 42; }
};
struct FewHashes {
    size_t operator()(uint64_t k) const { return k % 5; }
};

TEST(SpaceSaving, GuaranteesWithCollidingHashes) {
    std::mt19937_64 rng(7);
    std::vector<uint64_t> keys(4000);
    for (auto& k : keys) k = rng() % 200;
    {
        SpaceSaving<uint64_t, std::monostate, ConstHash> ss(16);
        Exact exact;
        run_checked(ss, exact, keys);
    }
    {
        SpaceSaving<uint64_t, std::monostate, FewHashes> ss(16);
        Exact exact;
        run_checked(ss, exact, keys);
    }
}

TEST(SpaceSaving, WeightedExact) {
    SpaceSaving<uint64_t> ss(5);
    for (uint64_t k = 1; k <= 5; ++k) ss.add(k, k);  // counts 1..5: five buckets
    EXPECT_EQ(ss.add(1, 10).count, 11u);            // jumps over four buckets to the top
    EXPECT_EQ(ss.add(2, 3).count, 5u);              // lands in the bucket of key 5
    EXPECT_EQ(ss.add(3, 0).count, 3u);              // weight 0 changes nothing
    EXPECT_EQ(ss.total(), 28u);
    std::vector<uint64_t> counts;
    for (const auto* e : ss.top(5)) {
        counts.push_back(e->count);
        EXPECT_EQ(e->error, 0u);
    }
    EXPECT_EQ(counts, (std::vector<uint64_t>{11, 5, 5, 4, 3}));
    EXPECT_EQ(ss.top(1)[0]->key, 1u);
    EXPECT_EQ(ss.min_count(), 3u);
}

TEST(SpaceSaving, WeightedEviction) {
    SpaceSaving<uint64_t> ss(2);
    ss.add(1, 5);
    ss.add(2, 3);
    const auto& c = ss.add(3, 4);  // takes over 2 (count 3)
    EXPECT_EQ(c.count, 7u);
    EXPECT_EQ(c.error, 3u);
    EXPECT_EQ(ss.find(2), nullptr);
    EXPECT_EQ(ss.min_count(), 5u);
    const auto& d = ss.add(4, 1);  // takes over 1 (count 5)
    EXPECT_EQ(d.count, 6u);
    EXPECT_EQ(d.error, 5u);
    EXPECT_EQ(ss.find(1), nullptr);
    EXPECT_EQ(ss.top(1)[0]->key, 3u);
    EXPECT_EQ(ss.total(), 13u);
}

TEST(SpaceSaving, GuaranteesOnWeightedRandomStreams) {
    std::mt19937_64 rng(1234);
    for (size_t cap : {1u, 8u, 32u}) {
        SCOPED_TRACE(cap);
        std::vector<uint64_t> keys(3000), weights(3000);
        for (size_t i = 0; i < keys.size(); ++i) {
            keys[i] = rng() % 100;
            weights[i] = 1 + rng() % (i % 2 ? 3 : 1000);  // small and large jumps
        }
        SpaceSaving<uint64_t> ss(cap);
        Exact exact;
        run_checked(ss, exact, keys, weights);
    }
}

struct Tag {
    int id = 0;
    std::string note;
};

TEST(SpaceSaving, PayloadResetOnTakeoverAndEvictCallback) {
    using SS = SpaceSaving<uint64_t, Tag>;
    SS ss(2);
    std::vector<SS::Entry> evicted;
    auto on_evict = [&](const SS::Entry& e) { evicted.push_back(e); };

    ss.add(1, 1, on_evict).payload = Tag{1, "one"};
    ss.add(1, 1, on_evict);
    ss.add(2, 1, on_evict).payload = Tag{2, "two"};
    EXPECT_TRUE(evicted.empty());  // not full before, and tracked keys evict nothing
    EXPECT_EQ(ss.find(1)->payload.note, "one");  // kept while the key keeps its slot

    const auto& e = ss.add(3, 1, on_evict);  // takes over 2, the minimum
    ASSERT_EQ(evicted.size(), 1u);
    EXPECT_EQ(evicted[0].key, 2u);
    EXPECT_EQ(evicted[0].count, 1u);
    EXPECT_EQ(evicted[0].error, 0u);
    EXPECT_EQ(evicted[0].payload.id, 2);  // seen before the reset
    EXPECT_EQ(evicted[0].payload.note, "two");
    EXPECT_EQ(e.key, 3u);
    EXPECT_EQ(e.payload.id, 0);
    EXPECT_EQ(e.payload.note, "");

    ss.find(3)->payload.id = 33;  // payload updated without counting
    EXPECT_EQ(ss.find(3)->count, 2u);
    EXPECT_EQ(ss.find(3)->payload.id, 33);
    EXPECT_EQ(ss.find(1)->payload.id, 1);
}

TEST(SpaceSaving, EvictCallbackNamesEveryKeyThatLeaves) {
    using SS = SpaceSaving<uint64_t, uint64_t>;
    SS ss(10);
    std::set<uint64_t> tracked;  // rebuilt from add() and on_evict alone
    uint64_t evictions = 0;
    std::mt19937_64 rng(99);
    for (int i = 0; i < 20000; ++i) {
        const uint64_t k = rng() % 50;
        const bool was_tracked = ss.find(k) != nullptr;
        const bool was_full = ss.size() == ss.capacity();
        auto& e = ss.add(k, 1, [&](const SS::Entry& old) {
            ASSERT_EQ(old.payload, old.key);  // the payload of the key leaving
            ASSERT_EQ(old.count, ss.min_count());
            tracked.erase(old.key);
            ++evictions;
        });
        if (!was_tracked) {
            EXPECT_EQ(e.payload, 0u);  // fresh slot or reset
        }
        e.payload = k;
        tracked.insert(k);
        ASSERT_EQ(evictions, 0u + (was_full && !was_tracked)) << "at event " << i;
        evictions = 0;
    }
    std::set<uint64_t> in_summary;
    for (const auto* e : ss.top(ss.size())) in_summary.insert(e->key);
    EXPECT_EQ(tracked, in_summary);
}

TEST(SpaceSaving, ZipfTopKeysFound) {
    constexpr size_t kEvents = 1'000'000, kKeys = 100'000, kCap = 1000, kTop = 20;
    const Zipf zipf(kKeys, 1.1);
    std::mt19937_64 rng(2024);
    SpaceSaving<uint64_t> ss(kCap);
    Exact exact;
    for (size_t i = 0; i < kEvents; ++i) {
        const uint64_t k = key_of(zipf(rng));
        ss.add(k);
        ++exact[k];
    }
    ASSERT_TRUE(guarantees_hold(ss, exact));
    EXPECT_EQ(ss.total(), kEvents);
    EXPECT_LE(ss.min_count(), kEvents / kCap);

    std::vector<std::pair<uint64_t, uint64_t>> truth(exact.begin(), exact.end());
    std::sort(truth.begin(), truth.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    ASSERT_GT(truth[kTop - 1].second, truth[kTop].second);  // the true top 20 is unique

    // The summary proves its own top 20 (Metwally's test), so it must be the true one.
    ASSERT_TRUE(ss.top_guaranteed(kTop)) << "min_count " << ss.min_count();
    std::set<uint64_t> want, got;
    for (size_t i = 0; i < kTop; ++i) want.insert(truth[i].first);
    for (const auto* e : ss.top(kTop)) {
        got.insert(e->key);
        EXPECT_TRUE(ss.guaranteed(*e));
    }
    EXPECT_EQ(got, want);
}

TEST(SpaceSaving, UniformBoundsHold) {
    constexpr size_t kEvents = 1'000'000, kKeys = 100'000, kCap = 1000;
    std::mt19937_64 rng(77);
    SpaceSaving<uint64_t> ss(kCap);
    Exact exact;
    for (size_t i = 0; i < kEvents; ++i) {
        const uint64_t k = key_of(rng() % kKeys);
        ss.add(k);
        ++exact[k];
    }
    ASSERT_TRUE(guarantees_hold(ss, exact));
    EXPECT_LE(ss.min_count(), kEvents / kCap);
    for (const auto* e : ss.top(kCap)) EXPECT_LE(e->error, kEvents / kCap);
}

ctbpf::Address v4(uint32_t n) {
    Address a;
    a.family = AF_INET;
    a.bytes = {10, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)};
    return a;
}

TEST(SpaceSaving, AddressKeysAndNoAllocationInAdd) {
    static_assert(sizeof(Address) == 17);
    constexpr size_t kCap = 1000;
    const Zipf zipf(100'000, 1.1);
    std::mt19937_64 rng(5);
    Address v6;
    v6.family = AF_INET6;
    v6.bytes[0] = 0x20;
    std::vector<Address> keys(200'000);
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = i % 10 == 0 ? v6 : v4(uint32_t(zipf(rng)));

    SpaceSaving<Address, std::monostate, AddressHash> ss(kCap);
    const size_t bytes = ss.memory_bytes();
    const uint64_t before = g_allocations.load();
    for (const auto& k : keys) ss.add(k);  // fills the summary, then evicts
    const uint64_t allocations = g_allocations.load() - before;

    EXPECT_EQ(allocations, 0u);
    EXPECT_EQ(ss.size(), kCap);
    EXPECT_EQ(ss.memory_bytes(), bytes);
    EXPECT_LE(bytes / kCap, 112u);  // slot 56 + bucket 24 + 2-4 index cells of 8
    // Rank 0 (~12% of events) first, then the IPv6 source (10%): always above total/capacity,
    // so never evicted and counted exactly.
    const auto top = ss.top(2);
    EXPECT_EQ(top[0]->key, v4(0));
    EXPECT_EQ(top[1]->key, v6);
    EXPECT_EQ(top[1]->count, keys.size() / 10);
    EXPECT_EQ(top[1]->error, 0u);
    RecordProperty("bytes_per_key", std::to_string(double(bytes) / kCap));
}

}  // namespace
