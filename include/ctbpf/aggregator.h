// Aggregation: typed events in, per-source and per-destination state out. Knows nothing of
// BPF or of how results are shown. Time comes from the events (CLOCK_MONOTONIC ns) and
// from the caller's "now", so tests drive it with synthetic clocks.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "ctbpf/decode.h"
#include "ctbpf/flat_map.h"
#include "ctbpf/heavy_hitters.h"

namespace ctbpf {

// Counts per whole second over the last minute; rates over 1 s, 10 s and 60 s windows.
class RateWindow {
public:
    static constexpr unsigned kSeconds = 60;

    void add(uint64_t sec, uint32_t n = 1);
    void remove(uint64_t sec, uint32_t n = 1);  // take back (never below zero)
    // Mean per second over the `window` complete seconds before `now_sec`
    // (the second in progress is not counted: it would read low).
    double rate(uint64_t now_sec, unsigned window) const;
    // Count of the complete second `sec` (0 if outside the last minute).
    uint32_t at(uint64_t now_sec, uint64_t sec) const;

private:
    void advance(uint64_t sec);
    static constexpr unsigned kSlots = 64;  // > kSeconds + the second in progress
    std::array<uint32_t, kSlots> slots_{};
    uint64_t head_ = 0;  // newest second written
};

// RateWindow's exact answers in 80 bytes instead of 264, for the per-source insert rate.
// Each second's count takes one byte: a tracked source rarely makes 256 entries in one
// second. The first count that would not fit moves this history into a full RateWindow on
// the heap, for that source only, until its slot goes to another source (then the payload,
// and with it the RateWindow, is reset). Same operations and results as RateWindow.
class RateHistory {
public:
    static constexpr unsigned kSeconds = RateWindow::kSeconds;

    RateHistory() = default;
    RateHistory(const RateHistory& o) : slots_(o.slots_), head_(o.head_) {
        if (o.wide_) wide_ = std::make_unique<RateWindow>(*o.wide_);
    }
    RateHistory& operator=(const RateHistory& o) {
        if (this != &o) *this = RateHistory(o);
        return *this;
    }
    RateHistory(RateHistory&&) noexcept = default;
    RateHistory& operator=(RateHistory&&) noexcept = default;

    void add(uint64_t sec, uint32_t n = 1);
    void remove(uint64_t sec, uint32_t n = 1);
    double rate(uint64_t now_sec, unsigned window) const;
    uint32_t at(uint64_t now_sec, uint64_t sec) const {
        if (wide_) return wide_->at(now_sec, sec);
        if (sec >= now_sec || now_sec - sec > kSeconds) return 0;
        if (sec > head_ || head_ - sec >= kSlots) return 0;
        return slots_[sec % kSlots];
    }
    bool wide() const { return wide_ != nullptr; }  // moved to a full RateWindow
    size_t heap_bytes() const { return wide_ ? sizeof(RateWindow) : 0; }

private:
    void advance(uint64_t sec);
    void widen();
    static constexpr unsigned kSlots = 64;  // as RateWindow: > kSeconds + the second in progress
    static constexpr uint32_t kMax = UINT8_MAX;
    std::array<uint8_t, kSlots> slots_{};
    uint64_t head_ = 0;                  // newest second written
    std::unique_ptr<RateWindow> wide_;   // set once a count exceeded kMax; then used alone
};

// A source is an address in a network namespace: the same private address in two
// namespaces (two containers, two tenants) is two hosts, and must not be added up.
struct SourceKey {
    Address addr;
    uint32_t netns = 0;  // inode number; 0 where unknown (hand-made events)
    bool operator==(const SourceKey&) const = default;
};

struct SourceKeyHash {
    size_t operator()(const SourceKey& k) const noexcept;
};

// One per tracked source, inside the Space-Saving slot: 168 bytes (x86-64), so with the
// summary's own slot fields, count bucket and index about 264 bytes per tracked source, plus
// 264 for each source that made more than 255 inserts in one second of the last minute.
// (The key, SourceKey, takes the 24 bytes an Address already took with its padding.)
struct SourceStats {
    Address addr;
    uint32_t epoch = 0;          // which tracking period this is (entries owned across evictions)
    uint64_t inserts = 0;        // confirmed inserts (failed ones taken back)
    uint64_t drops = 0;          // packets conntrack dropped for this source
    uint64_t early_drops = 0;    // its entries evicted to make room
    uint64_t destroys = 0;       // its entries removed (early drops not included)
    uint64_t insert_failed = 0;
    int64_t entries = 0;         // live entries: inserted while watching, plus `baseline`
    // 32 bits each so that the namespace costs no memory: a table holds at most
    // nf_conntrack_max (an unsigned int) entries, so no source's baseline can exceed it.
    uint32_t baseline = 0;       // entries from the start-up dump still alive
    uint32_t netns = 0;          // with `addr`, the source's key
    RateHistory insert_rate;
    // Bounded tracking (Space-Saving over activity = inserts + drops + baseline): a source
    // that took over the slot of an evicted one may have had up to `activity_error` events
    // before it was tracked; they are counted under other(). 0 means its figures are exact.
    uint64_t activity_error = 0;
};

struct DestKey {
    Address addr;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint32_t netns = 0;  // as for sources: one service address per namespace
    bool operator==(const DestKey&) const = default;
};

struct DestKeyHash {
    size_t operator()(const DestKey& k) const noexcept;
};

struct DestStats {
    DestKey key;
    uint64_t drops = 0;
};

enum class SortKey { Inserts, Rate1s, Rate10s, Entries, Drops };

class Aggregator {
public:
    struct Options {
        // At most this many sources (and destinations) are tracked at once, so memory stays
        // bounded whatever the number of distinct sources. When full, the least active one
        // is evicted (Space-Saving): the heaviest sources are still found, and what the
        // evicted ones did is counted under other().
        size_t max_sources = 1 << 16;
        size_t max_destinations = 1 << 16;
    };

