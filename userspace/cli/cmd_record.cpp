// `ctbpf record`: every event plus a snapshot of the table and the exact kernel counters
// once a second, to a recording file (docs/recording-format.md). With --trigger it keeps
// the last --pre seconds in memory and writes only around incidents.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/incident.h"
#include "ctbpf/recording.h"
#include "ctbpf/clock.h"
#include "ctbpf/observe.h"
#include "ctbpf/system.h"
#include "ctbpf/units.h"
#include "format.h"

namespace ctbpf::cli {

namespace {

// FILE -> FILE.1 -> FILE.2 ... keeping `keep` old files.
void rotate_files(const std::string& path, size_t keep) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::remove(fmt::format("{}.{}", path, keep), ec);
    for (size_t i = keep; i > 1; --i) fs::rename(fmt::format("{}.{}", path, i - 1), fmt::format("{}.{}", path, i), ec);
    fs::rename(path, path + ".1", ec);
    if (ec) throw Error(fmt::format("rotating {}: {}", path, ec.message()));
}

// sizeof(struct nf_conn) from /proc/slabinfo (root only; one slab cache for every
// namespace), so that report computes memory with this kernel's size, not a guess. 0: unknown.
uint32_t slab_object_size() {
    std::ifstream in("/proc/slabinfo");
    if (!in) return 0;
    std::stringstream text;
    text << in.rdbuf();
    const auto size = parse_slabinfo_objsize(text.str());
    return size && *size <= UINT32_MAX ? static_cast<uint32_t>(*size) : 0;
}

}  // namespace

