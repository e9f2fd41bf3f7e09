// Unit tests for the wire format (include/ctbpf/event.h) and its decoder
// (include/ctbpf/decode.h, userspace/decode/decode.cpp). No privileges needed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "ctbpf/decode.h"
#include "ctbpf/event.h"

namespace {

using ctbpf::Address;
using ctbpf::AddressHash;
using ctbpf::decode_event;
using ctbpf::decode_event_v1;
using ctbpf::encode_event;
using ctbpf::EventRecord;
using ctbpf::Event;
using ctbpf::EventKind;
using ctbpf::Reason;

// Offsets of the fields the tests poke at directly in a raw record.
constexpr size_t kOffSport = offsetof(ctbpf_event, sport);
constexpr size_t kOffDport = offsetof(ctbpf_event, dport);
constexpr size_t kOffKind = offsetof(ctbpf_event, kind);
constexpr size_t kOffFamily = offsetof(ctbpf_event, family);
constexpr size_t kOffReason = offsetof(ctbpf_event, reason);
constexpr size_t kOffSrc = offsetof(ctbpf_event, src);
constexpr size_t kOffDst = offsetof(ctbpf_event, dst);
constexpr size_t kOffStatus = offsetof(ctbpf_event, ct_status);
constexpr size_t kOffTcpState = offsetof(ctbpf_event, tcp_state);
constexpr size_t kOffStateValid = offsetof(ctbpf_event, state_valid);

// The layout the decoder and recordings rely on.
static_assert(sizeof(ctbpf_event) == 96);
static_assert(sizeof(ctbpf_event) == ctbpf::kEventRecordSize);
static_assert(offsetof(ctbpf_event, ts_ns) == 0);
static_assert(offsetof(ctbpf_event, ct_id) == 8);
static_assert(offsetof(ctbpf_event, netns) == 16);
static_assert(offsetof(ctbpf_event, zone) == 20);
static_assert(offsetof(ctbpf_event, cpu) == 22);
static_assert(kOffSport == 24);
static_assert(kOffDport == 26);
static_assert(kOffKind == 28);
static_assert(kOffFamily == 29);
static_assert(offsetof(ctbpf_event, proto) == 30);
static_assert(kOffReason == 31);
static_assert(kOffSrc == 32);
static_assert(kOffDst == 48);
static_assert(kOffStatus == 64);  // layout version 1 ended here
static_assert(kOffTcpState == 66);
static_assert(kOffStateValid == 67);
static_assert(offsetof(ctbpf_event, pid) == 68);
static_assert(offsetof(ctbpf_event, cgroup) == 72);
static_assert(offsetof(ctbpf_event, comm) == 80);

Address addr(std::string_view text) {
    auto a = Address::parse(text);
    EXPECT_TRUE(a.has_value()) << "cannot parse " << text;
    return a.value_or(Address{});
}

std::array<uint8_t, 16> bytes16(std::initializer_list<uint8_t> prefix) {
    std::array<uint8_t, 16> b{};
    size_t i = 0;
    for (uint8_t v : prefix) b[i++] = v;
    return b;
}

Event ipv4_event() {
    Event e;
    e.kind = EventKind::Insert;
    e.reason = Reason::None;
    e.ts_ns = 0x0123456789abcdefull;
    e.ct_id = 0xfedcba9876543210ull;
    e.netns = 4026531840u;
    e.zone = 0xbeef;
    e.cpu = 37;
    e.proto = IPPROTO_TCP;
    e.sport = 54321;
    e.dport = 443;
    e.src = addr("192.168.1.20");
    e.dst = addr("10.0.0.1");
    e.has_state = true;
    e.ct_status = 0x020e;  // SEEN_REPLY | ASSURED | CONFIRMED | DYING
    e.tcp_state = 7;       // TIME_WAIT
    return e;
}

Event ipv6_event() {
    Event e;
    e.kind = EventKind::Destroy;
    e.reason = Reason::Timeout;
    e.ts_ns = 123456789012345ull;
    e.ct_id = 0x8000000000000001ull;
    e.netns = 4026532001u;
    e.zone = 65535;
    e.cpu = 511;
    e.proto = IPPROTO_UDP;
    e.sport = 0x1234;  // bytes differ, so a missing byte swap shows
    e.dport = 53;
    e.src = addr("2001:db8::1");
    e.dst = addr("fd00::1:2");
    return e;
}

void expect_same_event(const Event& want, const Event& got) {
    EXPECT_EQ(want.kind, got.kind);
    EXPECT_EQ(want.reason, got.reason);
    EXPECT_EQ(want.ts_ns, got.ts_ns);
    EXPECT_EQ(want.ct_id, got.ct_id);
    EXPECT_EQ(want.netns, got.netns);
    EXPECT_EQ(want.zone, got.zone);
    EXPECT_EQ(want.cpu, got.cpu);
    EXPECT_EQ(want.proto, got.proto);
    EXPECT_EQ(want.sport, got.sport);
    EXPECT_EQ(want.dport, got.dport);
    EXPECT_EQ(want.src.family, got.src.family);
    EXPECT_EQ(want.src.bytes, got.src.bytes);
    EXPECT_EQ(want.dst.family, got.dst.family);
    EXPECT_EQ(want.dst.bytes, got.dst.bytes);
    EXPECT_TRUE(want.src == got.src);
    EXPECT_TRUE(want.dst == got.dst);
    EXPECT_EQ(want.has_state, got.has_state);
    EXPECT_EQ(want.ct_status, got.ct_status);
    EXPECT_EQ(want.tcp_state, got.tcp_state);
}

ctbpf_event to_raw(const EventRecord& rec) {
    ctbpf_event raw;
    std::memcpy(&raw, rec.data(), sizeof raw);
    return raw;
}

EventRecord from_raw(const ctbpf_event& raw) {
    EventRecord rec;
    std::memcpy(rec.data(), &raw, sizeof raw);
    return rec;
}

uint16_t u16_at(const EventRecord& rec, size_t off) {
    uint16_t v;
    std::memcpy(&v, rec.data() + off, sizeof v);
    return v;
}

// ---------------------------------------------------------------- round trips

TEST(Decode, RoundTripIPv4) {
    const Event e = ipv4_event();
    const auto rec = encode_event(e);
    auto d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    expect_same_event(e, *d);
    EXPECT_EQ(d->src.to_string(), "192.168.1.20");
    EXPECT_EQ(d->dst.to_string(), "10.0.0.1");
    EXPECT_EQ(d->src.family, AF_INET);
    EXPECT_EQ(d->dst.family, AF_INET);
}

TEST(Decode, RoundTripIPv6) {
    const Event e = ipv6_event();
    const auto rec = encode_event(e);
    auto d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    expect_same_event(e, *d);
    EXPECT_EQ(d->src.to_string(), "2001:db8::1");
    EXPECT_EQ(d->dst.to_string(), "fd00::1:2");
    EXPECT_EQ(d->src.family, AF_INET6);
    EXPECT_EQ(d->dst.family, AF_INET6);
}

TEST(Decode, EncodeWritesWireLayoutInNetworkByteOrder) {
    const Event e = ipv4_event();
    const auto rec = encode_event(e);
    const ctbpf_event raw = to_raw(rec);
    EXPECT_EQ(raw.ts_ns, 0x0123456789abcdefull);
    EXPECT_EQ(raw.ct_id, 0xfedcba9876543210ull);
    EXPECT_EQ(raw.netns, 4026531840u);
    EXPECT_EQ(raw.zone, 0xbeef);
    EXPECT_EQ(raw.cpu, 37);
    EXPECT_EQ(raw.kind, CTBPF_EV_INSERT);
    EXPECT_EQ(raw.family, AF_INET);
    EXPECT_EQ(raw.proto, IPPROTO_TCP);
    EXPECT_EQ(raw.reason, CTBPF_R_NONE);
    EXPECT_EQ(raw.ct_status, 0x020e);
    EXPECT_EQ(raw.tcp_state, 7);
    EXPECT_EQ(raw.state_valid, 1);
    EXPECT_EQ(raw.pid, 0u);
    EXPECT_EQ(raw.cgroup, 0u);
    // Ports: big-endian on the wire, whatever the host is.
    EXPECT_EQ(raw.sport, htons(54321));
    EXPECT_EQ(raw.dport, htons(443));
    EXPECT_EQ(std::to_integer<int>(rec[kOffSport]), 54321 >> 8);
    EXPECT_EQ(std::to_integer<int>(rec[kOffSport + 1]), 54321 & 0xff);
    EXPECT_EQ(std::to_integer<int>(rec[kOffDport]), 443 >> 8);
    EXPECT_EQ(std::to_integer<int>(rec[kOffDport + 1]), 443 & 0xff);
    // IPv4 addresses: the first 4 bytes, the rest zero.
    const std::array<int, 16> src{192, 168, 1, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const std::array<int, 16> dst{10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(std::to_integer<int>(rec[kOffSrc + i]), src[i]) << "src byte " << i;
        EXPECT_EQ(std::to_integer<int>(rec[kOffDst + i]), dst[i]) << "dst byte " << i;
    }
}

TEST(Decode, RoundTripEveryKindAndReason) {
    const EventKind kinds[] = {EventKind::Insert, EventKind::Drop, EventKind::EarlyDrop,
                               EventKind::InsertFailed, EventKind::Destroy};
    const Reason reasons[] = {Reason::None, Reason::Timeout, Reason::Deleted, Reason::ClashDrop,
                              Reason::ClashResolved};
    int decoded = 0;
    for (EventKind k : kinds) {
        for (Reason r : reasons) {
            Event e = ipv6_event();
            e.kind = k;
            e.reason = r;
            auto d = decode_event(encode_event(e));
            ASSERT_TRUE(d.has_value()) << int(k) << "/" << int(r);
            EXPECT_EQ(d->kind, k);
            EXPECT_EQ(d->reason, r);
            ++decoded;
        }
    }
    EXPECT_EQ(decoded, 25);
}

TEST(Decode, RoundTripExtremePorts) {
    const uint16_t ports[] = {0, 1, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfffe, 0xffff};
    for (uint16_t sp : ports) {
        Event e = ipv4_event();
        e.sport = sp;
        e.dport = static_cast<uint16_t>(~sp);
        auto d = decode_event(encode_event(e));
        ASSERT_TRUE(d.has_value());
        EXPECT_EQ(d->sport, sp);
        EXPECT_EQ(d->dport, static_cast<uint16_t>(~sp));
    }
}

// ---------------------------------------------------------------- rejections

TEST(Decode, RejectsWrongRecordSizes) {
    const auto rec = encode_event(ipv4_event());
    ASSERT_TRUE(decode_event(rec).has_value());  // the record itself is fine

    std::vector<std::byte> longer(rec.begin(), rec.end());
    longer.push_back(std::byte{0});
    ASSERT_EQ(longer.size(), 97u);
    EXPECT_FALSE(decode_event(longer).has_value());

    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 95)).has_value());
    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 72)).has_value());
    // The older 64-byte layout is only read where asked for (recordings of event version 1).
    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 64)).has_value());
    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 63)).has_value());
    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 1)).has_value());
    EXPECT_FALSE(decode_event(std::span<const std::byte>(rec.data(), 0)).has_value());
    EXPECT_FALSE(decode_event(std::span<const std::byte>()).has_value());

    std::vector<std::byte> twice(192, std::byte{0});
    std::memcpy(twice.data(), rec.data(), 96);
    std::memcpy(twice.data() + 96, rec.data(), 96);
    EXPECT_FALSE(decode_event(twice).has_value());

    EXPECT_FALSE(decode_event_v1(rec).has_value());
    EXPECT_FALSE(decode_event_v1(std::span<const std::byte>(rec.data(), 63)).has_value());
    EXPECT_FALSE(decode_event_v1(std::span<const std::byte>(rec.data(), 65)).has_value());
}

