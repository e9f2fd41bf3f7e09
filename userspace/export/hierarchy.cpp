// --by parsing and frame labels (include/ctbpf/export.h).
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "ctbpf/error.h"
#include "ctbpf/export.h"

namespace ctbpf {
namespace {

constexpr std::string_view kValidLevels =
    "netns, proto, src, src/N, dst, dst/N, sport, dport, state, cgroup, comm (N = prefix length 0-128)";

[[noreturn]] void bad_level(std::string_view item) {
    throw Error("unknown --by level '" + std::string(item) + "': valid levels are " +
                std::string(kValidLevels));
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
}

HierarchyLevel parse_level(std::string_view item) {
    const auto slash = item.find('/');
    const auto head = item.substr(0, slash);
    static constexpr std::pair<std::string_view, Field> names[] = {
        {"netns", Field::Netns}, {"proto", Field::Proto}, {"src", Field::Src},
        {"dst", Field::Dst},     {"sport", Field::Sport}, {"dport", Field::Dport}, {"state", Field::State},
        {"cgroup", Field::Cgroup}, {"comm", Field::Comm}};
    const auto it = std::find_if(std::begin(names), std::end(names),
                                 [&](const auto& n) { return n.first == head; });
    if (it == std::end(names)) bad_level(item);
    HierarchyLevel level{it->second, std::nullopt};
    if (slash == std::string_view::npos) return level;

    // Only addresses have prefixes.
    if (level.field != Field::Src && level.field != Field::Dst) bad_level(item);
    const auto digits = item.substr(slash + 1);
    unsigned n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n > 128)
        bad_level(item);
    level.prefix = n;
    return level;
}

std::string prefix_label(const Address& a, unsigned prefix) {
    if (a.family != AF_INET && a.family != AF_INET6) return "?";
    const unsigned bits = std::min(prefix, a.family == AF_INET ? 32u : 128u);
    Address net = a;
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned keep = bits > i * 8 ? std::min(bits - i * 8, 8u) : 0;
        net.bytes[i] &= static_cast<uint8_t>(0xff00u >> keep);
    }
    return net.to_string() + "/" + std::to_string(bits);
}

std::string address_label(const Address& a, const std::optional<unsigned>& prefix) {
    return prefix ? prefix_label(a, *prefix) : a.to_string();
}

}  // namespace

std::string HierarchyLevel::name() const {
    static constexpr std::string_view names[] = {"netns", "proto", "src", "dst", "sport", "dport", "state", "cgroup", "comm"};
    std::string s(names[static_cast<size_t>(field)]);
    if (prefix) s += "/" + std::to_string(*prefix);
    return s;
}

std::string HierarchyLevel::label(const FlowKey& k) const {
    if (k.existing && field != Field::Netns && field != Field::Src) return std::string(kExistingFrame);
    switch (field) {
        case Field::Netns: return "netns " + std::to_string(k.netns);
        case Field::Proto: {
            auto name = proto_name(k.proto);
            // A bare number would read like a count; say what it is.
            return std::isdigit(static_cast<unsigned char>(name[0])) ? "proto " + name : name;
        }
        case Field::Src: return address_label(k.src, prefix);
        case Field::Dst: return address_label(k.dst, prefix);
        case Field::Sport: return ":" + std::to_string(k.sport);
        case Field::Dport: return ":" + std::to_string(k.dport);
        case Field::State: return k.state == EntryState::Unknown ? "(state unknown)" : state_name(k.state);
        case Field::Cgroup:
            if (k.cgroup == 0) return "(no cgroup)";
            return k.cgroup_name.empty() ? "cgroup " + std::to_string(k.cgroup) : std::string(k.cgroup_name);
        case Field::Comm: {
            if (k.pid == 0) return "(no local process)";
            size_t n = 0;
            while (n < k.comm.size() && k.comm[n]) ++n;
            return std::string(k.comm.data(), n);
        }
    }
    return "?";
}

Hierarchy::Hierarchy(std::vector<HierarchyLevel> levels) : levels_(std::move(levels)) {
    if (levels_.empty()) throw Error("--by needs at least one level: " + std::string(kValidLevels));
}

Hierarchy Hierarchy::parse(std::string_view by) {
    const std::string whole(by);
    std::vector<HierarchyLevel> levels;
    while (true) {
        const auto comma = by.find(',');
        const auto item = trim(by.substr(0, comma));
        if (item.empty()) {
            throw Error("empty level in --by '" + whole + "': valid levels are " +
                        std::string(kValidLevels));
        }
        HierarchyLevel level = parse_level(item);
        if (std::find(levels.begin(), levels.end(), level) != levels.end())
            throw Error("--by level '" + level.name() + "' is given twice");
        levels.push_back(level);
        if (comma == std::string_view::npos) break;
        by.remove_prefix(comma + 1);
    }
    return Hierarchy(std::move(levels));
}

std::vector<std::string> Hierarchy::frames(const FlowKey& k) const {
    std::vector<std::string> out;
    out.reserve(levels_.size());
    for (const auto& level : levels_) out.push_back(level.label(k));
    return out;
}

std::string Hierarchy::to_string() const {
    std::string s;
    for (const auto& level : levels_) s += (s.empty() ? "" : ",") + level.name();
    return s;
}

}  // namespace ctbpf
