// Human quantities on the command line: "90s", "5m", "1h" and "64M", "1G".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ctbpf {

// Seconds from "30", "30s", "5m", "2h", "1d"; throws Error (exit 2) naming `flag`.
double parse_duration(const std::string& text, const std::string& flag);
// For every --duration: "" is none (run until stopped); anything else as parse_duration,
// and more than 0 (0 does not mean "forever" anywhere). Throws Error (exit 2).
std::optional<double> parse_duration_option(const std::string& text, const std::string& flag);
// Bytes from "1048576", "512K", "64M", "2G" (powers of 1024); throws Error (exit 2).
uint64_t parse_size(const std::string& text, const std::string& flag);

}  // namespace ctbpf