// ---------------------------------------------------------------- the local process

TEST(Decode, ProcessRoundTripsAndOlderLayoutsReadWithout) {
    Event e = ipv4_event();
    e.kind = EventKind::Insert;
    e.pid = 4242;
    e.cgroup = 0x1234567890ull;
    const char name[] = "curl\"x";
    std::memcpy(e.comm.data(), name, sizeof name);
    const auto rec = encode_event(e);
    auto d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->pid, 4242u);
    EXPECT_EQ(d->cgroup, 0x1234567890ull);
    EXPECT_EQ(d->comm_view(), "curl\"x");
    // Layout 2 (72 bytes) keeps the state, has no process; layout 1 (64) has neither.
    auto v2 = ctbpf::decode_recorded_event(std::span<const std::byte>(rec.data(), ctbpf::kEventRecordSizeV2));
    ASSERT_TRUE(v2.has_value());
    EXPECT_EQ(v2->pid, 0u);
    EXPECT_EQ(v2->cgroup, 0u);
    EXPECT_EQ(v2->has_state, e.has_state);
    auto v1 = ctbpf::decode_recorded_event(std::span<const std::byte>(rec.data(), ctbpf::kEventRecordSizeV1));
    ASSERT_TRUE(v1.has_value());
    EXPECT_FALSE(v1->has_state);
    EXPECT_EQ(v1->pid, 0u);
    EXPECT_FALSE(ctbpf::decode_recorded_event(std::span<const std::byte>(rec.data(), 80)).has_value());
}

