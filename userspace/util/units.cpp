#include "ctbpf/units.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "ctbpf/error.h"

namespace ctbpf {

namespace {
// Splits "12.5m" into 12.5 and "m"; false if there is no number first.
bool split(const std::string& t, double& value, std::string& unit) {
    char* end = nullptr;
    value = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || !std::isfinite(value) || value < 0) return false;
    unit = end;
    return true;
}
}  // namespace

double parse_duration(const std::string& text, const std::string& flag) {
    double v = 0;
    std::string u;
    if (split(text, v, u)) {
        if (u.empty() || u == "s") return v;
        if (u == "ms") return v / 1000;
        if (u == "m") return v * 60;
        if (u == "h") return v * 3600;
        if (u == "d") return v * 86400;
    }
    throw Error(fmt::format("{} '{}' is not a duration (e.g. 30s, 5m, 2h)", flag, text), 2);
}

std::optional<double> parse_duration_option(const std::string& text, const std::string& flag) {
    if (text.empty()) return std::nullopt;
    const double v = parse_duration(text, flag);
    if (v <= 0) throw Error(fmt::format("{} '{}' must be more than 0 (e.g. 30s, 5m, 2h)", flag, text), 2);
    return v;
}

uint64_t parse_size(const std::string& text, const std::string& flag) {
    double v = 0;
    std::string u;
    if (split(text, v, u)) {
        double mult = 0;
        if (u.empty() || u == "B") mult = 1;
        else if (u == "K" || u == "KiB" || u == "k") mult = 1024.0;
        else if (u == "M" || u == "MiB") mult = 1024.0 * 1024;
        else if (u == "G" || u == "GiB") mult = 1024.0 * 1024 * 1024;
        if (mult > 0 && v * mult >= 1) return static_cast<uint64_t>(v * mult);
    }
    throw Error(fmt::format("{} '{}' is not a size (e.g. 512K, 64M, 2G)", flag, text), 2);
}

}  // namespace ctbpf
