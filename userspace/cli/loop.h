// The run loop shared by commands that watch live: waits on the ring buffer, SIGINT/SIGTERM
// and an optional deadline, and drains the ring buffer on a short timer as well.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "ctbpf/kernel.h"

namespace ctbpf::cli {

struct LoopOptions {
    std::optional<std::chrono::milliseconds> duration;  // stop after this long
    std::chrono::milliseconds tick{100};                 // drain at least this often
};

// Runs until a signal or the deadline; `on_tick` runs after every drain (flush output etc.)
// and may return false to stop. Returns the signal number that stopped it, or 0.
int run_loop(Session& s, const LoopOptions& opt, const std::function<bool()>& on_tick);

// Blocks SIGINT/SIGTERM (they are read through a signalfd) and ignores SIGPIPE.
void block_stop_signals();

}  // namespace ctbpf::cli
