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
