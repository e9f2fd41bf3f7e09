// Loads the BPF object (one skeleton for every backend), attaches the chosen backend's
// programs and exposes the ring buffer and counters.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "ctbpf.skel.h"
#include "ctbpf/error.h"
#include "ctbpf/event.h"
#include "ctbpf/fd.h"
#include "ctbpf/kernel.h"
#include "ctbpf/netns.h"
#include "guarded_handler.h"

namespace ctbpf {

namespace {

// libbpf's messages: kept (the last few explain a failed load), shown live with --verbose.
std::mutex g_log_mu;
std::deque<std::string> g_log;
bool g_verbose = false;

int libbpf_log(enum libbpf_print_level level, const char* fmt_, va_list ap) {
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(buf, sizeof buf, fmt_, ap);
    std::lock_guard lock(g_log_mu);
    if (g_verbose) std::vfprintf(stderr, fmt_, copy);  // whole: a verifier log is one message
    va_end(copy);
    if (level == LIBBPF_DEBUG && !g_verbose) return 0;
    std::string s(buf);
    while (!s.empty() && s.back() == '\n') s.pop_back();
    if (!s.empty()) g_log.push_back(std::move(s));
    if (g_log.size() > 50) g_log.pop_front();
    return 0;
}

std::string last_libbpf_line() {
    std::lock_guard lock(g_log_mu);
    for (auto it = g_log.rbegin(); it != g_log.rend(); ++it)
        if (it->find("libbpf:") != std::string::npos || it->find("failed") != std::string::npos) return *it;
    return g_log.empty() ? std::string() : g_log.back();
}

// libbpf objects, each freed by its own destructor function.
struct SkelDestroy {
    void operator()(ctbpf_bpf* s) const { ctbpf_bpf__destroy(s); }
};
struct LinkDestroy {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingBufferFree {
    void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
using SkelPtr = std::unique_ptr<ctbpf_bpf, SkelDestroy>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDestroy>;
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferFree>;

}  // namespace

struct Session::Impl {
    // Destroyed in reverse order: the reader first, then the links, then the programs and
    // maps they use; the handler the reader calls outlives the reader.
    std::unique_ptr<detail::GuardedHandler> handler;
    SkelPtr skel;
    std::vector<LinkPtr> links;  // global hooks
    RingBufferPtr rb;
    BackendChoice choice;
    std::vector<WatchedNetns> watched;
    // What each watched namespace holds: its netfilter links (tracepoint backend) and its
    // sysctl files. Released when the namespace is deleted: the links keep a deleted
    // namespace alive (seen on 6.18: its sysctls stay readable while they exist).
    struct PerNetns {
        uint32_t inum;
        std::vector<LinkPtr> links;
        UniqueFd count, buckets;
    };
    std::vector<PerNetns> per_netns;
    bool all_netns = false;
    uint64_t generation = 0;
    bool netns_signal = false;       // the kernel side says when a namespace may be new
    uint64_t netns_created_seen = ~0ull;
    std::chrono::steady_clock::time_point next_scan{};
    // Namespaces a scan did not find, by inode: gone only when the next scan, at least
    // kGoneConfirm later, misses them too. A scan races with mounts and unmounts (`ip netns
    // add` and `del` of others): readdir of /run/netns and a read of mountinfo can both skip
    // an entry while it changes (seen: a live namespace missed once, its links released).
    std::map<uint32_t, std::chrono::steady_clock::time_point> missed;
    std::vector<LinkPtr>* link_sink = &links;  // where attach_netfilter puts new links
    UniqueFd max_fd;

    // Only one BPF program may sit at a given priority of a hook, and some kernels put
    // their own hook next to conntrack's (IPv6 LOCAL_IN confirms at INT_MAX-1): on EBUSY
    // step further away from conntrack, in direction `step`, a few times.
    void attach_netfilter(bpf_program* prog, int pf, int hook, int priority, int step) {
        int err = 0;
        for (int i = 0; i < 8; ++i, priority += step) {
            LIBBPF_OPTS(bpf_netfilter_opts, o, .pf = static_cast<__u32>(pf),
                        .hooknum = static_cast<__u32>(hook), .priority = priority);
            if (LinkPtr l{bpf_program__attach_netfilter(prog, &o)}) {
                link_sink->push_back(std::move(l));
                return;
            }
            err = errno;
            if (err != EBUSY) break;
        }
        throw_errno(fmt::format("attaching {} to netfilter hook {} (family {}, priority near {})",
                                bpf_program__name(prog), hook, pf, priority),
                    err);
    }

