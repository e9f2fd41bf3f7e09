// Aggregation: typed events in, per-source and per-destination state out. Knows nothing of
// BPF or of how results are shown. Time comes from the events (CLOCK_MONOTONIC ns) and
// from the caller's "now", so tests drive it with synthetic clocks.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "ctbpf/decode.h"
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

struct SourceStats {
    Address addr;
    uint64_t inserts = 0;        // confirmed inserts (failed ones taken back)
    uint64_t drops = 0;          // packets conntrack dropped for this source
    uint64_t early_drops = 0;    // its entries evicted to make room
    uint64_t destroys = 0;       // its entries removed (early drops not included)
    uint64_t insert_failed = 0;
    int64_t entries = 0;         // live entries: inserted while watching, plus `baseline`
    int64_t baseline = 0;        // entries from the start-up dump still alive
    RateWindow insert_rate;
    // Bounded tracking (Space-Saving over activity = inserts + drops + baseline): a source
    // that took over the slot of an evicted one may have had up to `activity_error` events
    // before it was tracked; they are counted under other(). 0 means its figures are exact.
    uint64_t activity_error = 0;
    uint64_t epoch = 0;          // which tracking period this is (entries owned across evictions)
};

struct DestKey {
    Address addr;
    uint16_t port = 0;
    uint8_t proto = 0;
    bool operator==(const DestKey&) const = default;
};

struct DestKeyHash {
    size_t operator()(const DestKey& k) const noexcept;
};

struct DestStats {
    DestKey key;
    uint64_t drops = 0;
};

enum class SortKey { Inserts, Rate1s, Entries, Drops };

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
    // Entries that were in the table before watching began (a netlink dump): they count in
    // `entries` until a destroy of an entry we did not see inserted takes them away.
    void add_baseline(const Address& a, int64_t entries);

    const SourceStats* source(const Address& a) const;
    // Best `n` sources by `key` (ties broken by address order for stable output).
    std::vector<const SourceStats*> top_sources(SortKey key, size_t n, uint64_t now_sec) const;
    std::vector<const DestStats*> top_destinations(size_t n) const;

    size_t source_count() const { return sources_.size(); }
    size_t source_capacity() const { return sources_.capacity(); }
    // Any source not tracked now had at most this much activity while tracking was full.
    uint64_t untracked_bound() const { return sources_.min_count(); }
    const SourceStats& other() const { return other_; }  // evicted or never tracked
    size_t live_entries() const { return live_.size(); }
    // Events of each kind seen, indexed by EventKind value.
    const std::array<uint64_t, 6>& seen() const { return seen_; }

private:
    using Sources = SpaceSaving<Address, SourceStats, AddressHash>;
    using Dests = SpaceSaving<DestKey, DestStats, DestKeyHash>;
    struct Owner {
        Address addr;
        uint64_t epoch;
    };

    SourceStats& track(const Address& a, uint64_t weight);  // counts as activity
    SourceStats& owner(const Owner& o);                      // the source now, or other()

    Options opt_;
    Sources sources_;
    SourceStats other_;
    Dests dests_;
    DestStats other_dest_;
    uint64_t next_epoch_ = 1;
    std::unordered_map<uint64_t, Owner> live_;  // ct_id -> who inserted it, for occupancy
    std::array<uint64_t, 6> seen_{};
};

}  // namespace ctbpf
