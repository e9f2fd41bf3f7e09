#include "ctbpf/baseline.h"

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/netns.h"

namespace ctbpf {

namespace {

// The dump is read with libmnl and only the original source address is looked at: the
// kernel's own dump is most of the cost (about 2.5 us per entry here), and building a full
// libnetfilter_conntrack object per entry added another ~1 us that this count never used.

struct DumpState {
    std::unordered_map<Address, int64_t, AddressHash> counts;
    int64_t total = 0;
};

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

int on_message(const nlmsghdr* nlh, void* data) {
    auto* st = static_cast<DumpState*>(data);
    constexpr size_t hdr = MNL_ALIGN(sizeof(nfgenmsg));
    if (mnl_nlmsg_get_payload_len(nlh) < hdr) return MNL_CB_OK;
    const auto* payload = static_cast<const char*>(mnl_nlmsg_get_payload(nlh));
    const nlattr* ip = find_nested(find(payload + hdr, mnl_nlmsg_get_payload_len(nlh) - hdr, CTA_TUPLE_ORIG),
                                   CTA_TUPLE_IP);
    Address a;
    if (const nlattr* v4 = find_nested(ip, CTA_IP_V4_SRC); v4 && mnl_attr_get_payload_len(v4) == 4) {
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), mnl_attr_get_payload(v4), 4);
    } else if (const nlattr* v6 = find_nested(ip, CTA_IP_V6_SRC); v6 && mnl_attr_get_payload_len(v6) == 16) {
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), mnl_attr_get_payload(v6), 16);
    } else {
        return MNL_CB_OK;  // neither IPv4 nor IPv6: not something ctbpf reports
    }
    st->counts[a]++;
    st->total++;
    return MNL_CB_OK;
}

struct SocketCloser {
    void operator()(mnl_socket* s) const { mnl_socket_close(s); }
};

}  // namespace

Baseline dump_baseline(const std::string& netns_spec) {
    const auto start = std::chrono::steady_clock::now();
    NetnsFile ns(netns_spec);
    std::unique_ptr<mnl_socket, SocketCloser> sock;
    {
        NetnsEntry inside(ns);  // the netlink socket belongs to the namespace it was made in
        sock.reset(mnl_socket_open(NETLINK_NETFILTER));
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

    DumpState st;
    const uint32_t portid = mnl_socket_get_portid(sock.get());
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(errno)));
        const int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, on_message, &st);
        if (rc == MNL_CB_STOP) break;  // NLMSG_DONE
        if (rc < 0) throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(errno)));
    }

    Baseline b;
    b.netns = ns.inum();
    b.total = st.total;
    b.by_source.assign(st.counts.begin(), st.counts.end());
    b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return b;
}

}  // namespace ctbpf