    // The programs of the fentry and kprobe backends for each role of FunctionHook
    // (entry, exit; either may be absent).
    std::pair<bpf_program*, bpf_program*> role_programs(const std::string& role, bool fentry) const {
        const auto& p = skel->progs;
        struct Row {
            const char* role;
            bpf_program *fe_enter, *fe_exit, *kp_enter, *kp_exit;
        };
        const Row rows[] = {
            {"insert", p.fe_confirm_enter, p.fe_confirm_exit, p.kp_confirm_enter, p.kp_confirm_exit},
            {"drop", p.fe_in_enter, p.fe_in_exit, p.kp_in_enter, p.kp_in_exit},
            {"destroy", p.fe_free, nullptr, p.kp_free, nullptr},
            {"early_drop", p.fe_evict_enter, p.fe_evict_exit, p.kp_evict_enter, p.kp_evict_exit},
            {"table_full", nullptr, p.fe_alloc_exit, nullptr, p.kp_alloc_exit},
            {"netlink_insert", nullptr, p.fe_netlink_insert_exit, p.kp_netlink_insert_enter, p.kp_netlink_insert_exit},
        };
        for (const auto& r : rows)
            if (role == r.role) return fentry ? std::pair{r.fe_enter, r.fe_exit} : std::pair{r.kp_enter, r.kp_exit};
        return {nullptr, nullptr};
    }

    // Before load: only the chosen backend's programs load, each pointed at the function
    // this kernel has (fentry: set as attach target now; kprobe: attached by name later).
    struct Target {
        bpf_program* prog;
        std::string func;
        bool ret;
    };
    std::vector<Target> targets;

    void select_programs(const KernelFeatures& f) {
        bpf_program* p;
        bpf_object__for_each_program(p, skel->obj) bpf_program__set_autoload(p, false);
        if (choice.backend == Backend::Tracepoint) {
            for (bpf_program* t : {skel->progs.nf_before_ct, skel->progs.nf_after_ct, skel->progs.nf_before_confirm,
                                   skel->progs.tp_kfree_skb, skel->progs.tp_kmem_cache_free})
                bpf_program__set_autoload(t, true);
            return;
        }
        const bool fentry = choice.backend == Backend::Fentry;
        for (const auto& h : f.hooks) {
            const std::string& func = fentry ? h.fentry : h.kprobe;
            if (func.empty()) continue;
            const auto [enter, exit] = role_programs(h.role, fentry);
            for (bpf_program* prog : {enter, exit}) {
                if (!prog) continue;
                bpf_program__set_autoload(prog, true);
                if (fentry && bpf_program__set_attach_target(prog, 0, func.c_str()) != 0)
                    throw_errno(fmt::format("pointing {} at {}", bpf_program__name(prog), func), errno);
                targets.push_back({prog, func, prog == exit});
            }
            if (h.role == "early_drop") skel->rodata->fn_evict_hooked = true;
            if (h.role == "table_full") skel->rodata->fn_alloc_hooked = true;
        }
    }

    // Returns first: under traffic, a return seen without its entry is ignored, while an
    // entry without its return would leave the per-CPU pairing (funcs.bpf.h) off by one.
    void attach_function_backend() {
        for (bool ret : {true, false}) {
            for (const auto& t : targets) {
                if (t.ret != ret) continue;
                LinkPtr l{choice.backend == Backend::Kprobe
                              ? bpf_program__attach_kprobe(t.prog, t.ret, t.func.c_str())
                              : bpf_program__attach(t.prog)};
                if (!l) throw_errno(fmt::format("attaching {} to {}", bpf_program__name(t.prog), t.func), errno);
                links.push_back(std::move(l));
            }
        }
    }

    // Netfilter links bind to the namespace of the thread that creates them.
    void attach_tracepoint_backend_here() {
        for (int pf : {NFPROTO_IPV4, NFPROTO_IPV6}) {
            // conntrack runs at -200 on PRE_ROUTING and LOCAL_OUT; bracket it.
            for (int hook : {NF_INET_PRE_ROUTING, NF_INET_LOCAL_OUT}) {
                attach_netfilter(skel->progs.nf_before_ct, pf, hook, -201, -1);
                attach_netfilter(skel->progs.nf_after_ct, pf, hook, -199, +1);
            }
            // confirm runs last (INT_MAX) on LOCAL_IN and POST_ROUTING.
            for (int hook : {NF_INET_LOCAL_IN, NF_INET_POST_ROUTING})
                attach_netfilter(skel->progs.nf_before_confirm, pf, hook, INT_MAX - 1, -1);
        }
    }