int cmd_record(const RecordArgs& a) {
    const double duration = parse_duration_option(a.duration, "--duration").value_or(0);  // 0: none
    const uint64_t max_size = a.max_size.empty() ? 0 : parse_size(a.max_size, "--max-size");
    const uint64_t rotate = a.rotate.empty() ? 0 : parse_size(a.rotate, "--rotate");
    const double pre = parse_duration(a.pre, "--pre"), post = parse_duration(a.post, "--post");
    const Trigger trigger = parse_triggers(a.triggers);
    if (rotate && max_size) throw Error("--rotate and --max-size do not go together: pick one", 2);
    {
        // Fail now, before attaching, if the file cannot be created.
        const auto dir = std::filesystem::path(a.output).parent_path();
        if (!dir.empty() && !std::filesystem::is_directory(dir))
            throw Error(fmt::format("cannot record to {}: directory {} does not exist", a.output, dir.string()));
    }

    block_stop_signals();
    std::unique_ptr<RecordingWriter> writer;
    PreBuffer prebuffer(static_cast<uint64_t>(pre * 1e9), 256u << 20);
    bool capturing = !trigger.armed();
    std::string failure;  // a write error seen inside the ring-buffer callback
    bool limit = false;

    // Events delivered while the Observer takes its start-up dump, before the file exists.
    std::vector<EventRecord> early;

    // Records arrive with the drop's attributed reason written in (Observer).
    auto on_record = [&](const Event&, EventRecordView r) {
        if (!failure.empty() || limit) return;
        try {
            if (!writer) {
                early.emplace_back();
                std::memcpy(early.back().data(), r.data(), r.size());
            } else if (!capturing) prebuffer.add_event(r);
            else if (!writer->add_event(r)) limit = true;
        } catch (const Error& e) {
            failure = e.what();  // exceptions must not cross libbpf's C frames
        }
    };

    ObserverOptions oo;
    oo.backend = a.backend;
    oo.netns = a.netns;
    oo.all_netns = a.all_netns;
    oo.ring_bytes = a.ring_mib << 20;
    oo.aggregate = false;
    // Like watch: what the table held before recording began, so that reports, exports and
    // replays can name the owners of entries older than the recording.
    oo.baseline = "auto";
    Observer obs(oo, on_record);
    Session& s = obs.session();

    RecordingHeader header = host_header();
    header.backend = std::string(backend_name(s.choice().backend));
    header.netns = s.watched();
    header.ring_bytes = oo.ring_bytes;
    header.wakeup_bytes = SessionOptions{}.wakeup_bytes;  // the Observer keeps the default
    header.object_size = slab_object_size();
    WriterOptions wo;
    wo.max_bytes = max_size;
    writer = std::make_unique<RecordingWriter>(a.output, header, wo);
    // The baseline first, so that a reader knows the old entries before their destroys.
    // A triggered capture keeps it too: entries older than the capture are then attributed.
    for (const Baseline& b : obs.baselines()) writer->add_baseline(b);
    for (const auto& r : early) {
        if (!capturing) prebuffer.add_event(r);
        else if (!writer->add_event(r)) limit = true;
    }
    early = {};
    fmt::print(stderr, "{}\nctbpf: recording to {}{}\n", watching_line(s), a.output,
               trigger.armed() ? fmt::format(" when {} (keeping the last {:g} s in memory, then {:g} s after)",
                                             trigger.text, pre, post)
                               : std::string());

    auto snapshot = [&] {
        Snapshot snap;
        snap.ts_ns = monotonic_ns();
        snap.totals = s.totals();
        snap.tables = obs.tables();
        return snap;
    };

    Snapshot last = snapshot();
    uint64_t next_snap = last.ts_ns + 1'000'000'000ull, next_sync = last.ts_ns + 5'000'000'000ull;
    uint64_t last_fire = 0;
    int64_t drops_seen = last.totals.drop;
    LoopOptions lo;
    if (duration > 0) lo.duration = std::chrono::milliseconds(static_cast<int64_t>(duration * 1000));
    // --all-netns: each namespace found is named in the file, so that report can name it.
    uint64_t generation = s.watched_generation();
    run_loop(s, lo, [&] {
        if (!failure.empty() || limit) return false;
        try {
            const uint64_t now = monotonic_ns();
            if (s.watched_generation() != generation) {
                generation = s.watched_generation();
                for (const auto& w : s.watched())
                    if (!w.gone && std::none_of(header.netns.begin(), header.netns.end(),
                                                [&](const WatchedNetns& h) { return h.inum == w.inum && h.name == w.name; })) {
                        writer->add_marker(netns_marker(w.inum, w.name));
                        // A rotated file's header names them too (its count is 16 bits).
                        if (header.netns.size() < 4096) header.netns.push_back(w);
                    }
            }
            if (trigger.armed()) {
                // Checked every tick (100 ms) so a capture starts quickly.
                const int64_t drops = s.totals().drop;
                double fill = 0;
                for (const auto& t : obs.tables()) fill = std::max(fill, t.fill());
                if (trigger.fires(fill, drops - drops_seen)) {
                    if (!capturing) {
                        writer->add_marker(fmt::format("trigger fired: {} (fill {:.1f}%, {} new drops)", trigger.text,
                                                       fill * 100, drops - drops_seen));
                        prebuffer.drain_into(*writer);
                        capturing = true;
                        fmt::print(stderr, "ctbpf: trigger fired ({}): capturing\n", trigger.text);
                    }
                    last_fire = now;
                } else if (capturing && static_cast<double>(now - last_fire) / 1e9 > post) {
                    writer->add_marker("capture ended");
                    writer->sync();
                    capturing = false;
                    fmt::print(stderr, "ctbpf: capture ended; waiting for the trigger again\n");
                }
                drops_seen = drops;
                prebuffer.expire(now);
            }
            if (now >= next_snap) {
                last = snapshot();
                if (capturing) {
                    if (!writer->add_snapshot(last)) limit = true;
                } else {
                    prebuffer.add_snapshot(last);
                }
                next_snap += 1'000'000'000ull;
            }
            writer->tick();
            if (now >= next_sync) {
                writer->sync();  // bound what a power loss can take
                next_sync = now + 5'000'000'000ull;
            }
            if (rotate && writer->bytes() >= rotate) {
                writer->close(s.totals());
                writer.reset();
                rotate_files(a.output, a.keep);
                // Later files carry no baseline: what the table held when they began is not
                // known here (record does not aggregate); docs/recording-format.md says so.
                writer = std::make_unique<RecordingWriter>(a.output, header, wo);
            }
        } catch (const Error& e) {
            failure = e.what();
            return false;
        }
        return failure.empty() && !limit;
    });

    if (!failure.empty()) {
        // What was written stays readable: the writer cut the file back to its last frame.
        throw Error(failure);
    }
    const KernelTotals totals = obs.finish();
    if (capturing && !limit && monotonic_ns() - last.ts_ns > 500'000'000ull) writer->add_snapshot(snapshot());
    writer->close(totals);
    fmt::print(stderr, "ctbpf: recorded {} events in {} frames to {} ({} bytes){}\n", writer->events(),
               writer->frames(), a.output, writer->bytes(),
               limit ? fmt::format("; stopped: recording reached --max-size ({} events refused)", writer->refused())
                     : std::string());
    return 0;
}

}  // namespace ctbpf::cli
