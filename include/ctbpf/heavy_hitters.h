// Heavy hitters in bounded memory: the Space-Saving algorithm (Metwally, Agrawal, El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams", ICDT 2005), in its
// "stream-summary" form so that add() needs no heap or sort.
//
// It tracks at most `capacity` keys. A key that is not tracked takes over the slot of a key
// with the smallest count and inherits that count as its possible error. Hence, with
// N = total() and m = min_count() <= N / capacity:
//   - every tracked key: count - error <= true weight <= count, and error <= m;
//   - every key that is not tracked has true weight <= m, so every key whose true weight
//     exceeds N / capacity is tracked.
//
// Cost: add(k, 1) is O(1) (one hash probe, and a move to the neighbouring count bucket);
// add(k, w) with w > 1 also walks over the buckets it skips, at most one per distinct count.
// All storage is sized in the constructor; add() never allocates.
//
// Memory (x86-64) for Key = ctbpf::Address (17 bytes), Payload = std::monostate:
//   slot 56 B + count bucket 24 B + index cells 2-4 x 8 B  =  about 96-112 B per tracked key
// (memory_bytes() gives the exact figure). An exact std::unordered_map<Address, uint64_t>
// takes about 60 B per key, but per distinct key ever seen: it grows with every new source.
// Weights are summed in 64 bits: total() must not overflow.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

namespace ctbpf {

template <class Key, class Payload = std::monostate, class Hash = std::hash<Key>,
          class Eq = std::equal_to<Key>>
class SpaceSaving {
public:
    struct Entry {
        Key key;
        uint64_t count = 0;  // estimated weight: true weight <= count <= true weight + error
        uint64_t error = 0;  // the count the key inherited when it took over its slot
        [[no_unique_address]] Payload payload{};  // caller's; reset when the slot changes key

        uint64_t lower_bound() const { return count - error; }  // true weight >= this
    };

    explicit SpaceSaving(size_t capacity) : capacity_(capacity) {
        // 32-bit links keep slots small; 2^30 keys would be ~100 GiB anyway.
        if (capacity < 1 || capacity > (size_t{1} << 30))
            throw std::invalid_argument("SpaceSaving: capacity must be in [1, 2^30]");
        slots_.reserve(capacity);
        buckets_.resize(capacity);  // a bucket per distinct count: never more than slots
        for (size_t b = 0; b + 1 < capacity; ++b) buckets_[b].next = static_cast<uint32_t>(b + 1);
        // Load factor <= 1/2 keeps linear probing short, even for keys that are absent.
        index_.resize(std::bit_ceil(2 * capacity));
        mask_ = index_.size() - 1;
    }

    // Adds `weight` to k. A full summary first gives k the slot of a minimum-count key,
    // calling on_evict(const Entry&) with that key's entry before reusing it. on_evict must
    // not touch this object. Only the returned entry's payload may be modified; the entry
    // stays at its address, but a later add() may give it to another key.
    template <class OnEvict>
    Entry& add(const Key& k, uint64_t weight, OnEvict&& on_evict) {
        const uint32_t h = mix(hash_(k));
        const size_t pos = probe(k, h);
        uint32_t s = index_[pos].slot;
        if (s != kNil) {
            raise(s, weight);
        } else if (slots_.size() < capacity_) {  // room left: the count is exact
            s = static_cast<uint32_t>(slots_.size());
            slots_.push_back(Slot{h, kNil, kNil, kNil, Entry{k, weight, 0, Payload{}}});
            index_[pos] = Cell{s, h};
            place(s, kNil);
        } else {  // full: take over a slot with the minimum count
            s = buckets_[min_].head;
            Entry& e = slots_[s].entry;
            on_evict(std::as_const(e));
            unindex(s);
            e.key = k;
            e.error = e.count;
            e.payload = Payload{};
            slots_[s].hash = h;
            index_[probe(k, h)] = Cell{s, h};  // unindex() may have shifted cells
            raise(s, weight);
        }
        total_ += weight;
        return slots_[s].entry;
    }

    Entry& add(const Key& k, uint64_t weight = 1) {
        return add(k, weight, [](const Entry&) {});
    }

