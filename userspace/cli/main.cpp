// ctbpf: parses the command line and hands over to one command. Errors end here as one
// line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "ctbpf/error.h"

int main(int argc, char** argv) {
    using namespace ctbpf::cli;
    CLI::App app{"ctbpf: live observer for Linux connection tracking (nf_conntrack)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "ctbpf 0.1.0");

    EventsArgs ev;
    auto* events = app.add_subcommand("events", "print every conntrack event, then exact kernel totals");
    events->add_flag("--json", ev.json, "one JSON object per line (NDJSON)");
    events->add_option("--netns", ev.netns, "network namespace to watch: a name under /run/netns or a path "
                                            "(repeatable; default: ctbpf's own)");
    events->add_option("--duration", ev.duration_s, "stop after SECONDS (default: until Ctrl-C/SIGTERM)")
        ->check(CLI::PositiveNumber);
    events->add_option("--backend", ev.backend, "attach method: auto, fentry, kprobe or tracepoint")
        ->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    events->add_option("--top", ev.top, "sources and destinations listed in the summary")->check(CLI::Range(1, 100000));
    events->add_option("--ring-mib", ev.ring_mib, "BPF ring buffer size in MiB (power of two)")
        ->check(CLI::Range(1, 1024));
    events->add_flag("--verbose", ev.verbose, "show libbpf's messages");

    bool probe_json = false;
    auto* probe = app.add_subcommand("probe", "what this kernel offers and which backend auto-selection picks");
    probe->add_flag("--json", probe_json, "as one JSON object");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // One line, not CLI11's multi-line block.
        std::string msg = e.what();
        fmt::print(stderr, "ctbpf: {} (see ctbpf --help)\n", msg);
        return 2;
    }

    try {
        if (*events) return cmd_events(ev);
        if (*probe) return cmd_probe(probe_json);
    } catch (const ctbpf::Error& e) {
        fmt::print(stderr, "ctbpf: {}\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ctbpf: unexpected error: {}\n", e.what());
        return 1;
    }
    return 0;
}
