#include "ctbpf/composition.h"

#include <netinet/in.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

namespace ctbpf {

EntryClass classify_entry(uint8_t proto, uint8_t tcp_state, uint32_t status) {
    if (proto == IPPROTO_TCP)
        return {proto, tcp_state <= 9 ? static_cast<EntryState>(tcp_state) : EntryState::Unknown};
    if (status & kStatusAssured) return {proto, EntryState::Assured};
    if (status & kStatusSeenReply) return {proto, EntryState::Replied};
    return {proto, EntryState::Unreplied};
}

EntryClass classify_event(const Event& e) {
    if (!e.has_state) return {e.proto, EntryState::Unknown};
    return classify_entry(e.proto, e.tcp_state, e.ct_status);
}

std::string state_name(EntryState s) {
    switch (s) {
        case EntryState::None: return "NONE";
        case EntryState::SynSent: return "SYN_SENT";
        case EntryState::SynRecv: return "SYN_RECV";
        case EntryState::Established: return "ESTABLISHED";
        case EntryState::FinWait: return "FIN_WAIT";
        case EntryState::CloseWait: return "CLOSE_WAIT";
        case EntryState::LastAck: return "LAST_ACK";
        case EntryState::TimeWait: return "TIME_WAIT";
        case EntryState::Close: return "CLOSE";
        case EntryState::SynSent2: return "SYN_SENT2";
        case EntryState::Unreplied: return "UNREPLIED";
        case EntryState::Replied: return "REPLIED";
        case EntryState::Assured: return "ASSURED";
        case EntryState::Unknown: return "UNKNOWN";
    }
    return "UNKNOWN";
}

std::string class_name(const EntryClass& c) { return proto_name(c.proto) + " " + state_name(c.state); }

std::string timeout_sysctl(const EntryClass& c) {
    // nf_conntrack_proto_*.c: which timeouts[] slot each packet refreshes the entry to.
    switch (c.proto) {
        case IPPROTO_TCP:
            switch (c.state) {
                case EntryState::SynSent: return "tcp_timeout_syn_sent";
                case EntryState::SynRecv: return "tcp_timeout_syn_recv";
                case EntryState::Established: return "tcp_timeout_established";
                case EntryState::FinWait: return "tcp_timeout_fin_wait";
                case EntryState::CloseWait: return "tcp_timeout_close_wait";
                case EntryState::LastAck: return "tcp_timeout_last_ack";
                case EntryState::TimeWait: return "tcp_timeout_time_wait";
                case EntryState::Close: return "tcp_timeout_close";
                // SYN_SENT2 (simultaneous open) has no sysctl; the kernel keeps it 2 minutes.
                default: return "";
            }
        case IPPROTO_UDP:
        case IPPROTO_UDPLITE:
            // Replied but not yet a stream (the first 2 s after a reply) still gets udp_timeout.
            return c.state == EntryState::Assured ? "udp_timeout_stream" : "udp_timeout";
        case IPPROTO_ICMP: return "icmp_timeout";
        case IPPROTO_ICMPV6: return "icmpv6_timeout";
        case IPPROTO_SCTP:
        case IPPROTO_DCCP:
        case IPPROTO_GRE:
            return "";  // their own state machines, not classed here
        default: return "generic_timeout";
    }
}

// --- DurationHistogram ---------------------------------------------------------------------

void DurationHistogram::add(double seconds, uint64_t n) {
    if (!(seconds >= 0)) seconds = 0;
    const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
    counts[static_cast<size_t>(it - kBounds.begin())] += n;
    count += n;
    sum_s += seconds * static_cast<double>(n);
}

void DurationHistogram::merge(const DurationHistogram& o) {
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
    count += o.count;
    sum_s += o.sum_s;
}

double DurationHistogram::quantile(double q) const {
    if (count == 0) return 0;
    const double want = std::clamp(q, 0.0, 1.0) * static_cast<double>(count);
    uint64_t seen = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
        seen += counts[i];
        if (static_cast<double>(seen) >= want && counts[i])
            return i + 1 == counts.size() ? kBounds[i - 1] : kBounds[i];
    }
    return kBounds[kBounds.size() - 2];
}

