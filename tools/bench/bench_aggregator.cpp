// Aggregator micro-benchmarks (issue 6): decode + aggregate throughput on synthetic event
// streams (1e3, 1e5, 1e6 distinct sources, uniform and skewed), and the cost of the
// top-sources query that `watch` answers every interval, whatever the table size.
#include <arpa/inet.h>

#include <cstring>

#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "ctbpf/aggregator.h"
#include "ctbpf/decode.h"

namespace {

using namespace ctbpf;

// Raw wire records: inserts from `sources` distinct IPv4 addresses, Zipf-like (skewed) or
// uniform, each later destroyed, so live state stays bounded like a real table.
std::vector<std::array<std::byte, 64>> stream(size_t n, uint32_t sources, bool skewed) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<uint32_t> uni(0, sources - 1);
    std::vector<std::array<std::byte, 64>> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        // Skewed: squaring a uniform fraction concentrates mass on small indices.
        uint32_t s = uni(rng);
        if (skewed) {
            const double u = static_cast<double>(s) / sources;
            s = static_cast<uint32_t>(u * u * u * sources);
        }
        Event e;
        e.kind = (i % 2 == 0) ? EventKind::Insert : EventKind::Destroy;
        e.ct_id = i / 2 + 1;
        e.ts_ns = 1'000'000'000ull * (1000 + i / 100000);
        e.proto = 17;
        e.src.family = e.dst.family = 2;
        const uint32_t a = htonl(0x0a000000u + s);
        std::memcpy(e.src.bytes.data(), &a, 4);
        e.dst.bytes[0] = 127;
        e.dst.bytes[3] = 1;
        e.dport = 53;
        out.push_back(encode_event(e));
    }
    return out;
}

void BM_DecodeAggregate(benchmark::State& st) {
    const auto sources = static_cast<uint32_t>(st.range(0));
    const bool skewed = st.range(1) != 0;
    const auto events = stream(1 << 20, sources, skewed);
    for (auto _ : st) {
        Aggregator agg;  // default bound: 65536 sources
        for (const auto& rec : events)
            if (auto e = decode_event(rec)) agg.add(*e);
        benchmark::DoNotOptimize(agg.source_count());
    }
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(events.size()));
}
BENCHMARK(BM_DecodeAggregate)->ArgsProduct({{1000, 100000, 1000000}, {0, 1}})->ArgNames({"sources", "skewed"})
    ->Unit(benchmark::kMillisecond);

void BM_TopSources(benchmark::State& st) {
    const auto sources = static_cast<uint32_t>(st.range(0));
    Aggregator agg;
    for (const auto& rec : stream(static_cast<size_t>(sources) * 4, sources, true))
        if (auto e = decode_event(rec)) agg.add(*e);
    for (auto _ : st) benchmark::DoNotOptimize(agg.top_sources(SortKey::Rate1s, 20, 1001));
    st.counters["tracked"] = static_cast<double>(agg.source_count());
}
BENCHMARK(BM_TopSources)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("sources")->Unit(benchmark::kMicrosecond);

}  // namespace
