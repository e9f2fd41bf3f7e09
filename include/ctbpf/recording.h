// Recordings: what `ctbpf record` writes and `ctbpf report` reads. A versioned file header,
// then checksummed, zstd-compressed frames of raw 96-byte events, once-a-second snapshots,
// text markers, and an end frame on clean close. Every flushed frame survives a crash.
// The byte layout is specified in docs/recording-format.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctbpf/baseline.h"
#include "ctbpf/decode.h"
#include "ctbpf/kernel.h"
#include "ctbpf/table.h"

namespace ctbpf {

// The newest recording format this build reads and the one it writes. Version 2 added the
// baseline frame and the slab object size; version 3 stores 72-byte events (event layout 2,
// with the entry's state); version 4 96-byte events (event layout 3, with the local
// process). Versions 1 and 2 (64-byte events) and 3 are still read.
inline constexpr uint16_t kRecordingVersion = 4;

struct RecordingHeader {
    uint16_t version = kRecordingVersion;  // as found by the reader; the writer writes its own
    uint16_t flags = 0;                    // none defined yet
    uint16_t event_version = 0;            // event layout of the records, as found by the reader
                                           // (1: 64 bytes, no state); the writer writes its own
    int64_t created_wall_ns = 0;           // CLOCK_REALTIME when recording began
    int64_t mono_to_wall_ns = 0;           // wall = event ts_ns (CLOCK_MONOTONIC) + this
    uint64_t ring_bytes = 0, wakeup_bytes = 0;  // the session's ring buffer settings
    std::string hostname, kernel_release, backend;
    std::vector<WatchedNetns> netns;
    // sizeof(struct nf_conn) as /proc/slabinfo said when recording began; 0: not recorded
    // (version 1, or slabinfo unreadable), so readers fall back to an estimate.
    uint32_t object_size = 0;

    int64_t wall_ns(uint64_t mono_ts_ns) const {
        return static_cast<int64_t>(mono_ts_ns) + mono_to_wall_ns;
    }
};

// A header with the clocks, hostname and kernel release of this machine filled in; the
// caller adds backend, netns and ring settings.
RecordingHeader host_header();

struct Snapshot {
    uint64_t ts_ns = 0;  // CLOCK_MONOTONIC
    KernelTotals totals;
    std::vector<TableState> tables;
};

// What the end frame says: written only by a clean close().
struct EndSummary {
    uint64_t ts_ns = 0;  // CLOCK_MONOTONIC at close
    KernelTotals totals;
    uint64_t events = 0;   // events written to the file
    uint64_t frames = 0;   // frames before the end frame
    uint64_t refused = 0;  // events not recorded because max_bytes was reached
};

enum class FrameType : uint8_t { Events = 1, Snapshot = 2, Marker = 3, End = 4, Baseline = 5 };
std::string_view frame_type_name(FrameType t);

struct WriterOptions {
    size_t max_frame_events = 4096;    // a frame is written when this many events wait...
    uint32_t max_frame_age_ms = 1000;  // ...or when the oldest waiting event is this old
    int zstd_level = 3;
    uint64_t max_bytes = 0;            // file size limit, end frame included; 0: none
};

// Not thread-safe. Every write failure throws Error("writing recording FILE: <strerror>;
// N frames (M events) kept"); the file is then cut back to its last complete frame and the
// writer accepts nothing more.
class RecordingWriter {
public:
    // Creates or truncates `path` with mode 0600 (whatever the umask), writes the header.
    RecordingWriter(const std::string& path, const RecordingHeader& header,
                    const WriterOptions& opt = {});
    // Without close(): flushes what waits (errors ignored) and leaves no end frame, which
    // a reader reports as an interrupted recording.
    ~RecordingWriter();
    RecordingWriter(const RecordingWriter&) = delete;
    RecordingWriter& operator=(const RecordingWriter&) = delete;

