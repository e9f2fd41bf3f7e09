#include "ctbpf/observe.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

#include <fmt/format.h>

#include "ctbpf/baseline.h"
#include "ctbpf/clock.h"
#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/netns.h"

namespace ctbpf {

namespace {
// The dump costs about 2.5 us per entry here, nearly all of it the kernel's (250,000
// entries: 0.6 s; `conntrack -L` took 1.5 s): automatic up to 250,000 entries, so that the
// first answer comes within a second; asked for beyond.
constexpr int64_t kAutoBaselineMax = 250'000;
// A drop within this long of a reading that found the table full is a table-full drop.
constexpr uint64_t kFullWindowNs = 1'000'000'000ull;
// Re-read a namespace's count at most this often (a storm delivers thousands of drops).
constexpr uint64_t kReadEveryNs = 5'000'000ull;

unsigned online_cpus() { return static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))); }
}  // namespace

Reason DropAttribution::attribute_drop(uint32_t netns, uint64_t event_ns, Reason kernel_reason) {
    if (kernel_reason == Reason::TableFull || kernel_reason == Reason::NoEntry) return kernel_reason;
    const uint64_t now = r_.now_ns();
    State& st = state_[netns];
    if (st.read_ns == 0 || now - st.read_ns > kReadEveryNs) {
        st.read_ns = now;
        if (auto t = r_.table(netns); t && table_is_full(*t, r_.cpus)) st.full_ns = now;
    }
    const uint64_t d = event_ns > st.full_ns ? event_ns - st.full_ns : st.full_ns - event_ns;
    return st.full_ns != 0 && d < kFullWindowNs ? Reason::TableFull : Reason::NoEntry;
}

std::optional<uint8_t> parse_proto(const std::string& p) {
    if (p.empty()) return std::nullopt;
    for (int n = 0; n < 256; ++n)
        if (proto_name(static_cast<uint8_t>(n)) == p) return static_cast<uint8_t>(n);
    throw Error(fmt::format("unknown protocol '{}': use tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre or a number", p), 2);
}

Backend parse_backend_option(const std::string& b) {
    if (auto v = parse_backend(b)) return *v;
    throw Error(fmt::format("unknown backend '{}': use auto, fentry, kprobe or tracepoint", b), 2);
}

// The composition sampler: dumps on its own thread (a dump of a million entries takes
// seconds, and the ring buffer must be read meanwhile), EntryClock and Lifetimes fed by the
// observer thread's events under one mutex.
struct Observer::Sampler {
    struct Target {
        std::string spec;  // what opens it
        uint32_t inum;
        std::string name;
    };
    std::vector<Target> targets;
    double interval_s;
    size_t top;
    uint64_t start_ns = monotonic_ns();
    mutable std::mutex mu;
    std::map<uint32_t, EntryClock> clocks;
    Lifetimes lifetimes;
    std::map<uint32_t, Composition> latest;
    std::map<uint32_t, std::string> errors;
    std::condition_variable_any cv;
    std::jthread thread;

    void on_event(const Event& e) {
        std::lock_guard lock(mu);
        const auto it = clocks.find(e.netns);
        if (it == clocks.end()) return;
        if (const auto lived = it->second.on_event(e)) lifetimes.add(e, *lived);
    }

    void run(std::stop_token stop) {
        while (!stop.stop_requested()) {
            double spent = 0;
            std::vector<Target> now_targets;
            {
                std::lock_guard lock(mu);
                now_targets = targets;
            }
            for (const auto& t : now_targets) {
                if (stop.stop_requested()) return;
                try {
                    const uint64_t now = monotonic_ns();
                    std::vector<uint64_t> keys;
                    Composition c = dump_composition(
                        t.spec,
                        [this, &t, now](uint64_t key) {
                            std::lock_guard lock(mu);
                            return clocks.at(t.inum).age(key, now);
                        },
                        now, top, &keys);
                    c.netns = t.inum;
                    spent += c.dump_seconds;
                    std::lock_guard lock(mu);
                    // Expired entries wait for the gc worker outside the dumps: keep their
                    // clocks for five minutes of dumps.
                    clocks.at(t.inum).after_dump(
                        keys, now, monotonic_ns(),
                        static_cast<uint16_t>(std::clamp(300.0 / interval_s, 3.0, 10000.0)));
                    latest[t.inum] = std::move(c);
                    errors.erase(t.inum);
                } catch (const std::exception& e) {
                    std::lock_guard lock(mu);
                    errors[t.inum] = fmt::format("composition of {}: {}", t.name, e.what());
                }
            }
            // At most 1% of a core: a dump that took 0.5 s is followed by 50 s of rest.
            const double wait = std::max(interval_s, 100 * spent);
            std::unique_lock lock(mu);
            cv.wait_for(lock, stop, std::chrono::duration<double>(wait), [] { return false; });
        }
    }
};

