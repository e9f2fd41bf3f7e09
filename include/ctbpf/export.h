// Flame-style summaries of conntrack activity: flows are grouped along a hierarchy of
// levels (--by netns,proto,src/16,src/24,src,dport) into weighted stacks, then written as
// folded stacks, speedscope JSON, JSON lines, CSV or a self-contained SVG flame graph,
// alone or as a baseline/incident differential. See docs/export.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctbpf/composition.h"
#include "ctbpf/decode.h"

namespace ctbpf {

// What one conntrack event says about its flow (ports in host byte order).
struct FlowKey {
    uint32_t netns = 0;
    uint8_t proto = 0;
    Address src, dst;
    uint16_t sport = 0, dport = 0;
    // An entry that was in the table before the recording began: the start-up dump keeps
    // only its namespace and source, so its proto, dst and port levels read "(existing)".
    bool existing = false;
    // The entry's state (composition.h classes) as the event names it: for a destroy, the
    // state the entry ended in. Unknown for drops and older recordings.
    EntryState state = EntryState::Unknown;
    // The local process behind an insert or a drop (event layout 3): its cgroup id, pid and
    // name; 0 and empty for forwarded, received or NATed traffic and older recordings.
    // `cgroup_name` (the cgroup's path, from the caller's cache) labels the cgroup level.
    uint64_t cgroup = 0;
    uint32_t pid = 0;
    std::array<char, 16> comm{};
    std::string_view cgroup_name{};
};

inline constexpr std::string_view kExistingFrame = "(existing)";

enum class Field : uint8_t { Netns, Proto, Src, Dst, Sport, Dport, State, Cgroup, Comm };

// One level of the hierarchy; src/N and dst/N carry the prefix length N (0-128; an IPv4
// address uses min(N, 32)).
struct HierarchyLevel {
    Field field = Field::Netns;
    std::optional<unsigned> prefix;

    std::string name() const;                 // as written after --by: "src/16", "dport"
    std::string label(const FlowKey&) const;  // frame: "netns 4026531833", "udp",
                                              // "10.1.0.0/16", "10.1.2.3", ":3908"
    bool operator==(const HierarchyLevel&) const = default;
};

inline constexpr std::string_view kDefaultBy = "netns,proto,src/16,src/24,src,dport";

class Hierarchy {
public:
    // "netns,proto,src/16,src,dport"; throws Error naming the valid levels on anything else.
    static Hierarchy parse(std::string_view by);
    explicit Hierarchy(std::vector<HierarchyLevel> levels);

    const std::vector<HierarchyLevel>& levels() const { return levels_; }
    size_t depth() const { return levels_.size(); }
    std::vector<std::string> frames(const FlowKey&) const;  // one label per level
    std::string to_string() const;                          // parse(to_string()) == *this
    bool operator==(const Hierarchy&) const = default;

private:
    std::vector<HierarchyLevel> levels_;
};

// The frame that stands for stacks folded away once max_stacks is reached.
inline constexpr std::string_view kOtherFrame = "other";

struct Stack {
    std::vector<std::string> frames;  // root first; "other" stacks are shorter
    uint64_t value = 0;
};

struct SvgOptions {
    std::string title = "ctbpf conntrack";
    std::string subtitle;            // empty: none (the diff writer then explains colours)
    unsigned width = 1200;           // pixels
    unsigned frame_height = 16;      // pixels per level
    std::string metric = "inserts";  // unit in tooltips: "1,234 inserts"
    double min_width = 0.1;          // frames narrower (px) are left out, like flamegraph.pl
};

// Weighted stacks, one per distinct path through the hierarchy, kept as a tree.
class StackAggregator {
public:
    static constexpr size_t kDefaultMaxStacks = 100000;

    // max_stacks below 1 counts as 1.
    explicit StackAggregator(Hierarchy hierarchy, size_t max_stacks = kDefaultMaxStacks);
    ~StackAggregator();
    StackAggregator(StackAggregator&&) noexcept;
    StackAggregator& operator=(StackAggregator&&) noexcept;

    // Adds weight to the key's stack (weight 0 is ignored). When the stack is new and
    // max_stacks are already kept, the weight goes to an "other" frame under the deepest
    // frame the key shares with kept stacks; the first time that frame needs one, its
    // smallest stack is folded into the new "other" too, so stack_count() <= max_stacks.
    void add(const FlowKey& key, uint64_t weight = 1);

    const Hierarchy& hierarchy() const { return hierarchy_; }
    size_t max_stacks() const { return max_stacks_; }
    size_t stack_count() const { return stack_count_; }
    uint64_t total() const { return total_; }
    uint64_t folded_weight() const;  // weight that sits in "other" frames
    std::vector<Stack> stacks() const;  // sorted by frames (byte order per level)

    // "netns 1;udp;10.1.0.0/16 123\n" per stack; ';' in a frame becomes ',' and control
    // characters and trailing blanks are dropped, so every line parses back.
    void write_folded(std::ostream&) const;
    // speedscope file format: one "sampled" profile named `name`, unit "none".
    void write_speedscope(std::ostream&, std::string_view name = "ctbpf") const;
    // {"stack":["netns 1","udp",...],"value":123} per line.
    void write_jsonl(std::ostream&) const;
    // Header "<level names>,value"; RFC 4180 quoting; "other" rows leave later columns empty.
    void write_csv(std::ostream&) const;
    // Interactive flame graph (root "all" at the bottom), no external resources.
    void write_svg(std::ostream&, const SvgOptions& = {}) const;

private:
    struct Node;
    void add_stack(const std::vector<std::string>& frames, uint64_t weight);

    Hierarchy hierarchy_;
    size_t max_stacks_;
    size_t stack_count_ = 0;
    uint64_t total_ = 0;
    std::unique_ptr<Node> root_;
};

// Baseline vs incident. Baseline values are multiplied by baseline_scale before they are
// compared; unset means incident total / baseline total, so frames compare by share of
// their profile. 1.0 compares raw counts; incident_seconds / baseline_seconds compares rates.
struct DiffOptions {
    std::optional<double> baseline_scale;
    bool negate = false;  // SVG: size frames by the scaled baseline, to see what vanished
};

double diff_scale(const StackAggregator& baseline, const StackAggregator& incident,
                  const DiffOptions& = {});

// difffolded.pl format: "stack before after" per stack of either side, sorted; "before" is
// the scaled baseline rounded to a whole number. Throws Error if the hierarchies differ.
void write_folded_diff(std::ostream&, const StackAggregator& baseline,
                       const StackAggregator& incident, const DiffOptions& = {});

// Frames sized by the incident value (or the baseline with negate), coloured red where
// they grew and blue where they shrank, stronger with the relative change.
void write_svg_diff(std::ostream&, const StackAggregator& baseline,
                    const StackAggregator& incident, const SvgOptions& = {},
                    const DiffOptions& = {});

}  // namespace ctbpf
