// Every public header in one translation unit: they must compile together and name each
// thing once (no two Levels, no two Snapshots). A new header goes here too.
#include "ctbpf/aggregator.h"
#include "ctbpf/baseline.h"
#include "ctbpf/cidr.h"
#include "ctbpf/clock.h"
#include "ctbpf/composition.h"
#include "ctbpf/decode.h"
#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/export.h"
#include "ctbpf/fd.h"
#include "ctbpf/flat_map.h"
#include "ctbpf/heavy_hitters.h"
#include "ctbpf/incident.h"
#include "ctbpf/kernel.h"
#include "ctbpf/live_view.h"
#include "ctbpf/netns.h"
#include "ctbpf/observe.h"
#include "ctbpf/recording.h"
#include "ctbpf/system.h"
#include "ctbpf/table.h"
#include "ctbpf/units.h"
#include "ctbpf/workload.h"
#include "ctbpf/workload_top.h"

#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

// The list above is complete: every header in include/ctbpf/ is included here.
TEST(PublicHeaders, AllCompileTogetherAndAreListed) {
    const std::set<std::string> listed = {
        "aggregator.h", "baseline.h", "cidr.h",     "clock.h",   "composition.h", "decode.h",  "error.h",   "event.h",
        "export.h",     "fd.h",       "flat_map.h", "heavy_hitters.h", "incident.h", "kernel.h",
        "live_view.h",  "netns.h",    "observe.h",  "recording.h", "system.h", "table.h",  "units.h",   "workload.h", "workload_top.h"};
    std::set<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(CTBPF_INCLUDE_DIR "/ctbpf"))
        found.insert(e.path().filename().string());
    EXPECT_EQ(found, listed);
}
