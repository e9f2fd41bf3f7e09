// Recording writer: header, then one frame per write(2) so that a crash leaves at worst a
// torn last frame, which the reader recognises. See docs/recording-format.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <ctime>

#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/recording.h"
#include "ctbpf/fd.h"
#include "wire.h"

namespace ctbpf {

using namespace rec;

// Event records are stored as the kernel wrote them; the format says little-endian.
static_assert(std::endian::native == std::endian::little, "recordings assume a little-endian host");

namespace {

int64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void put_str(std::vector<uint8_t>& out, std::string_view s) {
    s = s.substr(0, 4096);  // names, not documents
    uint8_t len[2];
    put16(len, uint16_t(s.size()));
    out.insert(out.end(), len, len + 2);
    out.insert(out.end(), s.begin(), s.end());
}

std::vector<uint8_t> encode_header(const RecordingHeader& h) {
    std::vector<uint8_t> meta;
    put_str(meta, h.hostname);
    put_str(meta, h.kernel_release);
    put_str(meta, h.backend);
    uint8_t b[4];
    put16(b, uint16_t(std::min<size_t>(h.netns.size(), 1000)));
    meta.insert(meta.end(), b, b + 2);
    for (size_t i = 0; i < std::min<size_t>(h.netns.size(), 1000); ++i) {
        put32(b, h.netns[i].inum);
        meta.insert(meta.end(), b, b + 4);
        put_str(meta, h.netns[i].name);
    }
    put32(b, h.object_size);  // version 2
    meta.insert(meta.end(), b, b + 4);
    if (meta.size() > kMaxMetaSize) throw Error("recording header too large (too many namespaces)");

    std::vector<uint8_t> out(kFixedHeaderSize);
    std::memcpy(out.data(), kFileMagic, 8);
    put16(&out[8], kRecordingVersion);
    put16(&out[10], h.flags);
    put32(&out[12], uint32_t(meta.size()));
    put64(&out[16], uint64_t(h.created_wall_ns));
    put64(&out[24], uint64_t(h.mono_to_wall_ns));
    put64(&out[32], h.ring_bytes);
    put64(&out[40], h.wakeup_bytes);
    // The records are this build's (add_event takes kEventSize bytes): its layout version,
    // whatever a header copied from another file says.
    put16(&out[48], CTBPF_EVENT_VERSION);
    put16(&out[50], kEventSize);
    out.insert(out.end(), meta.begin(), meta.end());
    put32(b, crc(out.data(), out.size()));
    out.insert(out.end(), b, b + 4);
    return out;
}

// The file's totals block is fixed (docs/recording-format.md): lost_drop and overflow are
// live-only and deliberately not written.
void encode_totals(uint8_t* p, const KernelTotals& t) {
    const int64_t v[] = {t.insert, t.drop, t.early_drop, t.insert_failed, t.clash_resolved,
                         t.destroy, t.lost};
    for (int64_t x : v) put64(p, uint64_t(x)), p += 8;
}

uint64_t record_ts(EventRecordView r) {
    uint64_t ts;
    std::memcpy(&ts, r.data(), sizeof ts);
    return ts;
}

}  // namespace

RecordingHeader host_header() {
    RecordingHeader h;
    // Bracket the monotonic read with two wall reads; their midpoint pairs with it.
    const int64_t w1 = clock_ns(CLOCK_REALTIME), m = clock_ns(CLOCK_MONOTONIC),
                  w2 = clock_ns(CLOCK_REALTIME);
    h.created_wall_ns = w1 + (w2 - w1) / 2;
    h.mono_to_wall_ns = h.created_wall_ns - m;
    char host[HOST_NAME_MAX + 1] = {};
    if (gethostname(host, sizeof host - 1) == 0) h.hostname = host;
    utsname u{};
    if (uname(&u) == 0) h.kernel_release = u.release;
    return h;
}

std::string_view frame_type_name(FrameType t) {
    switch (t) {
        case FrameType::Events: return "events";
        case FrameType::Snapshot: return "snapshot";
        case FrameType::Marker: return "marker";
        case FrameType::End: return "end";
        case FrameType::Baseline: return "baseline";
    }
    return "unknown";
}

struct RecordingWriter::Impl {
    std::string path;
    WriterOptions opt;
    UniqueFd file;
    int fd = -1;           // file.get(), for the many calls that take it
    bool regular = false;  // ftruncate and fchmod only make sense on a regular file
    struct FreeCCtx {
        void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
    };
    std::unique_ptr<ZSTD_CCtx, FreeCCtx> cctx_owner;
    ZSTD_CCtx* cctx = nullptr;
    std::vector<std::byte> pending;  // event records waiting for a frame
    uint64_t pending_first = 0, pending_last = 0;
    std::chrono::steady_clock::time_point pending_since;
    std::vector<uint8_t> out;  // frame header + compressed payload
    uint64_t good = 0;         // file size up to the last complete frame
    uint64_t frames = 0, events = 0, refused = 0;
    uint32_t seq = 0;
    bool limit = false, failed = false, closed = false;
    std::string error;