// ---------------------------------------------------------------- entry state

TEST(Decode, StateRoundTripsForEveryKindThatCarriesIt) {
    for (EventKind k : {EventKind::Insert, EventKind::EarlyDrop, EventKind::InsertFailed, EventKind::Destroy}) {
        Event e = ipv6_event();
        e.kind = k;
        e.has_state = true;
        e.ct_status = 0x0008;  // CONFIRMED only: unreplied
        auto d = decode_event(encode_event(e));
        ASSERT_TRUE(d.has_value());
        expect_same_event(e, *d);
        EXPECT_EQ(ctbpf::state_name(*d), "unreplied");
    }
    Event tcp = ipv4_event();
    auto d = decode_event(encode_event(tcp));
    ASSERT_TRUE(d.has_value());
    expect_same_event(tcp, *d);
    EXPECT_EQ(ctbpf::state_name(*d), "TIME_WAIT");
}

TEST(Decode, NoStateWhenTheKernelSaidNotValid) {
    Event e = ipv4_event();
    e.kind = EventKind::Drop;
    e.has_state = false;
    auto rec = encode_event(e);
    EXPECT_EQ(std::to_integer<int>(rec[kOffStateValid]), 0);
    EXPECT_EQ(u16_at(rec, kOffStatus), 0);
    auto d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    EXPECT_FALSE(d->has_state);
    EXPECT_EQ(ctbpf::state_name(*d), "");
    // Fields without the valid flag are not believed.
    rec[kOffStatus] = std::byte{0x0e};
    rec[kOffTcpState] = std::byte{3};
    d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    EXPECT_FALSE(d->has_state);
    EXPECT_EQ(d->ct_status, 0);
    EXPECT_EQ(d->tcp_state, 0);
    rec[kOffStateValid] = std::byte{1};
    d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    EXPECT_TRUE(d->has_state);
    EXPECT_EQ(d->ct_status, 0x0e);
    EXPECT_EQ(ctbpf::state_name(*d), "ESTABLISHED");
}

