// StackAggregator and its text writers: folded, speedscope, JSON lines, CSV, folded diff.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctbpf/error.h"
#include "ctbpf/export.h"
#include "internal.h"

namespace ctbpf {

// A frame of the tree. Every stack ends at a leaf, and every leaf ends a stack: all real
// stacks have the hierarchy's depth and "other" never matches a real label, so no stack
// is a prefix of another.
struct StackAggregator::Node {
    uint64_t value = 0;  // leaves only
    std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
};

namespace {

// Removes the smallest leaf under `top` (the first in frame order on ties) and the frames it
// leaves without children, `top` excepted; returns its value. A template so that it can
// take the private Node type.
template <typename N>
uint64_t take_smallest_leaf(N& top) {
    std::vector<std::pair<N*, std::string>> path, best;  // (parent, child name) pairs
    uint64_t best_value = UINT64_MAX;
    std::function<void(N&)> walk = [&](N& n) {
        for (auto& [name, child] : n.children) {
            path.emplace_back(&n, name);
            if (child->children.empty()) {
                if (child->value < best_value) best_value = child->value, best = path;
            } else {
                walk(*child);
            }
            path.pop_back();
        }
    };
    walk(top);
    if (best.empty()) return 0;  // cannot happen: `top` always has a stack under it
    // Erase the leaf, then each frame it left empty, stopping at `top`.
    for (size_t i = best.size(); i-- > 0;) {
        auto& [parent, name] = best[i];
        parent->children.erase(name);
        if (!parent->children.empty() || i == 0) break;
    }
    return best_value;
}

template <typename N, typename F>
void for_each_stack(const N& n, std::vector<std::string>& path, F&& f) {
    for (const auto& [name, child] : n.children) {
        path.push_back(name);
        if (child->children.empty()) f(path, child->value);
        else for_each_stack(*child, path, f);
        path.pop_back();
    }
}

// flamegraph.pl splits frames at ';' and the count at the last blank: keep both unambiguous.
std::string folded_frame(std::string_view name) {
    std::string s;
    for (char c : name) {
        if (c == ';') s += ',';
        else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) s += c;
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s.empty() ? "?" : s;
}

std::string folded_stack(const std::vector<std::string>& frames) {
    std::string line;
    for (const auto& f : frames) line += (line.empty() ? "" : ";") + folded_frame(f);
    return line;
}

std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace

StackAggregator::StackAggregator(Hierarchy hierarchy, size_t max_stacks)
    : hierarchy_(std::move(hierarchy)),
      max_stacks_(std::max<size_t>(max_stacks, 1)),
      root_(std::make_unique<Node>()) {}
StackAggregator::~StackAggregator() = default;
StackAggregator::StackAggregator(StackAggregator&&) noexcept = default;
StackAggregator& StackAggregator::operator=(StackAggregator&&) noexcept = default;

void StackAggregator::add(const FlowKey& key, uint64_t weight) {
    if (weight != 0) add_stack(hierarchy_.frames(key), weight);
}

void StackAggregator::add_stack(const std::vector<std::string>& frames, uint64_t weight) {
    total_ += weight;
    Node* n = root_.get();
    size_t depth = 0;
    for (; depth < frames.size(); ++depth) {
        const auto it = n->children.find(frames[depth]);
        if (it == n->children.end()) break;
        n = it->second.get();
    }
    if (depth == frames.size()) {
        n->value += weight;
        return;
    }
    if (stack_count_ < max_stacks_) {
        for (; depth < frames.size(); ++depth)
            n = (n->children[frames[depth]] = std::make_unique<Node>()).get();
        n->value = weight;
        ++stack_count_;
        return;
    }
    // Full: fold into "other" under the deepest frame we share with kept stacks. Making
    // that "other" costs a stack, so the smallest stack under the same frame joins it.
    const std::string other(kOtherFrame);
    auto it = n->children.find(other);
    if (it == n->children.end()) {
        const uint64_t moved = take_smallest_leaf(*n);
        it = n->children.emplace(other, std::make_unique<Node>()).first;
        it->second->value = moved;
    }
    it->second->value += weight;
}

uint64_t StackAggregator::folded_weight() const {
    uint64_t sum = 0;
    std::vector<std::string> path;
    for_each_stack(*root_, path, [&](const std::vector<std::string>& frames, uint64_t v) {
        if (frames.back() == kOtherFrame) sum += v;
    });
    return sum;
}

std::vector<Stack> StackAggregator::stacks() const {
    std::vector<Stack> out;
    out.reserve(stack_count_);
    std::vector<std::string> path;
    for_each_stack(*root_, path, [&](const std::vector<std::string>& frames, uint64_t v) {
        out.push_back({frames, v});
    });
    return out;
}

void StackAggregator::write_folded(std::ostream& os) const {
    for (const auto& s : stacks()) os << folded_stack(s.frames) << ' ' << s.value << '\n';
}

void StackAggregator::write_speedscope(std::ostream& os, std::string_view name) const {
    // Frames are shared by name, so speedscope's sandwich view totals e.g. ":53" over all hosts.
    nlohmann::json frames = nlohmann::json::array(), samples = nlohmann::json::array(),
                   weights = nlohmann::json::array();
    std::unordered_map<std::string, size_t> index;
    for (const auto& s : stacks()) {
        auto sample = nlohmann::json::array();
        for (const auto& f : s.frames) {
            auto [it, fresh] = index.try_emplace(f, index.size());
            if (fresh) frames.push_back({{"name", f}});
            sample.push_back(it->second);
        }
        samples.push_back(std::move(sample));
        weights.push_back(s.value);
    }
    nlohmann::ordered_json doc = {
        {"$schema", "https://www.speedscope.app/file-format-schema.json"},
        {"shared", {{"frames", frames}}},
        {"profiles", nlohmann::ordered_json::array({nlohmann::ordered_json{
                         {"type", "sampled"},
                         {"name", name},
                         {"unit", "none"},
                         {"startValue", 0},
                         {"endValue", total_},
                         {"samples", samples},
                         {"weights", weights}}})},
        {"name", name},
        {"activeProfileIndex", 0},
        {"exporter", "ctbpf"}};
    os << doc.dump() << '\n';
}

void StackAggregator::write_jsonl(std::ostream& os) const {
    for (const auto& s : stacks())
        os << "{\"stack\":" << nlohmann::json(s.frames).dump() << ",\"value\":" << s.value << "}\n";
}

void StackAggregator::write_csv(std::ostream& os) const {
    for (const auto& level : hierarchy_.levels()) os << csv_field(level.name()) << ',';
    os << "value\n";
    for (const auto& s : stacks()) {
        for (size_t i = 0; i < hierarchy_.depth(); ++i)
            os << (i < s.frames.size() ? csv_field(s.frames[i]) : "") << ',';
        os << s.value << '\n';
    }
}

double diff_scale(const StackAggregator& baseline, const StackAggregator& incident,
                  const DiffOptions& opts) {
    if (opts.baseline_scale) return *opts.baseline_scale;
    return baseline.total() ? double(incident.total()) / double(baseline.total()) : 1.0;
}

namespace export_detail {

std::vector<DiffStack> diff_stacks(const StackAggregator& baseline,
                                   const StackAggregator& incident, double scale) {
    if (!(baseline.hierarchy() == incident.hierarchy())) {
        throw Error("cannot compare profiles grouped differently: baseline --by " +
                    baseline.hierarchy().to_string() + ", incident --by " +
                    incident.hierarchy().to_string());
    }
    std::map<std::vector<std::string>, DiffStack> merged;
    for (const auto& s : baseline.stacks()) {
        auto& d = merged[s.frames];
        d.frames = s.frames;
        d.before = double(s.value) * scale;
    }
    for (const auto& s : incident.stacks()) {
        auto& d = merged[s.frames];
        d.frames = s.frames;
        d.after = s.value;
    }
    std::vector<DiffStack> out;
    out.reserve(merged.size());
    for (auto& [_, d] : merged) out.push_back(std::move(d));
    return out;
}

}  // namespace export_detail

void write_folded_diff(std::ostream& os, const StackAggregator& baseline,
                       const StackAggregator& incident, const DiffOptions& opts) {
    const double scale = diff_scale(baseline, incident, opts);
    for (const auto& d : export_detail::diff_stacks(baseline, incident, scale))
        os << folded_stack(d.frames) << ' ' << std::llround(d.before) << ' ' << d.after << '\n';
}

}  // namespace ctbpf
