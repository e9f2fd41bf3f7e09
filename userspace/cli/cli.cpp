// Every subcommand, option and help text of ctbpf. Also read by the build (clidoc.cpp) for
// the man page and the completions, so a value list given to one_of() is the one the parser
// checks and the one the completions offer.
#include "cli.h"

#include <fmt/format.h>

#include <utility>

namespace ctbpf::cli {
namespace {

const std::vector<std::string> kBackends{"auto", "fentry", "kprobe", "tracepoint"};
const std::vector<std::string> kBaselines{"auto", "on", "off"};

class Builder {
public:
    explicit Builder(CommandLine& cl) : cl_(cl) {}

    CLI::Option* one_of(CLI::Option* opt, std::vector<std::string> values) {
        opt->check(CLI::IsMember(values));
        cl_.kinds[opt] = ValueKind::choice;
        cl_.choices[opt] = std::move(values);
        return opt;
    }
    CLI::Option* file(CLI::Option* opt) {
        cl_.kinds[opt] = ValueKind::file;
        return opt;
    }
    CLI::Option* netns(CLI::Option* opt) {
        cl_.kinds[opt] = ValueKind::netns;
        return opt;
    }

private:
    CommandLine& cl_;
};

}  // namespace

std::unique_ptr<CommandLine> make_command_line() {
    auto cl = std::make_unique<CommandLine>();
    Builder b(*cl);
    CLI::App& app = cl->app;
    app.require_subcommand(1);
    app.set_version_flag("--version", fmt::format("ctbpf {}", kVersion));

    EventsArgs& ev = cl->events_args;
    auto* events = cl->events =
        app.add_subcommand("events", "print every conntrack event, then exact kernel totals");
    events->add_flag("--json", ev.json, "one JSON object per line (NDJSON)");
    b.netns(events->add_option("--netns", ev.netns, "network namespace to watch: a name under /run/netns or a path "
                                                    "(repeatable; default: ctbpf's own)"));
    events->add_flag("--all-netns", ev.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    events->add_option("--duration", ev.duration, "stop after this long: 30, 30s, 5m, 2h (default: until Ctrl-C/SIGTERM)");
    b.one_of(events->add_option("--backend", ev.backend, "attach method: auto, fentry, kprobe or tracepoint"), kBackends);
    events->add_option("--top", ev.top, "sources and destinations listed in the summary")->check(CLI::Range(1, 100000));
    events->add_option("--ring-mib", ev.ring_mib, "BPF ring buffer size in MiB (power of two)")
        ->check(CLI::Range(1, 1024));
    events->add_flag("--verbose", ev.verbose, "show libbpf's messages");
    b.file(events->add_option("--from", ev.from, "read the events of a recording (ctbpf record) instead"));

    auto* probe = cl->probe =
        app.add_subcommand("probe", "what this kernel offers and which backend auto-selection picks");
    probe->add_flag("--json", cl->probe_json, "as one JSON object");

    WatchArgs& wa = cl->watch_args;
    auto* watch = cl->watch =
        app.add_subcommand("watch", "live view: who fills the table, who loses packets, when it is full");
    watch->add_option("--interval", wa.interval_s, "seconds between refreshes")->check(CLI::Range(0.1, 3600.0));
    watch->add_flag("--json", wa.json, "one JSON snapshot per interval (NDJSON)");
    watch->add_flag("--once", wa.once, "print one snapshot (after one interval) and exit");
    watch->add_option("--count", wa.count, "exit after N snapshots")->check(CLI::PositiveNumber);
    b.netns(watch->add_option("--netns", wa.netns, "network namespace to watch (repeatable; default: ctbpf's own)"));
    watch->add_flag("--all-netns", wa.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    b.one_of(watch->add_option("--backend", wa.backend, "attach method: auto, fentry, kprobe or tracepoint"), kBackends);
    watch->add_option("--cidr", wa.cidr, "only sources inside this prefix (e.g. 10.0.0.0/8)");
    watch->add_option("--proto", wa.proto, "only this protocol (tcp, udp, icmp, ...)");
    watch->add_option("--top", wa.top, "rows of sources and destinations")->check(CLI::Range(1, 10000));
    b.one_of(watch->add_option("--sort", wa.sort, "rate (10 s average), entries or drops"), {"rate", "entries", "drops"});
    b.one_of(watch->add_option("--baseline", wa.baseline,
                               "count entries that predate ctbpf with one netlink dump: auto (if <= 250k entries), on, off"),
             kBaselines);
    b.file(watch->add_option("--replay", wa.replay, "show a recording (ctbpf record) instead of the live kernel"));
    watch->add_option("--speed", wa.speed, "with --replay: times real time (e.g. 10)")->check(CLI::PositiveNumber);
    watch->add_option("--composition-interval", wa.composition_interval_s,
                      "seconds between dumps of what the entries are (stretched to keep them under 1% of a core; 0: off)")
        ->check(CLI::Range(0.0, 86400.0));
    watch->add_option("--capacity", wa.capacity, "most sources tracked (bounds memory)")->check(CLI::Range(16, 1 << 26));

    RecordArgs& ra = cl->record_args;
    auto* record = cl->record =
        app.add_subcommand("record", "record every event and a per-second snapshot to a file");
    b.file(record->add_option("-o,--output", ra.output, "recording file (created with mode 0600)")->required());
    record->add_option("--duration", ra.duration, "stop after this long: 30, 30s, 10m, 8h (default: until Ctrl-C/SIGTERM)");
    record->add_option("--max-size", ra.max_size, "stop when the file reaches this size (e.g. 512M)");
    record->add_option("--trigger", ra.triggers, "write only around incidents: fill>=N%, drops, or both "
                                                 "joined with ',' (repeatable; any fires)");
    record->add_option("--pre", ra.pre, "with --trigger: seconds kept in memory before it fires (default 60s)");
    record->add_option("--post", ra.post, "with --trigger: go on this long after it stops firing (default 60s)");
    record->add_option("--rotate", ra.rotate, "start a new file at this size, keeping --keep old ones");
    record->add_option("--keep", ra.keep, "rotated files kept (FILE.1 ... FILE.N)")->check(CLI::Range(1, 1000));
    b.netns(record->add_option("--netns", ra.netns, "network namespace to watch (repeatable)"));
    record->add_flag("--all-netns", ra.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    b.one_of(record->add_option("--backend", ra.backend, "attach method"), kBackends);
    record->add_option("--ring-mib", ra.ring_mib, "BPF ring buffer size in MiB (power of two)")->check(CLI::Range(1, 1024));

    ReportArgs& rp = cl->report_args;
    auto* report = cl->report = app.add_subcommand("report", "the incident summary of a recording");
    b.file(report->add_option("file", rp.file, "recording file")->required());
    report->add_flag("--json", rp.json, "as one JSON object");
    report->add_option("--top", rp.top, "sources and destinations listed")->check(CLI::Range(1, 10000));

    ExportArgs& ex = cl->export_args;
    ex.by = "netns,proto,src/16,src/24,src,dport";
    auto* exp = cl->exp =
        app.add_subcommand("export", "flame-style per-source summaries of a recording (or --live)");
    b.file(exp->add_option("file", ex.file, "recording file"));
    b.one_of(exp->add_option("--format", ex.format, "folded, speedscope, svg, jsonl or csv"),
             {"folded", "speedscope", "svg", "jsonl", "csv"});
    b.one_of(exp->add_option("--metric", ex.metric,
                             "inserts, drops, entries (live at the end) or lifetime (ms ended entries lived, by the state they ended in)"),
             {"inserts", "drops", "entries", "lifetime"});
    exp->add_option("--by", ex.by, "hierarchy, outermost first (default netns,proto,src/16,src/24,src,dport; also dst, sport, state, cgroup, comm)");
    b.file(exp->add_option("-o,--output", ex.output, "write here instead of standard output"));
    b.file(exp->add_option("--diff", ex.diff, "baseline recording: a differential flame graph / folded diff"));
    exp->add_flag("--live", ex.live, "capture now instead of reading a file");
    exp->add_option("--duration", ex.duration, "with --live: how long: 30, 30s, 5m (default 10s)");
    b.netns(exp->add_option("--netns", ex.netns, "with --live: network namespace to watch (repeatable)"));
    exp->add_flag("--all-netns", ex.all_netns, "with --live: every network namespace on the host (not with --netns)");

    StatusArgs& st = cl->status_args;
    auto* status = cl->status = app.add_subcommand("status", "one-shot health report of the conntrack table, with advice; "
                                                             "exit 0 ok, 1 warning, 2 critical, 3 unknown");
    status->add_flag("--json", st.json, "as one JSON object");
    status->add_option("--window", st.window, "judge drops and growth over this long now (default 1s)");
    b.netns(status->add_option("--netns", st.netns, "diagnose this network namespace (a name under /run/netns or a path)"));
    status->add_flag("--all-netns", st.all_netns,
                     "every network namespace on the host: each judged over the window, the worst diagnosed in full");

    ServeArgs& sv = cl->serve_args;
    auto* serve = cl->serve = app.add_subcommand("serve", "Prometheus/OpenMetrics exporter: /metrics with bounded top-K "
                                                          "per-source series, /healthz");
    serve->add_option("--listen", sv.listen, "HOST:PORT to serve on (default 127.0.0.1:9669: loopback only)");
    serve->add_option("--top-k", sv.top_k, "sources and destinations per family: a hard ceiling on series")
        ->check(CLI::Range(1, 1000));
    serve->add_option("--interval", sv.interval_s, "seconds between snapshots")->check(CLI::Range(0.1, 60.0));
    serve->add_option("--duration", sv.duration, "stop after this long: 30, 30s, 5m, 2h (default: until Ctrl-C/SIGTERM)");
    b.netns(serve->add_option("--netns", sv.netns, "network namespace to watch (repeatable; default: ctbpf's own)"));
    serve->add_flag("--all-netns", sv.all_netns, "every network namespace on the host, those made later too (not with --netns)");
    b.one_of(serve->add_option("--backend", sv.backend, "attach method: auto, fentry, kprobe or tracepoint"), kBackends);
    b.one_of(serve->add_option("--baseline", sv.baseline, "count entries that predate ctbpf (one netlink dump): auto, on, off"),
             kBaselines);
    serve->add_option("--composition-interval", sv.composition_interval_s,
                      "seconds between dumps of what the entries are (stretched to keep them under 1% of a core; 0: off)")
        ->check(CLI::Range(0.0, 86400.0));
    serve->add_option("--capacity", sv.capacity, "most sources tracked (bounds memory)")->check(CLI::Range(16, 1 << 26));

    return cl;
}

}  // namespace ctbpf::cli
