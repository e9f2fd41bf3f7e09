// Kernel side, user half: probing what the running kernel offers, loading the BPF object,
// attaching one backend's programs, reading the in-kernel counters and the ring buffer.
// Everything that touches libbpf lives behind this header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ctbpf/table.h"

namespace ctbpf {

enum class Backend { Auto, Fentry, Kprobe, Tracepoint };

std::string_view backend_name(Backend b);
std::optional<Backend> parse_backend(std::string_view s);

// One thing the fentry and kprobe backends see, and the conntrack function each of them
// hooks for it on this kernel (empty: none found; `notes` says why and what is lost).
struct FunctionHook {
    std::string role;      // insert, drop, destroy, early_drop, table_full, netlink_insert
    std::string fentry;    // a function in kernel BTF (vmlinux or the nf_conntrack module)
    std::string kprobe;    // a symbol in /proc/kallsyms
    bool required = false; // without it that backend cannot run
    std::string without;   // what is not covered without it
};

struct KernelFeatures {
    std::string release;           // uname -r
    int major = 0, minor = 0;
    bool btf = false;              // /sys/kernel/btf/vmlinux
    bool ringbuf = false;          // BPF_MAP_TYPE_RINGBUF (5.8+)
    bool tp_btf = false;           // BTF-typed raw tracepoints kfree_skb and kmem_cache_free
    bool netfilter_link = false;   // BPF_PROG_TYPE_NETFILTER (6.4+)
    bool kprobes = false;          // kprobe PMU (CONFIG_KPROBES)
    bool fentry = false;           // BPF trampolines: an fentry program loads and attaches
    std::vector<FunctionHook> hooks;  // what the fentry and kprobe backends would hook
    std::vector<std::string> notes;  // why a feature is missing, as found
};

// Text symbols of /proc/kallsyms by name, with how often each name occurs.
using KallsymsCounts = std::map<std::string, int>;

// The raw facts probe_kernel() reads, one question each, so that what is made of them (the
// hooks per role, the notes, the backend choice) can be driven by a fake kernel in tests.
// running_kernel_facts() asks the running kernel.
class KernelFacts {
public:
    virtual ~KernelFacts() = default;
    virtual std::string release() = 0;   // uname -r
    virtual bool btf_file() = 0;         // /sys/kernel/btf/vmlinux is readable
    virtual bool btf_loads() = 0;        // ...and libbpf parses it
    virtual bool kprobe_pmu() = 0;       // /sys/bus/event_source/devices/kprobe
    virtual bool ringbuf() = 0;          // a BPF_MAP_TYPE_RINGBUF can be created
    virtual bool netfilter_prog() = 0;   // a BPF_PROG_TYPE_NETFILTER program loads
    virtual bool tp_btf() = 0;           // kfree_skb and kmem_cache_free are BTF tracepoints
    // A function (BTF_KIND_FUNC) in vmlinux BTF or the nf_conntrack module's BTF.
    virtual bool btf_function(const std::string& name) = 0;
    // "" if a test fentry program on nf_conntrack_in loads and attaches, else why not
    // ("refused to load (Operation not permitted)"). Asked only if nf_conntrack_in is in BTF.
    virtual std::string fentry_test() = 0;
    virtual KallsymsCounts kallsyms_text() = 0;  // asked only with a kprobe PMU
    // nf_conntrack is a loaded module and the kernel has no BTF for it (no
    // /sys/kernel/btf/nf_conntrack: before 5.11, or CONFIG_DEBUG_INFO_BTF_MODULES off).
    // Asked only if nf_conntrack_in is not in BTF.
    virtual bool conntrack_module_without_btf() = 0;
};

std::unique_ptr<KernelFacts> running_kernel_facts();

// What a kprobe on conntrack function `name` attaches to: exactly `name` if kallsyms has it
// once; else, unless `exact_only`, a unique compiler-made copy (name.isra.0, name.constprop.0),
// whose arguments may have been dropped or reordered, so only for hooks that read none.
// "" if none, or if the name is ambiguous (several symbols of that name).
std::string kprobe_symbol(const KallsymsCounts& syms, const std::string& name, bool exact_only);

// Probes the running kernel (probe_kernel(*running_kernel_facts())). Loads tiny test
// programs, so it needs the same privileges as a real session; without them the
// program-based probes report false with a note. The fentry and kprobe backends need
// conntrack's functions: where nf_conntrack is a module it must be loaded first.
KernelFeatures probe_kernel();
KernelFeatures probe_kernel(KernelFacts& facts);

struct BackendChoice {
    Backend backend = Backend::Tracepoint;
    std::string why;                       // includes what is not covered
    std::vector<std::string> not_covered;  // what this backend cannot see on this kernel
    // Drop events carry the kernel's own reason (table_full or no_entry, from the allocator
    // hook: fentry/kprobe with a table_full function). Otherwise their reason is
    // CTBPF_R_NONE and user space decides from the table's fill.
    bool kernel_drop_reason = false;
};

// One line for people: how this backend's drops are told to be table-full.
std::string_view drop_attribution(const BackendChoice& c);

// Auto-selection order fentry > kprobe > tracepoint. Throws Error if `requested` (or, for
// Auto, every backend) cannot run here, saying what is missing. Kernels before 5.8 are
// refused.
BackendChoice choose_backend(const KernelFeatures& f, Backend requested);

// Throws Error naming the missing capabilities (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN,
// CAP_SYS_ADMIN when `need_setns`).
void require_privileges(bool need_setns);

struct WatchedNetns {
    std::string name;  // as given, or "self" for ctbpf's own namespace; --all-netns: its
                       // `ip netns` name, else "pid N" of a process inside it
    uint32_t inum = 0;
    bool gone = false;  // deleted while watched (Session::forget_gone_namespaces)
    std::string path{};  // what opens it now (NetnsFile); "" means `name` does
    const std::string& spec() const { return path.empty() ? name : path; }
};

struct SessionOptions {
    Backend backend = Backend::Auto;
    std::vector<std::string> netns;  // names under /run/netns or paths; empty: our own
    // Every network namespace on the host, those made later included (found when the
    // kernel side sees a namespace made, and every few seconds); not with `netns`.
    bool all_netns = false;
    size_t ring_bytes = 8u << 20;    // BPF ring buffer size (power of two, >= page size)
    size_t wakeup_bytes = 256u << 10;  // the kernel wakes the reader once this much waits
    bool verbose = false;            // libbpf's own messages on stderr
};

// Exact totals kept by the BPF programs in per-CPU counters, summed.
struct KernelTotals {
    int64_t insert = 0, drop = 0, early_drop = 0, insert_failed = 0, clash_resolved = 0,
            destroy = 0, lost = 0;
    int64_t lost_drop = 0;  // drop events among `lost` (not recorded in files)
    // Hook calls nested deeper than the BPF programs' per-CPU slots, which they could not
    // track (a drop or insert may be missed). Not recorded in files either: the recording
    // format's totals block is fixed (docs/recording-format.md).
    int64_t overflow = 0;
};

class Session {
public:
    using RecordHandler = std::function<void(std::span<const std::byte>)>;

