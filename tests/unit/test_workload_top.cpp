// WorkloadTop: per namespace, cgroup and process, exact while within capacity, with the
// Space-Saving bound beyond it; events without a local process count only where they can.
#include <gtest/gtest.h>

#include <cstring>

#include "ctbpf/workload_top.h"

namespace {

using namespace ctbpf;

Event ev(EventKind k, uint32_t netns, uint64_t cgroup, uint32_t pid, const char* comm, uint64_t sec = 100) {
    Event e;
    e.kind = k;
    e.netns = netns;
    e.cgroup = cgroup;
    e.pid = pid;
    std::strncpy(e.comm.data(), comm, e.comm.size());
    e.ts_ns = sec * 1'000'000'000ull;
    return e;
}

TEST(WorkloadTop, CountsEachKindAndTakesFailedInsertsBack) {
    WorkloadTop t(64);
    for (int i = 0; i < 30; ++i) t.add(ev(EventKind::Insert, 1, 10, 100, "dig"));
    for (int i = 0; i < 5; ++i) t.add(ev(EventKind::Insert, 1, 11, 200, "curl"));
    for (int i = 0; i < 7; ++i) t.add(ev(EventKind::Drop, 2, 12, 300, "flood"));
    t.add(ev(EventKind::InsertFailed, 1, 0, 0, ""));
    t.add(ev(EventKind::EarlyDrop, 1, 0, 0, ""));
    t.add(ev(EventKind::Insert, 1, 0, 0, ""));  // forwarded: no process, no cgroup

    const auto ns = t.top(WorkloadKind::Netns, SortKey::Inserts, 10, 101);
    ASSERT_EQ(ns.size(), 2u);
    EXPECT_EQ(ns[0]->key.netns, 1u);
    EXPECT_EQ(ns[0]->inserts, 30u + 5 + 1 - 1);
    EXPECT_EQ(ns[0]->early_drops, 1u);
    EXPECT_EQ(ns[1]->drops, 7u);

    const auto by_drops = t.top(WorkloadKind::Process, SortKey::Drops, 1, 101);
    ASSERT_EQ(by_drops.size(), 1u);
    EXPECT_EQ(by_drops[0]->key.pid, 300u);
    EXPECT_STREQ(by_drops[0]->key.comm.data(), "flood");
    EXPECT_EQ(by_drops[0]->key.netns, 2u);

    const auto cg = t.top(WorkloadKind::Cgroup, SortKey::Inserts, 10, 101);
    ASSERT_EQ(cg.size(), 3u);
    EXPECT_EQ(cg[0]->key.cgroup, 10u);
    EXPECT_EQ(cg[0]->inserts, 30u);
    EXPECT_EQ(cg[0]->activity_error, 0u);
    EXPECT_EQ(t.inserts_without_process(), 1u);
    EXPECT_EQ(t.drops_without_process(), 0u);
    EXPECT_EQ(t.untracked_bound(WorkloadKind::Process), 0u);
}

TEST(WorkloadTop, AReusedPidWithAnotherNameIsAnotherProcess) {
    WorkloadTop t(64);
    t.add(ev(EventKind::Insert, 1, 10, 100, "dig"));
    t.add(ev(EventKind::Insert, 1, 10, 100, "nginx"));
    EXPECT_EQ(t.tracked(WorkloadKind::Process), 2u);
    EXPECT_EQ(t.tracked(WorkloadKind::Cgroup), 1u);
}

TEST(WorkloadTop, BeyondCapacityTheHeavyOneIsKeptWithItsBound) {
    WorkloadTop t(8);
    for (int i = 0; i < 1000; ++i) t.add(ev(EventKind::Insert, 1, 5, 42, "heavy"));
    for (uint32_t p = 1000; p < 1100; ++p) t.add(ev(EventKind::Insert, 1, p, p, "light"));
    const auto top = t.top(WorkloadKind::Process, SortKey::Inserts, 1, 101);
    ASSERT_EQ(top.size(), 1u);
    EXPECT_EQ(top[0]->key.pid, 42u);
    EXPECT_EQ(top[0]->inserts, 1000u);
    EXPECT_EQ(top[0]->activity_error, 0u);
    EXPECT_EQ(t.tracked(WorkloadKind::Process), 8u);
    EXPECT_GE(t.untracked_bound(WorkloadKind::Process), 1u);
    EXPECT_LE(t.untracked_bound(WorkloadKind::Process), 1100u / 8);
}

}  // namespace
