// A one-time count of the entries already in the table, per original source address, taken
// with a netlink dump (never the text /proc file): so live occupancy can include entries
// that existed before ctbpf started.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ctbpf/composition.h"
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

// One pass over the table of `netns_spec` by netlink dump, every entry handed to `each`,
// and the namespace's timeout sysctls read from inside it. Throws Error.
struct TableDump {
    uint32_t netns = 0;
    uint64_t entries = 0;
    double seconds = 0;
    std::map<std::string, uint64_t> timeouts;
};
TableDump dump_table(const std::string& netns_spec, const std::function<void(const DumpedEntry&)>& each);

// dump_table folded into a Composition (ages from `age_of` when given). `keys` (optional)
// receives every entry's tuple key, for EntryClock::after_dump. `top` bounds the sources kept.
Composition dump_composition(const std::string& netns_spec, const AgeOf& age_of, uint64_t now_ns, size_t top = 20,
                             std::vector<uint64_t>* keys = nullptr);

}  // namespace ctbpf
