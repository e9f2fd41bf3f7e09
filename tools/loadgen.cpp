// ctbpf-loadgen: creates conntrack entries on purpose. Each flow is one UDP datagram (or
// one TCP SYN) from its own source port, so every flow is a new entry; each source address
// is a distinct "client". Traffic goes only to the destination given, which must be a
// loopback address or a test host in a namespace you made. With --answer the destination is
// this process itself, and each flow is answered, so that its entry leaves the unreplied
// state (UDP: replied; TCP: a whole connection, closed, in TIME_WAIT).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace {

bool parse_addr(const std::string& s, sockaddr_storage& ss, socklen_t& len, uint16_t port) {
    std::memset(&ss, 0, sizeof ss);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
        return true;
    }
    return false;
}

// --rate: keeps the flows sent so far at or below rate x elapsed time; sleeps in short steps
// when ahead, so a fixed, moderate load can be held (e.g. 50,000 new entries/s for the CPU
// benchmark). rate 0: as fast as possible.
class Pacer {
public:
    explicit Pacer(double rate) : rate_(rate), start_(std::chrono::steady_clock::now()) {}
    void tick() {
        if (rate_ <= 0) return;
        ++done_;
        // Check the clock every 64 flows only: cheap, and bursts stay below ~1 ms at 50k/s.
        if (done_ % 64) return;
        const double ahead =
            static_cast<double>(done_) / rate_ -
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
    }

private:
    double rate_;
    uint64_t done_ = 0;
    std::chrono::steady_clock::time_point start_;
};

// One bound socket per source; each flow differs by destination port.
int run_fast(const std::vector<std::pair<sockaddr_storage, socklen_t>>& from, sockaddr_storage to,
             socklen_t to_len, unsigned flows, unsigned sport_base, double seconds, double rate) {
    std::vector<int> fds;
    for (auto [ss, len] : from) {
        int fd = socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const uint16_t sp = htons(static_cast<uint16_t>(sport_base));
        if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = sp;
        else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = sp;
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
            fmt::print(stderr, "ctbpf-loadgen: cannot bind a source: {}\n", std::strerror(errno));
            return 1;
        }
        fds.push_back(fd);
    }
    const uint16_t base = ntohs(to.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&to)->sin_port
                                                         : reinterpret_cast<sockaddr_in6*>(&to)->sin6_port);
    const char payload[] = "ctbpf";
    uint64_t sent = 0, failed = 0;
    Pacer pace(rate);
    const auto start = std::chrono::steady_clock::now();
    do {
        for (unsigned f = 0; f < flows; ++f) {
            const uint16_t dp = htons(static_cast<uint16_t>(base + f));
            if (to.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&to)->sin_port = dp;
            else reinterpret_cast<sockaddr_in6*>(&to)->sin6_port = dp;
            // With --seconds, stop mid-round at the deadline (a paced round can be long).
            if (seconds > 0 && f % 256 == 0 &&
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= seconds)
                break;
            for (int fd : fds) {
                sendto(fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to), to_len) >= 0 ? sent++
                                                                                                             : failed++;
                pace.tick();
            }
        }
    } while (seconds > 0 &&
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int fd : fds) close(fd);
    fmt::print("{{\"sent\":{},\"failed\":{},\"seconds\":{:.3f}}}\n", sent, failed, el);
    return 0;
}