    const Entry* find(const Key& k) const {
        const uint32_t s = index_[probe(k, mix(hash_(k)))].slot;
        return s == kNil ? nullptr : &slots_[s].entry;
    }
    Entry* find(const Key& k) {  // to update a payload without counting
        return const_cast<Entry*>(std::as_const(*this).find(k));
    }

    // Slot number of a tracked entry, in [0, capacity()): it stays the entry's until a
    // later add() gives the slot to another key. Lets callers refer to an entry in 4 bytes.
    uint32_t slot_of(const Entry& e) const {
        const auto* first = reinterpret_cast<const char*>(&slots_.front().entry);
        return static_cast<uint32_t>((reinterpret_cast<const char*>(&e) - first) / sizeof(Slot));
    }
    const Entry& at_slot(uint32_t s) const { return slots_[s].entry; }
    Entry& at_slot(uint32_t s) { return slots_[s].entry; }

    size_t size() const { return slots_.size(); }
    // Visits every tracked entry, in no particular order.
    template <class F>
    void for_each(F&& f) const {
        for (const Slot& s : slots_) f(s.entry);
    }
    size_t capacity() const { return capacity_; }
    uint64_t total() const { return total_; }  // sum of all weights added

    // Every key that is not tracked has true weight <= min_count() <= total() / capacity().
    // Nothing was evicted until the summary is full, so it is 0 until then.
    uint64_t min_count() const { return full() ? buckets_[min_].count : 0; }

    // True if e's key is certainly heavier than every key that is not tracked.
    bool guaranteed(const Entry& e) const { return e.lower_bound() > min_count(); }

    // Up to n entries by count, then lower bound, descending (same lifetime as add()'s).
    std::vector<const Entry*> top(size_t n) const {
        std::vector<const Entry*> out;
        out.reserve(slots_.size());
        for (const Slot& s : slots_) out.push_back(&s.entry);
        n = std::min(n, out.size());
        // Slot order (address) breaks remaining ties, so results are reproducible.
        std::partial_sort(out.begin(), out.begin() + n, out.end(),
                          [](const Entry* a, const Entry* b) {
                              if (a->count != b->count) return a->count > b->count;
                              if (a->error != b->error) return a->error < b->error;
                              return a < b;
                          });
        out.resize(n);
        return out;
    }

    // True if the keys of top(n) are certainly the heaviest ones (Metwally's top-k test):
    // each one's lower bound is at least the count of every other key, tracked or not.
    // (With ties another set may be just as heavy.)
    bool top_guaranteed(size_t n) const {
        const std::vector<const Entry*> t = top(n + 1);
        const uint64_t next = t.size() > n ? t[n]->count : min_count();
        for (size_t i = 0; i < std::min(n, t.size()); ++i)
            if (t[i]->lower_bound() < next) return false;
        return true;
    }

    // Heap and object bytes; fixed at construction.
    size_t memory_bytes() const {
        return sizeof(*this) + slots_.capacity() * sizeof(Slot) +
               buckets_.capacity() * sizeof(Bucket) + index_.capacity() * sizeof(Cell);
    }

private:
    static constexpr uint32_t kNil = UINT32_MAX;

    // Links first, then the entry: key, count and links share the first cache line, so
    // bucket moves and probes do not also touch a large payload's lines.
    struct Slot {
        uint32_t hash;             // mixed hash, so the index can move cells without rehashing
        uint32_t prev = kNil;      // neighbours in the bucket's list of slots
        uint32_t next = kNil;
        uint32_t bucket = kNil;
        Entry entry;
    };
    // All slots with one count; buckets form a list by increasing count, starting at min_.
    struct Bucket {
        uint64_t count = 0;
        uint32_t prev = kNil, next = kNil;  // next also links the free list
        uint32_t head = kNil;               // first slot
    };
    struct Cell {
        uint32_t slot = kNil;  // kNil: empty
        uint32_t hash = 0;
    };

    bool full() const { return slots_.size() == capacity_; }

    // std::hash of an integer is the identity: mix it before masking (murmur3 finaliser).
    static uint32_t mix(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ull;
        x ^= x >> 33;
        return static_cast<uint32_t>(x);
    }

