// Throughput of SpaceSaving::add() (include/ctbpf/heavy_hitters.h) on source-address
// streams, next to an exact std::unordered_map counter in the same binary, so the two can be
// compared run for run.
//
// Each stream has 2^23 IPv4 sources drawn from `keys` distinct addresses, uniformly or
// Zipf(1.1)-skewed; streams are generated once, outside the timed loops. Both counters are
// first fed the whole stream, so the loop measures the steady state: SpaceSaving full and
// evicting, the map holding every address of the stream (it never stops growing in real use).
//
// Counters: items_per_second; bytes_per_key = SpaceSaving::memory_bytes() / capacity, or for
// the map the heap it took (glibc mallinfo2) per distinct address.
#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "ctbpf/decode.h"
#include "ctbpf/heavy_hitters.h"

namespace {

using ctbpf::Address;
using ctbpf::AddressHash;

constexpr size_t kEvents = size_t{1} << 23;

Address v4(uint32_t n) {  // n < 2^24 -> 10.x.y.z
    Address a;
    a.family = AF_INET;
    a.bytes = {10, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)};
    return a;
}

// The stream for (zipf?, distinct keys), built on first use and kept for later runs.
const std::vector<Address>& stream(bool zipf, size_t keys) {
    static std::map<std::pair<bool, size_t>, std::vector<Address>> cache;
    std::vector<Address>& s = cache[{zipf, keys}];
    if (!s.empty()) return s;
    std::mt19937_64 rng(keys * 2 + zipf);
    std::vector<double> cdf;  // Zipf by inverse CDF: same stream on every library
    if (zipf) {
        cdf.resize(keys);
        double sum = 0;
        for (size_t i = 0; i < keys; ++i) cdf[i] = sum += 1.0 / std::pow(double(i + 1), 1.1);
    }
    s.resize(kEvents);
    for (Address& a : s) {
        size_t rank = rng() % keys;
        if (zipf) {
            const double u = double(rng() >> 11) * 0x1p-53 * cdf.back();
            rank = std::min<size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin(),
                                    keys - 1);
        }
        a = v4(uint32_t(rank));
    }
    return s;
}

size_t heap_bytes() {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;  // in use from the heap, plus mmapped blocks
}

// Arguments: capacity (unused by the map), distinct keys, zipf (0/1).
class Sources : public benchmark::Fixture {
public:
    void SetUp(const benchmark::State& st) override {
        keys_ = &stream(st.range(2) != 0, size_t(st.range(1)));
    }

protected:
    const std::vector<Address>* keys_ = nullptr;
};

BENCHMARK_DEFINE_F(Sources, SpaceSaving)(benchmark::State& st) {
    const std::vector<Address>& keys = *keys_;
    ctbpf::SpaceSaving<Address, std::monostate, AddressHash> ss(size_t(st.range(0)));
    for (const Address& a : keys) ss.add(a);
    size_t i = 0;
    for (auto _ : st) {
        benchmark::DoNotOptimize(ss.add(keys[i]).count);
        if (++i == keys.size()) i = 0;
    }
    st.SetItemsProcessed(st.iterations());
    st.counters["bytes_per_key"] = double(ss.memory_bytes()) / double(ss.capacity());
}

BENCHMARK_DEFINE_F(Sources, ExactMap)(benchmark::State& st) {
    const std::vector<Address>& keys = *keys_;
    const size_t heap0 = heap_bytes();
    std::unordered_map<Address, uint64_t, AddressHash> counts;
    for (const Address& a : keys) ++counts[a];
    const size_t heap = heap_bytes() - heap0;
    size_t i = 0;
    for (auto _ : st) {
        benchmark::DoNotOptimize(++counts[keys[i]]);
        if (++i == keys.size()) i = 0;
    }
    st.SetItemsProcessed(st.iterations());
    st.counters["bytes_per_key"] = double(heap) / double(counts.size());
    st.counters["tracked"] = double(counts.size());
}

void space_saving_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"cap", "keys", "zipf"});
    for (int64_t zipf : {1, 0})
        for (int64_t keys : {1'000, 100'000, 10'000'000})
            for (int64_t cap : {1'000, 10'000, 100'000}) b->Args({cap, keys, zipf});
}

void map_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"cap", "keys", "zipf"});
    for (int64_t zipf : {1, 0})
        for (int64_t keys : {1'000, 100'000, 10'000'000}) b->Args({0, keys, zipf});
}

BENCHMARK_REGISTER_F(Sources, SpaceSaving)->Apply(space_saving_args);
BENCHMARK_REGISTER_F(Sources, ExactMap)->Apply(map_args);

}  // namespace
