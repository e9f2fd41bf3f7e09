// The live view's model: one LiveSnapshot per interval, built from the kernel totals, the
// tables' fill and the aggregator. Every live presentation (watch's JSON, text and full
// screen, serve's exposition) only reads it; a recording replayed on its own clock feeds
// the same model, so replay shows what live showed.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctbpf/aggregator.h"
#include "ctbpf/cidr.h"
#include "ctbpf/composition.h"
#include "ctbpf/kernel.h"
#include "ctbpf/system.h"
#include "ctbpf/table.h"
#include "ctbpf/workload_top.h"

namespace ctbpf {

struct SourceRow {
    Address addr;
    uint32_t netns = 0;      // inode: the same address in two namespaces is two rows
    std::string netns_name;  // as given to --netns ("self"), or the inode when not watched
    uint64_t inserts = 0, drops = 0, early_drops = 0;
    double rate_1s = 0, rate_10s = 0;
    int64_t entries = 0;
    double share = 0;                 // entries / table count
    uint64_t activity_error = 0;      // events it may have had before it was tracked
    std::array<uint32_t, 60> trend{};  // inserts per second, oldest first
    std::optional<DurationHistogram> lifetime;  // its ended entries (with composition)
};

struct DestRow {
    Address addr;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint64_t drops = 0;
    uint32_t netns = 0;
    std::string netns_name;
};

// One workload (WorkloadTop): a namespace, a cgroup or a process, with its names.
struct WorkloadRow {
    WorkloadKind kind = WorkloadKind::Netns;
    uint32_t netns = 0;
    std::string netns_name;   // the namespace's label (WorkloadResolver), else its watched name
    uint64_t cgroup = 0;      // cgroup v2 id; 0 for namespaces
    std::string cgroup_path;  // "" when it could not be resolved
    std::string workload;     // what the cgroup path says: container, pod, unit ("" unknown)
    uint32_t pid = 0;
    std::string comm;
    uint64_t inserts = 0, drops = 0, early_drops = 0;
    double rate_1s = 0, rate_10s = 0;
    int64_t entries = -1;     // a namespace: its table's count; -1 elsewhere (not kept)
    uint64_t activity_error = 0;
};

// A watched table as shown: the kernel's counts and the name the user gave its namespace.
struct TableRow : TableState {
    std::string name;  // as given to --netns, or "self"
};

struct LiveSnapshot {
    double elapsed_s = 0;
    std::string backend;
    std::vector<TableRow> tables;  // one per watched namespace; [0] is the fullest
    uint64_t object_size = 0;
    bool object_size_estimated = false;
    uint64_t mem_now = 0, mem_max = 0;
    bool baseline = false;          // occupancy includes entries that predate ctbpf
    int64_t baseline_entries = 0;
    double baseline_seconds = 0;    // how long the start-up dump took
    // Per second over the last interval, from the exact kernel totals.
    double inserts_s = 0, destroys_s = 0, growth_s = 0, drops_s = 0, drops_full_s = 0, early_drops_s = 0,
           insert_failed_s = 0;
    uint64_t drops_full_total = 0;          // drop events attributed to a full table, since start
    uint64_t drops_other_total = 0;         // drop events attributed otherwise, since start
    std::optional<double> seconds_to_full;  // at the current growth, if growing
    KernelTotals totals;
    std::vector<SourceRow> sources;
    std::vector<DestRow> destinations;
    // Bounded tracking: how many sources are tracked of how many at most, the most activity
    // any untracked source can have had, and what evicted/untracked sources did.
    size_t tracked = 0, capacity = 0;
    uint64_t untracked_bound = 0;
    uint64_t other_inserts = 0, other_drops = 0;
    int64_t other_entries = 0;
    // The watched tables' count minus every entry attributed (sources and other): entries
    // no event or dump accounts for (inserts during the start-up dump counted twice make it
    // negative; events lost in the ring buffer, entries made where ctbpf does not hook, or
    // --proto leaving others out make it positive). 0 when everything adds up.
    int64_t unattributed = 0;
    Level level = Level::Ok;
    std::vector<std::string> alerts;  // what is wrong and what to do
    // What the entries are: the last dump of each watched table (none yet, or not asked
    // for: empty), and how long ended entries lived, by the class they ended in.
    std::vector<Composition> composition;
    std::map<EntryClass, DurationHistogram> lifetimes;
    std::vector<std::string> composition_errors;  // a dump that failed, one line each
    // Top workloads by namespace, cgroup and process (Observer::add_workloads), sorted as the
    // sources are; the most activity any unlisted one of each kind can have had; inserts and
    // drops that had no local process (forwarded, received, NATed, sent from softirq).
    std::vector<WorkloadRow> workloads;
    std::array<uint64_t, 3> workload_untracked_bound{};
    uint64_t inserts_without_process = 0, drops_without_process = 0;
};

// Drop events delivered so far, by attribution (attribute_drop in observe.h). Counted as
// they arrive, so both only grow: exported counters must never go down.
struct DropCounts {
    uint64_t table_full = 0, other = 0;
};

enum class SourceSort { Rate, Entries, Drops };

struct ModelOptions {
    size_t top = 20;
    SourceSort sort = SourceSort::Rate;
    std::optional<Cidr> cidr;  // only sources inside it
};

// Keeps what is needed between snapshots (previous totals and counts).
// Where the model reads the kernel's state: a live Session, or a recording being replayed
// (then `now_ns` is the recording's clock, so rates stay per recorded second).
struct ModelSource {
    std::string backend;
    std::vector<WatchedNetns> watched;
    std::function<KernelTotals()> totals;
    std::function<std::optional<TableState>(uint32_t netns)> table;
    std::function<uint64_t()> now_ns;
    // Whether a watched namespace was deleted meanwhile; optional.
    std::function<bool(uint32_t netns)> is_gone;
    // Other namespaces whose table was full lately (from the kernel log); optional.
    std::function<std::vector<OtherNetnsIncident>()> other_incidents;
    // The watched namespaces now, when they change while watching (--all-netns); optional:
    // without it `watched` is fixed.
    std::function<std::vector<WatchedNetns>()> watched_now;
};

ModelSource live_source(const Session& s);

class LiveModel {
public:
    LiveModel(ModelSource src, TableFacts facts, bool baseline, int64_t baseline_entries,
               double baseline_seconds = 0);
    LiveSnapshot take(const Aggregator& agg, const DropCounts& drops, const ModelOptions& opt);
    // Rebuilds only the source and destination rows (after a sort or filter change).
    void rows(LiveSnapshot& snap, const Aggregator& agg, const ModelOptions& opt) const;

private:
    ModelSource s_;
    TableFacts facts_;  // timeouts, object size: read once at start
    bool baseline_;
    int64_t baseline_entries_;
    double baseline_seconds_;
    uint64_t start_ns_, prev_ns_ = 0;
    KernelTotals prev_;
    uint64_t prev_drops_full_ = 0;
    int64_t prev_count_ = -1;
    std::vector<OtherNetnsIncident> others_;
    uint64_t others_read_ns_ = 0;
};

// What the compositions in `s` advise (status's rules, assess()): timeouts that hold a
// meaningful share of a table with their predicted effect, destinations that never
// answered. Appended to s.alerts as "advice: WHAT: COMMAND" (watch's JSON, text and screen).
void add_composition_advice(LiveSnapshot& s);

nlohmann::json to_json(const LiveSnapshot& s);
// Shared by the snapshot, status and report. `now_ns` ages the dump (0: not aged);
// `object_size` prices the predictions.
nlohmann::json to_json(const Composition& c, uint64_t now_ns, uint64_t object_size);
nlohmann::json to_json(const DurationHistogram& h);
nlohmann::json lifetimes_json(const std::map<EntryClass, DurationHistogram>& by_class);
std::string to_text(const LiveSnapshot& s);
// The workloads block of to_text: the first `per_kind` rows of each kind.
std::string workloads_text(const LiveSnapshot& s, size_t per_kind);
std::string sparkline(const std::array<uint32_t, 60>& v, size_t width);

}  // namespace ctbpf
