// What `watch` and `serve` share when observing the live kernel: the session, the
// aggregator fed by it, table-full attribution of drops, the start-up baseline dump and
// the model that turns it all into snapshots.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ctbpf/aggregator.h"
#include "ctbpf/kernel.h"
#include "fullness.h"
#include "watch_model.h"

namespace ctbpf::cli {

struct LiveOptions {
    std::vector<std::string> netns;
    std::string backend = "auto";
    std::string proto;          // only this protocol in the per-source detail ("" = all)
    std::string baseline = "auto";  // dump pre-existing entries: auto, on, off
    size_t capacity = 1 << 16;  // sources tracked at most
};

class Live {
public:
    explicit Live(const LiveOptions& o);  // throws Error with a one-line reason

    Session& session() { return *session_; }
    const Aggregator& aggregator() const { return agg_; }
    uint64_t drops_full() const { return drops_full_; }
    const uint64_t& drops_full_ref() const { return drops_full_; }  // for views that keep it
    WatchModel& model() { return *model_; }
    Snapshot take(const ModelOptions& mo) {
        Snapshot s = model_->take(agg_, drops_full_, mo);
        s.drops_other_total = drops_other_;
        return s;
    }

private:
    Aggregator agg_;
    // Drop events delivered, by whether the table was full (counted as they arrive, so
    // both only grow: exported counters must never go down).
    uint64_t drops_full_ = 0, drops_other_ = 0;
    std::optional<FullnessCache> fullness_;
    std::unique_ptr<Session> session_;
    std::unique_ptr<WatchModel> model_;
};

std::optional<uint8_t> parse_proto(const std::string& p);  // throws Error on a bad name

}  // namespace ctbpf::cli