void set_timeout(int fd, int seconds) {
    timeval tv{seconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// --answer: a server socket of this process on the destination, bound before the flows.
int answer_socket(const sockaddr_storage& to, socklen_t to_len, bool tcp) {
    int fd = socket(to.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&to), to_len) != 0 || (tcp && listen(fd, 128) != 0)) {
        fmt::print(stderr, "ctbpf-loadgen: cannot listen on the destination for --answer: {}\n", std::strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    set_timeout(fd, 5);
    return fd;
}

// One answered flow on the bound client socket `fd`. UDP: a datagram there and one back.
// TCP: connect, accept, then the client closes first and the server once it has read the
// client's FIN, so the client's side (and the entry) ends in TIME_WAIT, not in a reset.
bool answered_flow(int fd, int server, const sockaddr_storage& to, socklen_t to_len, bool tcp) {
    const char payload[] = "ctbpf";
    char buf[64];
    set_timeout(fd, 5);
    if (!tcp) {
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        return sendto(fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to), to_len) >= 0 &&
               recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len) >= 0 &&
               sendto(server, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&peer), peer_len) >= 0 &&
               recv(fd, buf, sizeof buf, 0) >= 0;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), to_len) != 0) return false;
    const int conn = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return false;
    set_timeout(conn, 5);
    shutdown(fd, SHUT_WR);
    const bool fin = read(conn, buf, sizeof buf) == 0;
    close(conn);
    // The server's FIN, so that close() leaves nothing unsent.
    const bool fin_back = read(fd, buf, sizeof buf) == 0;
    return fin && fin_back;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ctbpf-loadgen: new conntrack entries from many sources, to loopback or test hosts"};
    std::vector<std::string> sources;
    std::string dst = "127.0.0.1", proto = "udp";
    uint16_t port = 9;
    unsigned flows = 1;
    double seconds = 0;
    unsigned sport_base = 20000;
    bool fast = false, answer = false;
    double rate = 0;
    app.add_option("--src", sources, "source addresses (repeatable; must be local)")->required();
    app.add_option("--dst", dst, "destination address (loopback or a test host)");
    app.add_option("--port", port, "destination port");
    app.add_option("--flows", flows, "flows per source");
    app.add_option("--proto", proto, "udp or tcp (tcp: one SYN per flow, non-blocking connect)")
        ->check(CLI::IsMember({"udp", "tcp"}));
    app.add_option("--sport-base", sport_base,
                   "first source port; flow f uses sport-base + f, so no flow repeats another's tuple "
                   "(0: let the kernel pick, repeats possible)")
        ->check(CLI::Range(0, 65535));
    app.add_flag("--fast", fast,
                 "UDP only: one socket per source, flow f goes to port + f (one syscall per flow, for "
                 "benchmarks; a new entry per flow all the same)");
    app.add_flag("--answer", answer,
                 "answer each flow from a socket of this process on --dst/--port (which must be local): UDP gets "
                 "a datagram back (the entry is replied), TCP a whole connection closed by both sides (the entry "
                 "ends in TIME_WAIT). One flow at a time, blocking; not with --fast");
    app.add_option("--seconds", seconds, "repeat rounds until this many seconds have passed (0: one round)");
    app.add_option("--rate", rate, "at most this many flows per second (0: as fast as possible)")
        ->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);

    sockaddr_storage to{};
    socklen_t to_len = 0;
    if (!parse_addr(dst, to, to_len, port)) {
        fmt::print(stderr, "ctbpf-loadgen: bad --dst '{}'\n", dst);
        return 2;
    }
    std::vector<std::pair<sockaddr_storage, socklen_t>> from;
    for (const auto& s : sources) {
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (!parse_addr(s, ss, len, 0) || ss.ss_family != to.ss_family) {
            fmt::print(stderr, "ctbpf-loadgen: bad --src '{}' (must be the same family as --dst)\n", s);
            return 2;
        }
        from.emplace_back(ss, len);
    }

    const bool tcp = proto == "tcp";
    if (fast) {
        if (tcp || port + flows > 65536) {
            fmt::print(stderr, "ctbpf-loadgen: --fast needs --proto udp and --port + --flows below 65536\n");
            return 2;
        }
        return run_fast(from, to, to_len, flows, sport_base, seconds, rate);
    }
    if (answer && fast) {
        fmt::print(stderr, "ctbpf-loadgen: --answer and --fast do not go together\n");
        return 2;
    }
    const int server = answer ? answer_socket(to, to_len, tcp) : -1;
    if (answer && server < 0) return 1;
    const char payload[] = "ctbpf";
    uint64_t sent = 0, failed = 0;
    Pacer pace(rate);
    const auto start = std::chrono::steady_clock::now();
    if (sport_base && sport_base + flows > 65536) {
        fmt::print(stderr, "ctbpf-loadgen: --sport-base + --flows must stay below 65536\n");
        return 2;
    }
    do {
        for (unsigned f = 0; f < flows; ++f) {
            for (auto [ss, len] : from) {
                if (sport_base) {
                    const uint16_t sp = htons(static_cast<uint16_t>(sport_base + f));
                    if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = sp;
                    else reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = sp;
                }
                int fd = socket(to.ss_family,
                                (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | (answer ? 0 : SOCK_NONBLOCK), 0);
                if (fd < 0) {
                    failed++;
                    continue;
                }
                if (tcp && !answer) {
                    linger lg{1, 0};  // close with RST: no TIME_WAIT pile-up in the generator
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                }
                const int one = 1;  // repeated rounds reuse the same ports
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                bool ok = bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
                if (ok && answer) ok = answered_flow(fd, server, to, to_len, tcp);
                else if (ok && tcp) ok = connect(fd, reinterpret_cast<const sockaddr*>(&to), to_len) == 0 || errno == EINPROGRESS;
                else if (ok) ok = sendto(fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to), to_len) >= 0;
                ok ? sent++ : failed++;
                close(fd);
                pace.tick();
            }
        }
    } while (seconds > 0 &&
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (server >= 0) close(server);
    fmt::print("{{\"sent\":{},\"failed\":{},\"seconds\":{:.3f}}}\n", sent, failed, el);
    return 0;
}