    // Called while inside the namespace: sysctl files keep the namespace they were opened in.
    void open_table_files(PerNetns& n) {
        n.count.reset(open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC));
        n.buckets.reset(open("/proc/sys/net/netfilter/nf_conntrack_buckets", O_RDONLY | O_CLOEXEC));
        if (!max_fd) max_fd.reset(open("/proc/sys/net/netfilter/nf_conntrack_max", O_RDONLY | O_CLOEXEC));
    }

    void watch(const std::string& name, uint32_t inum, const std::string& path = "") {
        const __u8 one = 1;
        if (bpf_map__update_elem(skel->maps.watched_netns, &inum, sizeof inum, &one, sizeof one, BPF_ANY) != 0)
            throw_errno("registering a watched network namespace", errno);
        watched.push_back({name, inum, false, path});
        ++generation;
    }

    // Attaches what is per namespace (the tracepoint backend's netfilter links, the sysctl
    // files) inside `ns` and registers it. Returns false if it was watched already.
    bool add_namespace(const NetnsFile& ns, const std::string& name, const std::string& path) {
        // A namespace is its inode, not the name given: "nc1" twice, or "nc1" and
        // /proc/PID/ns/net of a process in it, must not attach (and count) twice.
        // (A gone namespace's inode may be reused by a new one: that one is watched afresh.)
        if (std::any_of(watched.begin(), watched.end(),
                        [&](const WatchedNetns& w) { return w.inum == ns.inum() && !w.gone; }))
            return false;
        PerNetns n;
        n.inum = ns.inum();
        {
            NetnsEntry inside(ns);
            link_sink = &n.links;
            try {
                if (choice.backend == Backend::Tracepoint) attach_tracepoint_backend_here();
            } catch (...) {
                link_sink = &links;
                throw;
            }
            link_sink = &links;
            open_table_files(n);
        }
        per_netns.push_back(std::move(n));
        watch(name, ns.inum(), path);
        return true;
    }

    // Lets a gone namespace die (its links and files hold it); the frees of its entries as it
    // goes are still seen (it stays in watched_netns). Only the last kKeptGone gone ones are
    // listed: hosts make and delete namespaces all day.
    static constexpr size_t kKeptGone = 64;
    void release(WatchedNetns& w) {
        w.gone = true;
        ++generation;
        std::erase_if(per_netns, [&](const PerNetns& n) { return n.inum == w.inum; });
        size_t gone = 0;
        for (const auto& x : watched) gone += x.gone;
        while (gone > kKeptGone) {
            const auto old = std::find_if(watched.begin(), watched.end(), [](const WatchedNetns& x) { return x.gone; });
            const uint32_t inum = old->inum;
            watched.erase(old);
            --gone;
            if (std::none_of(watched.begin(), watched.end(), [&](const WatchedNetns& x) { return x.inum == inum; }))
                bpf_map__delete_elem(skel->maps.watched_netns, &inum, sizeof inum, 0);
        }
    }

