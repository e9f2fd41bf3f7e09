#include "ctbpf/observe.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "ctbpf/error.h"
#include "ctbpf/fd.h"

namespace ctbpf {

void block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

UniqueFd stop_signal_fd() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    UniqueFd sig(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sig) throw_errno("signalfd", errno);
    return sig;
}

int run_loop(Session& s, const LoopOptions& opt, const std::function<bool()>& on_tick) {
    const UniqueFd sig = stop_signal_fd();
    const UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) throw_errno("epoll_create1", errno);
    const int sfd = sig.get(), ep = epoll.get();
    for (int fd : {s.epoll_fd(), sfd}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) throw_errno("epoll_ctl", errno);
    }
    using clock = std::chrono::steady_clock;
    const auto deadline = opt.duration ? clock::now() + *opt.duration : clock::time_point::max();
    int stopped_by = 0;
    auto next_gone_check = clock::now() + std::chrono::seconds(1);
    while (true) {
        auto wait = opt.tick;
        if (opt.duration) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            if (left.count() <= 0) break;
            wait = std::min(wait, left);
        }
        epoll_event evs[2];
        const int n = epoll_wait(ep, evs, 2, static_cast<int>(wait.count()));
        if (n < 0 && errno != EINTR) throw_errno("epoll_wait", errno);
        bool stop = false;
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.fd == sfd) {
                signalfd_siginfo si{};
                if (read(sfd, &si, sizeof si) == sizeof si) stopped_by = static_cast<int>(si.ssi_signo);
                stop = true;
            }
        }
        s.drain();
        // Namespaces come and go while we watch: a deleted one is said once and let go.
        if (clock::now() >= next_gone_check) {
            next_gone_check = clock::now() + std::chrono::seconds(1);
            for (const auto& g : s.forget_gone_namespaces())
                std::fprintf(stderr, "ctbpf: network namespace %s (%u) is gone: its figures up to now are kept\n",
                             g.name.c_str(), g.inum);
        }
        // --all-netns: namespaces made (watched from now on) and gone since the last tick.
        for (const auto& n : s.discover_namespaces()) {
            if (n.gone)
                std::fprintf(stderr, "ctbpf: network namespace %s (%u) is gone: its figures up to now are kept\n",
                             n.name.c_str(), n.inum);
            else
                std::fprintf(stderr, "ctbpf: watching network namespace %s (%u)\n", n.name.c_str(), n.inum);
        }
        if (!on_tick()) stop = true;
        if (stop) break;
    }
    return stopped_by;
}

}  // namespace ctbpf