// A record of layout version 1 (64 bytes, as recordings made before the state hold):
// everything but the state, which it never had.
TEST(Decode, Version1RecordsDecodeWithoutState) {
    Event e = ipv4_event();
    const auto rec = encode_event(e);
    auto d = decode_event_v1(std::span<const std::byte>(rec.data(), ctbpf::kEventRecordSizeV1));
    ASSERT_TRUE(d.has_value());
    EXPECT_FALSE(d->has_state);
    EXPECT_EQ(d->ct_status, 0);
    EXPECT_EQ(d->tcp_state, 0);
    e.has_state = false;
    e.ct_status = 0;
    e.tcp_state = 0;
    expect_same_event(e, *d);

    auto bad = rec;
    bad[kOffKind] = std::byte{9};
    EXPECT_FALSE(decode_event_v1(std::span<const std::byte>(bad.data(), 64)).has_value());
}

TEST(Names, StateName) {
    Event e = ipv4_event();
    const std::pair<uint8_t, std::string_view> tcp[] = {
        {0, "NONE"},       {1, "SYN_SENT"}, {2, "SYN_RECV"}, {3, "ESTABLISHED"}, {4, "FIN_WAIT"},
        {5, "CLOSE_WAIT"}, {6, "LAST_ACK"}, {7, "TIME_WAIT"}, {8, "CLOSE"},      {9, "SYN_SENT2"}};
    for (auto [v, name] : tcp) {
        e.tcp_state = v;
        EXPECT_EQ(ctbpf::state_name(e), name);
    }
    e.tcp_state = 42;
    EXPECT_EQ(ctbpf::state_name(e), "tcp_state_42");

    e.proto = IPPROTO_UDP;
    e.tcp_state = 0;
    e.ct_status = 0x0008;  // CONFIRMED
    EXPECT_EQ(ctbpf::state_name(e), "unreplied");
    e.ct_status = 0x020a;  // + SEEN_REPLY, DYING
    EXPECT_EQ(ctbpf::state_name(e), "replied");
    e.ct_status = 0x000e;  // + ASSURED
    EXPECT_EQ(ctbpf::state_name(e), "assured");
    e.has_state = false;
    EXPECT_EQ(ctbpf::state_name(e), "");
}

