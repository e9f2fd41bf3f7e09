// On-disk constants and little-endian helpers shared by the recording writer and reader.
// docs/recording-format.md is the specification; keep the two in step.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ctbpf/decode.h"

namespace ctbpf::rec {

inline constexpr char kFileMagic[8] = {'C', 'T', 'B', 'P', 'F', 'R', 'E', 'C'};
inline constexpr size_t kFixedHeaderSize = 56;  // file header before the metadata block
inline constexpr size_t kMaxMetaSize = 65535;
inline constexpr uint32_t kFrameMagic = 0x52465443;  // the bytes "CTFR" read as little-endian
inline constexpr size_t kFrameHeaderSize = 48;
inline constexpr uint32_t kMaxPayload = 16u << 20;  // uncompressed; bounds reader allocations
inline constexpr size_t kSnapshotFixed = 72;        // snapshot payload before its table rows
inline constexpr size_t kTableRowSize = 32;
inline constexpr size_t kEndSize = 88;
inline constexpr size_t kEventSize = kEventRecordSize;      // what this build writes
inline constexpr size_t kEventSizeV1 = kEventRecordSizeV1;  // event layout 1, still read
inline constexpr size_t kBaselineFixed = 24;  // baseline payload before its rows
inline constexpr size_t kBaselineRowSize = 24;

inline void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v);
    p[1] = uint8_t(v >> 8);
}
inline void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline void put64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
inline uint32_t get32(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
    return v;
}
inline uint64_t get64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

inline uint32_t crc(const void* data, size_t n) {
    return uint32_t(::crc32(0L, static_cast<const Bytef*>(data), uInt(n)));
}

struct FrameHeader {
    uint8_t type = 0;
    uint32_t seq = 0, clen = 0, ulen = 0, count = 0, payload_crc = 0;
    uint64_t first_ts = 0, last_ts = 0;
};

inline void encode_frame_header(const FrameHeader& h, uint8_t* out) {
    std::memset(out, 0, kFrameHeaderSize);
    put32(out + 0, kFrameMagic);
    out[4] = h.type;
    put32(out + 8, h.seq);
    put32(out + 12, h.clen);
    put32(out + 16, h.ulen);
    put32(out + 20, h.count);
    put64(out + 24, h.first_ts);
    put64(out + 32, h.last_ts);
    put32(out + 40, h.payload_crc);
    put32(out + 44, crc(out, 44));
}

// False unless the magic, the header checksum (when check_crc) and the size bounds hold.
inline bool decode_frame_header(const uint8_t* in, FrameHeader& h, bool check_crc = true) {
    if (get32(in) != kFrameMagic) return false;
    if (check_crc && get32(in + 44) != crc(in, 44)) return false;
    h.type = in[4];
    h.seq = get32(in + 8);
    h.clen = get32(in + 12);
    h.ulen = get32(in + 16);
    h.count = get32(in + 20);
    h.first_ts = get64(in + 24);
    h.last_ts = get64(in + 32);
    h.payload_crc = get32(in + 40);
    // zstd never needs more than ~1/256 over the input plus a small constant.
    return h.ulen <= kMaxPayload && h.clen <= kMaxPayload + (kMaxPayload >> 7) + 1024;
}

}  // namespace ctbpf::rec
