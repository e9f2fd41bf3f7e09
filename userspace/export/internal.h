// Shared between the export writers; not part of the public API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ctbpf/export.h"

namespace ctbpf::export_detail {

// One stack of either side of a differential; before is already scaled.
struct DiffStack {
    std::vector<std::string> frames;
    double before = 0;
    uint64_t after = 0;
};

// Union of both sides' stacks, sorted by frames. Throws Error if the hierarchies differ.
std::vector<DiffStack> diff_stacks(const StackAggregator& baseline,
                                   const StackAggregator& incident, double scale);

}  // namespace ctbpf::export_detail