    Aggregator() : Aggregator(Options{}) {}
    explicit Aggregator(Options opt);

    void add(const Event& e);
    // Entries that were in the table before watching began (a netlink dump of namespace
    // `netns`): they count in `entries` until a destroy of an entry we did not see inserted
    // takes them away.
    void add_baseline(uint32_t netns, const Address& a, int64_t entries);

    const SourceStats* source(const Address& a, uint32_t netns) const;
    // The source `a` while every source seen so far was in one namespace (one --netns, the
    // common case); nullptr once several namespaces were seen: name one then.
    const SourceStats* source(const Address& a) const;
    // Best `n` sources by `key` (ties broken by address, then namespace, for stable output).
    std::vector<const SourceStats*> top_sources(SortKey key, size_t n, uint64_t now_sec) const;
    std::vector<const DestStats*> top_destinations(size_t n) const;

    size_t source_count() const { return sources_.size(); }
    size_t source_capacity() const { return sources_.capacity(); }
    // Any source not tracked now had at most this much activity while tracking was full.
    uint64_t untracked_bound() const { return sources_.min_count(); }
    const SourceStats& other() const { return other_; }  // evicted or never tracked
    // Entries attributed to anyone: every tracked source's `entries` plus other()'s. The
    // table's count minus this is what no event or dump accounts for (see live_view.h).
    int64_t attributed_entries() const { return attributed_; }
    size_t live_entries() const { return live_.size(); }
    // Bytes held for tracked sources: the summary (slots with their SourceStats, count
    // buckets, index; fixed at construction) plus the RateWindows of the sources that needed
    // one. Divide by source_capacity() for the cost per tracked source.
    size_t source_memory_bytes() const;
    // Everything: sources, destinations and the live-entry map (which grows with the table).
    size_t memory_bytes() const;
    // Events of each kind seen, indexed by EventKind value.
    const std::array<uint64_t, 6>& seen() const { return seen_; }

private:
    using Sources = SpaceSaving<SourceKey, SourceStats, SourceKeyHash>;
    using Dests = SpaceSaving<DestKey, DestStats, DestKeyHash>;
    // Who inserted a live entry: the source's slot and its tracking period there. A slot
    // given to another source gets a new epoch, so the entry then belongs to other().
    struct Owner {
        uint32_t slot;
        uint32_t epoch;
    };

    Sources::Entry& track(const SourceKey& k, uint64_t weight);  // counts as activity
    SourceStats& owner(const Owner& o);                      // the source now, or other()

    Options opt_;
    Sources sources_;
    SourceStats other_;
    Dests dests_;
    DestStats other_dest_;
    // 32-bit epochs wrap; an entry would be charged to the wrong source only if its slot
    // changed hands a multiple of 2^32 times during its life (0 is skipped: "no epoch yet").
    uint32_t next_epoch_ = 1;
    FlatMap<Owner> live_;  // ct_id -> who inserted it, for occupancy
    int64_t attributed_ = 0;
    uint32_t only_netns_ = 0;   // the namespace of every source so far...
    bool many_netns_ = false;   // ...unless sources came from several
    std::array<uint64_t, 6> seen_{};
};

}  // namespace ctbpf
