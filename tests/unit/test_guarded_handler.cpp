// The ring buffer callback: a throwing record handler stops consuming and its exception
// comes out of Session::drain(), never through libbpf's C frames.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "guarded_handler.h"

namespace ctbpf::detail {
namespace {

TEST(GuardedHandler, PassesRecordsAndReportsSuccess) {
    std::vector<size_t> sizes;
    GuardedHandler g([&](std::span<const std::byte> r) { sizes.push_back(r.size()); });
    char data[64] = {};
    EXPECT_EQ(GuardedHandler::on_sample(&g, data, sizeof data), 0);
    EXPECT_EQ(GuardedHandler::on_sample(&g, data, 8), 0);
    EXPECT_EQ(sizes, (std::vector<size_t>{64, 8}));
    EXPECT_NO_THROW(g.rethrow_pending());
}

TEST(GuardedHandler, ThrowStopsConsumingAndIsRethrownOnce) {
    int calls = 0;
    GuardedHandler g([&](std::span<const std::byte>) {
        if (++calls == 2) throw std::runtime_error("handler failed");
    });
    char data[64] = {};
    EXPECT_EQ(GuardedHandler::on_sample(&g, data, sizeof data), 0);
    const int rc = GuardedHandler::on_sample(&g, data, sizeof data);
    EXPECT_LT(rc, 0) << "a negative return makes libbpf stop and return it";
    EXPECT_EQ(rc, GuardedHandler::kStopped);
    try {
        g.rethrow_pending();
        ADD_FAILURE() << "expected the handler's exception";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "handler failed");
    }
    EXPECT_NO_THROW(g.rethrow_pending());
    EXPECT_EQ(GuardedHandler::on_sample(&g, data, sizeof data), 0) << "usable again after the rethrow";
}

TEST(GuardedHandler, AnyExceptionTypeIsKept) {
    GuardedHandler g([](std::span<const std::byte>) { throw 42; });
    char byte = 0;
    static_assert(noexcept(GuardedHandler::on_sample(nullptr, nullptr, 0)));
    EXPECT_LT(GuardedHandler::on_sample(&g, &byte, 1), 0);
    EXPECT_THROW(g.rethrow_pending(), int);
}

}  // namespace
}  // namespace ctbpf::detail
