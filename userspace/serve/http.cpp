#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "exposition.h"

namespace ctbpf::serve {

namespace {

const char* kIndex =
    "ctbpf serve: conntrack metrics\n"
    "  /metrics  Prometheus / OpenMetrics exposition (bounded top-K per-source series)\n"
    "  /healthz  200 while the observer publishes, 503 when it has stalled\n";

void release(void* cls) { delete static_cast<std::shared_ptr<const std::string>*>(cls); }

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                      const char*, size_t* upload_size, void**) {
    const auto& server = *static_cast<const MetricsServer*>(cls);
    const char* accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    MetricsServer::Reply r = server.answer(method, url, accept ? accept : "");
    *upload_size = 0;  // any request body is ignored (only GET and HEAD are served)
    // The body is shared with the published snapshot: MHD holds a reference until sent.
    auto* hold = new std::shared_ptr<const std::string>(std::move(r.body));
    MHD_Response* resp = MHD_create_response_from_buffer_with_free_callback_cls(
        (*hold)->size(), const_cast<char*>((*hold)->data()), release, hold);
    if (!resp) {
        release(hold);
        return MHD_NO;  // out of memory: MHD closes the connection
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    if (!r.allow.empty()) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r.allow.c_str());
    const MHD_Result ok = MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    return ok;
}

}  // namespace

ListenAddress parse_listen(const std::string& s) {
    auto bad = [&](std::string_view why) {
        return Error(fmt::format("--listen '{}': {} (expected HOST:PORT, e.g. 127.0.0.1:9669 or [::1]:9669)", s, why), 2);
    };
    ListenAddress a;
    std::string port;
    if (!s.empty() && s[0] == '[') {
        const auto close = s.find("]:");
        if (close == std::string::npos) throw bad("IPv6 address needs brackets and a port");
        a.host = s.substr(1, close - 1);
        port = s.substr(close + 2);
        a.family = AF_INET6;
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0) throw bad("missing host or port");
        a.host = s.substr(0, colon);
        port = s.substr(colon + 1);
        a.family = AF_INET;
    }
    if (a.host == "localhost") a.host = a.family == AF_INET ? "127.0.0.1" : "::1";
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(a.family, a.host.c_str(), buf) != 1) throw bad("host is not a numeric address");
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || port.empty() || p > 65535) throw bad("bad port");
    a.port = static_cast<uint16_t>(p);
    return a;
}

bool is_loopback(const ListenAddress& a) {
    if (a.family == AF_INET) return a.host.rfind("127.", 0) == 0;
    return a.host == "::1";
}

MetricsServer::MetricsServer(const std::string& listen, const ServerLimits& limits) : limits_(limits) {
    const ListenAddress la = parse_listen(listen);
    // Bound here rather than by MHD so a failure says why (address in use, not local, ...).
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (la.family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(la.port);
        inet_pton(AF_INET, la.host.c_str(), &sin->sin_addr);
        len = sizeof *sin;
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(la.port);
        inet_pton(AF_INET6, la.host.c_str(), &sin6->sin6_addr);
        len = sizeof *sin6;
    }
    fd_ = socket(la.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw_errno("cannot create the listening socket", errno);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (la.family == AF_INET6) setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 128) != 0) {
        const int err = errno;
        close(fd_);
        throw_errno(fmt::format("cannot listen on {}", listen), err);
    }
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    const uint16_t port = ntohs(la.family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    address_ = la.family == AF_INET ? fmt::format("{}:{}", la.host, port) : fmt::format("[{}]:{}", la.host, port);

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (la.family == AF_INET6) flags |= MHD_USE_IPv6;
    daemon_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, this,
                               MHD_OPTION_LISTEN_SOCKET, fd_,
                               MHD_OPTION_CONNECTION_LIMIT, limits_.connections,
                               MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits_.per_ip,
                               MHD_OPTION_CONNECTION_TIMEOUT, limits_.idle_timeout_s,
                               MHD_OPTION_CONNECTION_MEMORY_LIMIT, limits_.connection_memory,
                               MHD_OPTION_END);
    if (!daemon_) throw Error(fmt::format("cannot start the HTTP server on {}", address_));
    fd_ = -1;  // MHD owns the listening socket now and closes it when stopped
}

MetricsServer::~MetricsServer() {
    if (daemon_) MHD_stop_daemon(daemon_);  // joins its thread, closes the socket
}

void MetricsServer::publish(std::shared_ptr<const Published> p) {
    std::lock_guard lock(mu_);
    latest_ = std::move(p);
}

MetricsServer::Reply MetricsServer::answer(std::string_view method, std::string_view url,
                                           std::string_view accept) const {
    Reply r;
    auto text = [&](unsigned status, std::string s) {
        r.status = status;
        r.body = std::make_shared<const std::string>(std::move(s));
        return r;
    };
    if (method != "GET" && method != "HEAD") {
        r.allow = "GET, HEAD";
        return text(405, "only GET and HEAD\n");
    }
    std::shared_ptr<const Published> p;
    {
        std::lock_guard lock(mu_);
        p = latest_;
    }
    const std::string_view path = url.substr(0, url.find('?'));
    if (path == "/metrics") {
        if (!p) return text(503, "no snapshot yet: the first comes one second after start\n");
        const Format f = negotiate(accept);
        r.content_type = std::string(content_type(f));
        r.body = std::shared_ptr<const std::string>(p, f == Format::OpenMetrics ? &p->openmetrics : &p->text);
        return r;
    }
    if (path == "/healthz") {
        if (!p) return text(503, "starting\n");
        const auto age = std::chrono::steady_clock::now() - p->at;
        if (age > limits_.stale)
            return text(503, fmt::format("stale: the observer last published {} s ago\n",
                                         std::chrono::duration_cast<std::chrono::seconds>(age).count()));
        return text(200, "ok\n");
    }
    if (path == "/") return text(200, kIndex);
    return text(404, "not found: try /metrics or /healthz\n");
}

}  // namespace ctbpf::serve