    // --all-netns: what a namespace found on the host is called. Ours is "self" as without
    // the option; others by their `ip netns` name, else by a process inside.
    static std::string host_netns_name(const HostNetns& h, uint32_t self) {
        if (h.inum == self) return "self";
        if (!h.ip_name.empty()) return h.ip_name;
        if (h.pid) return fmt::format("pid {}", h.pid);
        return h.path;
    }
};

Session::Session(const SessionOptions& opt, RecordHandler handler) : impl_(std::make_unique<Impl>()) {
    auto& I = *impl_;
    I.handler = std::make_unique<detail::GuardedHandler>(std::move(handler));
    g_verbose = opt.verbose;
    libbpf_set_print(libbpf_log);

    if (opt.all_netns && !opt.netns.empty())
        throw Error("--all-netns watches every network namespace: give it or --netns, not both", 2);
    I.all_netns = opt.all_netns;
    require_privileges(!opt.netns.empty() || opt.all_netns);
    const KernelFeatures features = probe_kernel();
    I.choice = choose_backend(features, opt.backend);

    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (opt.ring_bytes < page || (opt.ring_bytes & (opt.ring_bytes - 1)) != 0)
        throw Error(fmt::format("ring buffer size {} must be a power of two of at least {} bytes", opt.ring_bytes,
                                page));

    I.skel.reset(ctbpf_bpf__open());
    if (!I.skel) throw_errno("opening the BPF object", errno);
    uint64_t key = 0;
    if (getrandom(&key, sizeof key, 0) != sizeof key) key = 0x9e3779b97f4a7c15ull;
    I.skel->rodata->ct_id_key = key;
    I.skel->rodata->task_btf = features.major > 5 || (features.major == 5 && features.minor >= 11);
    I.skel->rodata->wakeup_bytes = static_cast<__u32>(std::min(opt.wakeup_bytes, opt.ring_bytes / 2));
    bpf_map__set_max_entries(I.skel->maps.events, static_cast<__u32>(opt.ring_bytes));
    I.select_programs(features);
    if (I.all_netns) {
        if (I.choice.backend != Backend::Tracepoint) I.skel->rodata->watch_all_netns = true;
        bpf_program__set_autoload(I.skel->progs.tp_task_newtask, true);
        bpf_program__set_autoload(I.skel->progs.tp_unshare_exit, true);
    }

    if (ctbpf_bpf__load(I.skel.get()) != 0) {
        const int err = errno;
        throw Error(fmt::format("loading the BPF programs failed: {} ({}); run with --verbose for the verifier log",
                                std::strerror(err), last_libbpf_line()));
    }

    // Namespaces: ours by default, else each one named, entered in turn and left again.
    // Only netfilter links are per namespace; every other hook is global and filters on
    // the namespaces registered here (or, --all-netns with a function backend, on none).
    const bool tracepoint = I.choice.backend == Backend::Tracepoint;
    if (I.all_netns) {
        const uint32_t self = NetnsFile("self").inum();
        for (const HostNetns& h : list_host_netns()) {
            try {
                I.add_namespace(NetnsFile(h.path), Impl::host_netns_name(h, self), h.path);
            } catch (const Error&) {
                // gone between the scan and the attach: nothing to watch
            }
        }
        I.next_scan = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    } else {
        std::vector<std::string> specs = opt.netns;
        if (specs.empty()) specs.push_back("self");
        for (const auto& spec : specs) {
            NetnsFile ns(spec);
            I.add_namespace(ns, ns.spec(), "");
        }
    }

    if (tracepoint) {
        for (bpf_program* p : {I.skel->progs.tp_kfree_skb, I.skel->progs.tp_kmem_cache_free}) {
            LinkPtr l{bpf_program__attach(p)};
            if (!l) throw_errno(fmt::format("attaching {}", bpf_program__name(p)), errno);
            I.links.push_back(std::move(l));
        }
    } else {
        I.attach_function_backend();
    }

    if (I.all_netns) {
        // Without either signal (a kernel without syscall tracepoints) the host is scanned
        // every second instead.
        I.netns_signal = true;
        for (bpf_program* p : {I.skel->progs.tp_task_newtask, I.skel->progs.tp_unshare_exit}) {
            LinkPtr l{bpf_program__attach(p)};
            if (l)
                I.links.push_back(std::move(l));
            else
                I.netns_signal = false;
        }
    }

    I.rb.reset(ring_buffer__new(bpf_map__fd(I.skel->maps.events), &detail::GuardedHandler::on_sample,
                                I.handler.get(), nullptr));
    if (!I.rb) throw_errno("setting up the ring buffer reader", errno);
}

Session::~Session() = default;

const BackendChoice& Session::choice() const { return impl_->choice; }
uint64_t Session::watched_generation() const { return impl_->generation; }
const std::vector<WatchedNetns>& Session::watched() const { return impl_->watched; }
int Session::epoll_fd() const { return ring_buffer__epoll_fd(impl_->rb.get()); }

size_t Session::drain() {
    const int n = ring_buffer__consume(impl_->rb.get());
    impl_->handler->rethrow_pending();
    if (n < 0) throw_errno("reading the ring buffer", -n);
    return static_cast<size_t>(n);
}

namespace {
int64_t read_number(int fd) {
    char buf[32];
    const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = 0;
    return std::strtoll(buf, nullptr, 10);
}
}  // namespace

std::optional<TableState> Session::table(uint32_t netns) const {
    for (const auto& f : impl_->per_netns) {
        if (f.inum != netns || !f.count || !impl_->max_fd) continue;
        TableState t{netns, read_number(f.count.get()), read_number(impl_->max_fd.get()),
                     f.buckets ? read_number(f.buckets.get()) : 0};
        if (t.count < 0 || t.max < 0) return std::nullopt;
        return t;
    }
    return std::nullopt;
}

std::vector<WatchedNetns> Session::forget_gone_namespaces() {
    std::vector<WatchedNetns> gone;
    if (impl_->all_netns) return gone;  // discover_namespaces() sees them go
    for (auto& w : impl_->watched) {
        if (w.gone || w.name == "self") continue;
        // Gone when its name no longer leads to the same namespace: `ip netns del` removed
        // the bind mount, or the process whose /proc/PID/ns/net was given has exited.
        const std::string path = w.name.find('/') == std::string::npos ? "/run/netns/" + w.name : w.name;
        struct stat st {};
        if (stat(path.c_str(), &st) == 0 && static_cast<uint32_t>(st.st_ino) == w.inum) continue;
        gone.push_back(w);
    }
    for (const auto& g : gone)
        for (auto& w : impl_->watched)
            if (w.inum == g.inum && !w.gone) {
                impl_->release(w);
                break;
            }
    for (auto& g : gone) g.gone = true;
    return gone;
}

std::vector<WatchedNetns> Session::discover_namespaces() {
    auto& I = *impl_;
    std::vector<WatchedNetns> changed;
    if (!I.all_netns) return changed;
    const auto now = std::chrono::steady_clock::now();
    const uint64_t made = I.skel->bss->netns_created;
    if (made == I.netns_created_seen && now < I.next_scan) return changed;
    const bool signalled = made != I.netns_created_seen;
    I.netns_created_seen = made;
    // Scan when the kernel side saw a namespace made, once more shortly after (the scan may
    // have raced with the mount that names it); and every 5 s (1 s without that signal),
    // since nothing signals a namespace's end.
    constexpr auto kSoon = std::chrono::milliseconds(250);
    I.next_scan = now + (signalled || !I.missed.empty() ? kSoon : std::chrono::seconds(I.netns_signal ? 5 : 1));
    const std::vector<HostNetns> host = list_host_netns();
    const uint32_t self = NetnsFile("self").inum();
    for (const HostNetns& h : host) {
        I.missed.erase(h.inum);
        auto it = std::find_if(I.watched.begin(), I.watched.end(),
                               [&](const WatchedNetns& w) { return w.inum == h.inum && !w.gone; });
        if (it != I.watched.end()) {
            it->path = h.path;  // the process it was found by may have gone
            // Found by the process making it (`ip netns add` unshares, then mounts): its name now.
            if (!h.ip_name.empty() && it->name.rfind("pid ", 0) == 0) {
                it->name = h.ip_name;
                ++I.generation;
            }
            continue;
        }
        try {
            if (I.add_namespace(NetnsFile(h.path), Impl::host_netns_name(h, self), h.path))
                changed.push_back(I.watched.back());
        } catch (const Error&) {
            // gone between the scan and the attach
        }
    }
    // Nothing on the host holds it any more (only our links did), in two scans: let it go.
    constexpr auto kGoneConfirm = std::chrono::milliseconds(200);
    std::vector<uint32_t> gone;
    for (const auto& w : I.watched) {
        if (w.gone || std::any_of(host.begin(), host.end(), [&](const HostNetns& h) { return h.inum == w.inum; }))
            continue;
        const auto [at, first] = I.missed.try_emplace(w.inum, now);
        if (!first && now - at->second >= kGoneConfirm) gone.push_back(w.inum);
    }
    for (uint32_t inum : gone) {
        I.missed.erase(inum);
        auto it = std::find_if(I.watched.begin(), I.watched.end(),
                               [&](const WatchedNetns& w) { return w.inum == inum && !w.gone; });
        WatchedNetns g = *it;
        g.gone = true;
        I.release(*it);  // may drop old gone entries: `it` is not used after
        changed.push_back(g);
    }
    return changed;
}

KernelTotals Session::totals() const {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<int64_t> vals(static_cast<size_t>(ncpu > 0 ? ncpu : 1));
    auto sum = [&](ctbpf_counter c) -> int64_t {
        __u32 key = c;
        if (bpf_map__lookup_elem(impl_->skel->maps.counters, &key, sizeof key, vals.data(),
                                 vals.size() * sizeof(int64_t), 0) != 0)
            throw_errno("reading the in-kernel counters", errno);
        int64_t s = 0;
        for (int64_t v : vals) s += v;
        return s;
    };
    KernelTotals t;
    t.insert = sum(CTBPF_C_INSERT);
    t.drop = sum(CTBPF_C_DROP);
    t.early_drop = sum(CTBPF_C_EARLY_DROP);
    t.insert_failed = sum(CTBPF_C_INSERT_FAILED);
    t.clash_resolved = sum(CTBPF_C_CLASH_RESOLVED);
    t.destroy = sum(CTBPF_C_DESTROY);
    t.lost = sum(CTBPF_C_LOST);
    t.lost_drop = sum(CTBPF_C_LOST_DROP);
    t.overflow = sum(CTBPF_C_OVERFLOW);
    return t;
}

}  // namespace ctbpf
