// Flight recorder: the last few seconds before a trigger, kept in memory and handed to a
// writer when the trigger fires.
#include <algorithm>
#include <cstring>

#include "ctbpf/recording.h"
#include "wire.h"

namespace ctbpf {

namespace {

uint64_t record_ts(const EventRecord& r) {
    uint64_t ts;
    std::memcpy(&ts, r.data(), sizeof ts);
    return ts;
}

// What a snapshot costs here, close to its size in a file.
size_t snapshot_bytes(const Snapshot& s) {
    return rec::kSnapshotFixed + rec::kTableRowSize * s.tables.size();
}

}  // namespace

PreBuffer::PreBuffer(uint64_t window_ns, size_t max_bytes)
    : window_ns_(window_ns), max_bytes_(max_bytes) {}

void PreBuffer::add_event(EventRecordView record) {
    auto& r = events_.emplace_back();
    std::memcpy(r.data(), record.data(), r.size());
    bytes_ += r.size();
    newest_ = std::max(newest_, record_ts(r));
    trim();
}

void PreBuffer::add_snapshot(const Snapshot& s) {
    snaps_.push_back(s);
    bytes_ += snapshot_bytes(s);
    newest_ = std::max(newest_, s.ts_ns);
    trim();
}

void PreBuffer::expire(uint64_t now_ns) {
    newest_ = std::max(newest_, now_ns);
    trim();
}

void PreBuffer::trim() {
    const uint64_t cutoff = newest_ > window_ns_ ? newest_ - window_ns_ : 0;
    auto pop_event = [this] {
        events_.pop_front();
        bytes_ -= kEventRecordSize;
    };
    auto pop_snap = [this] {
        bytes_ -= snapshot_bytes(snaps_.front());
        snaps_.pop_front();
    };
    // Events from different CPUs arrive slightly out of order; trimming from the front
    // by timestamp is close enough for a window of seconds.
    while (!events_.empty() && record_ts(events_.front()) < cutoff) pop_event();
    while (!snaps_.empty() && snaps_.front().ts_ns < cutoff) pop_snap();
    // Over the byte cap: drop the oldest, whichever kind it is.
    while (bytes_ > max_bytes_ && (!events_.empty() || !snaps_.empty())) {
        if (snaps_.empty() ||
            (!events_.empty() && record_ts(events_.front()) < snaps_.front().ts_ns))
            pop_event();
        else
            pop_snap();
    }
}

size_t PreBuffer::drain_into(RecordingWriter& w) {
    size_t accepted = 0;
    // Merge by time so the recording reads in order.
    while (!events_.empty() || !snaps_.empty()) {
        if (!snaps_.empty() &&
            (events_.empty() || snaps_.front().ts_ns <= record_ts(events_.front()))) {
            const Snapshot s = std::move(snaps_.front());
            snaps_.pop_front();
            bytes_ -= snapshot_bytes(s);
            w.add_snapshot(s);
        } else {
            const auto r = events_.front();
            events_.pop_front();
            bytes_ -= r.size();
            accepted += w.add_event(r);
        }
    }
    return accepted;
}

void PreBuffer::clear() {
    events_.clear();
    snaps_.clear();
    bytes_ = 0;
}

}  // namespace ctbpf
