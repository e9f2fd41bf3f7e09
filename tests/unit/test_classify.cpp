// The BPF programs' shared decisions (bpf/classify.h), compiled for the host: every case of
// how a freed entry, confirm's result and a drop are reported, and when the reader is woken.
#include <gtest/gtest.h>

#include "classify.h"

namespace {

struct Class {
    int kind, reason;
    bool operator==(const Class&) const = default;
};
Class of(ctbpf_class c) { return {c.kind, c.reason}; }
std::ostream& operator<<(std::ostream& os, const Class& c) {
    return os << "{kind " << c.kind << ", reason " << c.reason << "}";
}

constexpr unsigned long kConfirmed = CTBPF_IPS_CONFIRMED;
constexpr unsigned long kAssured = CTBPF_IPS_ASSURED;
const Class kNothing{0, CTBPF_R_NONE};
const Class kTimeout{CTBPF_EV_DESTROY, CTBPF_R_TIMEOUT};
const Class kDeleted{CTBPF_EV_DESTROY, CTBPF_R_DELETED};
const Class kEarlyDrop{CTBPF_EV_EARLY_DROP, CTBPF_R_NONE};
const Class kClashResolved{CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_RESOLVED};
const Class kClashDrop{CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_DROP};
const Class kInsert{CTBPF_EV_INSERT, CTBPF_R_NONE};

Class freed(ctbpf_free_facts f) { return of(ctbpf_classify_free(f)); }

TEST(ClassifyFree, UnconfirmedAnnouncedEntryWasAResolvedClash) {
    EXPECT_EQ(freed({.status = 0, .announced = true}), kClashResolved);
    // Whatever else holds: it never made it into the table.
    EXPECT_EQ(freed({.status = kAssured, .announced = true, .expired = true, .evict_hooked = true,
                     .in_evict = true, .in_conntrack = true}),
              kClashResolved);
}

TEST(ClassifyFree, UnconfirmedEntryNotAnnouncedIsNotReported) {
    EXPECT_EQ(freed({.status = 0}), kNothing);
    EXPECT_EQ(freed({.status = CTBPF_IPS_TEMPLATE, .in_conntrack = true}), kNothing);
    EXPECT_EQ(freed({.status = 0, .expired = true, .evict_hooked = true, .in_evict = true}), kNothing);
}

TEST(ClassifyFree, ConfirmedExpiredEntryTimedOut) {
    EXPECT_EQ(freed({.status = kConfirmed, .expired = true}), kTimeout);
    EXPECT_EQ(freed({.status = kConfirmed | kAssured, .expired = true}), kTimeout);
    // Expiry wins over eviction: early_drop_list() reaps expired entries through gc.
    EXPECT_EQ(freed({.status = kConfirmed, .expired = true, .evict_hooked = true, .in_evict = true}), kTimeout);
    EXPECT_EQ(freed({.status = kConfirmed, .expired = true, .in_conntrack = true}), kTimeout);
    EXPECT_EQ(freed({.status = kConfirmed, .announced = true, .expired = true}), kTimeout);
}

TEST(ClassifyFree, WithTheEvictionHookOnlyFreesInsideItAreEarlyDrops) {
    EXPECT_EQ(freed({.status = kConfirmed, .evict_hooked = true, .in_evict = true}), kEarlyDrop);
    EXPECT_EQ(freed({.status = kConfirmed, .evict_hooked = true, .in_evict = false}), kDeleted);
    // The hook is authoritative: the bracket heuristic is not consulted.
    EXPECT_EQ(freed({.status = kConfirmed, .evict_hooked = true, .in_evict = false, .in_conntrack = true}),
              kDeleted);
}

TEST(ClassifyFree, WithoutTheEvictionHookUnassuredEntriesFreedInConntrackAreEarlyDrops) {
    EXPECT_EQ(freed({.status = kConfirmed, .in_conntrack = true}), kEarlyDrop);
    EXPECT_EQ(freed({.status = kConfirmed | kAssured, .in_conntrack = true}), kDeleted);
    EXPECT_EQ(freed({.status = kConfirmed, .in_conntrack = false}), kDeleted);
    // in_evict means nothing without the hook.
    EXPECT_EQ(freed({.status = kConfirmed, .in_evict = true}), kDeleted);
}

TEST(ClassifyFree, OtherConfirmedFreesAreDeletions) {
    EXPECT_EQ(freed({.status = kConfirmed}), kDeleted);
    EXPECT_EQ(freed({.status = kConfirmed | kAssured}), kDeleted);
    EXPECT_EQ(freed({.status = kConfirmed, .announced = true}), kDeleted);
}

constexpr unsigned kAccept = 1, kDrop = CTBPF_NF_DROP;

TEST(ClassifyConfirm, DropIsAClashDrop) {
    EXPECT_EQ(of(ctbpf_classify_confirm(kDrop, false, 0)), kClashDrop);
    EXPECT_EQ(of(ctbpf_classify_confirm(kDrop, true, kConfirmed)), kClashDrop);
    // NF_DROP_ERR() puts an errno above the verdict byte.
    EXPECT_EQ(of(ctbpf_classify_confirm((1u << 16) | kDrop, false, 0)), kClashDrop);
}

TEST(ClassifyConfirm, PacketOnAnotherEntryIsAResolvedClash) {
    EXPECT_EQ(of(ctbpf_classify_confirm(kAccept, true, 0)), kClashResolved);
    EXPECT_EQ(of(ctbpf_classify_confirm(kAccept, true, kConfirmed)), kClashResolved);
}

TEST(ClassifyConfirm, ConfirmedEntryIsTheInsert) {
    EXPECT_EQ(of(ctbpf_classify_confirm(kAccept, false, kConfirmed)), kInsert);
    EXPECT_EQ(of(ctbpf_classify_confirm(kAccept, false, kConfirmed | kAssured)), kInsert);
}

TEST(ClassifyConfirm, AcceptedButUnconfirmedIsNothing) {
    EXPECT_EQ(of(ctbpf_classify_confirm(kAccept, false, 0)), kNothing);
}

TEST(DropReason, KnownInTheKernelOnlyWithTheAllocatorHooked) {
    EXPECT_EQ(ctbpf_drop_reason(true, true), CTBPF_R_TABLE_FULL);
    EXPECT_EQ(ctbpf_drop_reason(true, false), CTBPF_R_NO_ENTRY);
    EXPECT_EQ(ctbpf_drop_reason(false, false), CTBPF_R_NONE);
    EXPECT_EQ(ctbpf_drop_reason(false, true), CTBPF_R_NONE);
}

TEST(DropUrgent, WakesAtMostEvery10msAndNotForKnownNoEntryDrops) {
    const uint64_t last = 1'000'000'000;
    for (uint8_t r : {CTBPF_R_TABLE_FULL, CTBPF_R_NONE}) {
        EXPECT_TRUE(ctbpf_drop_urgent(r, last + CTBPF_DROP_WAKE_NS + 1, last)) << int(r);
        EXPECT_FALSE(ctbpf_drop_urgent(r, last + CTBPF_DROP_WAKE_NS, last)) << int(r);
        EXPECT_FALSE(ctbpf_drop_urgent(r, last + 1, last)) << int(r);
        EXPECT_TRUE(ctbpf_drop_urgent(r, last, 0)) << "first drop on this CPU";
    }
    EXPECT_FALSE(ctbpf_drop_urgent(CTBPF_R_NO_ENTRY, last + 10 * CTBPF_DROP_WAKE_NS, last));
}

TEST(CounterOf, EachEventBumpsItsCounter) {
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_INSERT, CTBPF_R_NONE), CTBPF_C_INSERT);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_DROP, CTBPF_R_TABLE_FULL), CTBPF_C_DROP);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_EARLY_DROP, CTBPF_R_NONE), CTBPF_C_EARLY_DROP);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_DROP), CTBPF_C_INSERT_FAILED);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_INSERT_FAILED, CTBPF_R_CLASH_RESOLVED), CTBPF_C_CLASH_RESOLVED);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_DESTROY, CTBPF_R_TIMEOUT), CTBPF_C_DESTROY);
    EXPECT_EQ(ctbpf_counter_of(CTBPF_EV_DESTROY, CTBPF_R_DELETED), CTBPF_C_DESTROY);
}

