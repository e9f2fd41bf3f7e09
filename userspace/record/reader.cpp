// Recording reader: trusts nothing in the file. Damaged frames are skipped with a warning
// and the reader resynchronises on the next frame header whose checksum holds; a torn last
// frame (crash, power loss) ends the recording with a warning. See docs/recording-format.md.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/recording.h"
#include "ctbpf/fd.h"
#include "wire.h"

namespace ctbpf {

using namespace rec;

namespace {

// Fuzz builds may skip checksums so that the fuzzer reaches the payload parsers.
#ifdef CTBPF_FUZZ_IGNORE_CRC
constexpr bool kCheckCrc = false;
#else
constexpr bool kCheckCrc = true;
#endif

KernelTotals decode_totals(const uint8_t* p) {
    auto at = [p](int i) { return int64_t(get64(p + 8 * i)); };
    return {at(0), at(1), at(2), at(3), at(4), at(5), at(6)};
}

// Reads a u16-length-prefixed string from the metadata block.
bool get_str(const uint8_t*& p, const uint8_t* end, std::string& s) {
    if (end - p < 2) return false;
    size_t n = get16(p);
    p += 2;
    if (size_t(end - p) < n) return false;
    s.assign(reinterpret_cast<const char*>(p), n);
    p += n;
    return true;
}

}  // namespace

struct RecordingReader::Impl {
    std::string path;
    UniqueFd file;
    int fd = -1;  // file.get()
    uint64_t size = 0;
    uint64_t pos = 0;
    bool done = false;
    int64_t last_seq = -1;  // of the last frame whose header was sound
    struct FreeDCtx {
        void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
    };
    std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx_owner;
    ZSTD_DCtx* dctx = nullptr;
    RecordingHeader header;
    std::vector<std::string> warnings;
    std::optional<EndSummary> end;
    std::vector<uint8_t> cbuf;
    size_t frame_warnings = 0;
    size_t event_size = kEventSize;  // of this file's records: kEventSizeV1 for layout 1

    [[noreturn]] void bad(const std::string& why) {
        throw Error("reading recording " + path + ": " + why);
    }

    // Reads up to n bytes at off; fewer only at the end of the file.
    size_t read_at(uint64_t off, void* buf, size_t n) {
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(fd, static_cast<char*>(buf) + got, n - got, off_t(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) bad(std::strerror(errno));
            if (r == 0) break;
            got += size_t(r);
        }
        return got;
    }

    // A live recording grows while we read it.
    void refresh_size() {
        struct stat st{};
        if (fstat(fd, &st) == 0) size = uint64_t(st.st_size);
    }

    // Damaged-frame warnings, capped: a badly damaged file must not flood the report.
    void warn(uint64_t off, const std::string& what) {
        constexpr size_t kMaxFrameWarnings = 100;
        if (++frame_warnings <= kMaxFrameWarnings)
            warnings.push_back("frame at offset " + std::to_string(off) + ": " + what);
        else if (frame_warnings == kMaxFrameWarnings + 1)
            warnings.push_back("more damaged frames after offset " + std::to_string(off) +
                               "; further warnings suppressed");
    }

