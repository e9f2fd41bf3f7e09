// Writes the seed corpus for fuzz_recording_reader: a few small valid recordings and the
// damaged shapes the reader must survive. Usage: make_corpus DIR
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "ctbpf/recording.h"

using namespace ctbpf;

static Event event(uint32_t i, bool v6) {
    Event e;
    e.kind = EventKind(1 + i % 5);
    e.reason = e.kind == EventKind::Destroy ? Reason::Timeout : Reason::None;
    e.ts_ns = 1000000000ull + i * 1000;
    e.ct_id = 0xabc0 + i;
    e.netns = 4026531840u;
    e.proto = 6;
    e.sport = uint16_t(40000 + i);
    e.dport = 443;
    e.src = *Address::parse(v6 ? "2001:db8::1" : "10.0.0.1");
    e.dst = *Address::parse(v6 ? "2001:db8::2" : "10.0.0.2");
    if (e.kind != EventKind::Drop) {  // the entry's state (event layout 2, format version 3)
        e.has_state = true;
        e.ct_status = uint16_t(0x0008 | (i % 3) << 1);
        e.tcp_state = uint8_t(i % 10);
    }
    return e;
}

static RecordingHeader header() {
    RecordingHeader h;  // fixed values: the corpus should not change from run to run
    h.created_wall_ns = 1700000000000000000;
    h.mono_to_wall_ns = 1690000000000000000;
    h.hostname = "host";
    h.kernel_release = "6.1.0";
    h.backend = "tracepoint";
    h.netns = {{"self", 4026531840u}};
    h.ring_bytes = 8 << 20;
    h.wakeup_bytes = 256 << 10;
    return h;
}

static void write(const std::string& path, uint32_t events, bool v6, bool close,
                  size_t per_frame = 4096, bool baseline = false) {
    // The files of versions 1 and 2 in the corpus were written by their versions' writers
    // (64-byte events): keep them, so that the replay goes on covering the old formats.
    if (std::filesystem::exists(path)) return;
    WriterOptions o;
    o.max_frame_events = per_frame;
    RecordingHeader h = header();
    if (baseline) h.object_size = 256;
    RecordingWriter w(path, h, o);
    if (baseline) {
        Baseline b;
        b.netns = 4026531840u;
        b.total = 1403;
        b.by_source = {{*Address::parse("10.0.0.9"), 1400}, {*Address::parse("2001:db8::9"), 3}};
        w.add_baseline(b, 999999000ull);
    }
    for (uint32_t i = 0; i < events; ++i) w.add_event(encode_event(event(i, v6)));
    w.add_snapshot({1000005000ull, {5, 1, 0, 0, 0, 2, 0}, {{4026531840u, 3, 262144, 65536}}});
    w.add_marker("trigger fired: fill>=90%", 1000006000ull);
    if (close) w.close({5, 1, 0, 1, 0, 2, 0});
}

static std::string load(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const std::string d = argv[1];
    std::filesystem::create_directories(d);
    write(d + "/clean_v4.ctrec", 8, false, true);
    write(d + "/clean_v6_small_frames.ctrec", 10, true, true, 4);
    write(d + "/crashed_no_end.ctrec", 6, false, false);
    if (!std::filesystem::exists(d + "/header_only.ctrec")) RecordingWriter w(d + "/header_only.ctrec", header());
    write(d + "/clean_v2_baseline.ctrec", 8, false, true, 4096, true);
    write(d + "/clean_v3_state.ctrec", 12, true, true, 5, true);

    std::string s = load(d + "/clean_v4.ctrec");
    if (!std::filesystem::exists(d + "/truncated.ctrec"))
        std::ofstream(d + "/truncated.ctrec", std::ios::binary) << s.substr(0, s.size() - 20);
    if (!std::filesystem::exists(d + "/flipped_byte.ctrec")) {
        s = load(d + "/clean_v6_small_frames.ctrec");
        s[s.size() / 2] ^= 0x40;  // a damaged frame in the middle
        std::ofstream(d + "/flipped_byte.ctrec", std::ios::binary) << s;
    }
    // Version 2: a baseline frame cut in the middle.
    s = load(d + "/clean_v2_baseline.ctrec");
    if (!std::filesystem::exists(d + "/truncated_v2_baseline.ctrec"))
        std::ofstream(d + "/truncated_v2_baseline.ctrec", std::ios::binary) << s.substr(0, 200);
    // Version 3: 72-byte events with the entry state, the last frame cut.
    s = load(d + "/clean_v3_state.ctrec");
    if (!std::filesystem::exists(d + "/truncated_v3_state.ctrec"))
        std::ofstream(d + "/truncated_v3_state.ctrec", std::ios::binary) << s.substr(0, s.size() - 30);
}
