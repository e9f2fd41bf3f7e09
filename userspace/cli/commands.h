// One function per subcommand; main.cpp only parses flags and dispatches.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ctbpf/kernel.h"
#include "ctbpf/version.h"

namespace ctbpf::cli {

inline constexpr const char* kVersion = CTBPF_VERSION;

struct EventsArgs {
    bool json = false;
    std::vector<std::string> netns;
    bool all_netns = false;  // every network namespace on the host, later ones too
    std::string duration;  // "" until stopped; "30", "30s", "5m" (parse_duration_option)
    std::string backend = "auto";
    size_t top = 20;
    size_t ring_mib = 8;
    bool verbose = false;
    std::string from;  // a recording to read instead of the live kernel
};

struct WatchArgs {
    double interval_s = 1;
    bool json = false, once = false;
    size_t count = 0;  // 0: until stopped
    std::vector<std::string> netns;
    bool all_netns = false;  // every network namespace on the host, later ones too
    std::string backend = "auto", cidr, proto, sort = "rate", baseline = "auto";
    size_t top = 20;
    size_t capacity = 1 << 16;  // sources tracked at most
    std::string replay;         // a recording to show instead of the live kernel
    double speed = 1;
    double composition_interval_s = 10;  // 0: no composition dumps
};

struct RecordArgs {
    std::string output;
    std::string duration, max_size, rotate, pre = "60s", post = "60s";
    size_t keep = 5;
    std::vector<std::string> triggers, netns;
    bool all_netns = false;
    std::string backend = "auto";
    size_t ring_mib = 8;
};

struct ReportArgs {
    std::string file;
    bool json = false;
    size_t top = 10;
};

struct ExportArgs {
    std::string file, format = "folded", metric = "inserts", by, output, diff, duration;
    bool live = false;
    std::vector<std::string> netns;
    bool all_netns = false;  // every network namespace on the host, later ones too
};

struct ServeArgs {
    std::string listen = "127.0.0.1:9669";
    size_t top_k = 20;
    double interval_s = 1;
    std::string duration;  // as EventsArgs::duration
    std::vector<std::string> netns;
    bool all_netns = false;  // every network namespace on the host, later ones too
    std::string backend = "auto", baseline = "auto";
    size_t capacity = 1 << 16;
    double composition_interval_s = 10;  // 0: no composition dumps
};

struct StatusArgs {
    bool json = false;
    std::string window = "1s";  // how long "now" is measured
    std::string netns;          // a namespace to diagnose instead of our own
    bool all_netns = false;     // every namespace on the host: the worst diagnosed, all listed
};

int cmd_events(const EventsArgs& a);
int cmd_status(const StatusArgs& a);
int cmd_watch(const WatchArgs& a);
int cmd_record(const RecordArgs& a);
int cmd_report(const ReportArgs& a);
int cmd_export(const ExportArgs& a);  // cmd_status.cpp
int cmd_probe(bool json);
int cmd_serve(const ServeArgs& a);

}  // namespace ctbpf::cli
