// Address prefixes ("10.0.0.0/8", "fd00::/64", or a plain address) for filters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ctbpf/decode.h"

namespace ctbpf {

struct Cidr {
    Address net;
    unsigned prefix = 0;  // bits

    static std::optional<Cidr> parse(std::string_view text);
    bool contains(const Address& a) const;
    std::string to_string() const;
};

}  // namespace ctbpf