    void read_header();
    std::optional<uint64_t> resync(uint64_t from);
    bool parse(const FrameHeader& h, Frame& f);
};

void RecordingReader::Impl::read_header() {
    uint8_t fixed[kFixedHeaderSize];
    const size_t n = read_at(0, fixed, sizeof fixed);
    if (n == 0) bad("empty file (not a ctbpf recording)");
    if (std::memcmp(fixed, kFileMagic, std::min<size_t>(n, 8)) != 0)
        bad("not a ctbpf recording (bad magic)");
    if (n < 10) bad("truncated header");
    // Only magic and version are fixed forever; check the version before anything else.
    header.version = get16(fixed + 8);
    if (header.version > kRecordingVersion)
        bad("recording format version " + std::to_string(header.version) +
            " is newer than this ctbpf supports (" + std::to_string(kRecordingVersion) + ")");
    if (header.version == 0) bad("corrupt header (format version 0)");
    if (n < kFixedHeaderSize) bad("truncated header");
    const uint32_t meta_len = get32(fixed + 12);
    if (meta_len > kMaxMetaSize) bad("corrupt header (metadata block too large)");

    std::vector<uint8_t> all(kFixedHeaderSize + meta_len + 4);
    if (read_at(0, all.data(), all.size()) < all.size()) bad("truncated header");
    const size_t body = kFixedHeaderSize + meta_len;
    if (kCheckCrc && get32(&all[body]) != crc(all.data(), body))
        bad("corrupt header (checksum mismatch)");

    header.flags = get16(fixed + 10);
    header.created_wall_ns = int64_t(get64(fixed + 16));
    header.mono_to_wall_ns = int64_t(get64(fixed + 24));
    header.ring_bytes = get64(fixed + 32);
    header.wakeup_bytes = get64(fixed + 40);
    header.event_version = get16(fixed + 48);
    // Layout 1 records are 64 bytes; layout 2 added the entry state at the end (72). A newer
    // layout of the same size is read with this one's decoder (unknown kinds are skipped).
    event_size = get16(fixed + 50);
    const bool v1 = header.event_version <= 1 && event_size == kEventSizeV1;
    const bool v2 = header.event_version == 2 && event_size == kEventRecordSizeV2;
    if (!v1 && !v2 && !(header.event_version >= 3 && event_size == kEventSize))
        bad("unsupported event record size " + std::to_string(event_size) + " (event layout version " +
            std::to_string(header.event_version) + ")");

    const uint8_t* p = all.data() + kFixedHeaderSize;
    const uint8_t* end = p + meta_len;
    bool ok = get_str(p, end, header.hostname) && get_str(p, end, header.kernel_release) &&
              get_str(p, end, header.backend) && end - p >= 2;
    if (ok) {
        size_t count = get16(p);
        p += 2;
        for (size_t i = 0; ok && i < count; ++i) {
            WatchedNetns ns;
            ok = end - p >= 4;
            if (!ok) break;
            ns.inum = get32(p);
            p += 4;
            ok = get_str(p, end, ns.name);
            header.netns.push_back(std::move(ns));
        }
    }
    if (ok && header.version >= 2) {
        ok = end - p >= 4;
        if (ok) header.object_size = get32(p);
        p += ok ? 4 : 0;
    }
    // Bytes after the known fields are later additions: ignored.
    if (!ok) bad("corrupt header (bad metadata block)");
    if (header.event_version > CTBPF_EVENT_VERSION)
        warnings.push_back("events were recorded with event layout version " +
                           std::to_string(header.event_version) + ", this ctbpf knows " +
                           std::to_string(CTBPF_EVENT_VERSION) + ": unknown records are skipped");
    pos = body + 4;
}

// The offset of the next frame header after `from` whose checksum holds.
std::optional<uint64_t> RecordingReader::Impl::resync(uint64_t from) {
    constexpr size_t kChunk = 64 * 1024;
    std::vector<uint8_t> buf(kChunk + kFrameHeaderSize);
    for (uint64_t base = from; base < size; base += kChunk) {
        const size_t n = read_at(base, buf.data(), buf.size());
        for (size_t i = 0; i < kChunk && i + 4 <= n; ++i) {
            if (buf[i] != 'C' || get32(&buf[i]) != kFrameMagic) continue;
            if (i + kFrameHeaderSize > n) return base + i;  // torn header at the end: next() says so
            FrameHeader h;
            if (decode_frame_header(&buf[i], h, kCheckCrc)) return base + i;
        }
    }
    return std::nullopt;
}

// Fills f from a decompressed payload (f.raw); false if the payload is malformed.
bool RecordingReader::Impl::parse(const FrameHeader& h, Frame& f) {
    const auto* p = reinterpret_cast<const uint8_t*>(f.raw.data());
    const uint64_t n = f.raw.size();
    switch (FrameType(h.type)) {
        case FrameType::Events:
            if (n != uint64_t(h.count) * event_size) return false;
            f.record_size = event_size;
            f.events.reserve(h.count);
            for (size_t i = 0; i < h.count; ++i) {
                if (auto e = decode_recorded_event(f.record(i)))
                    f.events.push_back(*e);
                else
                    ++f.undecodable;
            }
            return true;
        case FrameType::Snapshot: {
            if (h.count != 1 || n < kSnapshotFixed) return false;
            const uint32_t tables = get32(p + 64);
            if (n != kSnapshotFixed + uint64_t(tables) * kTableRowSize) return false;
            f.snapshot.ts_ns = get64(p);
            f.snapshot.totals = decode_totals(p + 8);
            for (uint32_t i = 0; i < tables; ++i) {
                const uint8_t* r = p + kSnapshotFixed + kTableRowSize * i;
                f.snapshot.tables.push_back({get32(r), int64_t(get64(r + 8)),
                                             int64_t(get64(r + 16)), int64_t(get64(r + 24))});
            }
            return true;
        }
        case FrameType::Marker:
            if (h.count != 1) return false;
            f.marker.assign(reinterpret_cast<const char*>(p), n);
            return true;
        case FrameType::End:
            if (h.count != 1 || n != kEndSize) return false;
            f.end.ts_ns = get64(p);
            f.end.totals = decode_totals(p + 8);
            f.end.events = get64(p + 64);
            f.end.frames = get64(p + 72);
            f.end.refused = get64(p + 80);
            return true;
        case FrameType::Baseline: {
            if (n < kBaselineFixed || n != kBaselineFixed + uint64_t(h.count) * kBaselineRowSize) return false;
            f.baseline.netns = get32(p + 8);
            f.baseline.total = int64_t(get64(p + 16));
            f.baseline.by_source.reserve(h.count);
            for (uint32_t i = 0; i < h.count; ++i) {
                const uint8_t* r = p + kBaselineFixed + kBaselineRowSize * i;
                Address a;
                a.family = r[0];
                std::memcpy(a.bytes.data(), r + 4, 16);
                f.baseline.by_source.emplace_back(a, int64_t(get32(r + 20)));
            }
            return true;
        }
    }
    return false;
}

RecordingReader::RecordingReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
    Impl& I = *impl_;
    I.path = path;
    I.file.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!I.file) throw Error("opening recording " + path + ": " + std::strerror(errno));
    I.fd = I.file.get();
    I.refresh_size();
    I.read_header();
    I.dctx_owner.reset(ZSTD_createDCtx());
    I.dctx = I.dctx_owner.get();
    if (!I.dctx) I.bad("out of memory creating a zstd context");
}

