// A small open-addressing hash map from uint64_t keys to small trivially copyable values,
// for the aggregator's live entries (ct_id -> owner): one insert and one erase per conntrack
// entry, so it must not allocate per element the way std::unordered_map does.
//
// Linear probing in one flat array of cells; deletion shifts the following cells of the run
// back (no tombstones, so probe lengths do not degrade with churn); the table doubles when
// more than half full and halves when less than 1/8 full, so memory follows the live count.
// Key 0 marks an empty cell, so a key of 0 is kept aside in its own slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

namespace ctbpf {

template <class V>
class FlatMap {
    static_assert(std::is_trivially_copyable_v<V>, "values are moved by plain copies");

public:
    static constexpr size_t kMinCells = 16;

    FlatMap() : cells_(kMinCells) {}

    size_t size() const { return size_ + (has_zero_ ? 1 : 0); }
    bool empty() const { return size() == 0; }

    V* find(uint64_t k) {
        if (k == 0) return has_zero_ ? &zero_ : nullptr;
        const size_t i = probe(k);
        return cells_[i].key == k ? &cells_[i].value : nullptr;
    }
    const V* find(uint64_t k) const { return const_cast<FlatMap*>(this)->find(k); }

    // Sets k's value; true if k was not there before.
    bool insert_or_assign(uint64_t k, const V& v) {
        if (k == 0) {
            const bool fresh = !has_zero_;
            has_zero_ = true;
            zero_ = v;
            return fresh;
        }
        size_t i = probe(k);
        if (cells_[i].key == k) {
            cells_[i].value = v;
            return false;
        }
        if (2 * (size_ + 1) > cells_.size()) {  // keep the load at most 1/2: short probes
            rehash(2 * cells_.size());
            i = probe(k);
        }
        cells_[i] = Cell{k, v};
        ++size_;
        return true;
    }

    // Removes k and returns its value, in one probe (find then erase would take two).
    std::optional<V> take(uint64_t k) {
        if (k == 0) {
            if (!has_zero_) return std::nullopt;
            has_zero_ = false;
            return zero_;
        }
        size_t i = probe(k);
        if (cells_[i].key != k) return std::nullopt;
        const V v = cells_[i].value;
        erase_at(i);
        if (cells_.size() > kMinCells && 8 * size_ < cells_.size()) rehash(cells_.size() / 2);
        return v;
    }

    bool erase(uint64_t k) { return take(k).has_value(); }

    size_t cell_count() const { return cells_.size(); }
    size_t memory_bytes() const { return sizeof(*this) + cells_.capacity() * sizeof(Cell); }

private:
    struct Cell {
        uint64_t key = 0;  // 0: empty
        V value{};
    };

    size_t mask() const { return cells_.size() - 1; }

    // Kernel ids may share low bits (pointers, counters): mix all bits into the index.
    size_t home(uint64_t k) const {
        k ^= k >> 32;
        k *= 0xd6e8feb86659fd93ull;
        k ^= k >> 32;
        return static_cast<size_t>(k) & mask();
    }

    // The cell holding k, or the empty cell where it would go.
    size_t probe(uint64_t k) const {
        size_t i = home(k);
        while (cells_[i].key != 0 && cells_[i].key != k) i = (i + 1) & mask();
        return i;
    }

    // Backward-shift deletion: a later cell of the run moves into the hole unless its home
    // lies cyclically in (hole, cell], where moving it would put it before its home.
    void erase_at(size_t i) {
        for (size_t j = (i + 1) & mask(); cells_[j].key != 0; j = (j + 1) & mask()) {
            const size_t h = home(cells_[j].key);
            if (((j - h) & mask()) >= ((j - i) & mask())) {
                cells_[i] = cells_[j];
                i = j;
            }
        }
        cells_[i] = Cell{};
        --size_;
    }

    void rehash(size_t n) {
        std::vector<Cell> old(n);
        old.swap(cells_);
        for (const Cell& c : old)
            if (c.key != 0) cells_[probe(c.key)] = c;
    }

    std::vector<Cell> cells_;  // size is a power of two
    size_t size_ = 0;          // cells in use (key 0 not included)
    bool has_zero_ = false;
    V zero_{};
};

}  // namespace ctbpf
