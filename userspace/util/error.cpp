#include "ctbpf/error.h"

#include <cstring>

namespace ctbpf {

void throw_errno(const std::string& what, int err) { throw Error(what + ": " + std::strerror(err)); }

}  // namespace ctbpf