    size_t pending_count() const { return pending.size() / kEventSize; }

    [[noreturn]] void fail(int err) {
        // Never leave a partial frame: cut back to the last frame boundary.
        if (regular && ftruncate(fd, off_t(good)) == 0) lseek(fd, off_t(good), SEEK_SET);
        failed = true;
        pending.clear();
        error = "writing recording " + path + ": " + std::strerror(err) + "; " +
                std::to_string(frames) + " frames (" + std::to_string(events) + " events) kept";
        throw Error(error);
    }

    void write_all(const uint8_t* p, size_t n) {
        while (n > 0) {
            ssize_t w = ::write(fd, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) fail(w < 0 ? errno : EIO);
            p += w;
            n -= size_t(w);
        }
    }

    // Room left for frames, keeping space for the end frame.
    bool fits(uint64_t frame_bytes) const {
        if (opt.max_bytes == 0) return true;
        const uint64_t end_frame = kFrameHeaderSize + ZSTD_compressBound(kEndSize);
        return good + frame_bytes + end_frame <= opt.max_bytes;
    }

    // Compresses and writes one frame; false (nothing written) if it would pass max_bytes.
    bool write_frame(FrameType type, std::span<const std::byte> payload, uint32_t count,
                     uint64_t first, uint64_t last) {
        out.resize(kFrameHeaderSize + ZSTD_compressBound(payload.size()));
        size_t clen = ZSTD_compressCCtx(cctx, out.data() + kFrameHeaderSize,
                                        out.size() - kFrameHeaderSize, payload.data(),
                                        payload.size(), opt.zstd_level);
        if (ZSTD_isError(clen))
            throw Error("compressing recording frame: " + std::string(ZSTD_getErrorName(clen)));
        if (type != FrameType::End && !fits(kFrameHeaderSize + clen)) {
            limit = true;
            return false;
        }
        FrameHeader h;
        h.type = uint8_t(type);
        h.seq = seq;
        h.clen = uint32_t(clen);
        h.ulen = uint32_t(payload.size());
        h.count = count;
        h.first_ts = first;
        h.last_ts = last;
        h.payload_crc = crc(out.data() + kFrameHeaderSize, clen);
        encode_frame_header(h, out.data());
        write_all(out.data(), kFrameHeaderSize + clen);  // one write: at most one torn frame
        good += kFrameHeaderSize + clen;
        ++frames;
        ++seq;
        if (type == FrameType::Events) events += count;
        return true;
    }

    void flush_events() {
        if (pending.empty()) return;
        write_frame(FrameType::Events, pending, uint32_t(pending_count()), pending_first,
                    pending_last);  // fits by the check in add_event
        pending.clear();
    }

