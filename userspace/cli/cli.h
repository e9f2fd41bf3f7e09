// The command line, defined once: main.cpp parses with it, and the build's generator
// (clidoc.cpp) writes the man page and the shell completions from it, so they cannot
// disagree with what the binary accepts.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"

namespace ctbpf::cli {

// What an option's value is, for completions and the man page. CLI11 only knows "TEXT".
enum class ValueKind {
    other,   // free text or a number: nothing to offer
    choice,  // one of CommandLine::choices (the same list the IsMember check uses)
    file,    // a path (recordings, output files)
    netns,   // a name under /run/netns, or a path
};

struct CommandLine {
    CommandLine() = default;
    // The App holds pointers into the argument structs below.
    CommandLine(const CommandLine&) = delete;
    CommandLine& operator=(const CommandLine&) = delete;

    CLI::App app{"ctbpf: live observer for Linux connection tracking (nf_conntrack)"};

    EventsArgs events_args;
    bool probe_json = false;
    WatchArgs watch_args;
    RecordArgs record_args;
    ReportArgs report_args;
    ExportArgs export_args;
    StatusArgs status_args;
    ServeArgs serve_args;

    CLI::App* events = nullptr;
    CLI::App* probe = nullptr;
    CLI::App* watch = nullptr;
    CLI::App* record = nullptr;
    CLI::App* report = nullptr;
    CLI::App* exp = nullptr;
    CLI::App* status = nullptr;
    CLI::App* serve = nullptr;

    std::map<const CLI::Option*, ValueKind> kinds;  // options not listed: ValueKind::other
    std::map<const CLI::Option*, std::vector<std::string>> choices;

    ValueKind kind_of(const CLI::Option* opt) const {
        const auto it = kinds.find(opt);
        return it == kinds.end() ? ValueKind::other : it->second;
    }
};

std::unique_ptr<CommandLine> make_command_line();

}  // namespace ctbpf::cli
