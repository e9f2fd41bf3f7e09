// One function per subcommand; main.cpp only parses flags and dispatches.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ctbpf/kernel.h"

namespace ctbpf::cli {

struct EventsArgs {
    bool json = false;
    std::vector<std::string> netns;
    std::optional<double> duration_s;
    std::string backend = "auto";
    size_t top = 20;
    size_t ring_mib = 8;
    bool verbose = false;
};

int cmd_events(const EventsArgs& a);
int cmd_probe(bool json);

}  // namespace ctbpf::cli