TEST(Decode, RejectsUnknownKinds) {
    auto rec = encode_event(ipv4_event());
    for (int k : {0, 6, 7, 128, 255}) {
        rec[kOffKind] = std::byte(k);
        EXPECT_FALSE(decode_event(rec).has_value()) << "kind " << k;
    }
    for (int k = 1; k <= 5; ++k) {
        rec[kOffKind] = std::byte(k);
        auto d = decode_event(rec);
        ASSERT_TRUE(d.has_value()) << "kind " << k;
        EXPECT_EQ(static_cast<int>(d->kind), k);
    }
}

TEST(Decode, RejectsUnknownFamily) {
    auto rec = encode_event(ipv4_event());
    for (int f : {1, 3, 9, 11, AF_PACKET, 255}) {
        rec[kOffFamily] = std::byte(f);
        EXPECT_FALSE(decode_event(rec).has_value()) << "family " << f;
    }
    rec[kOffFamily] = std::byte(AF_INET);
    EXPECT_TRUE(decode_event(rec).has_value());
    rec[kOffFamily] = std::byte(AF_INET6);
    EXPECT_TRUE(decode_event(rec).has_value());
}

TEST(Decode, FamilyZeroIsAcceptedAsUnknownAddress) {
    // decode.cpp deliberately lets family 0 through (Address: "0 when unknown").
    Event e = ipv4_event();
    e.kind = EventKind::Drop;
    e.src = Address{};
    e.dst = Address{};
    auto d = decode_event(encode_event(e));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->src.family, 0);
    EXPECT_EQ(d->dst.family, 0);
    EXPECT_EQ(d->src.to_string(), "?");
    EXPECT_EQ(d->dst.to_string(), "?");
}

TEST(Decode, RejectsUnknownReason) {
    auto rec = encode_event(ipv6_event());
    for (int r : {7, 8, 100, 255}) {
        rec[kOffReason] = std::byte(r);
        EXPECT_FALSE(decode_event(rec).has_value()) << "reason " << r;
    }
    for (int r = 0; r <= 6; ++r) {
        rec[kOffReason] = std::byte(r);
        auto d = decode_event(rec);
        ASSERT_TRUE(d.has_value()) << "reason " << r;
        EXPECT_EQ(static_cast<int>(d->reason), r);
    }
}

// ---------------------------------------------------------------- hand-made raw records

