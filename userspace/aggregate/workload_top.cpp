#include "ctbpf/workload_top.h"

#include <algorithm>
#include <cstring>

namespace ctbpf {

std::string_view workload_kind_name(WorkloadKind k) {
    switch (k) {
        case WorkloadKind::Netns: return "netns";
        case WorkloadKind::Cgroup: return "cgroup";
        case WorkloadKind::Process: return "process";
    }
    return "?";
}

size_t WorkloadKeyHash::operator()(const WorkloadKey& k) const noexcept {
    uint64_t h = (uint64_t{static_cast<uint8_t>(k.kind)} << 56) ^ k.cgroup * 0x9e3779b97f4a7c15ull ^ k.pid;
    if (k.kind == WorkloadKind::Netns) h ^= uint64_t{k.netns} * 0xff51afd7ed558ccdull;
    uint64_t c[2];
    std::memcpy(c, k.comm.data(), sizeof c);
    h ^= c[0] * 0xc4ceb9fe1a85ec53ull ^ c[1];
    return static_cast<size_t>(h);
}

WorkloadTop::WorkloadTop(size_t capacity) : by_kind_{Summary(capacity), Summary(capacity), Summary(capacity)} {}

void WorkloadTop::count(Summary& s, const WorkloadKey& k, const Event& e) {
    // Activity is what the summary ranks by: inserts and drops (an insert taken back stays
    // activity, as for sources).
    const bool active = e.kind == EventKind::Insert || e.kind == EventKind::Drop;
    Summary::Entry* en = active ? &s.add(k, 1, [](const Summary::Entry&) {}) : s.find(k);
    if (!en) return;
    WorkloadStats& w = en->payload;  // reset by the summary when the slot changes key
    if (!w.named) {
        w.named = true;
        w.key = k;
        w.activity_error = en->error;
    }
    const uint64_t sec = e.ts_ns / 1'000'000'000ull;
    switch (e.kind) {
        case EventKind::Insert:
            ++w.inserts;
            w.insert_rate.add(sec);
            break;
        case EventKind::InsertFailed:
            if (w.inserts) --w.inserts;
            w.insert_rate.remove(sec);
            break;
        case EventKind::Drop: ++w.drops; break;
        case EventKind::EarlyDrop: ++w.early_drops; break;
        case EventKind::Destroy: break;
    }
}

void WorkloadTop::add(const Event& e) {
    // Destroys count nowhere here (entries per workload are not kept): skip them before any
    // lookup, they are the most frequent event after inserts.
    if (e.kind == EventKind::Destroy) return;
    WorkloadKey ns;
    ns.kind = WorkloadKind::Netns;
    ns.netns = e.netns;
    count(by_kind_[0], ns, e);
    // Early drops and failed inserts carry no process: only their namespace is known.
    if (e.kind != EventKind::Insert && e.kind != EventKind::Drop) return;
    if (e.cgroup) {
        WorkloadKey cg;
        cg.kind = WorkloadKind::Cgroup;
        cg.netns = e.netns;
        cg.cgroup = e.cgroup;
        count(by_kind_[1], cg, e);
    }
    if (e.pid) {
        WorkloadKey p;
        p.kind = WorkloadKind::Process;
        p.netns = e.netns;
        p.cgroup = e.cgroup;
        p.pid = e.pid;
        p.comm = e.comm;
        count(by_kind_[2], p, e);
    } else {
        ++(e.kind == EventKind::Insert ? no_process_inserts_ : no_process_drops_);
    }
}

std::vector<const WorkloadStats*> WorkloadTop::top(WorkloadKind kind, SortKey key, size_t n, uint64_t now_sec) const {
    struct Keyed {
        double a, b;
        const WorkloadStats* w;
    };
    std::vector<Keyed> all;
    by_kind_[static_cast<size_t>(kind)].for_each([&](const Summary::Entry& e) {
        const WorkloadStats& w = e.payload;
        const double ins = static_cast<double>(w.inserts);
        switch (key) {
            case SortKey::Rate1s: all.push_back({w.insert_rate.rate(now_sec, 1), ins, &w}); break;
            case SortKey::Rate10s: all.push_back({w.insert_rate.rate(now_sec, 10), ins, &w}); break;
            case SortKey::Drops: all.push_back({static_cast<double>(w.drops), ins, &w}); break;
            default: all.push_back({ins, static_cast<double>(w.drops), &w}); break;
        }
    });
    std::sort(all.begin(), all.end(), [](const Keyed& x, const Keyed& y) {
        if (x.a != y.a) return x.a > y.a;
        if (x.b != y.b) return x.b > y.b;
        if (x.w->key.netns != y.w->key.netns) return x.w->key.netns < y.w->key.netns;
        if (x.w->key.cgroup != y.w->key.cgroup) return x.w->key.cgroup < y.w->key.cgroup;
        return x.w->key.pid < y.w->key.pid;
    });
    std::vector<const WorkloadStats*> out;
    for (size_t i = 0; i < all.size() && i < n; ++i) out.push_back(all[i].w);
    return out;
}

uint64_t WorkloadTop::untracked_bound(WorkloadKind kind) const { return by_kind_[static_cast<size_t>(kind)].min_count(); }
size_t WorkloadTop::tracked(WorkloadKind kind) const { return by_kind_[static_cast<size_t>(kind)].size(); }

}  // namespace ctbpf