    // Opens, loads and attaches; throws Error with a one-line reason on any failure.
    Session(const SessionOptions& opt, RecordHandler handler);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    const BackendChoice& choice() const;
    const std::vector<WatchedNetns>& watched() const;
    KernelTotals totals() const;

    // The conntrack table of a watched namespace, read from its /proc/sys files (opened
    // inside that namespace). Nothing if `netns` is not watched or cannot be read.
    std::optional<TableState> table(uint32_t netns) const;
    // Namespaces deleted since the last call (their name no longer leads to them; with
    // all_netns: nothing on the host holds them any more): their links and files are
    // released so they can go, their figures stay; returns them.
    std::vector<WatchedNetns> forget_gone_namespaces();
    // all_netns: namespaces made since the last call, now watched (the tracepoint backend's
    // hooks attached in them). Cheap when nothing changed: call every tick.
    std::vector<WatchedNetns> discover_namespaces();
    // Bumped whenever the watched namespaces change (one added, gone, renamed): caches of
    // names keyed by inode (inodes are reused) go stale then.
    uint64_t watched_generation() const;

    // Readable when the kernel woke the reader; also drain on a timer, since records are
    // submitted without a wake-up until a batch waits.
    int epoll_fd() const;
    // Hands every waiting record to the handler; returns how many. If the handler throws,
    // consuming stops and the exception is rethrown here (never through libbpf's C frames);
    // records after it stay in the ring for the next drain.
    size_t drain();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ctbpf
