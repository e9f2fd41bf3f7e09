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

    WatchArgs wa;
    auto* watch = app.add_subcommand("watch", "live view: who fills the table, who loses packets, when it is full");
    watch->add_option("--interval", wa.interval_s, "seconds between refreshes")->check(CLI::Range(0.1, 3600.0));
    watch->add_flag("--json", wa.json, "one JSON snapshot per interval (NDJSON)");
    watch->add_flag("--once", wa.once, "print one snapshot (after one interval) and exit");
    watch->add_option("--count", wa.count, "exit after N snapshots")->check(CLI::PositiveNumber);
    watch->add_option("--netns", wa.netns, "network namespace to watch (repeatable; default: ctbpf's own)");
    watch->add_option("--backend", wa.backend, "attach method: auto, fentry, kprobe or tracepoint")
        ->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    watch->add_option("--cidr", wa.cidr, "only sources inside this prefix (e.g. 10.0.0.0/8)");
    watch->add_option("--proto", wa.proto, "only this protocol (tcp, udp, icmp, ...)");
    watch->add_option("--top", wa.top, "rows of sources and destinations")->check(CLI::Range(1, 10000));
    watch->add_option("--sort", wa.sort, "rate, entries or drops")->check(CLI::IsMember({"rate", "entries", "drops"}));
    watch->add_option("--baseline", wa.baseline,
                      "count entries that predate ctbpf with one netlink dump: auto (if <= 250k entries), on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    watch->add_option("--capacity", wa.capacity, "most sources tracked (bounds memory)")->check(CLI::Range(16, 1 << 26));

    StatusArgs st;
    auto* status = app.add_subcommand("status", "one-shot health report of the conntrack table, with advice; "
                                                "exit 0 fine, 1 warning, 2 critical");
    status->add_flag("--json", st.json, "as one JSON object");

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
        if (*status) return cmd_status(st);
        if (*watch) return cmd_watch(wa);
    } catch (const ctbpf::Error& e) {
        fmt::print(stderr, "ctbpf: {}\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ctbpf: unexpected error: {}\n", e.what());
        return 1;
    }
    return 0;
}
