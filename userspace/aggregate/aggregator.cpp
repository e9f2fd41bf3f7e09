#include "ctbpf/aggregator.h"

#include <algorithm>
#include <tuple>

namespace ctbpf {

void RateWindow::advance(uint64_t sec) {
    if (sec <= head_) return;
    const uint64_t gap = std::min<uint64_t>(sec - head_, kSlots);
    for (uint64_t i = 1; i <= gap; ++i) slots_[(head_ + i) % kSlots] = 0;
    head_ = sec;
}

void RateWindow::add(uint64_t sec, uint32_t n) {
    advance(sec);
    if (head_ - sec >= kSlots) return;  // too old to matter
    slots_[sec % kSlots] += n;
}

void RateWindow::remove(uint64_t sec, uint32_t n) {
    if (sec > head_ || head_ - sec >= kSlots) return;
    uint32_t& slot = slots_[sec % kSlots];
    slot -= std::min(slot, n);
}

uint32_t RateWindow::at(uint64_t now_sec, uint64_t sec) const {
    if (sec >= now_sec || now_sec - sec > kSeconds) return 0;
    if (sec > head_ || head_ - sec >= kSlots) return 0;
    return slots_[sec % kSlots];
}

double RateWindow::rate(uint64_t now_sec, unsigned window) const {
    if (window == 0) return 0;
    window = std::min(window, kSeconds);
    uint64_t sum = 0;
    for (unsigned i = 1; i <= window && i <= now_sec; ++i) sum += at(now_sec, now_sec - i);
    return static_cast<double>(sum) / window;
}

void RateHistory::advance(uint64_t sec) {
    if (sec <= head_) return;
    if (sec - head_ >= kSlots) slots_.fill(0);  // the usual case for a new source
    else
        for (uint64_t s = head_ + 1; s <= sec; ++s) slots_[s % kSlots] = 0;
    head_ = sec;
}

// Replays the byte counts into a RateWindow with the same newest second, so that from here
// on it answers (and accepts or ignores late seconds) exactly as this history would have.
void RateHistory::widen() {
    wide_ = std::make_unique<RateWindow>();
    wide_->add(head_, 0);
    for (uint64_t age = 0; age < kSlots && age <= head_; ++age)
        if (const uint8_t c = slots_[(head_ - age) % kSlots]) wide_->add(head_ - age, c);
}

void RateHistory::add(uint64_t sec, uint32_t n) {
    if (wide_) return wide_->add(sec, n);
    advance(sec);
    if (head_ - sec >= kSlots) return;  // too old to matter
    uint8_t& slot = slots_[sec % kSlots];
    if (uint64_t{slot} + n <= kMax) {
        slot = static_cast<uint8_t>(slot + n);
        return;
    }
    widen();
    wide_->add(sec, n);
}

void RateHistory::remove(uint64_t sec, uint32_t n) {
    if (wide_) return wide_->remove(sec, n);
    if (sec > head_ || head_ - sec >= kSlots) return;
    uint8_t& slot = slots_[sec % kSlots];
    slot = static_cast<uint8_t>(slot - std::min<uint32_t>(slot, n));
}

double RateHistory::rate(uint64_t now_sec, unsigned window) const {
    if (wide_) return wide_->rate(now_sec, window);
    if (window == 0) return 0;
    window = std::min(window, kSeconds);
    // The seconds at() would count: [now - window, now - 1], not before 0, not after the
    // newest written, not older than the ring. Summed without a test per second, since
    // top_sources() asks this of every tracked source.
    const uint64_t lo = std::max(now_sec > window ? now_sec - window : 0, head_ >= kSlots ? head_ - kSlots + 1 : 0);
    const uint64_t hi = std::min(now_sec, head_ + 1);  // exclusive
    uint64_t sum = 0;
    for (uint64_t s = lo; s < hi; ++s) sum += slots_[s % kSlots];
    return static_cast<double>(sum) / window;
}

size_t DestKeyHash::operator()(const DestKey& k) const noexcept {
    return AddressHash{}(k.addr) ^ (size_t{k.port} << 17) ^ (size_t{k.proto} << 40) ^ (size_t{k.netns} << 23);
}

size_t SourceKeyHash::operator()(const SourceKey& k) const noexcept {
    // Namespace inodes are close together: spread them over the word (SpaceSaving mixes again).
    return AddressHash{}(k.addr) ^ (size_t{k.netns} * 0x9e3779b97f4a7c15ull);
}

Aggregator::Aggregator(Options opt) : opt_(opt), sources_(opt.max_sources), dests_(opt.max_destinations) {}

namespace {
// What an evicted source did stays in the totals, under other().
void fold(SourceStats& into, const SourceStats& from) {
    into.inserts += from.inserts;
    into.drops += from.drops;
    into.early_drops += from.early_drops;
    into.destroys += from.destroys;
    into.insert_failed += from.insert_failed;
    into.entries += from.entries;
    into.baseline += from.baseline;
}
}  // namespace

Aggregator::Sources::Entry& Aggregator::track(const SourceKey& k, uint64_t weight) {
    if (k.netns != only_netns_ && !many_netns_) {
        if (sources_.total() == 0) only_netns_ = k.netns;
        else many_netns_ = true;
    }
    auto& e = sources_.add(k, weight, [&](const Sources::Entry& old) { fold(other_, old.payload); });
    if (e.payload.epoch == 0) {  // a new slot (or one taken over): start this key's period
        e.payload.addr = k.addr;
        e.payload.netns = k.netns;
        e.payload.epoch = next_epoch_++;
        if (next_epoch_ == 0) next_epoch_ = 1;
        e.payload.activity_error = e.error;
    }
    return e;
}

SourceStats& Aggregator::owner(const Owner& o) {
    SourceStats& s = sources_.at_slot(o.slot).payload;
    // Same slot, same period: still tracked. Otherwise its entries were folded into other().
    return s.epoch == o.epoch ? s : other_;
}

void Aggregator::add(const Event& e) {
    const auto k = static_cast<size_t>(e.kind);
    if (k < seen_.size()) seen_[k]++;
    switch (e.kind) {
        case EventKind::Insert: {
            auto& tracked = track(SourceKey{e.src, e.netns}, 1);
            SourceStats& s = tracked.payload;
            s.inserts++;
            s.entries++;
            attributed_++;
            s.insert_rate.add(e.ts_ns / 1'000'000'000ull);
            live_.insert_or_assign(e.ct_id, Owner{sources_.slot_of(tracked), s.epoch});
            break;
        }
        case EventKind::InsertFailed: {
            // The insert was announced before confirm refused it: take it back.
            if (const auto o = live_.take(e.ct_id)) {
                SourceStats& s = owner(*o);
                s.entries--;
                attributed_--;
                if (s.inserts) s.inserts--;
                // The insert was counted in the second it was announced, close to this one.
                s.insert_rate.remove(e.ts_ns / 1'000'000'000ull);
                s.insert_failed++;
            } else {
                auto* f = sources_.find(SourceKey{e.src, e.netns});
                (f ? f->payload : other_).insert_failed++;
            }
            break;
        }
        case EventKind::Drop: {
            track(SourceKey{e.src, e.netns}, 1).payload.drops++;
            const DestKey key{e.dst, e.dport, e.proto, e.netns};
            auto& d = dests_.add(key, 1, [&](const Dests::Entry& old) { other_dest_.drops += old.payload.drops; });
            d.payload.key = key;
            d.payload.drops++;
            break;
        }
        case EventKind::EarlyDrop:
        case EventKind::Destroy: {
            SourceStats* s = nullptr;
            if (const auto o = live_.take(e.ct_id)) {
                s = &owner(*o);
                s->entries--;
                attributed_--;
            } else {
                // Inserted before we started: part of the baseline, if one was taken.
                auto* f = sources_.find(SourceKey{e.src, e.netns});
                s = f ? &f->payload : &other_;
                if (s->baseline > 0) {
                    s->baseline--;
                    s->entries--;
                    attributed_--;
                }
            }
            if (e.kind == EventKind::EarlyDrop) s->early_drops++;
            else s->destroys++;
            break;
        }
    }
}

void Aggregator::add_baseline(uint32_t netns, const Address& a, int64_t entries) {
    if (entries <= 0) return;
    entries = std::min<int64_t>(entries, UINT32_MAX);  // more than any table can hold
    SourceStats& s = track(SourceKey{a, netns}, static_cast<uint64_t>(entries)).payload;
    s.baseline = static_cast<uint32_t>(std::min<int64_t>(UINT32_MAX, int64_t{s.baseline} + entries));
    s.entries += entries;
    attributed_ += entries;
}

const SourceStats* Aggregator::source(const Address& a) const {
    return many_netns_ ? nullptr : source(a, only_netns_);
}

const SourceStats* Aggregator::source(const Address& a, uint32_t netns) const {
    auto* e = sources_.find(SourceKey{a, netns});
    return e ? &e->payload : nullptr;
}

std::vector<const SourceStats*> Aggregator::top_sources(SortKey key, size_t n, uint64_t now_sec) const {
    // Primary key, then a secondary one so that sources equal on the first (e.g. all idle
    // in the last second) still come out in a useful order, then the address. Keys are
    // computed once per source, not per comparison: rates walk the window.
    auto metric = [&](const SourceStats* s) -> std::pair<double, double> {
        const auto inserts = static_cast<double>(s->inserts);
        switch (key) {
            case SortKey::Inserts: return {inserts, static_cast<double>(s->drops)};
            case SortKey::Rate1s: return {s->insert_rate.rate(now_sec, 1), s->insert_rate.rate(now_sec, 10) + inserts * 1e-9};
            case SortKey::Rate10s: return {s->insert_rate.rate(now_sec, 10), s->insert_rate.rate(now_sec, 1) + inserts * 1e-9};
            case SortKey::Entries: return {static_cast<double>(s->entries), inserts};
            case SortKey::Drops: return {static_cast<double>(s->drops), inserts};
        }
        return {0, 0};
    };
    struct Keyed {
        std::pair<double, double> m;
        const SourceStats* s;
    };
    auto better = [](const Keyed& a, const Keyed& b) {
        if (a.m != b.m) return a.m > b.m;
        return std::tie(a.s->addr.family, a.s->addr.bytes, a.s->netns) <
               std::tie(b.s->addr.family, b.s->addr.bytes, b.s->netns);
    };
    n = std::min(n, sources_.size());
    // Bounded selection: a heap of the best n so far, its worst on top, so that each source
    // costs one comparison unless it gets in (O(N log n), not a sort of all N).
    // The primary key alone rejects most sources once the heap is full; for the rates a
    // bound that costs no walk of the window comes first (a rate over w seconds is at most
    // the source's inserts / w).
    auto primary = [&](const SourceStats& s) {
        if (key == SortKey::Rate1s) return s.insert_rate.rate(now_sec, 1);
        if (key == SortKey::Rate10s) return s.insert_rate.rate(now_sec, 10);
        return metric(&s).first;
    };
    const double bound_div = key == SortKey::Rate1s ? 1 : key == SortKey::Rate10s ? 10 : 0;
    std::vector<Keyed> best;
    best.reserve(n);
    if (n > 0)
        sources_.for_each([&](const Sources::Entry& e) {
            if (best.size() == n) {
                const double worst = best.front().m.first;
                if (bound_div > 0 && static_cast<double>(e.payload.inserts) / bound_div < worst) return;
                if (primary(e.payload) < worst) return;
            }
            const Keyed k{metric(&e.payload), &e.payload};
            if (best.size() < n) {
                best.push_back(k);
                std::push_heap(best.begin(), best.end(), better);
            } else if (better(k, best.front())) {
                std::pop_heap(best.begin(), best.end(), better);
                best.back() = k;
                std::push_heap(best.begin(), best.end(), better);
            }
        });
    std::sort_heap(best.begin(), best.end(), better);  // best first
    std::vector<const SourceStats*> out;
    out.reserve(best.size());
    for (const Keyed& k : best) out.push_back(k.s);
    return out;
}

size_t Aggregator::source_memory_bytes() const {
    size_t bytes = sources_.memory_bytes();
    sources_.for_each([&](const Sources::Entry& e) { bytes += e.payload.insert_rate.heap_bytes(); });
    return bytes;
}

size_t Aggregator::memory_bytes() const {
    return sizeof(*this) - sizeof(sources_) - sizeof(dests_) - sizeof(live_) + source_memory_bytes() +
           dests_.memory_bytes() + live_.memory_bytes() + other_.insert_rate.heap_bytes();
}

std::vector<const DestStats*> Aggregator::top_destinations(size_t n) const {
    std::vector<const DestStats*> v;
    v.reserve(dests_.size());
    dests_.for_each([&](const Dests::Entry& e) { v.push_back(&e.payload); });
    auto better = [](const DestStats* a, const DestStats* b) {
        if (a->drops != b->drops) return a->drops > b->drops;
        return std::tie(a->key.addr.family, a->key.addr.bytes, a->key.port, a->key.proto, a->key.netns) <
               std::tie(b->key.addr.family, b->key.addr.bytes, b->key.port, b->key.proto, b->key.netns);
    };
    n = std::min(n, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<long>(n), v.end(), better);
    v.resize(n);
    return v;
}

}  // namespace ctbpf
