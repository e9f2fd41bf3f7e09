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
    app.set_version_flag("--version", fmt::format("ctbpf {}", kVersion));

    EventsArgs ev;
    auto* events = app.add_subcommand("events", "print every conntrack event, then exact kernel totals");
    events->add_flag("--json", ev.json, "one JSON object per line (NDJSON)");
    events->add_option("--netns", ev.netns, "network namespace to watch: a name under /run/netns or a path "
                                            "(repeatable; default: ctbpf's own)");
    events->add_flag("--all-netns", ev.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    events->add_option("--duration", ev.duration, "stop after this long: 30, 30s, 5m, 2h (default: until Ctrl-C/SIGTERM)");
    events->add_option("--backend", ev.backend, "attach method: auto, fentry, kprobe or tracepoint")
        ->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    events->add_option("--top", ev.top, "sources and destinations listed in the summary")->check(CLI::Range(1, 100000));
    events->add_option("--ring-mib", ev.ring_mib, "BPF ring buffer size in MiB (power of two)")
        ->check(CLI::Range(1, 1024));
    events->add_flag("--verbose", ev.verbose, "show libbpf's messages");
    events->add_option("--from", ev.from, "read the events of a recording (ctbpf record) instead");

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
    watch->add_flag("--all-netns", wa.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    watch->add_option("--backend", wa.backend, "attach method: auto, fentry, kprobe or tracepoint")
        ->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    watch->add_option("--cidr", wa.cidr, "only sources inside this prefix (e.g. 10.0.0.0/8)");
    watch->add_option("--proto", wa.proto, "only this protocol (tcp, udp, icmp, ...)");
    watch->add_option("--top", wa.top, "rows of sources and destinations")->check(CLI::Range(1, 10000));
    watch->add_option("--sort", wa.sort, "rate (10 s average), entries or drops")->check(CLI::IsMember({"rate", "entries", "drops"}));
    watch->add_option("--baseline", wa.baseline,
                      "count entries that predate ctbpf with one netlink dump: auto (if <= 250k entries), on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    watch->add_option("--replay", wa.replay, "show a recording (ctbpf record) instead of the live kernel");
    watch->add_option("--speed", wa.speed, "with --replay: times real time (e.g. 10)")->check(CLI::PositiveNumber);
    watch->add_option("--composition-interval", wa.composition_interval_s,
                      "seconds between dumps of what the entries are (stretched to keep them under 1% of a core; 0: off)")
        ->check(CLI::Range(0.0, 86400.0));
    watch->add_option("--capacity", wa.capacity, "most sources tracked (bounds memory)")->check(CLI::Range(16, 1 << 26));

    RecordArgs ra;
    auto* record = app.add_subcommand("record", "record every event and a per-second snapshot to a file");
    record->add_option("-o,--output", ra.output, "recording file (created with mode 0600)")->required();
    record->add_option("--duration", ra.duration, "stop after this long: 30, 30s, 10m, 8h (default: until Ctrl-C/SIGTERM)");
    record->add_option("--max-size", ra.max_size, "stop when the file reaches this size (e.g. 512M)");
    record->add_option("--trigger", ra.triggers, "write only around incidents: fill>=N%, drops, or both "
                                                 "joined with ',' (repeatable; any fires)");
    record->add_option("--pre", ra.pre, "with --trigger: seconds kept in memory before it fires (default 60s)");
    record->add_option("--post", ra.post, "with --trigger: go on this long after it stops firing (default 60s)");
    record->add_option("--rotate", ra.rotate, "start a new file at this size, keeping --keep old ones");
    record->add_option("--keep", ra.keep, "rotated files kept (FILE.1 ... FILE.N)")->check(CLI::Range(1, 1000));
    record->add_option("--netns", ra.netns, "network namespace to watch (repeatable)");
    record->add_flag("--all-netns", ra.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    record->add_option("--backend", ra.backend, "attach method")->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    record->add_option("--ring-mib", ra.ring_mib, "BPF ring buffer size in MiB (power of two)")->check(CLI::Range(1, 1024));

    ReportArgs rp;
    auto* report = app.add_subcommand("report", "the incident summary of a recording");
    report->add_option("file", rp.file, "recording file")->required();
    report->add_flag("--json", rp.json, "as one JSON object");
    report->add_option("--top", rp.top, "sources and destinations listed")->check(CLI::Range(1, 10000));

    ExportArgs ex;
    ex.by = "netns,proto,src/16,src/24,src,dport";
    auto* exp = app.add_subcommand("export", "flame-style per-source summaries of a recording (or --live)");
    exp->add_option("file", ex.file, "recording file");
    exp->add_option("--format", ex.format, "folded, speedscope, svg, jsonl or csv")
        ->check(CLI::IsMember({"folded", "speedscope", "svg", "jsonl", "csv"}));
    exp->add_option("--metric", ex.metric,
                    "inserts, drops, entries (live at the end) or lifetime (ms ended entries lived, by the state they ended in)")
        ->check(CLI::IsMember({"inserts", "drops", "entries", "lifetime"}));
    exp->add_option("--by", ex.by, "hierarchy, outermost first (default netns,proto,src/16,src/24,src,dport; also dst, sport, state, cgroup, comm)");
    exp->add_option("-o,--output", ex.output, "write here instead of standard output");
    exp->add_option("--diff", ex.diff, "baseline recording: a differential flame graph / folded diff");
    exp->add_flag("--live", ex.live, "capture now instead of reading a file");
    exp->add_option("--duration", ex.duration, "with --live: how long: 30, 30s, 5m (default 10s)");
    exp->add_option("--netns", ex.netns, "with --live: network namespace to watch (repeatable)");
    exp->add_flag("--all-netns", ex.all_netns, "with --live: every network namespace on the host (not with --netns)");

    StatusArgs st;
    auto* status = app.add_subcommand("status", "one-shot health report of the conntrack table, with advice; "
                                                "exit 0 ok, 1 warning, 2 critical, 3 unknown");
    status->add_flag("--json", st.json, "as one JSON object");
    status->add_option("--window", st.window, "judge drops and growth over this long now (default 1s)");
    status->add_option("--netns", st.netns, "diagnose this network namespace (a name under /run/netns or a path)");
    status->add_flag("--all-netns", st.all_netns,
                     "every network namespace on the host: each judged over the window, the worst diagnosed in full");

    ServeArgs sv;
    auto* serve = app.add_subcommand("serve", "Prometheus/OpenMetrics exporter: /metrics with bounded top-K "
                                              "per-source series, /healthz");
    serve->add_option("--listen", sv.listen, "HOST:PORT to serve on (default 127.0.0.1:9669: loopback only)");
    serve->add_option("--top-k", sv.top_k, "sources and destinations per family: a hard ceiling on series")
        ->check(CLI::Range(1, 1000));
    serve->add_option("--interval", sv.interval_s, "seconds between snapshots")->check(CLI::Range(0.1, 60.0));
    serve->add_option("--duration", sv.duration, "stop after this long: 30, 30s, 5m, 2h (default: until Ctrl-C/SIGTERM)");
    serve->add_option("--netns", sv.netns, "network namespace to watch (repeatable; default: ctbpf's own)");
    serve->add_flag("--all-netns", sv.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    serve->add_option("--backend", sv.backend, "attach method: auto, fentry, kprobe or tracepoint")
        ->check(CLI::IsMember({"auto", "fentry", "kprobe", "tracepoint"}));
    serve->add_option("--baseline", sv.baseline, "count entries that predate ctbpf (one netlink dump): auto, on, off")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    serve->add_option("--composition-interval", sv.composition_interval_s,
                      "seconds between dumps of what the entries are (stretched to keep them under 1% of a core; 0: off)")
        ->check(CLI::Range(0.0, 86400.0));
    serve->add_option("--capacity", sv.capacity, "most sources tracked (bounds memory)")->check(CLI::Range(16, 1 << 26));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // One line, not CLI11's multi-line block.
        std::string msg = e.what();
        // CLI11 calls an unknown command "A subcommand is required": name it instead.
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg.empty() || arg[0] == '-') continue;
            bool known = false;
            for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == arg;
            if (!known) {
                std::string names;
                for (const auto* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
                msg = fmt::format("unknown command '{}': use one of {}", arg, names);
            }
            break;
        }
        fmt::print(stderr, "ctbpf: {} (see ctbpf --help)\n", msg);
        // `status` follows the monitoring-plugin convention: 2 means critical there, so a
        // usage error is 3 (unknown). Every other command exits 2 on bad usage.
        return status->parsed() ? 3 : 2;
    }

    try {
        if (*events) return cmd_events(ev);
        if (*probe) return cmd_probe(probe_json);
        if (*status) return cmd_status(st);
        if (*watch) return cmd_watch(wa);
        if (*record) return cmd_record(ra);
        if (*report) return cmd_report(rp);
        if (*exp) return cmd_export(ex);
        if (*serve) return cmd_serve(sv);
    } catch (const ctbpf::Error& e) {
        fmt::print(stderr, "ctbpf: {}\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ctbpf: unexpected error: {}\n", e.what());
        return 1;
    }
    return 0;
}