    // The cell holding k, or the empty cell where it belongs.
    size_t probe(const Key& k, uint32_t h) const {
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            const Cell& c = index_[i];
            if (c.slot == kNil || (c.hash == h && eq_(slots_[c.slot].entry.key, k))) return i;
        }
    }

    // Backward-shift deletion: later cells of the run move up, so no tombstones pile up.
    void unindex(uint32_t s) {
        size_t i = slots_[s].hash & mask_;
        while (index_[i].slot != s) i = (i + 1) & mask_;
        for (size_t j = (i + 1) & mask_; index_[j].slot != kNil; j = (j + 1) & mask_) {
            const size_t home = index_[j].hash & mask_;
            // The cell at j may fill the hole at i unless its home lies in (i, j].
            if (((j - home) & mask_) >= ((j - i) & mask_)) {
                index_[i] = index_[j];
                i = j;
            }
        }
        index_[i].slot = kNil;
    }

    // Adds w to tracked slot s and moves it to the bucket of its new count.
    void raise(uint32_t s, uint64_t w) {
        Slot& sl = slots_[s];
        const uint32_t b = sl.bucket;
        const uint64_t c = sl.entry.count += w;
        const uint32_t next = buckets_[b].next;
        const bool alone = sl.prev == kNil && sl.next == kNil;
        if (alone && (next == kNil || buckets_[next].count > c)) {
            buckets_[b].count = c;  // order still holds: relabel the bucket in place
            return;
        }
        const uint32_t from = alone ? buckets_[b].prev : b;  // b is freed by unlink when alone
        unlink(s);
        place(s, from);
    }

    // Links detached slot s into the bucket for its count, creating it if needed. The search
    // walks up from bucket `from` (count <= s's count), or from the minimum if kNil.
    void place(uint32_t s, uint32_t from) {
        const uint64_t c = slots_[s].entry.count;
        uint32_t at = from;
        if (at == kNil && min_ != kNil && buckets_[min_].count <= c) at = min_;
        if (at != kNil)
            for (uint32_t n; (n = buckets_[at].next) != kNil && buckets_[n].count <= c;) at = n;
        if (at == kNil || buckets_[at].count != c) at = new_bucket(c, at);
        Slot& sl = slots_[s];
        sl.bucket = at;
        sl.prev = kNil;
        sl.next = buckets_[at].head;
        if (sl.next != kNil) slots_[sl.next].prev = s;
        buckets_[at].head = s;
    }

    void unlink(uint32_t s) {
        const Slot& sl = slots_[s];
        Bucket& b = buckets_[sl.bucket];
        if (sl.prev != kNil) slots_[sl.prev].next = sl.next;
        else b.head = sl.next;
        if (sl.next != kNil) slots_[sl.next].prev = sl.prev;
        if (b.head == kNil) free_bucket(sl.bucket);
    }

    // A bucket inserted after `after`, or as the new minimum if kNil.
    uint32_t new_bucket(uint64_t count, uint32_t after) {
        const uint32_t b = free_;
        Bucket& nb = buckets_[b];
        free_ = nb.next;
        nb.count = count;
        nb.head = kNil;
        nb.prev = after;
        nb.next = after == kNil ? min_ : buckets_[after].next;
        if (nb.next != kNil) buckets_[nb.next].prev = b;
        (after == kNil ? min_ : buckets_[after].next) = b;
        return b;
    }

    void free_bucket(uint32_t b) {
        Bucket& ob = buckets_[b];
        (ob.prev == kNil ? min_ : buckets_[ob.prev].next) = ob.next;
        if (ob.next != kNil) buckets_[ob.next].prev = ob.prev;
        ob.next = free_;
        free_ = b;
    }

    size_t capacity_;
    uint64_t total_ = 0;
    std::vector<Slot> slots_;      // reserved to capacity; grows only until full
    std::vector<Bucket> buckets_;  // pool: live buckets from min_, free ones from free_
    std::vector<Cell> index_;      // open addressing, linear probing, key -> slot
    size_t mask_ = 0;
    uint32_t min_ = kNil;
    uint32_t free_ = 0;
    [[no_unique_address]] Hash hash_{};
    [[no_unique_address]] Eq eq_{};
};

}  // namespace ctbpf
