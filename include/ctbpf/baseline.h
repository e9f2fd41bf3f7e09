// A one-time count of the entries already in the table, per original source address, taken
// with a netlink dump (never the text /proc file): so live occupancy can include entries
// that existed before ctbpf started.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ctbpf/decode.h"

namespace ctbpf {

struct Baseline {
    uint32_t netns = 0;  // inode of the namespace dumped: sources are per namespace
    std::vector<std::pair<Address, int64_t>> by_source;
    int64_t total = 0;
    double seconds = 0;  // how long the dump took
};

// Dumps the conntrack table of `netns_spec` ("self" or a --netns argument). Throws Error.
Baseline dump_baseline(const std::string& netns_spec);

}  // namespace ctbpf
