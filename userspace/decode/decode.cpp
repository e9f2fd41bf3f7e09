#include "ctbpf/decode.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "ctbpf/event.h"

namespace ctbpf {

std::string_view kind_name(EventKind k) {
    switch (k) {
        case EventKind::Insert: return "insert";
        case EventKind::Drop: return "drop";
        case EventKind::EarlyDrop: return "early_drop";
        case EventKind::InsertFailed: return "insert_failed";
        case EventKind::Destroy: return "destroy";
    }
    return "unknown";
}

std::string_view reason_name(Reason r) {
    switch (r) {
        case Reason::None: return "";
        case Reason::Timeout: return "timeout";
        case Reason::Deleted: return "deleted";
        case Reason::ClashDrop: return "clash_drop";
        case Reason::ClashResolved: return "clash_resolved";
        case Reason::TableFull: return "table_full";
        case Reason::NoEntry: return "no_entry";
    }
    return "unknown";
}

std::string proto_name(uint8_t proto) {
    switch (proto) {
        case IPPROTO_TCP: return "tcp";
        case IPPROTO_UDP: return "udp";
        case IPPROTO_ICMP: return "icmp";
        case IPPROTO_ICMPV6: return "icmpv6";
        case IPPROTO_SCTP: return "sctp";
        case IPPROTO_DCCP: return "dccp";
        case IPPROTO_UDPLITE: return "udplite";
        case IPPROTO_GRE: return "gre";
        default: return std::to_string(proto);
    }
}

std::optional<Address> Address::parse(std::string_view text) {
    std::string s(text);
    Address a;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
        a.family = AF_INET;
        return a;
    }
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.family = AF_INET6;
        return a;
    }
    return std::nullopt;
}

std::string Address::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    if (family == AF_INET || family == AF_INET6) {
        if (inet_ntop(family, bytes.data(), buf, sizeof buf)) return buf;
    }
    return "?";
}

size_t AddressHash::operator()(const Address& a) const noexcept {
    // FNV-1a over the bytes that matter; cheap and good enough for addresses.
    uint64_t h = 1469598103934665603ull ^ a.family;
    const size_t n = a.family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; ++i) h = (h ^ a.bytes[i]) * 1099511628211ull;
    return static_cast<size_t>(h);
}

static_assert(sizeof(ctbpf_event) == kEventRecordSize);
static_assert(offsetof(ctbpf_event, ct_status) == kEventRecordSizeV1, "layout 1 is a prefix of today's");
static_assert(offsetof(ctbpf_event, cgroup) == kEventRecordSizeV2, "layout 2 is a prefix of today's");

std::string state_name(const Event& e) {
    if (!e.has_state) return "";
    if (e.proto == IPPROTO_TCP) {
        static constexpr std::string_view kTcp[] = {"NONE",     "SYN_SENT",   "SYN_RECV", "ESTABLISHED",
                                                    "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
                                                    "CLOSE",    "SYN_SENT2"};
        if (e.tcp_state < std::size(kTcp)) return std::string(kTcp[e.tcp_state]);
        return "tcp_state_" + std::to_string(e.tcp_state);  // a state added by a later kernel
    }
    if (e.ct_status & (1u << 2)) return "assured";      // IPS_ASSURED
    if (e.ct_status & (1u << 1)) return "replied";      // IPS_SEEN_REPLY
    return "unreplied";
}

namespace {

// Decodes the first 64 bytes, common to every layout version; `raw` is zero past them
// when the record was shorter.
std::optional<Event> decode_raw(const ctbpf_event& raw, bool with_state, bool with_process) {
    if (raw.kind < CTBPF_EV_INSERT || raw.kind > CTBPF_EV_DESTROY) return std::nullopt;
    if (raw.family != AF_INET && raw.family != AF_INET6 && raw.family != 0) return std::nullopt;
    if (raw.reason > CTBPF_R_NO_ENTRY) return std::nullopt;

    Event e;
    e.kind = static_cast<EventKind>(raw.kind);
    e.reason = static_cast<Reason>(raw.reason);
    e.ts_ns = raw.ts_ns;
    e.ct_id = raw.ct_id;
    e.netns = raw.netns;
    e.zone = raw.zone;
    e.cpu = raw.cpu;
    e.proto = raw.proto;
    e.sport = ntohs(raw.sport);
    e.dport = ntohs(raw.dport);
    e.src.family = e.dst.family = raw.family;
    std::memcpy(e.src.bytes.data(), raw.src, 16);
    std::memcpy(e.dst.bytes.data(), raw.dst, 16);
    if (with_state && raw.state_valid) {
        e.has_state = true;
        e.ct_status = raw.ct_status;
        e.tcp_state = raw.tcp_state;
    }
    if (with_process) {
        e.pid = raw.pid;
        e.cgroup = raw.cgroup;
        std::memcpy(e.comm.data(), raw.comm, e.comm.size());
    }
    return e;
}

}  // namespace

std::optional<Event> decode_event(std::span<const std::byte> record) {
    if (record.size() != sizeof(ctbpf_event)) return std::nullopt;
    return decode_recorded_event(record);
}

std::optional<Event> decode_recorded_event(std::span<const std::byte> record) {
    const size_t n = record.size();
    if (n != sizeof(ctbpf_event) && n != kEventRecordSizeV2 && n != kEventRecordSizeV1) return std::nullopt;
    ctbpf_event raw{};
    std::memcpy(&raw, record.data(), n);
    return decode_raw(raw, n >= kEventRecordSizeV2, n == sizeof(ctbpf_event));
}

std::optional<Event> decode_event_v1(std::span<const std::byte> record) {
    if (record.size() != kEventRecordSizeV1) return std::nullopt;
    return decode_recorded_event(record);
}

EventRecord encode_event(const Event& e) {
    ctbpf_event raw{};
    raw.kind = static_cast<uint8_t>(e.kind);
    raw.reason = static_cast<uint8_t>(e.reason);
    raw.ts_ns = e.ts_ns;
    raw.ct_id = e.ct_id;
    raw.netns = e.netns;
    raw.zone = e.zone;
    raw.cpu = e.cpu;
    raw.proto = e.proto;
    raw.sport = htons(e.sport);
    raw.dport = htons(e.dport);
    raw.family = e.src.family;
    std::memcpy(raw.src, e.src.bytes.data(), 16);
    std::memcpy(raw.dst, e.dst.bytes.data(), 16);
    if (e.has_state) {
        raw.ct_status = e.ct_status;
        raw.tcp_state = e.tcp_state;
        raw.state_valid = 1;
    }
    raw.pid = e.pid;
    raw.cgroup = e.cgroup;
    std::memcpy(raw.comm, e.comm.data(), sizeof raw.comm);
    EventRecord out;
    std::memcpy(out.data(), &raw, sizeof raw);
    return out;
}

}  // namespace ctbpf