    // Whether an add_* call may go ahead; throws after a failure or close.
    bool accepting() {
        if (failed) throw Error(error);
        if (closed) throw Error("recording " + path + " is already closed");
        return !limit;
    }
};

RecordingWriter::RecordingWriter(const std::string& path, const RecordingHeader& header,
                                 const WriterOptions& opt)
    : impl_(std::make_unique<Impl>()) {
    Impl& I = *impl_;
    I.path = path;
    I.opt = opt;
    if (opt.max_frame_events == 0 || opt.max_frame_events > kMaxPayload / kEventSize)
        throw Error("recording frame size must be 1.." + std::to_string(kMaxPayload / kEventSize) +
                    " events");
    I.opt.zstd_level = std::clamp(opt.zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    const std::vector<uint8_t> head = encode_header(header);
    if (opt.max_bytes && !I.fits(head.size() + kFrameHeaderSize + ZSTD_compressBound(kEventSize)))
        throw Error("--max-size " + std::to_string(opt.max_bytes) + " is too small for a recording");

    I.file.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!I.file) throw Error("creating recording " + path + ": " + std::strerror(errno));
    I.fd = I.file.get();
    struct stat st{};
    I.regular = fstat(I.fd, &st) == 0 && S_ISREG(st.st_mode);
    // O_TRUNC keeps an existing file's mode, and the umask may have widened nothing but
    // still: recordings hold addresses, so owner-only, always.
    if (I.regular && fchmod(I.fd, 0600) != 0)
        throw Error("setting mode 0600 on recording " + path + ": " + std::strerror(errno));
    I.cctx_owner.reset(ZSTD_createCCtx());
    I.cctx = I.cctx_owner.get();
    if (!I.cctx) throw Error("out of memory creating a zstd context");
    I.pending.reserve(I.opt.max_frame_events * kEventSize);
    I.write_all(head.data(), head.size());
    I.good = head.size();
}

RecordingWriter::~RecordingWriter() {
    Impl& I = *impl_;
    if (!I.closed && !I.failed) {
        try {
            I.flush_events();
        } catch (...) {
            // Best effort on the way out: the caller had no close() to report it to.
        }
    }
}

bool RecordingWriter::add_event(EventRecordView record) {
    Impl& I = *impl_;
    if (!I.accepting()) return ++I.refused, false;
    // Flush early if the worst case of the grown frame might not fit: an accepted event is
    // then always written.
    const size_t n = I.pending_count() + 1;
    if (!I.fits(kFrameHeaderSize + ZSTD_compressBound(n * kEventSize))) {
        I.flush_events();
        if (!I.fits(kFrameHeaderSize + ZSTD_compressBound(kEventSize))) {
            I.limit = true;
            return ++I.refused, false;
        }
    }
    const uint64_t ts = record_ts(record);
    const auto now = std::chrono::steady_clock::now();
    if (I.pending.empty()) {
        I.pending_since = now;
        I.pending_first = I.pending_last = ts;
    }
    I.pending.insert(I.pending.end(), record.begin(), record.end());
    I.pending_first = std::min(I.pending_first, ts);
    I.pending_last = std::max(I.pending_last, ts);
    if (I.pending_count() >= I.opt.max_frame_events ||
        now - I.pending_since >= std::chrono::milliseconds(I.opt.max_frame_age_ms))
        I.flush_events();
    return true;
}

bool RecordingWriter::add_snapshot(const Snapshot& s) {
    Impl& I = *impl_;
    if (!I.accepting()) return false;
    I.flush_events();  // keeps the file in time order
    const size_t ntables = std::min<size_t>(s.tables.size(), 100000);
    std::vector<std::byte> buf(kSnapshotFixed + kTableRowSize * ntables);
    auto* p = reinterpret_cast<uint8_t*>(buf.data());
    put64(p, s.ts_ns);
    encode_totals(p + 8, s.totals);
    put32(p + 64, uint32_t(ntables));
    for (size_t i = 0; i < ntables; ++i) {
        uint8_t* r = p + kSnapshotFixed + kTableRowSize * i;
        put32(r, s.tables[i].netns);
        put64(r + 8, uint64_t(s.tables[i].count));
        put64(r + 16, uint64_t(s.tables[i].max));
        put64(r + 24, uint64_t(s.tables[i].buckets));
    }
    return I.write_frame(FrameType::Snapshot, buf, 1, s.ts_ns, s.ts_ns);
}

bool RecordingWriter::add_baseline(const Baseline& b, uint64_t ts_ns) {
    Impl& I = *impl_;
    if (!I.accepting()) return false;
    if (ts_ns == 0) ts_ns = uint64_t(clock_ns(CLOCK_MONOTONIC));
    I.flush_events();
    // Rows of one namespace, split so that no payload exceeds the reader's bound.
    constexpr size_t kPerFrame = (kMaxPayload - kBaselineFixed) / kBaselineRowSize;
    size_t at = 0;
    do {
        const size_t n = std::min(kPerFrame, b.by_source.size() - at);
        std::vector<std::byte> buf(kBaselineFixed + kBaselineRowSize * n);
        auto* p = reinterpret_cast<uint8_t*>(buf.data());
        put64(p, ts_ns);
        put32(p + 8, b.netns);
        put64(p + 16, at == 0 ? uint64_t(b.total) : 0);  // the total once, in the first frame
        for (size_t i = 0; i < n; ++i) {
            const auto& [addr, entries] = b.by_source[at + i];
            uint8_t* r = p + kBaselineFixed + kBaselineRowSize * i;
            r[0] = addr.family;
            std::memcpy(r + 4, addr.bytes.data(), 16);
            put32(r + 20, uint32_t(std::clamp<int64_t>(entries, 0, UINT32_MAX)));
        }
        if (!I.write_frame(FrameType::Baseline, buf, uint32_t(n), ts_ns, ts_ns)) return false;
        at += n;
    } while (at < b.by_source.size());
    return true;
}

bool RecordingWriter::add_marker(std::string_view text, uint64_t ts_ns) {
    Impl& I = *impl_;
    if (!I.accepting()) return false;
    if (ts_ns == 0) ts_ns = uint64_t(clock_ns(CLOCK_MONOTONIC));
    I.flush_events();
    text = text.substr(0, 65536);
    return I.write_frame(FrameType::Marker, std::as_bytes(std::span(text)), 1, ts_ns, ts_ns);
}

void RecordingWriter::tick() {
    Impl& I = *impl_;
    if (I.failed || I.closed || I.pending.empty()) return;
    if (std::chrono::steady_clock::now() - I.pending_since >=
        std::chrono::milliseconds(I.opt.max_frame_age_ms))
        I.flush_events();
}

void RecordingWriter::flush() {
    Impl& I = *impl_;
    if (I.failed) throw Error(I.error);
    if (!I.closed) I.flush_events();
}

void RecordingWriter::sync() {
    Impl& I = *impl_;
    flush();
    if (I.closed) return;
    // EINVAL: not a file that can be synced (a device or pipe); nothing to do.
    if (fdatasync(I.fd) != 0 && errno != EINVAL && errno != EROFS) I.fail(errno);
}

void RecordingWriter::close(const KernelTotals& totals) {
    Impl& I = *impl_;
    if (I.closed) return;
    if (I.failed) {
        I.closed = true;
        I.file.reset();
        return;
    }
    I.flush_events();
    std::vector<std::byte> buf(kEndSize);
    auto* p = reinterpret_cast<uint8_t*>(buf.data());
    const uint64_t now = uint64_t(clock_ns(CLOCK_MONOTONIC));
    put64(p, now);
    encode_totals(p + 8, totals);
    put64(p + 64, I.events);
    put64(p + 72, I.frames);
    put64(p + 80, I.refused);
    I.write_frame(FrameType::End, buf, 1, now, now);
    if (fsync(I.fd) != 0 && errno != EINVAL && errno != EROFS) I.fail(errno);
    I.closed = true;
    // close(2)'s own result is wanted here (NFS reports write errors at close): release.
    if (::close(I.file.release()) != 0 && errno != EINTR)
        throw Error("closing recording " + I.path + ": " + std::strerror(errno));
}

bool RecordingWriter::limit_reached() const { return impl_->limit; }
uint64_t RecordingWriter::bytes() const { return impl_->good; }
uint64_t RecordingWriter::frames() const { return impl_->frames; }
uint64_t RecordingWriter::events() const { return impl_->events; }
uint64_t RecordingWriter::refused() const { return impl_->refused; }
const std::string& RecordingWriter::path() const { return impl_->path; }

}  // namespace ctbpf
