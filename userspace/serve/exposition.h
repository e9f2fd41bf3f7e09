// Prometheus / OpenMetrics exposition of a watch snapshot: pure text rendering, no I/O, so
// tests parse it back. Per-source detail is bounded: each per-source family lists at most
// `top_k` sources and the destination family at most `top_k` destinations, whatever the
// traffic, so the number of series has a hard ceiling (docs/metrics.md).
#pragma once

#include <string>
#include <vector>

#include "ctbpf/live_view.h"

namespace ctbpf::serve {

enum class Format {
    OpenMetrics,     // application/openmetrics-text; version=1.0.0 (what Prometheus asks for)
    PrometheusText,  // text/plain; version=0.0.4 (curl, older scrapers)
};

std::string_view content_type(Format f);
// Chooses by the request's Accept header.
Format negotiate(std::string_view accept);

// The best sources by each measure, as WatchModel::rows() builds them.
struct TopK {
    std::vector<SourceRow> by_rate, by_entries, by_drops;
    std::vector<DestRow> destinations;  // by drops
    // Top workloads of each kind (namespace, cgroup, process): by insert rate, and by drops.
    std::vector<WorkloadRow> workloads_by_rate, workloads_by_drops;
};

struct Exposition {
    std::string version;  // ctbpf's
    size_t top_k = 20;
};

std::string render(const LiveSnapshot& s, const TopK& top, const Exposition& e, Format f);

// Most series render() can emit for `tables` watched namespaces (the ceiling stated in the docs).
size_t series_ceiling(size_t tables, size_t top_k);

}  // namespace ctbpf::serve