Observer::Observer(const ObserverOptions& o, EventSink sink)
    : sink_(std::move(sink)), aggregate_(o.aggregate), proto_(parse_proto(o.proto)),
      agg_(Aggregator::Options{o.capacity, o.capacity}) {
    if (o.baseline != "auto" && o.baseline != "on" && o.baseline != "off")
        throw Error(fmt::format("--baseline '{}': use auto, on or off", o.baseline), 2);
    SessionOptions so;
    so.backend = parse_backend_option(o.backend);
    so.netns = o.netns;
    so.all_netns = o.all_netns;
    so.ring_bytes = o.ring_bytes;
    so.verbose = o.verbose;
    session_ = std::make_unique<Session>(so, [this](std::span<const std::byte> rec) { on_record(rec); });
    const Session& s = *session_;
    attribution_.emplace(TableReader{[&s](uint32_t netns) { return s.table(netns); }, [] { return monotonic_ns(); },
                                     online_cpus()});

    // What the table already holds: once, by netlink, if cheap enough (or asked for).
    bool baseline = false;
    int64_t baseline_entries = 0;
    double baseline_seconds = 0;
    int64_t existing = 0;
    for (const auto& t : tables()) existing += t.count;
    if (o.baseline == "on" || (o.baseline == "auto" && existing <= kAutoBaselineMax)) {
        // Entries inserted since attaching are in the dump and also arrive as events: count
        // the events first (even when not aggregating), so the dump's share of them can be
        // taken out. Events during the dump itself stay ambiguous: the live view shows what
        // they leave over as "unattributed".
        dumping_ = true;
        session_->drain();
        dumping_ = false;
        for (const auto& w : s.watched()) {
            Baseline b = dump_baseline(w.spec());
            b.netns = w.inum;
            for (auto& [addr, n] : b.by_source) {
                const SourceStats* seen = agg_.source(addr, w.inum);
                const int64_t before = seen ? std::max<int64_t>(0, seen->entries - int64_t{seen->baseline}) : 0;
                n = std::max<int64_t>(0, n - before);
                if (aggregate_) agg_.add_baseline(w.inum, addr, n);
            }
            baseline_entries += b.total;
            baseline_seconds += b.seconds;
            baselines_.push_back(std::move(b));
        }
        baseline = true;
        if (!aggregate_) agg_ = Aggregator(Aggregator::Options{1, 1});  // only needed for the dump
    }
    if (o.composition) {
        if (!(o.composition_interval_s >= 1))
            throw Error("--composition-interval must be at least 1 s (0 turns it off)", 2);
        sampler_ = std::make_shared<Sampler>();
        sampler_->interval_s = o.composition_interval_s;
        sampler_->top = 20;
        sync_sampler();
        sampler_->thread = std::jthread([sp = sampler_.get()](std::stop_token st) { sp->run(st); });
    }
    if (!o.model) return;
    // Timeouts and the slab object size, read once, inside the (first) watched namespace.
    TableFacts facts;
    try {
        NetnsFile ns(s.watched().front().spec());
        NetnsEntry inside(ns);
        facts = read_table_facts();
    } catch (const Error&) {
        // conntrack not active there yet: the defaults in TableFacts serve
    }
    ModelSource src = live_source(s);
    src.is_gone = [&s](uint32_t netns) {
        for (const auto& w : s.watched())
            if (w.inum == netns) return w.gone;
        return false;
    };
    src.other_incidents = [&s] {
        // Every line that names a namespace is "other" here; the watched ones are dropped.
        NetnsId none;
        none.initial = false;
        TableFacts log_only;
        log_only.kernel_log = read_kmsg("/dev/kmsg", none);
        std::optional<double> uptime;
        if (std::ifstream in("/proc/uptime"); in) {
            double up = 0;
            if (in >> up) uptime = up;
        }
        auto out = other_netns_incidents(log_only.kernel_log, uptime, named_netns(), kRecentLogSeconds);
        std::erase_if(out, [&](const OtherNetnsIncident& o) {
            for (const auto& w : s.watched())
                if (w.inum == o.inode) return true;
            return false;
        });
        return out;
    };
    model_ = std::make_unique<LiveModel>(std::move(src), facts, baseline, baseline_entries, baseline_seconds);
}