    // The add_* calls return false once max_bytes is reached: that item and everything
    // after it is not recorded (limit_reached() then says "recording reached --max-size").
    // An accepted item is always written, by a later flush at the latest.
    bool add_event(EventRecordView record);
    bool add_snapshot(const Snapshot& s);                      // flushes waiting events first
    bool add_marker(std::string_view text, uint64_t ts_ns = 0);  // 0: CLOCK_MONOTONIC now
    // What one namespace's table held when recording began, per source (several frames if
    // it does not fit in one). Write it before the events: readers add it as they meet it.
    bool add_baseline(const Baseline& b, uint64_t ts_ns = 0);  // 0: CLOCK_MONOTONIC now

    void tick();   // call from a timer: writes the waiting events once max_frame_age_ms passed
    void flush();  // writes the waiting events as a frame (write(2) only, no fsync)
    void sync();   // flush() and fdatasync()
    // flush(), end frame, fsync, close. Does nothing more after a write error or a close.
    void close(const KernelTotals& totals);

    bool limit_reached() const;
    uint64_t bytes() const;    // file size up to the last complete frame
    uint64_t frames() const;   // frames written
    uint64_t events() const;   // events written (not counting those still waiting)
    uint64_t refused() const;  // events refused because of max_bytes
    const std::string& path() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct Frame {
    FrameType type = FrameType::Events;
    uint64_t offset = 0;  // of the frame header in the file
    uint32_t seq = 0;     // 0, 1, 2, ... in file order
    uint32_t count = 0;   // records in the frame
    uint64_t first_ts_ns = 0, last_ts_ns = 0;  // events: smallest and largest ts
    std::vector<std::byte> raw;  // the uncompressed payload; events: count records of record_size
    size_t record_size = kEventRecordSize;  // Events: smaller in files of event layouts 1 and 2
    std::vector<Event> events;   // Events: decoded, in file order
    size_t undecodable = 0;      // Events: records decode_event rejected (newer kinds)
    Snapshot snapshot;           // Snapshot
    std::string marker;          // Marker
    EndSummary end;              // End
    Baseline baseline;           // Baseline: netns, by_source, total (seconds: not recorded)

    // Record i as stored: record_size bytes (decode_event reads every layout by its size).
    std::span<const std::byte> record(size_t i) const {
        return std::span<const std::byte>(raw.data() + record_size * i, record_size);
    }
};

class RecordingReader {
public:
    // Throws Error: "reading recording FILE: not a ctbpf recording (bad magic)",
    // "...: recording format version N is newer than this ctbpf supports (M)",
    // "...: truncated header", "...: empty file (not a ctbpf recording)", "...: corrupt header".
    explicit RecordingReader(const std::string& path);
    ~RecordingReader();
    RecordingReader(const RecordingReader&) = delete;
    RecordingReader& operator=(const RecordingReader&) = delete;

    const RecordingHeader& header() const;
    // The next good frame, or false at the end. Damaged frames are skipped with a warning;
    // an end frame is the last frame returned. Only I/O errors throw.
    bool next(Frame& f);
    const std::vector<std::string>& warnings() const;
    bool clean_close() const;                  // an end frame was read
    const std::optional<EndSummary>& end() const;
    KernelTotals end_totals() const;           // zeros without an end frame

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Flight recorder for triggers: keeps the last `window_ns` of raw events and snapshots (and
// at most `max_bytes` of them), so that a trigger can write what led up to it.
class PreBuffer {
public:
    PreBuffer(uint64_t window_ns, size_t max_bytes);

    void add_event(EventRecordView record);
    void add_snapshot(const Snapshot& s);
    void expire(uint64_t now_ns);  // drops what is older than now - window (quiet periods)
    // Hands everything to the writer, oldest first, and empties the buffer. Returns the
    // events the writer accepted.
    size_t drain_into(RecordingWriter& w);
    void clear();

    size_t events() const { return events_.size(); }
    size_t snapshots() const { return snaps_.size(); }
    size_t bytes() const { return bytes_; }

private:
    void trim();

    uint64_t window_ns_;
    size_t max_bytes_;
    uint64_t newest_ = 0;
    size_t bytes_ = 0;
    std::deque<EventRecord> events_;
    std::deque<Snapshot> snaps_;
};

}  // namespace ctbpf