// --- Entries across dumps and events -----------------------------------------------------

uint64_t tuple_key(uint32_t netns, uint16_t zone, uint8_t proto, const Address& src, const Address& dst,
                   uint16_t sport, uint16_t dport) {
    // FNV-1a over the tuple, then a 64-bit finalizer (splitmix64) so that FlatMap's linear
    // probing sees well-spread keys. Two live entries share a key only by a 2^-64 accident.
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* p, size_t n) {
        const auto* b = static_cast<const uint8_t*>(p);
        for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    mix(&netns, sizeof netns);
    mix(&zone, sizeof zone);
    mix(&proto, 1);
    mix(&src.family, 1);
    mix(src.bytes.data(), 16);
    mix(dst.bytes.data(), 16);
    mix(&sport, 2);
    mix(&dport, 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

namespace {
uint64_t event_key(const Event& e) { return tuple_key(e.netns, e.zone, e.proto, e.src, e.dst, e.sport, e.dport); }
}  // namespace

std::optional<double> EntryClock::on_event(const Event& e) {
    switch (e.kind) {
        case EventKind::Insert: {
            const uint64_t k = event_key(e);
            map_.insert_or_assign(k, Seen{ds(e.ts_ns), 1, e.proto, 0});
            recent_.push_back(k);
            return std::nullopt;
        }
        case EventKind::InsertFailed:
            // Taken back: the insert it announced never made an entry (clash).
            map_.erase(event_key(e));
            return std::nullopt;
        case EventKind::Destroy:
        case EventKind::EarlyDrop: {
            const auto seen = map_.take(event_key(e));
            if (!seen || !seen->exact) return std::nullopt;
            const uint32_t end = ds(e.ts_ns);
            return end >= seen->first_ds ? (end - seen->first_ds) / 10.0 : 0.0;
        }
        case EventKind::Drop: break;
    }
    return std::nullopt;
}

std::optional<std::pair<double, bool>> EntryClock::age(uint64_t key, uint64_t now_ns) const {
    const Seen* s = map_.find(key);
    if (!s) return std::nullopt;
    const uint32_t now = ds(now_ns);
    return std::pair{now >= s->first_ds ? (now - s->first_ds) / 10.0 : 0.0, s->exact != 0};
}

void EntryClock::after_dump(const std::vector<uint64_t>& keys, uint64_t started_ns, uint64_t now_ns,
                            uint16_t max_misses) {
    const uint32_t now = ds(now_ns), started = ds(started_ns);
    std::vector<uint64_t> held(keys);
    std::sort(held.begin(), held.end());
    for (const uint64_t k : held) {
        if (Seen* s = map_.find(k)) s->misses = 0;
        else map_.insert_or_assign(k, Seen{now, 0, 0, 0});
    }
    // FlatMap cannot be iterated: the entries the dump did not hold are found among the keys
    // known after the last dump and those inserted since.
    std::vector<uint64_t> candidates(known_);
    candidates.insert(candidates.end(), recent_.begin(), recent_.end());
    recent_.clear();
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    std::vector<uint64_t> kept;
    for (const uint64_t k : candidates) {
        if (std::binary_search(held.begin(), held.end(), k)) continue;
        Seen* s = map_.find(k);
        if (!s) continue;  // destroyed meanwhile
        if (s->exact && s->first_ds >= started) {
            kept.push_back(k);  // inserted while the dump ran: it may have passed its bucket
        } else if (++s->misses > max_misses) {
            map_.erase(k);
        } else {
            kept.push_back(k);
        }
    }
    known_ = std::move(held);
    known_.insert(known_.end(), kept.begin(), kept.end());
}

void Lifetimes::add(const Event& ended, double seconds) {
    by_class_[classify_event(ended)].add(seconds);
    const SourceKey k{ended.src, ended.netns};
    auto it = by_source_.find(k);
    if (it == by_source_.end()) {
        if (max_sources_ == 0) return;
        if (by_source_.size() >= max_sources_) {
            auto fewest = std::min_element(by_source_.begin(), by_source_.end(),
                                           [](const auto& a, const auto& b) { return a.second.count < b.second.count; });
            by_source_.erase(fewest);
        }
        it = by_source_.emplace(k, DurationHistogram{}).first;
    }
    it->second.add(seconds);
}

DurationHistogram Lifetimes::total() const {
    DurationHistogram t;
    for (const auto& [c, h] : by_class_) t.merge(h);
    return t;
}

// --- Predictions and proposals ---------------------------------------------------------------

std::optional<uint64_t> proposed_timeout(const std::string& sysctl, uint64_t current_s) {
    // Values operators commonly run (and the seed's fix, established 1200 s after 5 days).
    // established: a day, not less: idle connections kept by TCP keepalive (7200 s by
    // default) must keep their entry.
    static const std::map<std::string, uint64_t> kProposed = {
        {"tcp_timeout_established", 86400}, {"tcp_timeout_syn_sent", 30}, {"tcp_timeout_syn_recv", 30},
        {"tcp_timeout_fin_wait", 30},       {"tcp_timeout_close_wait", 60}, {"tcp_timeout_last_ack", 30},
        {"tcp_timeout_time_wait", 30},      {"tcp_timeout_close", 10},      {"udp_timeout", 10},
        {"udp_timeout_stream", 60},         {"icmp_timeout", 10},           {"icmpv6_timeout", 10},
        {"generic_timeout", 120},
    };
    const auto it = kProposed.find(sysctl);
    if (it == kProposed.end() || current_s <= it->second) return std::nullopt;
    return it->second;
}

uint64_t predict_entries(std::vector<uint32_t> idle_s, uint64_t from_s, uint64_t to_s) {
    const uint64_t n = idle_s.size();
    if (to_s == from_s || n == 0) return n;
    if (to_s < from_s) {
        // The kernel reports seconds left rounded down, so idle = timeout - left is the true
        // idle time rounded up: an entry at idle i has been idle in (i-1, i], and survives a
        // timeout `to_s` (it would have more than 0 s left) if i <= to_s.
        return static_cast<uint64_t>(std::count_if(idle_s.begin(), idle_s.end(),
                                                    [to_s](uint32_t i) { return i <= to_s; }));
    }
    const uint64_t tail_from = from_s - std::max<uint64_t>(1, from_s / 10);
    const uint64_t tail = static_cast<uint64_t>(
        std::count_if(idle_s.begin(), idle_s.end(), [tail_from](uint32_t i) { return i > tail_from; }));
    const double expiring_per_s = static_cast<double>(tail) / static_cast<double>(from_s - tail_from);
    return n + static_cast<uint64_t>(std::llround(expiring_per_s * static_cast<double>(to_s - from_s)));
}

// --- CompositionBuilder --------------------------------------------------------------------

bool CompositionBuilder::DestKeyLess::operator()(const DestKey& a, const DestKey& b) const {
    if (a.proto != b.proto) return a.proto < b.proto;
    if (a.port != b.port) return a.port < b.port;
    if (a.addr.family != b.addr.family) return a.addr.family < b.addr.family;
    return a.addr.bytes < b.addr.bytes;
}

CompositionBuilder::CompositionBuilder(uint32_t netns, std::map<std::string, uint64_t> timeouts, AgeOf age_of,
                                       uint64_t now_ns, size_t top)
    : netns_(netns), timeouts_(std::move(timeouts)), age_of_(std::move(age_of)), now_ns_(now_ns), top_(top) {}

void CompositionBuilder::add(const DumpedEntry& d) {
    const EntryClass cls = classify_entry(d.proto, d.tcp_state, d.status);
    ++total_;
    auto [it, fresh] = classes_.try_emplace(cls);
    ClassComposition& c = it->second;
    if (fresh) {
        c.cls = cls;
        c.sysctl = timeout_sysctl(cls);
        if (const auto t = timeouts_.find(c.sysctl); t != timeouts_.end()) c.timeout_s = t->second;
    }
    ++c.entries;
    if (c.timeout_s) {
        const uint64_t idle = *c.timeout_s > d.timeout_s ? *c.timeout_s - d.timeout_s : 0;
        c.idle.add(static_cast<double>(idle));
        idle_by_sysctl_[c.sysctl].push_back(static_cast<uint32_t>(std::min<uint64_t>(idle, UINT32_MAX)));
    }
    const uint64_t key = tuple_key(netns_, d.zone, d.proto, d.src, d.dst, d.sport, d.dport);
    keys_.push_back(key);
    double age = 0;
    if (age_of_) {
        if (const auto a = age_of_(key)) {
            age = a->first;
            c.age.add(age);
            if (!a->second) ++c.age_at_least;
        } else {
            c.age.add(0);  // first seen now
        }
        if (cls.state == EntryState::Unreplied && c.timeout_s &&
            age > kStaleFactor * static_cast<double>(*c.timeout_s))
            ++c.stale;
    }
    ++sources_[d.src][cls];
    DestAcc& dst = dests_[DestKey{d.dst, d.dport, d.proto, netns_}];
    const bool replied = d.proto == IPPROTO_TCP ? (d.status & kStatusSeenReply) != 0 : cls.state != EntryState::Unreplied;
    ++(replied ? dst.replied : dst.unreplied);
    dst.oldest = std::max(dst.oldest, age);
}

Composition CompositionBuilder::finish(double dump_seconds,
                                       const std::map<std::string, std::vector<uint64_t>>& extra_targets) {
    Composition out;
    out.netns = netns_;
    out.taken_ns = now_ns_;
    out.dump_seconds = dump_seconds;
    out.total = total_;
    out.timeouts = timeouts_;
    for (auto& [cls, c] : classes_) out.classes.push_back(std::move(c));
    std::stable_sort(out.classes.begin(), out.classes.end(),
                     [](const ClassComposition& a, const ClassComposition& b) { return a.entries > b.entries; });

    std::vector<SourceComposition> sources;
    sources.reserve(sources_.size());
    for (auto& [addr, m] : sources_) {
        SourceComposition s;
        s.addr = addr;
        for (const auto& [cls, n] : m) {
            s.entries += n;
            s.by_class.emplace_back(cls, n);
        }
        std::stable_sort(s.by_class.begin(), s.by_class.end(), [](auto& a, auto& b) { return a.second > b.second; });
        sources.push_back(std::move(s));
    }
    const size_t keep = std::min(top_, sources.size());
    std::partial_sort(sources.begin(), sources.begin() + static_cast<std::ptrdiff_t>(keep), sources.end(),
                      [](const SourceComposition& a, const SourceComposition& b) {
                          if (a.entries != b.entries) return a.entries > b.entries;
                          return a.addr.bytes < b.addr.bytes;
                      });
    sources.resize(keep);
    out.sources = std::move(sources);

    for (const auto& [k, d] : dests_)
        if (d.replied == 0 && d.unreplied >= kSilentMinEntries)
            out.silent.push_back({k.addr, k.port, k.proto, d.unreplied, d.oldest});
    std::stable_sort(out.silent.begin(), out.silent.end(),
                     [](const SilentDestination& a, const SilentDestination& b) { return a.unreplied > b.unreplied; });
    if (out.silent.size() > 10) out.silent.resize(10);

    for (auto& [sysctl, idle] : idle_by_sysctl_) {
        const uint64_t from = timeouts_.at(sysctl);
        std::vector<uint64_t> targets;
        if (const auto p = proposed_timeout(sysctl, from)) targets.push_back(*p);
        else if (from >= 2) targets.push_back(from / 2);
        if (const auto x = extra_targets.find(sysctl); x != extra_targets.end())
            targets.insert(targets.end(), x->second.begin(), x->second.end());
        std::vector<EntryClass> classes;
        for (const auto& c : out.classes)
            if (c.sysctl == sysctl) classes.push_back(c.cls);
        for (const uint64_t to : targets) {
            TimeoutPrediction p;
            p.sysctl = sysctl;
            p.from_s = from;
            p.to_s = to;
            p.entries_now = idle.size();
            p.entries_after = predict_entries(idle, from, to);
            p.classes = classes;
            out.predictions.push_back(std::move(p));
        }
    }
    std::stable_sort(out.predictions.begin(), out.predictions.end(),
                     [](const TimeoutPrediction& a, const TimeoutPrediction& b) { return a.entries_now > b.entries_now; });
    idle_by_sysctl_.clear();
    return out;
}

}  // namespace ctbpf