TEST(Decode, RawStructWithNetworkOrderPortsDecodesToHostOrder) {
    ctbpf_event raw;
    std::memset(&raw, 0, sizeof raw);
    raw.ts_ns = 1'000'000'123ull;
    raw.ct_id = 42;
    raw.netns = 4026531993u;
    raw.zone = 3;
    raw.cpu = 1;
    raw.sport = htons(0x1234);
    raw.dport = htons(8080);
    raw.kind = CTBPF_EV_DESTROY;
    raw.family = AF_INET;
    raw.proto = IPPROTO_TCP;
    raw.reason = CTBPF_R_DELETED;
    const uint8_t s[4] = {172, 16, 5, 4};
    const uint8_t t[4] = {8, 8, 4, 4};
    std::memcpy(raw.src, s, 4);
    std::memcpy(raw.dst, t, 4);

    const auto rec = from_raw(raw);
    // On the wire the most significant byte comes first.
    EXPECT_EQ(std::to_integer<int>(rec[kOffSport]), 0x12);
    EXPECT_EQ(std::to_integer<int>(rec[kOffSport + 1]), 0x34);
    EXPECT_EQ(u16_at(rec, kOffDport), htons(8080));

    auto d = decode_event(rec);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->sport, 0x1234);
    EXPECT_EQ(d->dport, 8080);
    EXPECT_EQ(d->kind, EventKind::Destroy);
    EXPECT_EQ(d->reason, Reason::Deleted);
    EXPECT_EQ(d->ts_ns, 1'000'000'123ull);
    EXPECT_EQ(d->ct_id, 42u);
    EXPECT_EQ(d->netns, 4026531993u);
    EXPECT_EQ(d->zone, 3);
    EXPECT_EQ(d->cpu, 1);
    EXPECT_EQ(d->proto, IPPROTO_TCP);
    EXPECT_EQ(d->src, addr("172.16.5.4"));
    EXPECT_EQ(d->dst, addr("8.8.4.4"));
    EXPECT_EQ(d->src.to_string(), "172.16.5.4");
    EXPECT_EQ(d->dst.to_string(), "8.8.4.4");

    // And back: re-encoding yields the very same bytes.
    EXPECT_EQ(encode_event(*d), rec);
}

TEST(Decode, RawIcmpv6TypeAndCodeInDport) {
    ctbpf_event raw;
    std::memset(&raw, 0, sizeof raw);
    raw.kind = CTBPF_EV_DROP;
    raw.family = AF_INET6;
    raw.proto = IPPROTO_ICMPV6;
    raw.sport = htons(0xabcd);          // echo id
    raw.dport = htons((128 << 8) | 0);  // echo request, code 0
    raw.src[15] = 1;
    raw.dst[0] = 0xfe;
    raw.dst[1] = 0x80;
    raw.dst[15] = 2;
    auto d = decode_event(from_raw(raw));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->sport, 0xabcd);
    EXPECT_EQ(d->dport, 128 << 8);
    EXPECT_EQ(d->dport >> 8, 128);
    EXPECT_EQ(d->dport & 0xff, 0);
    EXPECT_EQ(d->src.to_string(), "::1");
    EXPECT_EQ(d->dst.to_string(), "fe80::2");
    EXPECT_EQ(d->ct_id, 0u);
}

// ---------------------------------------------------------------- Address

TEST(Address, ParseIPv4) {
    auto a = Address::parse("192.168.1.20");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->family, AF_INET);
    EXPECT_EQ(a->bytes, bytes16({192, 168, 1, 20}));
    EXPECT_EQ(a->to_string(), "192.168.1.20");

    auto z = Address::parse("0.0.0.0");
    ASSERT_TRUE(z.has_value());
    EXPECT_EQ(z->family, AF_INET);
    EXPECT_EQ(z->bytes, bytes16({}));
    EXPECT_EQ(z->to_string(), "0.0.0.0");

    auto b = Address::parse("255.255.255.255");
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->bytes, bytes16({255, 255, 255, 255}));
    EXPECT_EQ(b->to_string(), "255.255.255.255");
}