struct State {
    int status, tcp_state, valid;
    bool operator==(const State&) const = default;
};
std::ostream& operator<<(std::ostream& os, const State& s) {
    return os << "{status 0x" << std::hex << s.status << std::dec << ", tcp " << s.tcp_state << ", valid "
              << s.valid << "}";
}
State state(__u8 kind, __u8 proto, unsigned long status, bool status_read = true, __u8 tcp = 0,
            bool tcp_read = true) {
    const ctbpf_state s = ctbpf_state_of(kind, proto, status, status_read, tcp, tcp_read);
    return {s.status, s.tcp_state, s.valid};
}
constexpr __u8 kTcp = 6, kUdp = 17, kIcmp = 1;
constexpr unsigned long kSeenReply = CTBPF_IPS_SEEN_REPLY;
constexpr unsigned long kDying = 1UL << 9;
const State kNoState{0, 0, 0};

TEST(EntryState, DestroysAndEarlyDropsCarryTheRawLowStatusBits) {
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed | kDying), (State{0x208, 0, 1}));
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed | kSeenReply | kAssured), (State{0xe, 0, 1}));
    EXPECT_EQ(state(CTBPF_EV_EARLY_DROP, kIcmp, kConfirmed | kSeenReply), (State{0xa, 0, 1}));
    EXPECT_EQ(state(CTBPF_EV_INSERT_FAILED, kUdp, 0), (State{0, 0, 1}));  // never confirmed: as read
    // Bits above 15 are kernel-internal (and unsigned long): not reported.
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed | 1UL << 16 | 1UL << 40), (State{0x8, 0, 1}));
}

