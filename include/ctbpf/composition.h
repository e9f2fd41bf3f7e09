// What the table's entries are: protocol and state classes, the timeout sysctl that holds
// each class, how long entries have been idle and alive, how long ended entries lived, and
// what another timeout would leave in the table. Pure: entries come from a netlink dump
// (system layer, dump_table) or from events; nothing here reads the kernel.
#pragma once

#include <array>
#include <compare>
#include <functional>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/decode.h"
#include "ctbpf/flat_map.h"

namespace ctbpf {

// TCP classes are the kernel's enum tcp_conntrack values; every other protocol is classed
// by its status bits (IPS_SEEN_REPLY, IPS_ASSURED): it has no state machine of its own that
// decides its timeout, except UDP's stream timeout once assured.
enum class EntryState : uint8_t {
    None = 0, SynSent = 1, SynRecv = 2, Established = 3, FinWait = 4, CloseWait = 5, LastAck = 6,
    TimeWait = 7, Close = 8, SynSent2 = 9,
    Unreplied = 16, Replied = 17, Assured = 18,
    Unknown = 255,  // an event without state (older recordings, drops)
};

inline constexpr uint32_t kStatusSeenReply = 1u << 1;  // IPS_SEEN_REPLY_BIT
inline constexpr uint32_t kStatusAssured = 1u << 2;    // IPS_ASSURED_BIT

struct EntryClass {
    uint8_t proto = 0;
    EntryState state = EntryState::Unknown;
    auto operator<=>(const EntryClass&) const = default;
};

// The one rule for an entry's class.
EntryClass classify_entry(uint8_t proto, uint8_t tcp_state, uint32_t status);
EntryClass classify_event(const Event& e);  // Unknown state when the event carries none
std::string state_name(EntryState s);       // "ESTABLISHED", "UNREPLIED", ...
std::string class_name(const EntryClass& c);  // "tcp ESTABLISHED", "udp UNREPLIED"

// The sysctl (name under net.netfilter., without the "nf_conntrack_" prefix) whose value an
// entry of this class is refreshed to by each packet: "udp_timeout", "tcp_timeout_time_wait".
// Empty for TCP NONE and unknown states. The kernel may use a shorter timeout for a TCP
// entry with unacknowledged data or retransmissions (tcp_timeout_unacknowledged, _max_retrans).
std::string timeout_sysctl(const EntryClass& c);

// Durations on log-spaced bounds, 1-2-5 per decade from 0.1 s to 500,000 s (5.8 days), and
// +Inf: wide enough for a 2 s UDP timeout and the 5-day established default alike.
struct DurationHistogram {
    static constexpr std::array<double, 22> kBounds = {0.1,  0.2,  0.5,   1,     2,     5,     10,    20,
                                                       50,   100,  200,   500,   1000,  2000,  5000,  10000,
                                                       20000, 50000, 100000, 200000, 500000, 1e300};
    std::array<uint64_t, kBounds.size()> counts{};  // per bucket, not cumulative; the last is +Inf
    uint64_t count = 0;
    double sum_s = 0;

