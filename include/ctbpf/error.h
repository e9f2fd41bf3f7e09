// One error type for the whole program: what went wrong, said in one line that a
// person can act on. main() prints it and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace ctbpf {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, int exit_code = 1)
        : std::runtime_error(what), exit_code_(exit_code) {}
    int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

// errno-based failure: "<what>: <strerror(errno)>".
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace ctbpf
