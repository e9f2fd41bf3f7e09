// What the running kernel offers, found by trying rather than by version numbers.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/kernel.h"

namespace ctbpf {

std::string_view backend_name(Backend b) {
    switch (b) {
        case Backend::Auto: return "auto";
        case Backend::Fentry: return "fentry";
        case Backend::Kprobe: return "kprobe";
        case Backend::Tracepoint: return "tracepoint";
    }
    return "?";
}

std::optional<Backend> parse_backend(std::string_view s) {
    for (Backend b : {Backend::Auto, Backend::Fentry, Backend::Kprobe, Backend::Tracepoint})
        if (s == backend_name(b)) return b;
    return std::nullopt;
}

namespace {

int silent_print(enum libbpf_print_level, const char*, va_list) { return 0; }

// Loads "return 0" as an fentry program on a conntrack function and attaches it.
bool try_fentry(const btf* vmlinux, std::string& note) {
    const int id = btf__find_by_name_kind(vmlinux, "nf_conntrack_in", BTF_KIND_FUNC);
    if (id < 0) {
        note = "fentry: nf_conntrack_in not in kernel BTF";
        return false;
    }
    const bpf_insn prog[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
                .attach_btf_id = static_cast<__u32>(id));
    const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ctbpf_probe", "GPL", prog, 2, &opts);
    if (fd < 0) {
        note = fmt::format("fentry: test program refused to load ({})", std::strerror(errno));
        return false;
    }
    const int link = bpf_link_create(fd, 0, BPF_TRACE_FENTRY, nullptr);
    const int err = errno;
    close(fd);
    if (link < 0) {
        note = fmt::format("fentry: test program refused to attach ({})", std::strerror(err));
        return false;
    }
    close(link);
    return true;
}

}  // namespace

KernelFeatures probe_kernel() {
    KernelFeatures f;
    utsname u{};
    uname(&u);
    f.release = u.release;
    std::sscanf(u.release, "%d.%d", &f.major, &f.minor);

    f.btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
    if (!f.btf) f.notes.push_back("no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
    f.kprobes = access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0;
    if (!f.kprobes) f.notes.push_back("kprobes: no kprobe PMU (kernel built without CONFIG_KPROBES)");

    auto old = libbpf_set_print(silent_print);
    f.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
    if (!f.ringbuf) f.notes.push_back("no BPF ring buffer (needs 5.8+ and CAP_BPF)");
    f.netfilter_link = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_NETFILTER, nullptr) == 1;
    if (!f.netfilter_link) f.notes.push_back("no BPF netfilter programs (needs 6.4+)");

    if (f.btf) {
        btf* vmlinux = btf__load_vmlinux_btf();
        if (vmlinux) {
            f.tp_btf = btf__find_by_name_kind(vmlinux, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) > 0 &&
                       btf__find_by_name_kind(vmlinux, "btf_trace_kmem_cache_free", BTF_KIND_TYPEDEF) > 0;
            if (!f.tp_btf) f.notes.push_back("tracepoints kfree_skb/kmem_cache_free not in kernel BTF");
            std::string note;
            f.fentry = try_fentry(vmlinux, note);
            if (!f.fentry) f.notes.push_back(note);
            btf__free(vmlinux);
        }
    }
    libbpf_set_print(old);
    return f;
}

BackendChoice choose_backend(const KernelFeatures& f, Backend requested) {
    if (f.major < 5 || (f.major == 5 && f.minor < 8))
        throw Error(fmt::format("kernel {} is too old: ctbpf needs 5.8 or later (BTF and the BPF ring buffer)",
                                f.release));
    if (!f.btf)
        throw Error("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing): ctbpf needs a kernel built "
                    "with CONFIG_DEBUG_INFO_BTF=y");
    if (!f.ringbuf)
        throw Error("the BPF ring buffer is not available: run as root (CAP_BPF) on kernel 5.8 or later");

    const bool tracepoint_ok = f.netfilter_link && f.tp_btf;
    auto tracepoint_missing = [&] {
        return fmt::format("the tracepoint backend needs BPF netfilter links (kernel 6.4+) and BTF tracepoints; "
                           "this kernel {} has netfilter links: {}, tracepoints: {}",
                           f.release, f.netfilter_link ? "yes" : "no", f.tp_btf ? "yes" : "no");
    };
    switch (requested) {
        case Backend::Tracepoint:
            if (!tracepoint_ok) throw Error(tracepoint_missing());
            return {Backend::Tracepoint, "requested with --backend tracepoint"};
        case Backend::Fentry:
        case Backend::Kprobe:
            throw Error(fmt::format("backend '{}' is not available in this version of ctbpf yet; "
                                    "use --backend tracepoint or auto",
                                    backend_name(requested)));
        case Backend::Auto:
            if (tracepoint_ok) {
                std::string why = "tracepoint + netfilter hooks: ";
                why += f.fentry ? "fentry works here but its backend is not built yet" :
                       f.kprobes ? "kprobes work here but that backend is not built yet"
                                 : "no fentry and no kprobes on this kernel";
                return {Backend::Tracepoint, why};
            }
            throw Error("no backend can run on this kernel: " + tracepoint_missing());
    }
    throw Error("unknown backend");
}

void require_privileges(bool need_setns) {
    std::ifstream in("/proc/self/status");
    std::string line;
    unsigned long long eff = 0;
    while (std::getline(in, line))
        if (line.rfind("CapEff:", 0) == 0) eff = std::stoull(line.substr(7), nullptr, 16);
    auto has = [&](int cap) { return (eff >> cap) & 1ull; };
    constexpr int kNetAdmin = 12, kSysAdmin = 21, kPerfmon = 38, kBpf = 39;
    std::string missing;
    auto need = [&](bool ok, const char* name) {
        if (!ok) missing += missing.empty() ? name : std::string(", ") + name;
    };
    need(has(kBpf) || has(kSysAdmin), "CAP_BPF");
    need(has(kPerfmon) || has(kSysAdmin), "CAP_PERFMON");
    need(has(kNetAdmin), "CAP_NET_ADMIN");
    if (need_setns) need(has(kSysAdmin), "CAP_SYS_ADMIN (to enter another network namespace)");
    if (!missing.empty())
        throw Error("missing privileges: " + missing + "; run as root or grant them (e.g. setcap or "
                    "systemd AmbientCapabilities=)");
}

}  // namespace ctbpf
