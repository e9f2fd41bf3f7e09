// Unit tests for the flame-style export (include/ctbpf/export.h, userspace/export/):
// --by parsing, frame labels, the stack bound and every writer on small known inputs.
#include <netinet/in.h>

#include <cmath>
#include <cstring>
#include <cstdint>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ctbpf/decode.h"
#include "ctbpf/error.h"
#include "ctbpf/export.h"

namespace {

using ctbpf::Address;
using ctbpf::DiffOptions;
using ctbpf::Field;
using ctbpf::FlowKey;
using ctbpf::Hierarchy;
using ctbpf::StackAggregator;
using ctbpf::SvgOptions;

Address addr(const char* text) {
    auto a = Address::parse(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(Address{});
}

FlowKey flow(const char* src, uint16_t dport, uint8_t proto = IPPROTO_TCP, uint32_t netns = 4026531833u,
             const char* dst = "10.9.9.9", uint16_t sport = 40000) {
    return FlowKey{netns, proto, addr(src), addr(dst), sport, dport};
}

std::string label(const char* level, const FlowKey& k) {
    return Hierarchy::parse(level).levels().at(0).label(k);
}

// The small input most writer tests use: 15 inserts over 5 stacks.
StackAggregator small_profile() {
    StackAggregator agg(Hierarchy::parse("proto,src/16,src,dport"));
    agg.add(flow("10.1.2.3", 443), 5);
    agg.add(flow("10.1.2.3", 80), 2);
    agg.add(flow("10.1.9.9", 443));
    agg.add(flow("10.2.0.7", 53, IPPROTO_UDP), 3);
    agg.add(flow("10.2.0.7", 53, IPPROTO_UDP), 1);
    agg.add(flow("192.168.0.5", 3908, IPPROTO_UDP), 3);
    agg.add(flow("192.168.0.5", 3908, IPPROTO_UDP), 0);  // ignored
    return agg;
}

template <typename F>
std::string render(F&& write) {
    std::ostringstream os;
    write(os);
    return os.str();
}

// --- --by ------------------------------------------------------------------------------

TEST(ExportHierarchy, ParsesTheDefault) {
    const auto h = Hierarchy::parse(ctbpf::kDefaultBy);
    ASSERT_EQ(h.depth(), 6u);
    EXPECT_EQ(h.levels()[0].field, Field::Netns);
    EXPECT_EQ(h.levels()[2].field, Field::Src);
    EXPECT_EQ(h.levels()[2].prefix, 16u);
    EXPECT_EQ(h.levels()[4].prefix, std::nullopt);
    EXPECT_EQ(h.to_string(), ctbpf::kDefaultBy);
    EXPECT_EQ(Hierarchy::parse(h.to_string()), h);
}

TEST(ExportHierarchy, AcceptsEveryLevelAndBlanks) {
    const auto h = Hierarchy::parse(" dst/0 , dst, sport,dport,src/128,proto ");
    EXPECT_EQ(h.to_string(), "dst/0,dst,sport,dport,src/128,proto");
}

// `state`: the entry's state as the event names it (the end state for a destroy).
TEST(ExportLabels, StateLevelNamesTheEntrysState) {
    FlowKey k = flow("10.1.2.3", 443);
    EXPECT_EQ(label("state", k), "(state unknown)");
    k.state = ctbpf::EntryState::TimeWait;
    EXPECT_EQ(label("state", k), "TIME_WAIT");
    k.state = ctbpf::EntryState::Unreplied;
    EXPECT_EQ(label("state", k), "UNREPLIED");
    EXPECT_EQ(Hierarchy::parse("state,proto,src").to_string(), "state,proto,src");
    StackAggregator agg(Hierarchy::parse("state,proto"));
    agg.add(k, 3000);
    k.state = ctbpf::EntryState::Established;
    agg.add(k, 5000);
    EXPECT_EQ(agg.total(), 8000u);
}

TEST(ExportHierarchy, RejectsUnknownLevelsNamingTheValidOnes) {
    for (const char* bad : {"netns,bogus", "src/129", "src/", "src/x", "src/-1", "dport/16",
                            "proto/8", "Src", "src/16/2"}) {
        try {
            Hierarchy::parse(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const ctbpf::Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("valid levels are netns, proto, src, src/N, dst, dst/N, sport, dport"),
                      std::string::npos) << what;
            EXPECT_EQ(what.find('\n'), std::string::npos);
        }
    }
}

TEST(ExportHierarchy, RejectsEmptyAndRepeatedLevels) {
    EXPECT_THROW(Hierarchy::parse(""), ctbpf::Error);
    EXPECT_THROW(Hierarchy::parse("netns,,proto"), ctbpf::Error);
    EXPECT_THROW(Hierarchy::parse("netns,"), ctbpf::Error);
    EXPECT_THROW(Hierarchy::parse("src,proto,src"), ctbpf::Error);
    EXPECT_NO_THROW(Hierarchy::parse("src/24,src"));
    EXPECT_THROW(Hierarchy(std::vector<ctbpf::HierarchyLevel>{}), ctbpf::Error);
}

// --- labels ----------------------------------------------------------------------------

TEST(ExportLabels, NamesEachLevel) {
    const auto k = flow("10.1.2.3", 3908, IPPROTO_UDP, 4026531833u, "10.200.30.4", 51000);
    EXPECT_EQ(label("netns", k), "netns 4026531833");
    EXPECT_EQ(label("proto", k), "udp");
    EXPECT_EQ(label("proto", flow("10.1.2.3", 0, 253)), "proto 253");
    EXPECT_EQ(label("src", k), "10.1.2.3");
    EXPECT_EQ(label("dst", k), "10.200.30.4");
    EXPECT_EQ(label("dport", k), ":3908");
    EXPECT_EQ(label("sport", k), ":51000");
    EXPECT_EQ(label("src", FlowKey{}), "?");
    EXPECT_EQ(label("src/16", FlowKey{}), "?");
    // The workload levels: the cgroup by its path (else its id), the process by its name;
    // traffic without a local process says so.
    EXPECT_EQ(label("cgroup", k), "(no cgroup)");
    EXPECT_EQ(label("comm", k), "(no local process)");
    auto w = k;
    w.cgroup = 1234;
    w.pid = 77;
    std::memcpy(w.comm.data(), "dig", 4);
    EXPECT_EQ(label("cgroup", w), "cgroup 1234");
    EXPECT_EQ(label("comm", w), "dig");
    w.cgroup_name = "/system.slice/unbound.service";
    EXPECT_EQ(label("cgroup", w), "/system.slice/unbound.service");
    EXPECT_EQ(Hierarchy::parse("netns,cgroup,comm,src").to_string(), "netns,cgroup,comm,src");
}

TEST(ExportLabels, GroupsIpv4ByPrefix) {
    const auto k = flow("10.31.250.7", 80, IPPROTO_TCP, 1, "172.16.5.9");
    EXPECT_EQ(label("src/16", k), "10.31.0.0/16");
    EXPECT_EQ(label("src/24", k), "10.31.250.0/24");
    EXPECT_EQ(label("src/12", k), "10.16.0.0/12");
    EXPECT_EQ(label("src/0", k), "0.0.0.0/0");
    EXPECT_EQ(label("src/32", k), "10.31.250.7/32");
    EXPECT_EQ(label("src/64", k), "10.31.250.7/32");  // IPv4 stops at 32 bits
    EXPECT_EQ(label("dst/8", k), "172.0.0.0/8");
}

TEST(ExportLabels, GroupsIpv6ByPrefix) {
    const auto k = flow("2001:dbf8:aa:bb:1:2:3:4", 443, IPPROTO_TCP, 1, "fd00::1");
    EXPECT_EQ(label("src/64", k), "2001:dbf8:aa:bb::/64");
    EXPECT_EQ(label("src/48", k), "2001:dbf8:aa::/48");
    EXPECT_EQ(label("src/20", k), "2001:d000::/20");
    EXPECT_EQ(label("src/128", k), "2001:dbf8:aa:bb:1:2:3:4/128");
    EXPECT_EQ(label("src", k), "2001:dbf8:aa:bb:1:2:3:4");
    EXPECT_EQ(label("dst/16", k), "fd00::/16");
}

// --- aggregation and the stack bound ---------------------------------------------------

TEST(ExportStacks, AddsWeightsPerStackInFrameOrder) {
    const auto agg = small_profile();
    EXPECT_EQ(agg.total(), 15u);
    EXPECT_EQ(agg.stack_count(), 5u);
    EXPECT_EQ(agg.folded_weight(), 0u);
    const auto stacks = agg.stacks();
    ASSERT_EQ(stacks.size(), 5u);
    EXPECT_EQ(stacks[3].frames, (std::vector<std::string>{"udp", "10.2.0.0/16", "10.2.0.7", ":53"}));
    EXPECT_EQ(stacks[3].value, 4u);
}

TEST(ExportStacks, FoldsIntoOtherAtTheDeepestSharedFrame) {
    StackAggregator agg(Hierarchy::parse("src/16,src"), 3);
    agg.add(flow("10.1.0.1", 1), 5);
    agg.add(flow("10.1.0.2", 1), 1);
    agg.add(flow("10.2.0.1", 1), 2);
    EXPECT_EQ(agg.stack_count(), 3u);
    // Full. New host in 10.1/16: "other" under 10.1/16 takes it and 10.1.0.2, the smallest.
    agg.add(flow("10.1.0.3", 1), 4);
    agg.add(flow("10.1.0.9", 1), 1);
    // New network: "other" at the top takes it and the smallest stack, 10.2.0.1.
    agg.add(flow("10.3.0.1", 1), 7);
    agg.add(flow("10.1.0.1", 1), 1);  // kept stacks still grow
    EXPECT_EQ(render([&](auto& os) { agg.write_folded(os); }),
              "10.1.0.0/16;10.1.0.1 6\n"
              "10.1.0.0/16;other 6\n"
              "other 9\n");
    EXPECT_EQ(agg.stack_count(), 3u);
    EXPECT_EQ(agg.total(), 21u);
    EXPECT_EQ(agg.folded_weight(), 15u);
}

TEST(ExportStacks, NeverKeepsMoreThanMaxStacks) {
    StackAggregator agg(Hierarchy::parse("netns,proto,src/16,src/24,src,dport"), 50);
    uint64_t sum = 0, x = 12345;
    for (int i = 0; i < 5000; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;  // deterministic LCG
        const std::string src = "10." + std::to_string((x >> 20) % 4) + "." +
                                std::to_string((x >> 30) % 16) + "." + std::to_string((x >> 40) % 250);
        const uint64_t w = 1 + (x >> 50) % 5;
        agg.add(flow(src.c_str(), uint16_t(1 + (x >> 12) % 3), IPPROTO_TCP, uint32_t(1 + (x >> 8) % 2)), w);
        sum += w;
        ASSERT_LE(agg.stack_count(), 50u);
    }
    const auto stacks = agg.stacks();
    EXPECT_EQ(stacks.size(), agg.stack_count());
    uint64_t in_stacks = 0;
    for (const auto& s : stacks) in_stacks += s.value;
    EXPECT_EQ(in_stacks, sum);
    EXPECT_EQ(agg.total(), sum);
    EXPECT_GT(agg.folded_weight(), 0u);
    EXPECT_LT(agg.folded_weight(), sum);
}

TEST(ExportStacks, MaxStacksOfZeroKeepsOne) {
    StackAggregator agg(Hierarchy::parse("src"), 0);
    agg.add(flow("10.0.0.1", 1), 2);
    agg.add(flow("10.0.0.2", 1), 3);
    EXPECT_EQ(render([&](auto& os) { agg.write_folded(os); }), "other 5\n");
}

// --- writers ---------------------------------------------------------------------------

TEST(ExportWriters, Folded) {
    EXPECT_EQ(render([](auto& os) { small_profile().write_folded(os); }),
              "tcp;10.1.0.0/16;10.1.2.3;:443 5\n"
              "tcp;10.1.0.0/16;10.1.2.3;:80 2\n"
              "tcp;10.1.0.0/16;10.1.9.9;:443 1\n"
              "udp;10.2.0.0/16;10.2.0.7;:53 4\n"
              "udp;192.168.0.0/16;192.168.0.5;:3908 3\n");
}

TEST(ExportWriters, FoldedKeepsSpacesInsideFrames) {
    StackAggregator agg(Hierarchy::parse("netns,src"));
    agg.add(flow("fd00::1", 1, IPPROTO_TCP, 7), 2);
    EXPECT_EQ(render([&](auto& os) { agg.write_folded(os); }), "netns 7;fd00::1 2\n");
}

TEST(ExportWriters, SpeedscopeParsesBack) {
    const auto doc = nlohmann::json::parse(
        render([](auto& os) { small_profile().write_speedscope(os, "incident 12:00"); }));
    EXPECT_EQ(doc["$schema"], "https://www.speedscope.app/file-format-schema.json");
    EXPECT_EQ(doc["name"], "incident 12:00");
    EXPECT_EQ(doc["activeProfileIndex"], 0);
    const auto& frames = doc["shared"]["frames"];
    ASSERT_EQ(frames.size(), 13u);  // shared by name: ":443" once
    EXPECT_EQ(frames[0]["name"], "tcp");
    EXPECT_EQ(frames[3]["name"], ":443");
    ASSERT_EQ(doc["profiles"].size(), 1u);
    const auto& p = doc["profiles"][0];
    EXPECT_EQ(p["type"], "sampled");
    EXPECT_EQ(p["unit"], "none");
    EXPECT_EQ(p["name"], "incident 12:00");
    EXPECT_EQ(p["startValue"], 0);
    EXPECT_EQ(p["endValue"], 15);
    ASSERT_EQ(p["samples"].size(), 5u);
    ASSERT_EQ(p["weights"].size(), 5u);
    EXPECT_EQ(p["samples"][0], nlohmann::json({0, 1, 2, 3}));
    EXPECT_EQ(p["samples"][2], nlohmann::json({0, 1, 5, 3}));
    uint64_t sum = 0;
    for (const auto& w : p["weights"]) sum += w.get<uint64_t>();
    EXPECT_EQ(sum, 15u);
    std::vector<std::string> names;
    for (auto i : p["samples"][4]) names.push_back(frames[i.get<size_t>()]["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"udp", "192.168.0.0/16", "192.168.0.5", ":3908"}));
}

TEST(ExportWriters, JsonLines) {
    EXPECT_EQ(render([](auto& os) { small_profile().write_jsonl(os); }),
              R"({"stack":["tcp","10.1.0.0/16","10.1.2.3",":443"],"value":5}
{"stack":["tcp","10.1.0.0/16","10.1.2.3",":80"],"value":2}
{"stack":["tcp","10.1.0.0/16","10.1.9.9",":443"],"value":1}
{"stack":["udp","10.2.0.0/16","10.2.0.7",":53"],"value":4}
{"stack":["udp","192.168.0.0/16","192.168.0.5",":3908"],"value":3}
)");
}

TEST(ExportWriters, Csv) {
    EXPECT_EQ(render([](auto& os) { small_profile().write_csv(os); }),
              "proto,src/16,src,dport,value\n"
              "tcp,10.1.0.0/16,10.1.2.3,:443,5\n"
              "tcp,10.1.0.0/16,10.1.2.3,:80,2\n"
              "tcp,10.1.0.0/16,10.1.9.9,:443,1\n"
              "udp,10.2.0.0/16,10.2.0.7,:53,4\n"
              "udp,192.168.0.0/16,192.168.0.5,:3908,3\n");
}

TEST(ExportWriters, CsvLeavesColumnsAfterOtherEmpty) {
    StackAggregator agg(Hierarchy::parse("src/16,src"), 1);
    agg.add(flow("10.1.0.1", 1), 2);
    agg.add(flow("10.1.0.2", 1), 3);
    agg.add(flow("10.2.0.1", 1), 4);
    EXPECT_EQ(render([&](auto& os) { agg.write_csv(os); }), "src/16,src,value\nother,,9\n");
}

// --- SVG -------------------------------------------------------------------------------

// Tags nest and '&' only starts an entity; skips the prolog, comments and CDATA.
::testing::AssertionResult well_formed(const std::string& xml) {
    std::vector<std::string> open;
    size_t i = 0;
    while ((i = xml.find_first_of("<&", i)) != std::string::npos) {
        if (xml[i] == '&') {
            static const std::regex entity("&(amp|lt|gt|quot|apos);");
            if (!std::regex_search(xml.substr(i, 6), entity, std::regex_constants::match_continuous))
                return ::testing::AssertionFailure() << "bare & at " << i;
            ++i;
            continue;
        }
        const auto skip = [&](const char* start, const char* end) {
            if (xml.compare(i, strlen(start), start) != 0) return false;
            i = xml.find(end, i);
            if (i != std::string::npos) i += strlen(end);
            return true;
        };
        if (skip("<?", "?>") || skip("<!--", "-->") || skip("<![CDATA[", "]]>")) {
            if (i == std::string::npos) return ::testing::AssertionFailure() << "unterminated";
            continue;
        }
        const auto close = xml.find('>', i);
        if (close == std::string::npos) return ::testing::AssertionFailure() << "open tag at " << i;
        const std::string tag = xml.substr(i + 1, close - i - 1);
        const std::string name = tag.substr(tag[0] == '/', tag.find_first_of(" />", 1) - (tag[0] == '/'));
        if (tag[0] == '/') {
            if (open.empty() || open.back() != name)
                return ::testing::AssertionFailure() << "</" << name << "> closes " << (open.empty() ? "nothing" : open.back());
            open.pop_back();
        } else if (tag.back() != '/') {
            open.push_back(name);
        }
        i = close + 1;
    }
    if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> not closed";
    return ::testing::AssertionSuccess();
}

struct SvgFrame {
    std::string name, tip, fill;
    double value, x, y, width;
    int depth;
};

std::vector<SvgFrame> svg_frames(const std::string& svg) {
    static const std::regex g(
        R"re(<g data-n="([^"]*)" data-v="([^"]*)" data-d="(\d+)"><title>([^<]*)</title>)re"
        R"re(<rect x="([^"]*)" y="([^"]*)" width="([^"]*)" height="[^"]*" fill="([^"]*)")re");
    std::vector<SvgFrame> out;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), g); it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        out.push_back({m[1], m[4], m[8], std::stod(m[2]), std::stod(m[5]), std::stod(m[6]),
                       std::stod(m[7]), std::stoi(m[3])});
    }
    return out;
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t i = s.find(what); i != std::string::npos; i = s.find(what, i + 1)) ++n;
    return n;
}

TEST(ExportSvg, IsSelfContainedAndWellFormed) {
    SvgOptions opts;
    opts.title = "Inserts <by source>";
    const auto svg = render([&](auto& os) { small_profile().write_svg(os, opts); });
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_TRUE(well_formed(svg));
    EXPECT_EQ(count(svg, "<script>"), 1u);
    EXPECT_EQ(count(svg, "<style>"), 1u);
    EXPECT_EQ(count(svg, "href"), 0u);
    EXPECT_EQ(count(svg, "src="), 0u);
    EXPECT_EQ(count(svg, "@import"), 0u);
    EXPECT_EQ(count(svg, "http"), 1u);  // the SVG namespace name only
    EXPECT_NE(svg.find(">Inserts &lt;by source&gt;</text>"), std::string::npos);
    EXPECT_NE(svg.find(">Search</text>"), std::string::npos);
    EXPECT_NE(svg.find(">Reset Zoom</text>"), std::string::npos);
}

TEST(ExportSvg, OneFramePerNodeWithWidthsProportionalToWeights) {
    const auto svg = render([](auto& os) { small_profile().write_svg(os); });
    const auto frames = svg_frames(svg);
    ASSERT_EQ(frames.size(), 15u);  // all + 14 distinct frames of the tree
    EXPECT_EQ(count(svg, "<rect"), 15u + 1);  // + the background
    EXPECT_EQ(frames[0].name, "all");
    EXPECT_EQ(frames[0].value, 15);
    const double px_per_unit = (1200 - 20) / 15.0;
    std::map<int, double> y_of_depth;
    for (const auto& f : frames) {
        EXPECT_NEAR(f.width, f.value * px_per_unit, 0.006) << f.name;
        y_of_depth[f.depth] = f.y;
    }
    EXPECT_GT(y_of_depth[0], y_of_depth[1]);  // root at the bottom
    EXPECT_GT(y_of_depth[3], y_of_depth[4]);
    // Pre-order, children in frame order, starting where the parent starts.
    EXPECT_EQ(frames[1].name, "tcp");
    EXPECT_EQ(frames[1].x, 10);
    EXPECT_EQ(frames[8].name, "udp");
    EXPECT_NEAR(frames[8].x, 10 + 8 * px_per_unit, 0.006);
    EXPECT_EQ(frames[2].tip, "10.1.0.0/16 (8 inserts, 53.33%)");
    // Warm colours, the same for the same name.
    for (const auto& f : frames) EXPECT_EQ(f.fill.rfind("rgb(2", 0), 0u) << f.fill;
    EXPECT_EQ(frames[4].fill, frames[7].fill);  // both ":443"
}

TEST(ExportSvg, TruncatesLabelsToFit) {
    StackAggregator agg(Hierarchy::parse("src"));
    agg.add(flow("10.100.200.1", 1), 1000);
    agg.add(flow("10.100.200.2", 1), 10);  // ~11.7 px: "10.100.200.2" does not fit
    agg.add(flow("10.100.200.3", 1), 60);  // ~66 px: 8 characters
    const auto svg = render([&](auto& os) { agg.write_svg(os); });
    EXPECT_NE(svg.find(">10.100.200.1</text>"), std::string::npos);
    EXPECT_NE(svg.find(">10.100..</text>"), std::string::npos);
    EXPECT_EQ(svg.find(">10.100.200.2</text>"), std::string::npos);
}

TEST(ExportSvg, LeavesOutFramesNarrowerThanMinWidth) {
    StackAggregator agg(Hierarchy::parse("src"));
    agg.add(flow("10.0.0.1", 1), 1'000'000);
    agg.add(flow("10.0.0.2", 1), 1);  // 0.001 px
    EXPECT_EQ(svg_frames(render([&](auto& os) { agg.write_svg(os); })).size(), 2u);
    SvgOptions all;
    all.min_width = 0;
    EXPECT_EQ(svg_frames(render([&](auto& os) { agg.write_svg(os, all); })).size(), 3u);
}

TEST(ExportSvg, EmptyProfileSaysSo) {
    StackAggregator agg(Hierarchy::parse("src"));
    const auto svg = render([&](auto& os) { agg.write_svg(os); });
    EXPECT_TRUE(well_formed(svg));
    EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
    EXPECT_TRUE(svg_frames(svg).empty());
}

// --- differential ----------------------------------------------------------------------

struct DiffPair {
    StackAggregator baseline{Hierarchy::parse("src/16,src")}, incident{Hierarchy::parse("src/16,src")};
    DiffPair() {
        baseline.add(flow("10.1.0.1", 1), 10);
        baseline.add(flow("10.2.0.1", 1), 10);
        incident.add(flow("10.1.0.1", 1), 30);
        incident.add(flow("10.3.0.1", 1), 10);
    }
};

TEST(ExportDiff, FoldedNormalisesTheBaselineToTheIncidentTotal) {
    DiffPair d;
    EXPECT_EQ(ctbpf::diff_scale(d.baseline, d.incident), 2.0);
    EXPECT_EQ(render([&](auto& os) { write_folded_diff(os, d.baseline, d.incident); }),
              "10.1.0.0/16;10.1.0.1 20 30\n"
              "10.2.0.0/16;10.2.0.1 20 0\n"
              "10.3.0.0/16;10.3.0.1 0 10\n");
}

DiffOptions scaled(double s) {
    DiffOptions o;
    o.baseline_scale = s;
    return o;
}

TEST(ExportDiff, FoldedWithAGivenScale) {
    DiffPair d;
    EXPECT_EQ(render([&](auto& os) {
                  write_folded_diff(os, d.baseline, d.incident, scaled(1.0));
              }),
              "10.1.0.0/16;10.1.0.1 10 30\n"
              "10.2.0.0/16;10.2.0.1 10 0\n"
              "10.3.0.0/16;10.3.0.1 0 10\n");
    EXPECT_EQ(render([&](auto& os) {
                  write_folded_diff(os, d.baseline, d.incident, scaled(0.25));
              }),
              "10.1.0.0/16;10.1.0.1 3 30\n"  // 2.5 rounds away from zero
              "10.2.0.0/16;10.2.0.1 3 0\n"
              "10.3.0.0/16;10.3.0.1 0 10\n");
}

TEST(ExportDiff, RefusesDifferentHierarchies) {
    StackAggregator a(Hierarchy::parse("src")), b(Hierarchy::parse("dst"));
    std::ostringstream os;
    EXPECT_THROW(write_folded_diff(os, a, b), ctbpf::Error);
    EXPECT_THROW(write_svg_diff(os, a, b), ctbpf::Error);
}

TEST(ExportDiff, SvgSizesByIncidentAndColoursByChange) {
    DiffPair d;
    const auto svg = render([&](auto& os) { write_svg_diff(os, d.baseline, d.incident); });
    EXPECT_TRUE(well_formed(svg));
    const auto frames = svg_frames(svg);
    std::map<std::string, SvgFrame> by_name;
    for (const auto& f : frames) by_name[f.name] = f;
    ASSERT_EQ(frames.size(), 5u);  // 10.2/16 is gone from the incident: no width
    EXPECT_FALSE(by_name.count("10.2.0.0/16"));
    EXPECT_NEAR(by_name["10.1.0.0/16"].width, 1180 * 0.75, 0.006);
    EXPECT_EQ(by_name["all"].fill, "rgb(255,250,250)");           // unchanged total
    EXPECT_EQ(by_name["10.1.0.0/16"].fill, "rgb(255,187,187)");   // 20 -> 30: +1/3
    EXPECT_EQ(by_name["10.3.0.0/16"].fill, "rgb(255,60,60)");     // new
    EXPECT_EQ(by_name["10.1.0.1"].tip, "10.1.0.1 (30 inserts, baseline 20, +50.0%; 75.00% of graph)");
    EXPECT_EQ(by_name["10.3.0.1"].tip, "10.3.0.1 (10 inserts, baseline 0, new; 25.00% of graph)");
    EXPECT_NE(svg.find("red grew, blue shrank"), std::string::npos);
}

TEST(ExportDiff, NegatedSvgSizesByBaseline) {
    DiffPair d;
    const auto svg = render([&](auto& os) {
        DiffOptions negate;
        negate.negate = true;
        write_svg_diff(os, d.baseline, d.incident, {}, negate);
    });
    std::map<std::string, SvgFrame> by_name;
    for (const auto& f : svg_frames(svg)) by_name[f.name] = f;
    EXPECT_FALSE(by_name.count("10.3.0.0/16"));
    EXPECT_EQ(by_name["10.2.0.0/16"].fill, "rgb(60,60,255)");  // gone
    EXPECT_NEAR(by_name["10.2.0.0/16"].width, 1180 * 0.5, 0.006);
    EXPECT_EQ(by_name["10.2.0.1"].tip, "10.2.0.1 (0 inserts, baseline 20, gone; 50.00% of graph)");
}

}  // namespace

// Issue "What a new user hit" (2): entries from a recording's start-up baseline know only
// their namespace and source; deeper levels say so instead of inventing a port.
TEST(ExportLabels, ExistingEntriesShowTheirSourceAndAnExistingFrame) {
    FlowKey k = flow("10.1.2.3", 0, 0, 4026531833u);
    k.existing = true;
    const Hierarchy h = Hierarchy::parse(ctbpf::kDefaultBy);
    EXPECT_EQ(h.frames(k), (std::vector<std::string>{"netns 4026531833", "(existing)", "10.1.0.0/16",
                                                      "10.1.2.0/24", "10.1.2.3", "(existing)"}));
    EXPECT_EQ(label("dst", k), "(existing)");
    EXPECT_EQ(label("sport", k), "(existing)");
}