void Observer::on_record(std::span<const std::byte> rec) {
    auto e = decode_event(rec);
    if (!e) return;
    EventRecord raw;
    std::memcpy(raw.data(), rec.data(), raw.size());
    if (e->kind == EventKind::Drop) {
        e->reason = attribution_->attribute_drop(e->netns, e->ts_ns, e->reason);
        ++(e->reason == Reason::TableFull ? drops_.table_full : drops_.other);
        reinterpret_cast<ctbpf_event*>(raw.data())->reason = static_cast<uint8_t>(e->reason);
    }
    if ((aggregate_ || dumping_) && (!proto_ || e->proto == *proto_)) agg_.add(*e);
    if (aggregate_ && !dumping_) workloads_.add(*e);
    if (sampler_) sampler_->on_event(*e);
    if (sink_) sink_(*e, EventRecordView(raw));
}

std::vector<TableState> Observer::tables() const {
    std::vector<TableState> out;
    for (const auto& w : session_->watched()) {
        TableState t{w.inum, 0, 0, 0};
        if (auto tb = session_->table(w.inum)) t = *tb;
        out.push_back(t);
    }
    return out;
}

LiveModel& Observer::model() {
    if (!model_) throw Error("internal: this observer was made without a model");
    return *model_;
}

// The sampler dumps what is watched now: namespaces found later (--all-netns) are added,
// gone ones dropped (their last composition stays until replaced).
void Observer::sync_sampler() {
    if (!sampler_) return;
    std::lock_guard lock(sampler_->mu);
    std::vector<Sampler::Target> targets;
    for (const auto& w : session_->watched()) {
        if (w.gone) continue;
        targets.push_back({w.spec(), w.inum, w.name});
        sampler_->clocks.try_emplace(w.inum, EntryClock(sampler_->start_ns));
    }
    // A gone namespace's clock goes with it: namespaces come and go all day.
    std::erase_if(sampler_->clocks, [&](const auto& kv) {
        return std::none_of(targets.begin(), targets.end(), [&](const Sampler::Target& t) { return t.inum == kv.first; });
    });
    sampler_->targets = std::move(targets);
}

LiveSnapshot Observer::take(const ModelOptions& mo) {
    LiveSnapshot snap = model().take(agg_, drops_, mo);
    enrich(snap, mo);
    return snap;
}

void Observer::enrich(LiveSnapshot& snap, const ModelOptions& mo) {
    sync_sampler();
    add_composition(snap);
    add_workloads(snap, mo);
    // --all-netns names namespaces by what holds them, which the session does not know.
    if (session_->watched().size() > 1) {
        for (auto& t : snap.tables) {
            const bool gone = t.name.ends_with(" (gone)");
            t.name = netns_label(t.netns) + (gone ? " (gone)" : "");
        }
        for (auto& r : snap.sources) r.netns_name = netns_label(r.netns);
        for (auto& d : snap.destinations) d.netns_name = netns_label(d.netns);
    }
}

