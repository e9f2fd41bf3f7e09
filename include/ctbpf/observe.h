// Live observation: the one library every live command uses (events, watch, serve,
// record, export --live). It owns the kernel session, decodes each record, attributes
// drops (one rule, attribute_drop), feeds the aggregator, takes the start-up baseline and
// builds LiveSnapshots, and samples what the entries are; it runs the wait loop (ring buffer, SIGINT/SIGTERM, deadline).
// Commands only parse flags and present what it gives them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/baseline.h"
#include "ctbpf/composition.h"
#include "ctbpf/decode.h"
#include "ctbpf/fd.h"
#include "ctbpf/kernel.h"
#include "ctbpf/live_view.h"
#include "ctbpf/table.h"
#include "ctbpf/workload.h"
#include "ctbpf/workload_top.h"

namespace ctbpf {

// --- Drop attribution -------------------------------------------------------------------

// Where user space can read a watched table (a live Session), and the clock to read it by.
struct TableReader {
    std::function<std::optional<TableState>(uint32_t netns)> table;
    std::function<uint64_t()> now_ns;
    unsigned cpus = 1;
};

// The one rule for why conntrack dropped a packet. The kernel side says so when it can
// (the fentry and kprobe backends hook the allocation that failed: CTBPF_R_TABLE_FULL or
// CTBPF_R_NO_ENTRY); otherwise (Reason::None: the tracepoint backend) the drop counts as
// table full if the table was seen full (table_is_full) within a second of it. Recent
// kernels keep the entry count where BPF cannot read it, so it is read here, at most every
// 5 ms per namespace; the kernel side wakes the reader at the start of every drop storm so
// that the read happens while the storm is on.
class DropAttribution {
public:
    explicit DropAttribution(TableReader reader) : r_(std::move(reader)) {}
    Reason attribute_drop(uint32_t netns, uint64_t event_ns, Reason kernel_reason);

private:
    struct State {
        uint64_t read_ns = 0, full_ns = 0;
    };
    TableReader r_;
    std::unordered_map<uint32_t, State> state_;
};

// --- The observer -----------------------------------------------------------------------

std::optional<uint8_t> parse_proto(const std::string& p);  // throws Error (exit 2) on a bad name
Backend parse_backend_option(const std::string& b);         // throws Error (exit 2) on a bad name

struct ObserverOptions {
    std::vector<std::string> netns;
    bool all_netns = false;  // every namespace on the host, those made later too
    std::string backend = "auto";
    size_t ring_bytes = 8u << 20;
    bool verbose = false;
    // Aggregation (watch, serve, events' summary); off for record and export.
    bool aggregate = true;
    std::string proto;              // only this protocol in the per-source detail ("" = all)
    size_t capacity = 1 << 16;      // sources tracked at most
    // The start-up dump of what the table already holds: auto, on, off. Taken without
    // aggregation too (record stores it), see Observer::baselines().
    std::string baseline = "off";
    // Build a LiveModel (watch, serve): reads the table's facts once at start.
    bool model = false;
    // What the entries are (watch, serve): each watched table dumped by netlink on a thread
    // of its own every `composition_interval_s`, stretched so that dumping never takes more
    // than 1% of a core (a dump costs about 2.5 us per entry); ages and lifetimes from the
    // insert and destroy events.
    bool composition = false;
    double composition_interval_s = 10;
};

class Observer {
public:
    // Every delivered event, after drop attribution: decoded, and as the raw record with the
    // attributed reason written in (what recordings store). Called on the observer's thread
    // from drain(); it may throw (the exception leaves drain(), not libbpf's C frames).
    using EventSink = std::function<void(const Event&, EventRecordView)>;

    explicit Observer(const ObserverOptions& o, EventSink sink = {});  // throws Error

