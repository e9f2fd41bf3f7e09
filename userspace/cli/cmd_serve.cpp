// `ctbpf serve`: observe as `watch` does and publish a snapshot once per interval for
// Prometheus to scrape. The observer (this thread) renders; the HTTP thread only hands out
// the last rendering, so clients cannot slow the observer down.
#include <fmt/format.h>

#include "commands.h"
#include "exposition.h"
#include "format.h"
#include "http.h"
#include "ctbpf/observe.h"
#include "ctbpf/units.h"

namespace ctbpf::cli {

int cmd_serve(const ServeArgs& a) {
    const serve::ListenAddress where = serve::parse_listen(a.listen);
    const auto duration = parse_duration_option(a.duration, "--duration");
    // Before any thread starts, so the HTTP thread inherits the blocked signals too.
    block_stop_signals();
    // Bind before loading anything: a busy port fails at once.
    serve::MetricsServer server(a.listen);
    if (!serve::is_loopback(where))
        fmt::print(stderr, "ctbpf: warning: serving on {}, beyond this host: every client that reaches it reads "
                           "source addresses (see README, \"Exposing ctbpf serve\")\n", server.address());
    ObserverOptions oo;
    oo.netns = a.netns;
    oo.all_netns = a.all_netns;
    oo.backend = a.backend;
    oo.baseline = a.baseline;
    oo.capacity = a.capacity;
    oo.model = true;
    oo.composition = a.composition_interval_s > 0;
    oo.composition_interval_s = a.composition_interval_s;
    Observer live(oo);
    ModelOptions mo;
    mo.top = a.top_k;
    const serve::Exposition ex{kVersion, a.top_k};

    auto publish = [&] {
        LiveSnapshot snap = live.take(mo);  // sources by rate
        serve::TopK top;
        top.by_rate = snap.sources;
        top.destinations = snap.destinations;
        ModelOptions other = mo;
        other.sort = SourceSort::Entries;
        live.model().rows(snap, live.aggregator(), other);
        top.by_entries = snap.sources;
        other.sort = SourceSort::Drops;
        live.model().rows(snap, live.aggregator(), other);
        top.by_drops = snap.sources;
        top.workloads_by_rate = snap.workloads;
        LiveSnapshot by_drops;
        live.add_workloads(by_drops, other);
        top.workloads_by_drops = std::move(by_drops.workloads);
        auto p = std::make_shared<serve::Published>();
        p->openmetrics = serve::render(snap, top, ex, serve::Format::OpenMetrics);
        p->text = serve::render(snap, top, ex, serve::Format::PrometheusText);
        p->at = std::chrono::steady_clock::now();
        server.publish(std::move(p));
    };
    publish();
    fmt::print(stderr, "{}\n", watching_line(live.session()));
    fmt::print(stderr, "ctbpf: serving http://{}/metrics\n", server.address());

    const auto interval = std::chrono::milliseconds(static_cast<int64_t>(a.interval_s * 1000));
    auto next = std::chrono::steady_clock::now() + interval;
    LoopOptions lo;
    if (duration) lo.duration = std::chrono::milliseconds(static_cast<int64_t>(*duration * 1000));
    run_loop(live.session(), lo, [&] {
        if (std::chrono::steady_clock::now() >= next) {
            next += interval;
            publish();
        }
        return true;
    });
    return 0;
}

}  // namespace ctbpf::cli