void Observer::refresh_names() {
    const uint64_t now = monotonic_ns();
    const uint64_t gen = session_->watched_generation();
    if (gen != names_generation_) netns_labels_.clear();  // a reused inode is another namespace
    // The scan of /proc: every 5 s, and when namespaces came (a new one's holders).
    if (names_refreshed_ns_ != 0 && (gen == names_generation_ || now - names_refreshed_ns_ < 200'000'000ull) &&
        now - names_refreshed_ns_ < 5'000'000'000ull)
        return;
    names_generation_ = gen;
    names_refreshed_ns_ = now;
    names_.refresh();
    netns_labels_.clear();
    cgroup_labels_.clear();
}

std::string Observer::netns_label(uint32_t inum) {
    if (const auto it = netns_labels_.find(inum); it != netns_labels_.end()) return it->second;
    if (names_refreshed_ns_ == 0) refresh_names();
    std::string label;
    for (const auto& w : session_->watched())
        if (w.inum == inum) label = w.name;
    // A name the user gave (--netns, ip netns) stays; a namespace found by --all-netns is
    // named by what holds it.
    if (const auto n = names_.netns(inum); n && (label.empty() || label.rfind("pid ", 0) == 0)) {
        const std::string l = n->label();
        if (l != "unknown") label = l;
    }
    if (label.empty()) label = std::to_string(inum);
    return netns_labels_[inum] = label;
}

std::pair<std::string, std::string> Observer::cgroup_names(uint64_t id) {
    if (id == 0) return {};
    if (const auto it = cgroup_labels_.find(id); it != cgroup_labels_.end()) return it->second;
    std::pair<std::string, std::string> out;
    if (const auto path = names_.cgroup_path(id)) {
        out.first = *path;
        CgroupWorkload w = parse_cgroup_path(*path);
        read_runtime_names(w);
        if (!w.kind.empty()) out.second = w.label();
    }
    return cgroup_labels_[id] = out;
}

void Observer::add_workloads(LiveSnapshot& snap, const ModelOptions& mo) {
    if (!aggregate_) return;
    refresh_names();
    const uint64_t now_sec = monotonic_ns() / 1'000'000'000ull + 1;
    const SortKey key = mo.sort == SourceSort::Drops ? SortKey::Drops : SortKey::Rate10s;
    for (WorkloadKind k : {WorkloadKind::Netns, WorkloadKind::Cgroup, WorkloadKind::Process}) {
        for (const WorkloadStats* w : workloads_.top(k, key, mo.top, now_sec)) {
            WorkloadRow r;
            r.kind = k;
            r.netns = w->key.netns;
            r.netns_name = netns_label(w->key.netns);
            r.cgroup = w->key.cgroup;
            std::tie(r.cgroup_path, r.workload) = cgroup_names(w->key.cgroup);
            r.pid = w->key.pid;
            r.comm = std::string(w->key.comm.data(), strnlen(w->key.comm.data(), w->key.comm.size()));
            r.inserts = w->inserts;
            r.drops = w->drops;
            r.early_drops = w->early_drops;
            r.rate_1s = w->insert_rate.rate(now_sec - 1, 1);
            r.rate_10s = w->insert_rate.rate(now_sec - 1, 10);
            r.activity_error = w->activity_error;
            if (k == WorkloadKind::Netns)
                for (const auto& t : snap.tables)
                    if (t.netns == r.netns) r.entries = t.count;
            snap.workloads.push_back(std::move(r));
        }
        snap.workload_untracked_bound[static_cast<size_t>(k)] = workloads_.untracked_bound(k);
    }
    snap.inserts_without_process = workloads_.inserts_without_process();
    snap.drops_without_process = workloads_.drops_without_process();
}

void Observer::add_composition(LiveSnapshot& snap) const {
    if (!sampler_) return;
    snap.composition = compositions();
    snap.composition_errors = composition_errors();
    const Lifetimes l = lifetimes();
    snap.lifetimes = l.by_class();
    for (auto& r : snap.sources)
        if (const DurationHistogram* h = l.source(SourceKey{r.addr, r.netns})) r.lifetime = *h;
    add_composition_advice(snap);
}

std::vector<Composition> Observer::compositions() const {
    std::vector<Composition> out;
    if (!sampler_) return out;
    std::lock_guard lock(sampler_->mu);
    for (const auto& t : sampler_->targets)
        if (const auto it = sampler_->latest.find(t.inum); it != sampler_->latest.end()) out.push_back(it->second);
    return out;
}

std::vector<std::string> Observer::composition_errors() const {
    std::vector<std::string> out;
    if (!sampler_) return out;
    std::lock_guard lock(sampler_->mu);
    for (const auto& [inum, e] : sampler_->errors) out.push_back(e);
    return out;
}

Lifetimes Observer::lifetimes() const {
    if (!sampler_) return Lifetimes(0);
    std::lock_guard lock(sampler_->mu);
    return sampler_->lifetimes;
}

KernelTotals Observer::finish() {
    const KernelTotals t = session_->totals();
    session_->drain();
    return t;
}

}  // namespace ctbpf