    Session& session() { return *session_; }
    const Session& session() const { return *session_; }
    const Aggregator& aggregator() const { return agg_; }
    // Top workloads by namespace, cgroup and process (with aggregation).
    const WorkloadTop& workloads() const { return workloads_; }
    // Names of namespaces and cgroups. Refreshed (a scan of /proc, about 20 ms per thousand
    // processes) at most every 5 s, and when the watched namespaces changed, from take() and
    // refresh_names(): on the observer's thread between drains, never per event.
    void refresh_names();
    // A namespace's label ("ip netns c1", "docker 3f2a... (nginx 812)", "host"), else the name
    // it is watched by, else its inode. Cached: cheap enough per event.
    std::string netns_label(uint32_t inum);
    // A cgroup's path ("" unknown) and what it says (container, pod, unit; "" unknown).
    std::pair<std::string, std::string> cgroup_names(uint64_t id);
    // Adds the top workloads to a snapshot taken from model() directly.
    void add_workloads(LiveSnapshot& s, const ModelOptions& mo);
    // Everything take() adds to model().take(): composition, workloads, namespace labels.
    void enrich(LiveSnapshot& s, const ModelOptions& mo);
    const DropCounts& drops() const { return drops_; }
    // The start-up dump, one per watched namespace (empty if none was taken). Entries we
    // saw inserted before the dump ran are in the dump too; they are left out here, since
    // their insert events are delivered (and recorded) as well.
    const std::vector<Baseline>& baselines() const { return baselines_; }
    // Each watched namespace's table now.
    std::vector<TableState> tables() const;
    // The model (ObserverOptions::model); snapshots of it with this observer's counts.
    LiveModel& model();
    LiveSnapshot take(const ModelOptions& mo);
    // The last composition of each watched table (empty until the first dump finished), the
    // errors of dumps that failed, and the lifetimes of ended entries (ObserverOptions::composition).
    std::vector<Composition> compositions() const;
    // Adds the above to a snapshot taken from model() directly.
    void add_composition(LiveSnapshot& s) const;
    std::vector<std::string> composition_errors() const;
    Lifetimes lifetimes() const;
    // Reads the kernel totals, then delivers every record still waiting: whatever the
    // totals count is then delivered or counted lost (delivered + lost == totals).
    KernelTotals finish();

private:
    void on_record(std::span<const std::byte> rec);
    void sync_sampler();

    EventSink sink_;
    bool aggregate_;
    bool dumping_ = false;  // events before the start-up dump are aggregated for its correction
    std::vector<Baseline> baselines_;
    std::optional<uint8_t> proto_;
    Aggregator agg_;
    WorkloadTop workloads_;
    WorkloadResolver names_{WorkloadResolver::Roots{.cgroup = cgroup2_mount()}};
    uint64_t names_refreshed_ns_ = 0;
    uint64_t names_generation_ = ~0ull;
    std::unordered_map<uint32_t, std::string> netns_labels_;
    std::unordered_map<uint64_t, std::pair<std::string, std::string>> cgroup_labels_;
    DropCounts drops_;
    std::unique_ptr<Session> session_;
    std::optional<DropAttribution> attribution_;
    std::unique_ptr<LiveModel> model_;
    struct Sampler;
    std::shared_ptr<Sampler> sampler_;  // last: its thread stops before anything it reads goes
};

// --- The wait loop ----------------------------------------------------------------------

struct LoopOptions {
    std::optional<std::chrono::milliseconds> duration;  // stop after this long
    std::chrono::milliseconds tick{100};                 // drain at least this often
};

// Runs until SIGINT/SIGTERM or the deadline: waits on the ring buffer's epoll fd and a
// signalfd, drains at least every tick, then calls `on_tick` (flush output, publish...),
// which may return false to stop. Returns the signal that stopped it, or 0.
int run_loop(Session& s, const LoopOptions& opt, const std::function<bool()>& on_tick);

// A non-blocking signalfd that reads SIGINT and SIGTERM (blocked by block_stop_signals):
// for loops of their own, such as a replay, that must stop as run_loop does.
UniqueFd stop_signal_fd();

// Blocks SIGINT/SIGTERM (read through a signalfd, so nothing recorded is lost to a signal
// arriving mid-write) and ignores SIGPIPE. Call before starting any thread.
void block_stop_signals();

// --- Record triggers --------------------------------------------------------------------

// "fill>=90%", "drops", or several joined by ',' or '|' (any one fires).
struct Trigger {
    std::optional<double> fill;  // fraction
    bool drops = false;
    std::string text;            // as understood, for messages: "fill>=90% or drops"

    bool armed() const { return fill || drops; }
    bool fires(double fill_now, int64_t new_drops) const {
        return (fill && fill_now >= *fill) || (drops && new_drops > 0);
    }
};

// Throws Error (exit 2) saying what is accepted.
Trigger parse_triggers(const std::vector<std::string>& specs);

}  // namespace ctbpf
