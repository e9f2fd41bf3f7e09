// Event decoding: the raw 96-byte records of the ring buffer (include/ctbpf/event.h)
// become typed C++ values. Nothing here knows about BPF, maps or the kernel.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ctbpf {

enum class EventKind : uint8_t { Insert = 1, Drop = 2, EarlyDrop = 3, InsertFailed = 4, Destroy = 5 };
enum class Reason : uint8_t { None = 0, Timeout = 1, Deleted = 2, ClashDrop = 3, ClashResolved = 4, TableFull = 5, NoEntry = 6 };

std::string_view kind_name(EventKind k);
std::string_view reason_name(Reason r);
std::string proto_name(uint8_t proto);  // "tcp", "udp", ... or the number

// Size of one event record (sizeof(struct ctbpf_event), checked in decode.cpp), and of the
// records of older event layouts, which recordings still hold: version 1 (before the entry
// state) and version 2 (before the process). Each is a prefix of the next.
inline constexpr size_t kEventRecordSize = 96;
inline constexpr size_t kEventRecordSizeV1 = 64;
inline constexpr size_t kEventRecordSizeV2 = 72;
using EventRecord = std::array<std::byte, kEventRecordSize>;
using EventRecordView = std::span<const std::byte, kEventRecordSize>;

// An IPv4 or IPv6 address. IPv4 keeps its 4 bytes first, the rest zero.
struct Address {
    uint8_t family = 0;  // AF_INET or AF_INET6, 0 when unknown
    std::array<uint8_t, 16> bytes{};

    static std::optional<Address> parse(std::string_view text);
    std::string to_string() const;
    bool operator==(const Address&) const = default;
};

struct AddressHash {
    size_t operator()(const Address& a) const noexcept;
};

struct Event {
    EventKind kind{};
    Reason reason = Reason::None;
    uint64_t ts_ns = 0;   // CLOCK_MONOTONIC
    uint64_t ct_id = 0;   // pairs an insert with its destroy; 0 for drops
    uint32_t netns = 0;   // inode number of the network namespace
    uint16_t zone = 0;
    uint16_t cpu = 0;
    uint8_t proto = 0;
    uint16_t sport = 0;   // host byte order
    uint16_t dport = 0;
    Address src, dst;
    // The entry's state as the kernel held it at the event (insert: as it was confirmed;
    // destroy, early_drop: as it was freed). has_state is false for drops (no entry), for
    // events from recordings of event layout version 1, and where the kernel's fields
    // could not be read; the two fields are then 0.
    uint16_t ct_status = 0;  // low 16 bits of ct->status (IPS_* bits, include/ctbpf/event.h)
    uint8_t tcp_state = 0;   // TCP only: enum tcp_conntrack (0 NONE ... 7 TIME_WAIT, 8 CLOSE)
    bool has_state = false;
    // The local process that sent the packet (insert, drop), when there is one and it could
    // be named (include/ctbpf/event.h says when): 0 and empty otherwise, and in recordings
    // of event layouts 1 and 2.
    uint32_t pid = 0;
    uint64_t cgroup = 0;              // cgroup v2 id of the sending socket
    std::array<char, 16> comm{};      // NUL-padded
    std::string_view comm_view() const {
        size_t n = 0;
        while (n < comm.size() && comm[n]) ++n;
        return {comm.data(), n};
    }
};

// The state an event names (has_state): for TCP the kernel's name of its TCP state
// ("ESTABLISHED", "TIME_WAIT"... as `conntrack -L` prints it); for other protocols
// "assured", "replied" or "unreplied" from the status bits. "" without a state.
std::string state_name(const Event& e);

// Decodes one ring-buffer record. Returns nothing for a record of the wrong size or an
// unknown kind, so a newer kernel side cannot crash an older reader.
std::optional<Event> decode_event(std::span<const std::byte> record);
// A record as recordings hold it: this layout, or an older one by its size
// (kEventRecordSizeV1: no state; kEventRecordSizeV2: no process).
std::optional<Event> decode_recorded_event(std::span<const std::byte> record);
// The same, for records that must be of layout version 1 (64 bytes).
std::optional<Event> decode_event_v1(std::span<const std::byte> record);

// Encodes back to the wire layout (recordings and tests use it).
EventRecord encode_event(const Event& e);

}  // namespace ctbpf
