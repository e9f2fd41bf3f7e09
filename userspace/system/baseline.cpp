#include "ctbpf/baseline.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <arpa/inet.h>
#include <endian.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/system.h"
#include "ctbpf/netns.h"

namespace ctbpf {

namespace {

// The dump is read with libmnl: the kernel's own dump is most of the cost (about 2.5 us per
// entry here), and building a full libnetfilter_conntrack object per entry added another
// ~1 us for attributes never used.

const nlattr* find(const void* payload, size_t len, uint16_t type) {
    for (auto* a = static_cast<const nlattr*>(payload); mnl_attr_ok(a, static_cast<int>(len));) {
        if (mnl_attr_get_type(a) == type) return a;
        const auto* next = mnl_attr_next(a);
        len -= reinterpret_cast<const char*>(next) - reinterpret_cast<const char*>(a);
        a = next;
    }
    return nullptr;
}

const nlattr* find_nested(const nlattr* nest, uint16_t type) {
    return nest ? find(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), type) : nullptr;
}

template <class T>
std::optional<T> be(const nlattr* a) {
    if (!a || mnl_attr_get_payload_len(a) != sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, mnl_attr_get_payload(a), sizeof v);
    if constexpr (sizeof(T) == 2) return ntohs(v);
    else if constexpr (sizeof(T) == 4) return ntohl(v);
    else if constexpr (sizeof(T) == 8) return be64toh(v);
    else return v;
}

bool read_address(const nlattr* ip, uint16_t v4_type, uint16_t v6_type, Address& a) {
    if (const nlattr* v4 = find_nested(ip, v4_type); v4 && mnl_attr_get_payload_len(v4) == 4) {
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), mnl_attr_get_payload(v4), 4);
        return true;
    }
    if (const nlattr* v6 = find_nested(ip, v6_type); v6 && mnl_attr_get_payload_len(v6) == 16) {
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), mnl_attr_get_payload(v6), 16);
        return true;
    }
    return false;
}

struct DumpState {
    const std::function<void(const DumpedEntry&)>* each;
    uint64_t entries = 0;
};

int on_message(const nlmsghdr* nlh, void* data) {
    auto* st = static_cast<DumpState*>(data);
    constexpr size_t hdr = MNL_ALIGN(sizeof(nfgenmsg));
    if (mnl_nlmsg_get_payload_len(nlh) < hdr) return MNL_CB_OK;
    const auto* payload = static_cast<const char*>(mnl_nlmsg_get_payload(nlh));
    const size_t len = mnl_nlmsg_get_payload_len(nlh) - hdr;
    const nlattr* orig = find(payload + hdr, len, CTA_TUPLE_ORIG);
    const nlattr* ip = find_nested(orig, CTA_TUPLE_IP);
    DumpedEntry d;
    if (!read_address(ip, CTA_IP_V4_SRC, CTA_IP_V6_SRC, d.src)) return MNL_CB_OK;  // not IPv4/IPv6
    read_address(ip, CTA_IP_V4_DST, CTA_IP_V6_DST, d.dst);
    d.dst.family = d.src.family;
    const nlattr* proto = find_nested(orig, CTA_TUPLE_PROTO);
    d.proto = be<uint8_t>(find_nested(proto, CTA_PROTO_NUM)).value_or(0);
    if (d.proto == IPPROTO_ICMP || d.proto == IPPROTO_ICMPV6) {
        // As the kernel side reports them: the id as the source port, type << 8 | code as
        // the destination port.
        const bool v6 = d.proto == IPPROTO_ICMPV6;
        d.sport = be<uint16_t>(find_nested(proto, v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID)).value_or(0);
        const uint8_t type = be<uint8_t>(find_nested(proto, v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE)).value_or(0);
        const uint8_t code = be<uint8_t>(find_nested(proto, v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE)).value_or(0);
        d.dport = static_cast<uint16_t>(type << 8 | code);
    } else {
        d.sport = be<uint16_t>(find_nested(proto, CTA_PROTO_SRC_PORT)).value_or(0);
        d.dport = be<uint16_t>(find_nested(proto, CTA_PROTO_DST_PORT)).value_or(0);
    }
    d.status = be<uint32_t>(find(payload + hdr, len, CTA_STATUS)).value_or(0);
    d.timeout_s = be<uint32_t>(find(payload + hdr, len, CTA_TIMEOUT)).value_or(0);
    d.zone = be<uint16_t>(find(payload + hdr, len, CTA_ZONE)).value_or(0);
    if (const nlattr* info = find(payload + hdr, len, CTA_PROTOINFO))
        d.tcp_state = be<uint8_t>(find_nested(find_nested(info, CTA_PROTOINFO_TCP), CTA_PROTOINFO_TCP_STATE)).value_or(0);
    if (const nlattr* ts = find(payload + hdr, len, CTA_TIMESTAMP)) d.start_ns = be<uint64_t>(find_nested(ts, CTA_TIMESTAMP_START));
    st->entries++;
    (*st->each)(d);
    return MNL_CB_OK;
}

struct SocketCloser {
    void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};

}  // namespace

TableDump dump_table(const std::string& netns_spec, const std::function<void(const DumpedEntry&)>& each) {
    const auto start = std::chrono::steady_clock::now();
    NetnsFile ns(netns_spec);
    std::unique_ptr<mnl_socket, SocketCloser> sock;
    TableDump out;
    out.netns = ns.inum();
    {
        NetnsEntry inside(ns);  // the netlink socket belongs to the namespace it was made in
        sock.reset(mnl_socket_open(NETLINK_NETFILTER));
        out.timeouts = read_timeouts();
    }
    if (!sock || mnl_socket_bind(sock.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        throw Error(fmt::format("opening a conntrack netlink socket: {}", std::strerror(errno)));

    // The kernel sizes each dump message to the reader's buffer, up to 32 KiB.
    std::vector<char> buf(64 * 1024);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    const uint32_t seq = nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = AF_UNSPEC;  // IPv4 and IPv6
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
        throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(errno)));

    DumpState st{&each};
    const uint32_t portid = mnl_socket_get_portid(sock.get());
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(errno)));
        const int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, on_message, &st);
        if (rc == MNL_CB_STOP) break;  // NLMSG_DONE
        if (rc < 0) throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(errno)));
    }
    out.entries = st.entries;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

Baseline dump_baseline(const std::string& netns_spec) {
    std::unordered_map<Address, int64_t, AddressHash> counts;
    const TableDump d = dump_table(netns_spec, [&counts](const DumpedEntry& e) { counts[e.src]++; });
    Baseline b;
    b.netns = d.netns;
    b.total = static_cast<int64_t>(d.entries);
    b.by_source.assign(counts.begin(), counts.end());
    b.seconds = d.seconds;
    return b;
}

Composition dump_composition(const std::string& netns_spec, const AgeOf& age_of, uint64_t now_ns, size_t top,
                             std::vector<uint64_t>* keys) {
    // The builder needs the namespace's timeouts before the first entry: read them first.
    std::map<std::string, uint64_t> timeouts;
    {
        NetnsFile ns(netns_spec);
        NetnsEntry inside(ns);
        timeouts = read_timeouts();
    }
    NetnsFile ns(netns_spec);
    CompositionBuilder b(ns.inum(), timeouts, age_of, now_ns, top);
    const TableDump d = dump_table(netns_spec, [&b](const DumpedEntry& e) { b.add(e); });
    Composition c = b.finish(d.seconds);
    c.taken_ns = now_ns;
    if (keys) *keys = b.keys();
    return c;
}

}  // namespace ctbpf
