// Aggregator micro-benchmarks (issue 6): decode + aggregate throughput on synthetic event
// streams (1e3, 1e5, 1e6 distinct sources, uniform and skewed), and the cost of the
// top-sources query that `watch` answers every interval, whatever the table size, and the
// memory held per tracked source (bounded whatever the number of distinct sources).
#include <arpa/inet.h>

#include <cstdio>
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
std::vector<EventRecord> stream(size_t n, uint32_t sources, bool skewed) {
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<uint32_t> uni(0, sources - 1);
    std::vector<EventRecord> out;
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

// Decoding alone over the same streams: what decode + aggregate cannot go below here
// (2^20 records, 64 MiB, streamed from memory).
void BM_DecodeOnly(benchmark::State& st) {
    const auto events = stream(1 << 20, static_cast<uint32_t>(st.range(0)), false);
    for (auto _ : st)
        for (const auto& rec : events) benchmark::DoNotOptimize(decode_event(rec));
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(events.size()));
}
BENCHMARK(BM_DecodeOnly)->Arg(1000000)->ArgName("sources")->Unit(benchmark::kMillisecond);

// Resident set size now, in bytes (Linux).
double rss_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<double>(resident) * 4096;
}

// Memory with many more distinct sources than the bound: every insert is from a new source
// (generated on the fly, not stored), each destroyed 1000 inserts later. Reports the bytes
// per tracked source (summary with the per-source records, plus any full RateWindows), the
// record's size, the whole aggregator, and the process's RSS growth while it ran.
void BM_MemoryPerSource(benchmark::State& st) {
    const auto distinct = static_cast<uint64_t>(st.range(0));
    for (auto _ : st) {
        const double rss0 = rss_bytes();
        Aggregator agg;
        Event e;
        e.proto = 17;
        e.src.family = e.dst.family = 2;
        for (uint64_t i = 0; i < distinct; ++i) {
            e.kind = EventKind::Insert;
            e.ct_id = i + 1;
            e.ts_ns = 1'000'000'000ull * (1000 + i / 100000);
            const uint32_t a = htonl(0x0a000000u + static_cast<uint32_t>(i));
            std::memcpy(e.src.bytes.data(), &a, 4);
            agg.add(e);
            if (i >= 1000) {
                e.kind = EventKind::Destroy;
                e.ct_id = i - 999;
                agg.add(e);
            }
        }
        st.counters["tracked"] = static_cast<double>(agg.source_count());
        st.counters["bytes_per_source"] =
            static_cast<double>(agg.source_memory_bytes()) / static_cast<double>(agg.source_capacity());
        st.counters["record_bytes"] = sizeof(SourceStats);
        st.counters["total_MB"] = static_cast<double>(agg.memory_bytes()) / 1e6;
        st.counters["rss_growth_MB"] = (rss_bytes() - rss0) / 1e6;
    }
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * distinct));
}
BENCHMARK(BM_MemoryPerSource)->Arg(1'000'000)->Arg(10'000'000)->ArgName("distinct")->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeAggregate)->ArgsProduct({{1000, 100000, 1000000}, {0, 1}})->ArgNames({"sources", "skewed"})
    ->Unit(benchmark::kMillisecond);

void BM_TopSources(benchmark::State& st) {
    const auto sources = static_cast<uint32_t>(st.range(0));
    Aggregator agg;
    for (const auto& rec : stream(static_cast<size_t>(sources) * 4, sources, true))
        if (auto e = decode_event(rec)) agg.add(*e);
    for (auto _ : st) benchmark::DoNotOptimize(agg.top_sources(SortKey::Rate10s, 20, 1001));
    st.counters["tracked"] = static_cast<double>(agg.source_count());
}
BENCHMARK(BM_TopSources)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("sources")->Unit(benchmark::kMicrosecond);

}  // namespace
