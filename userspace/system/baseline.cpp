#include "ctbpf/baseline.h"

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/netns.h"

namespace ctbpf {

namespace {

struct DumpState {
    std::unordered_map<Address, int64_t, AddressHash> counts;
    int64_t total = 0;
};

int on_entry(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
    auto* st = static_cast<DumpState*>(data);
    Address a;
    a.family = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
    if (a.family == AF_INET) {
        const uint32_t ip = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC);
        std::memcpy(a.bytes.data(), &ip, 4);
    } else if (a.family == AF_INET6) {
        std::memcpy(a.bytes.data(), nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
    } else {
        return NFCT_CB_CONTINUE;
    }
    st->counts[a]++;
    st->total++;
    return NFCT_CB_CONTINUE;
}

}  // namespace

Baseline dump_baseline(const std::string& netns_spec) {
    const auto start = std::chrono::steady_clock::now();
    NetnsFile ns(netns_spec);
    nfct_handle* h = nullptr;
    {
        NetnsEntry inside(ns);  // the netlink socket belongs to the namespace it was made in
        h = nfct_open(CONNTRACK, 0);
    }
    if (!h) throw Error(fmt::format("opening a conntrack netlink socket: {}", std::strerror(errno)));
    DumpState st;
    nfct_callback_register(h, NFCT_T_ALL, on_entry, &st);
    uint32_t family = AF_UNSPEC;
    const int rc = nfct_query(h, NFCT_Q_DUMP, &family);
    const int err = errno;
    nfct_close(h);
    if (rc < 0) throw Error(fmt::format("dumping the conntrack table: {}", std::strerror(err)));

    Baseline b;
    b.total = st.total;
    b.by_source.assign(st.counts.begin(), st.counts.end());
    b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return b;
}

}  // namespace ctbpf