    void add(double seconds, uint64_t n = 1);
    void merge(const DurationHistogram& o);
    // Upper bound of the bucket holding the q-quantile (0 if empty; +Inf bucket: the last finite bound).
    double quantile(double q) const;
    double mean() const { return count ? sum_s / static_cast<double>(count) : 0; }
};

// One entry as a netlink dump gives it.
struct DumpedEntry {
    uint8_t proto = 0;
    uint8_t tcp_state = 0;
    uint32_t status = 0;
    uint32_t timeout_s = 0;   // seconds left (CTA_TIMEOUT)
    uint16_t zone = 0;
    Address src, dst;
    uint16_t sport = 0, dport = 0;  // host byte order
    std::optional<uint64_t> start_ns;  // CTA_TIMESTAMP (CLOCK_REALTIME) when nf_conntrack_timestamp is on
};

// Identifies an entry across a dump and events: its original tuple in its namespace.
uint64_t tuple_key(uint32_t netns, uint16_t zone, uint8_t proto, const Address& src, const Address& dst,
                   uint16_t sport, uint16_t dport);

// When each live entry of one namespace was first seen: its insert event (exact) or the
// first dump that held it (a lower bound on its age). Bounded by the table: an entry leaves
// with its destroy, or when a dump no longer holds it. 16 bytes a cell (times are kept in
// tenths of a second since the clock's start), at most half the cells used.
class EntryClock {
public:
    struct Seen {
        uint32_t first_ds = 0;  // tenths of a second after `epoch_ns`
        uint8_t exact = 0;      // 1: from its insert event
        uint8_t proto = 0;
        uint16_t misses = 0;  // dumps in a row that did not hold it
    };
    explicit EntryClock(uint64_t epoch_ns = 0) : epoch_ns_(epoch_ns) {}
    // Insert: remembers the entry. Destroy/early drop: forgets it and returns how long it lived
    // (only for entries whose insert was seen). Drops and failed inserts change nothing.
    std::optional<double> on_event(const Event& e);
    const Seen* find(uint64_t key) const { return map_.find(key); }
    // Seconds since first seen, and whether that is exact.
    std::optional<std::pair<double, bool>> age(uint64_t key, uint64_t now_ns) const;
    // After a dump that ran from `started_ns` and held `keys`: unknown entries are first seen
    // at `now_ns`. An entry the dump did not hold is kept for `max_misses` dumps in a row:
    // a dump leaves out entries that expired but that the gc worker has not freed yet (their
    // destroy, and so their lifetime, comes later); then it is forgotten (its destroy was lost).
    // Entries inserted while the dump ran are kept as well.
    void after_dump(const std::vector<uint64_t>& keys, uint64_t started_ns, uint64_t now_ns, uint16_t max_misses = 3);
    size_t size() const { return map_.size(); }
    size_t memory_bytes() const { return map_.memory_bytes(); }

private:
    uint32_t ds(uint64_t ns) const { return ns > epoch_ns_ ? static_cast<uint32_t>((ns - epoch_ns_) / 100'000'000) : 0; }
    uint64_t epoch_ns_;
    FlatMap<Seen> map_;
    std::vector<uint64_t> recent_;  // inserted since the last dump
    std::vector<uint64_t> known_;   // every key kept after the last dump
};

// Lifetimes of entries that ended, by the class they ended in, and per source for a bounded
// number of sources (when full, a new source takes the place of the one with fewest).
class Lifetimes {
public:
    explicit Lifetimes(size_t max_sources = 256) : max_sources_(max_sources) {}
    void add(const Event& ended, double seconds);
    const std::map<EntryClass, DurationHistogram>& by_class() const { return by_class_; }
    const DurationHistogram* source(const SourceKey& k) const {
        const auto it = by_source_.find(k);
        return it == by_source_.end() ? nullptr : &it->second;
    }
    DurationHistogram total() const;

private:
    size_t max_sources_;
    std::map<EntryClass, DurationHistogram> by_class_;
    std::unordered_map<SourceKey, DurationHistogram, SourceKeyHash> by_source_;
};

// A timeout and what the table would hold with another value of it.
struct TimeoutPrediction {
    std::string sysctl;             // "udp_timeout"
    uint64_t from_s = 0, to_s = 0;  // current and proposed value
    uint64_t entries_now = 0;       // entries of the classes it governs
    uint64_t entries_after = 0;     // predicted, once the table has settled
    std::vector<EntryClass> classes;
};

// Destinations whose entries never saw a reply: a backend that stopped answering.
struct SilentDestination {
    Address addr;
    uint16_t port = 0;
    uint8_t proto = 0;
    uint64_t unreplied = 0;
    double oldest_s = 0;  // oldest first-seen age among them (0 if unknown)
};

struct ClassComposition {
    EntryClass cls;
    uint64_t entries = 0;
    std::string sysctl;                  // timeout_sysctl(cls)
    std::optional<uint64_t> timeout_s;   // its current value in that namespace
    DurationHistogram idle;  // timeout minus seconds left: time since the entry's last refresh
    DurationHistogram age;   // since first seen (insert event or first dump)
    uint64_t age_at_least = 0;  // of those, first seen in the start-up dump: their age is a lower bound
    uint64_t stale = 0;         // UNREPLIED and alive for more than kStaleFactor x its timeout
};

struct SourceComposition {
    Address addr;
    uint64_t entries = 0;
    std::vector<std::pair<EntryClass, uint64_t>> by_class;  // most first
};

struct Composition {
    uint32_t netns = 0;
    uint64_t taken_ns = 0;     // CLOCK_MONOTONIC of the dump's end
    double dump_seconds = 0;   // its cost
    uint64_t total = 0;
    std::vector<ClassComposition> classes;     // most entries first
    std::vector<SourceComposition> sources;    // top sources by entries
    std::vector<SilentDestination> silent;     // most unreplied first
    std::vector<TimeoutPrediction> predictions;  // one per governing sysctl with entries, most entries first
    std::map<std::string, uint64_t> timeouts;  // the namespace's timeout sysctls
};

// An UNREPLIED entry alive this many times its timeout is refreshed by a peer that never
// gets an answer (a vanished backend, a stale NAT mapping): flagged stale.
inline constexpr double kStaleFactor = 10;
// A destination with at least this many entries and none replied is reported silent.
inline constexpr uint64_t kSilentMinEntries = 10;

// The value advice proposes for a timeout sysctl currently at `current_s`, or nullopt when
// it is already at or below what is commonly run (kernel defaults and operators' values).
std::optional<uint64_t> proposed_timeout(const std::string& sysctl, uint64_t current_s);

// An entry's age by its tuple key: seconds since first seen, and whether that is exact.
using AgeOf = std::function<std::optional<std::pair<double, bool>>(uint64_t key)>;

// Folds a dump into a Composition. `age_of` (optional) gives ages; `top` bounds the sources kept.
class CompositionBuilder {
public:
    CompositionBuilder(uint32_t netns, std::map<std::string, uint64_t> timeouts, AgeOf age_of, uint64_t now_ns,
                       size_t top = 20);
    void add(const DumpedEntry& d);
    // Predictions for each governing sysctl: to proposed_timeout() (or half the current
    // value when none is proposed), and any extra values asked for.
    Composition finish(double dump_seconds,
                       const std::map<std::string, std::vector<uint64_t>>& extra_targets = {});
    const std::vector<uint64_t>& keys() const { return keys_; }

private:
    struct DestAcc {
        uint64_t unreplied = 0, replied = 0;
        double oldest = 0;
    };
    struct DestKeyLess {
        bool operator()(const DestKey& a, const DestKey& b) const;
    };
    uint32_t netns_;
    std::map<std::string, uint64_t> timeouts_;
    AgeOf age_of_;
    uint64_t now_ns_;
    size_t top_;
    uint64_t total_ = 0;
    std::map<EntryClass, ClassComposition> classes_;
    std::unordered_map<Address, std::map<EntryClass, uint64_t>, AddressHash> sources_;
    std::map<DestKey, DestAcc, DestKeyLess> dests_;
    std::map<std::string, std::vector<uint32_t>> idle_by_sysctl_;  // whole seconds, for predictions
    std::vector<uint64_t> keys_;
};

// Entries a governing sysctl's classes would hold with timeout `to_s`, from their idle
// times now (`idle_s`, seconds since each one's last refresh; current timeout `from_s`).
// Shorter: an entry idle for more than `to_s` would have expired, so what stays is those idle
// at most that long (idle in whole seconds, rounded up: timeout minus seconds left). Longer: entries expire at the rate the oldest idle ones reach `from_s`
// (those idle in its last tenth), and each would stay `to_s - from_s` longer.
uint64_t predict_entries(std::vector<uint32_t> idle_s, uint64_t from_s, uint64_t to_s);

}  // namespace ctbpf