TEST(Address, ParseIPv6) {
    auto a = Address::parse("2001:db8::1");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->family, AF_INET6);
    EXPECT_EQ(a->bytes, bytes16({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
    EXPECT_EQ(a->to_string(), "2001:db8::1");

    auto lo = Address::parse("::1");
    ASSERT_TRUE(lo.has_value());
    EXPECT_EQ(lo->family, AF_INET6);
    EXPECT_EQ(lo->bytes, bytes16({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
    EXPECT_EQ(lo->to_string(), "::1");

    auto ula = Address::parse("fd00::1:2");
    ASSERT_TRUE(ula.has_value());
    EXPECT_EQ(ula->family, AF_INET6);
    EXPECT_EQ(ula->bytes, bytes16({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2}));
    EXPECT_EQ(ula->to_string(), "fd00::1:2");

    auto any = Address::parse("::");
    ASSERT_TRUE(any.has_value());
    EXPECT_EQ(any->family, AF_INET6);
    EXPECT_EQ(any->bytes, bytes16({}));
    EXPECT_EQ(any->to_string(), "::");
}

TEST(Address, IPv6OutputIsCanonicalCompressedForm) {
    auto full = Address::parse("2001:0db8:0000:0000:0000:0000:0000:0001");
    ASSERT_TRUE(full.has_value());
    EXPECT_EQ(full->to_string(), "2001:db8::1");
    EXPECT_EQ(*full, addr("2001:db8::1"));

    auto upper = Address::parse("FD00:0:0:0:0:0:1:2");
    ASSERT_TRUE(upper.has_value());
    EXPECT_EQ(upper->to_string(), "fd00::1:2");
    EXPECT_EQ(*upper, addr("fd00::1:2"));

    auto mapped = Address::parse("::ffff:10.1.2.3");
    ASSERT_TRUE(mapped.has_value());
    EXPECT_EQ(mapped->family, AF_INET6);
    EXPECT_EQ(mapped->bytes, bytes16({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}));
    EXPECT_EQ(mapped->to_string(), "::ffff:10.1.2.3");
    EXPECT_NE(*mapped, addr("10.1.2.3"));
}

TEST(Address, ParseUsesOnlyTheViewNotTheBufferBehindIt) {
    const std::string_view text("10.0.0.12", 8);  // "10.0.0.1", not NUL-terminated
    auto a = Address::parse(text);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->to_string(), "10.0.0.1");
}

TEST(Address, RejectsGarbage) {
    for (std::string_view bad : {"", "1.2.3", "300.1.1.1", "abc", "1.2.3.4.5", "1.2.3.", " 1.2.3.4",
                                 "1.2.3.4 ", "256.0.0.0", "::1::2", "2001:db8:::1", "g::1",
                                 "1:2:3:4:5:6:7:8:9", "localhost", ":"}) {
        EXPECT_FALSE(Address::parse(bad).has_value()) << "'" << bad << "'";
    }
}

TEST(Address, DefaultIsUnknown) {
    Address a;
    EXPECT_EQ(a.family, 0);
    EXPECT_EQ(a.bytes, bytes16({}));
    EXPECT_EQ(a.to_string(), "?");
    Address junk;
    junk.family = 7;
    EXPECT_EQ(junk.to_string(), "?");
}

TEST(Address, EqualityComparesFamilyAndBytes) {
    EXPECT_EQ(addr("10.0.0.1"), addr("10.0.0.1"));
    EXPECT_NE(addr("10.0.0.1"), addr("10.0.0.2"));
    // Same 16 bytes, other family: not the same address.
    Address v4 = addr("1.2.3.4");
    Address v6 = addr("102:304::");
    EXPECT_EQ(v4.bytes, v6.bytes);
    EXPECT_NE(v4, v6);
}

TEST(AddressHash, EqualAddressesHashEqual) {
    const AddressHash h;
    EXPECT_EQ(h(addr("10.0.0.1")), h(addr("10.0.0.1")));
    EXPECT_EQ(h(addr("192.168.100.200")), h(addr("192.168.100.200")));
    EXPECT_EQ(h(addr("::1")), h(addr("0:0:0:0:0:0:0:1")));
    EXPECT_EQ(h(addr("fd00::1:2")), h(addr("fd00:0000::0001:0002")));
    EXPECT_EQ(h(Address{}), h(Address{}));

    // An address decoded from the wire hashes like the parsed one.
    auto d = decode_event(encode_event(ipv6_event()));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(h(d->src), h(addr("2001:db8::1")));

    // Usable as a set key: duplicates (in any spelling) collapse.
    std::unordered_set<Address, AddressHash> set;
    for (std::string_view t : {"10.0.0.1", "10.0.0.1", "10.0.0.2", "::1", "0::1", "fd00::1:2",
                               "fd00:0:0:0:0:0:1:2", "1.2.3.4", "102:304::"})
        set.insert(addr(t));
    EXPECT_EQ(set.size(), 6u);
    EXPECT_EQ(set.count(addr("0:0::1")), 1u);
    EXPECT_EQ(set.count(addr("10.0.0.3")), 0u);
}

// ---------------------------------------------------------------- names

TEST(Names, KindName) {
    EXPECT_EQ(ctbpf::kind_name(EventKind::Insert), "insert");
    EXPECT_EQ(ctbpf::kind_name(EventKind::Drop), "drop");
    EXPECT_EQ(ctbpf::kind_name(EventKind::EarlyDrop), "early_drop");
    EXPECT_EQ(ctbpf::kind_name(EventKind::InsertFailed), "insert_failed");
    EXPECT_EQ(ctbpf::kind_name(EventKind::Destroy), "destroy");
    EXPECT_EQ(ctbpf::kind_name(static_cast<EventKind>(9)), "unknown");
}

TEST(Names, ReasonName) {
    EXPECT_EQ(ctbpf::reason_name(Reason::None), "");
    EXPECT_EQ(ctbpf::reason_name(Reason::Timeout), "timeout");
    EXPECT_EQ(ctbpf::reason_name(Reason::Deleted), "deleted");
    EXPECT_EQ(ctbpf::reason_name(Reason::ClashDrop), "clash_drop");
    EXPECT_EQ(ctbpf::reason_name(Reason::ClashResolved), "clash_resolved");
    EXPECT_EQ(ctbpf::reason_name(Reason::TableFull), "table_full");
    EXPECT_EQ(ctbpf::reason_name(Reason::NoEntry), "no_entry");
    EXPECT_EQ(ctbpf::reason_name(static_cast<Reason>(77)), "unknown");
}

TEST(Names, ProtoName) {
    EXPECT_EQ(ctbpf::proto_name(6), "tcp");
    EXPECT_EQ(ctbpf::proto_name(17), "udp");
    EXPECT_EQ(ctbpf::proto_name(1), "icmp");
    EXPECT_EQ(ctbpf::proto_name(58), "icmpv6");
    EXPECT_EQ(ctbpf::proto_name(IPPROTO_TCP), "tcp");
    EXPECT_EQ(ctbpf::proto_name(IPPROTO_UDP), "udp");
    EXPECT_EQ(ctbpf::proto_name(IPPROTO_ICMP), "icmp");
    EXPECT_EQ(ctbpf::proto_name(IPPROTO_ICMPV6), "icmpv6");
    EXPECT_EQ(ctbpf::proto_name(132), "sctp");
    EXPECT_EQ(ctbpf::proto_name(33), "dccp");
    EXPECT_EQ(ctbpf::proto_name(136), "udplite");
    EXPECT_EQ(ctbpf::proto_name(47), "gre");
    // Anything else: the number.
    EXPECT_EQ(ctbpf::proto_name(0), "0");
    EXPECT_EQ(ctbpf::proto_name(2), "2");
    EXPECT_EQ(ctbpf::proto_name(41), "41");
    EXPECT_EQ(ctbpf::proto_name(200), "200");
    EXPECT_EQ(ctbpf::proto_name(255), "255");
}

}  // namespace
