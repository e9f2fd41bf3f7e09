// The HTTP side of `ctbpf serve`: libmicrohttpd in its own thread serves whatever the
// observer last published. Requests never touch the aggregator, so a slow or hostile client
// can at most hold one of a bounded number of connections; it cannot stall the observer, and
// memory stays bounded (connections x per-connection buffer; bodies are shared, not copied).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

struct MHD_Daemon;

namespace ctbpf::serve {

struct Published {
    std::string openmetrics, text;  // the same metrics in both formats
    std::chrono::steady_clock::time_point at;
};

struct ServerLimits {
    unsigned connections = 64;       // at once, over all clients
    unsigned per_ip = 16;            // at once, from one address
    unsigned idle_timeout_s = 10;    // a connection idle this long is closed
    size_t connection_memory = 32 * 1024;  // request headers and buffers per connection
    std::chrono::seconds stale{5};   // /healthz fails when nothing was published for this long
};

class MetricsServer {
public:
    // Binds `listen` ("127.0.0.1:9669", "[::1]:9669", "0.0.0.0:9669"; port 0 picks one) and
    // starts serving; throws Error with a one-line reason.
    MetricsServer(const std::string& listen, const ServerLimits& limits = {});
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    std::string address() const { return address_; }  // what it is bound to, port resolved
    void publish(std::shared_ptr<const Published> p);

    struct Reply;  // built per request (http.cpp)
    Reply answer(std::string_view method, std::string_view url, std::string_view accept) const;

private:
    ServerLimits limits_;
    std::string address_;
    int fd_ = -1;
    MHD_Daemon* daemon_ = nullptr;
    mutable std::mutex mu_;
    std::shared_ptr<const Published> latest_;
};

struct MetricsServer::Reply {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::shared_ptr<const std::string> body;  // shares the published text when it is the metrics
    std::string allow;                         // for 405
};

// "host:port" -> what bind() needs; throws Error (exit 2) on a malformed value.
struct ListenAddress {
    int family = 0;
    std::string host;
    uint16_t port = 0;
};
ListenAddress parse_listen(const std::string& s);
bool is_loopback(const ListenAddress& a);

}  // namespace ctbpf::serve
