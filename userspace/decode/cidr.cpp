#include "ctbpf/cidr.h"

#include <netinet/in.h>

#include <charconv>

namespace ctbpf {

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const auto slash = text.find('/');
    auto addr = Address::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    const unsigned bits = addr->family == AF_INET ? 32 : 128;
    unsigned prefix = bits;
    if (slash != std::string_view::npos) {
        const auto p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (ec != std::errc() || end != p.data() + p.size() || prefix > bits) return std::nullopt;
    }
    return Cidr{*addr, prefix};
}

bool Cidr::contains(const Address& a) const {
    if (a.family != net.family) return false;
    unsigned full = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < full; ++i)
        if (a.bytes[i] != net.bytes[i]) return false;
    if (rest == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a.bytes[full] & mask) == (net.bytes[full] & mask);
}

std::string Cidr::to_string() const { return net.to_string() + "/" + std::to_string(prefix); }

}  // namespace ctbpf