TEST(EntryState, TcpStateOnlyForTcp) {
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kTcp, kConfirmed | kAssured, true, 7), (State{0xc, 7, 1}));
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kTcp, kConfirmed, true, 0), (State{0x8, 0, 1}));  // NONE is a state
    // Another protocol's union member is not a TCP state, whatever the byte holds.
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed, true, 7), (State{0x8, 0, 1}));
}

TEST(EntryState, InsertsAreReportedConfirmedWhicheverSideOfConfirmTheyAreSeen) {
    // Tracepoint backend: just before confirm; fentry/kprobe: just after.
    EXPECT_EQ(state(CTBPF_EV_INSERT, kTcp, 0, true, 1), (State{0x8, 1, 1}));
    EXPECT_EQ(state(CTBPF_EV_INSERT, kTcp, kConfirmed, true, 1), (State{0x8, 1, 1}));
    EXPECT_EQ(state(CTBPF_EV_INSERT, kUdp, CTBPF_IPS_TEMPLATE >> 1), (State{0x408, 0, 1}));
}

TEST(EntryState, NothingForDropsOrWhatCouldNotBeRead) {
    EXPECT_EQ(state(CTBPF_EV_DROP, kUdp, kConfirmed), kNoState);
    EXPECT_EQ(state(0, kUdp, kConfirmed), kNoState);
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed, false), kNoState);
    // A TCP entry whose state this kernel's BTF lacks: no half state.
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kTcp, kConfirmed, true, 3, false), kNoState);
    // The TCP state's absence does not matter for other protocols.
    EXPECT_EQ(state(CTBPF_EV_DESTROY, kUdp, kConfirmed, true, 0, false), (State{0x8, 0, 1}));
}

TEST(WakeReader, UrgentAlwaysWakes) {
    EXPECT_TRUE(ctbpf_wake_reader(true, 0, 1 << 18));
    EXPECT_TRUE(ctbpf_wake_reader(true, 10 << 20, 1 << 18));
}

TEST(WakeReader, WakesOnlyWhileCrossingTheThresholdWindow) {
    const uint64_t t = 1 << 18;
    const uint64_t span = 4 * (sizeof(ctbpf_event) + 8);
    EXPECT_EQ(CTBPF_WAKE_SPAN, span);
    EXPECT_FALSE(ctbpf_wake_reader(false, 0, t));
    EXPECT_FALSE(ctbpf_wake_reader(false, t - 1, t));
    EXPECT_TRUE(ctbpf_wake_reader(false, t, t));
    EXPECT_TRUE(ctbpf_wake_reader(false, t + span - 1, t));
    // Past the window: a lagging reader is not woken per record.
    EXPECT_FALSE(ctbpf_wake_reader(false, t + span, t));
    EXPECT_FALSE(ctbpf_wake_reader(false, 8 << 20, t));
}

}  // namespace