RecordingReader::~RecordingReader() = default;

bool RecordingReader::next(Frame& f) {
    Impl& I = *impl_;
    while (!I.done) {
        const uint64_t at = I.pos;
        uint8_t hb[kFrameHeaderSize];
        size_t n = I.read_at(at, hb, sizeof hb);
        if (n == 0) break;  // ends on a frame boundary: no end frame means a crash or live file
        if (n < sizeof hb) {
            I.warnings.push_back("file ends inside a frame at offset " + std::to_string(at) +
                                 " (recording was interrupted)");
            break;
        }
        FrameHeader h;
        if (!decode_frame_header(hb, h, kCheckCrc)) {
            I.refresh_size();
            auto next = I.resync(at + 1);
            if (!next) {
                I.warn(at, "bad frame header, no frame after it (" +
                               std::to_string(I.size - at) + " bytes ignored)");
                break;
            }
            std::string lost;
            FrameHeader nh;
            uint8_t nb[kFrameHeaderSize];
            if (I.last_seq >= 0 && I.read_at(*next, nb, sizeof nb) == sizeof nb &&
                decode_frame_header(nb, nh, kCheckCrc) && nh.seq > I.last_seq)
                lost = ", " + std::to_string(nh.seq - I.last_seq - 1) + " frames lost";
            I.warn(at, "bad frame header, skipped to offset " + std::to_string(*next) + lost);
            I.pos = *next;
            continue;
        }
        const uint64_t end = at + kFrameHeaderSize + h.clen;
        if (end > I.size) I.refresh_size();
        I.cbuf.resize(h.clen);
        if (end > I.size || I.read_at(at + kFrameHeaderSize, I.cbuf.data(), h.clen) < h.clen) {
            I.warnings.push_back("file ends inside a frame at offset " + std::to_string(at) +
                                 " (recording was interrupted)");
            break;
        }
        I.pos = end;
        I.last_seq = h.seq;
        if (kCheckCrc && crc(I.cbuf.data(), h.clen) != h.payload_crc) {
            I.warn(at, "checksum mismatch, skipped");
            continue;
        }
        if (h.type < uint8_t(FrameType::Events) || h.type > uint8_t(FrameType::Baseline)) {
            I.warn(at, "unknown frame type " + std::to_string(h.type) + ", skipped");
            continue;
        }
        // Reset field by field so the caller's buffers are reused across frames.
        f.raw.clear();
        f.events.clear();
        f.undecodable = 0;
        f.snapshot = {};
        f.marker.clear();
        f.end = {};
        f.baseline = {};
        f.type = FrameType(h.type);
        f.offset = at;
        f.seq = h.seq;
        f.count = h.count;
        f.first_ts_ns = h.first_ts;
        f.last_ts_ns = h.last_ts;
        // Check the size zstd itself records before allocating what the header claims.
        const bool sized = ZSTD_getFrameContentSize(I.cbuf.data(), h.clen) == h.ulen;
        size_t got = 0;
        if (sized) {
            f.raw.resize(h.ulen);
            got = ZSTD_decompressDCtx(I.dctx, f.raw.data(), h.ulen, I.cbuf.data(), h.clen);
        }
        if (!sized || ZSTD_isError(got) || got != h.ulen) {
            I.warn(at, "bad zstd data, skipped");
            continue;
        }
        if (!I.parse(h, f)) {
            I.warn(at, "malformed " + std::string(frame_type_name(f.type)) + " frame, skipped");
            continue;
        }
        if (f.type == FrameType::End) {
            I.end = f.end;
            I.done = true;
            I.refresh_size();
            if (I.size > I.pos)
                I.warnings.push_back(std::to_string(I.size - I.pos) +
                                     " bytes after the end frame ignored");
        }
        return true;
    }
    I.done = true;
    return false;
}

const RecordingHeader& RecordingReader::header() const { return impl_->header; }
const std::vector<std::string>& RecordingReader::warnings() const { return impl_->warnings; }
bool RecordingReader::clean_close() const { return impl_->end.has_value(); }
const std::optional<EndSummary>& RecordingReader::end() const { return impl_->end; }
KernelTotals RecordingReader::end_totals() const {
    return impl_->end ? impl_->end->totals : KernelTotals{};
}

}  // namespace ctbpf
