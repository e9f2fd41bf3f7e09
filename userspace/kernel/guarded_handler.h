// The ring buffer's records reach the user's handler through libbpf's C callback
// (ring_buffer__consume -> ring_buffer_sample_fn). A C++ exception must not unwind through
// those C frames (undefined behaviour; libbpf would also skip publishing its consumer
// position), so the callback catches everything, keeps the exception and stops consuming
// by returning a negative value; the caller rethrows it once libbpf has returned.
#pragma once

#include <cerrno>
#include <cstddef>
#include <exception>
#include <span>
#include <utility>

#include "ctbpf/kernel.h"

namespace ctbpf::detail {

class GuardedHandler {
public:
    // What the callback returns when the handler threw (libbpf hands it back from consume).
    static constexpr int kStopped = -ECANCELED;

    explicit GuardedHandler(Session::RecordHandler h) : handler_(std::move(h)) {}

    // A ring_buffer_sample_fn; `ctx` is the GuardedHandler.
    static int on_sample(void* ctx, void* data, size_t size) noexcept {
        auto* self = static_cast<GuardedHandler*>(ctx);
        try {
            self->handler_(std::span<const std::byte>(static_cast<const std::byte*>(data), size));
            return 0;
        } catch (...) {
            self->pending_ = std::current_exception();
            return kStopped;
        }
    }

    // After consuming: rethrows what the handler threw, once.
    void rethrow_pending() {
        if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
    }

private:
    Session::RecordHandler handler_;
    std::exception_ptr pending_;
};

}  // namespace ctbpf::detail
