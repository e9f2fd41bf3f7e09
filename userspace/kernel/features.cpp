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
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ctbpf/error.h"
#include "ctbpf/kernel.h"
#include "ctbpf/system.h"

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

// What the fentry and kprobe backends hook, best candidate first. Functions move and get
// inlined between kernels; a role with none found here is either fatal for those backends
// (required) or a gap that is reported.
struct HookSpec {
    const char* role;
    std::vector<const char*> funcs;
    bool reads_args;      // if not, a kprobe may also take a compiler-made copy (name.isra.0)
    const char* without;  // what is lost without it; nullptr: required
};

const std::vector<HookSpec>& hook_specs() {
    static const std::vector<HookSpec> specs = {
        {"insert", {"__nf_conntrack_confirm"}, true, nullptr},
        {"drop", {"nf_conntrack_in"}, true, nullptr},
        {"destroy", {"nf_conntrack_free", "nf_ct_destroy", "destroy_conntrack"}, true, nullptr},
        {"early_drop", {"early_drop", "__nf_conntrack_alloc"}, false,
         "early drops are told apart by the tracepoint backend's rule (an unassured entry freed during "
         "conntrack's hook)"},
        {"table_full", {"__nf_conntrack_alloc"}, true,
         "drops are not marked table-full in the kernel (user space still checks the table's fill)"},
        {"netlink_insert", {"nf_conntrack_hash_check_insert"}, true,
         "entries created through ctnetlink (conntrack -I) are not counted as inserts"},
    };
    return specs;
}

// Kernel BTF: vmlinux, plus the nf_conntrack module's where conntrack is a loaded module.
struct KernelBtf {
    btf* vmlinux = nullptr;
    btf* module = nullptr;  // split on vmlinux
    __u32 module_id = 0;

    KernelBtf() {
        vmlinux = btf__load_vmlinux_btf();
        if (!vmlinux) return;
        for (__u32 id = 0; bpf_btf_get_next_id(id, &id) == 0;) {
            const int fd = bpf_btf_get_fd_by_id(id);
            if (fd < 0) continue;
            char name[64] = {};
            bpf_btf_info info{};
            info.name = reinterpret_cast<__u64>(name);
            info.name_len = sizeof name;
            __u32 len = sizeof info;
            const bool found = bpf_btf_get_info_by_fd(fd, &info, &len) == 0 && std::strcmp(name, "nf_conntrack") == 0;
            close(fd);
            if (found) {
                module = btf__load_from_kernel_by_id_split(id, vmlinux);
                module_id = module ? id : 0;
                break;
            }
        }
    }
    ~KernelBtf() {
        btf__free(module);
        btf__free(vmlinux);
    }
    KernelBtf(const KernelBtf&) = delete;
    KernelBtf& operator=(const KernelBtf&) = delete;

    // The function's BTF id, and the module's BTF object id (0: vmlinux); id 0 if absent.
    std::pair<int, __u32> func(const char* name) const {
        if (module) {
            const int id = btf__find_by_name_kind(module, name, BTF_KIND_FUNC);
            if (id > 0) return {id, static_cast<__u32>(id) < btf__type_cnt(vmlinux) ? 0 : module_id};
        }
        const int id = vmlinux ? btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) : -1;
        return {id > 0 ? id : 0, 0};
    }
};

// libbpf prints its own warnings for probes that are expected to fail.
struct QuietLibbpf {
    libbpf_print_fn_t old = libbpf_set_print(silent_print);
    ~QuietLibbpf() { libbpf_set_print(old); }
    QuietLibbpf() = default;
    QuietLibbpf(const QuietLibbpf&) = delete;
    QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

class RunningKernel final : public KernelFacts {
public:
    std::string release() override {
        utsname u{};
        uname(&u);
        return u.release;
    }
    bool btf_file() override { return access("/sys/kernel/btf/vmlinux", R_OK) == 0; }
    bool btf_loads() override { return kernel_btf().vmlinux != nullptr; }
    bool kprobe_pmu() override { return access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0; }
    bool ringbuf() override {
        const QuietLibbpf quiet;
        return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
    }
    bool netfilter_prog() override {
        const QuietLibbpf quiet;
        return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_NETFILTER, nullptr) == 1;
    }
    bool tp_btf() override {
        const KernelBtf& kb = kernel_btf();
        return kb.vmlinux && btf__find_by_name_kind(kb.vmlinux, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) > 0 &&
               btf__find_by_name_kind(kb.vmlinux, "btf_trace_kmem_cache_free", BTF_KIND_TYPEDEF) > 0;
    }
    bool btf_function(const std::string& name) override { return kernel_btf().func(name.c_str()).first > 0; }

    // Loads "return 0" as an fentry program on nf_conntrack_in and attaches it.
    std::string fentry_test() override {
        const QuietLibbpf quiet;
        const auto [id, obj_id] = kernel_btf().func("nf_conntrack_in");
        if (id <= 0) return "nf_conntrack_in not in kernel BTF";
        const int obj_fd = obj_id ? bpf_btf_get_fd_by_id(obj_id) : 0;
        const bpf_insn prog[] = {
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        };
        LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
                    .attach_btf_id = static_cast<__u32>(id),
                    .attach_btf_obj_fd = static_cast<__u32>(obj_fd > 0 ? obj_fd : 0));
        const int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ctbpf_probe", "GPL", prog, 2, &opts);
        const int load_err = errno;
        if (obj_fd > 0) close(obj_fd);
        if (fd < 0) return fmt::format("test program refused to load ({})", std::strerror(load_err));
        const int link = bpf_link_create(fd, 0, BPF_TRACE_FENTRY, nullptr);
        const int err = errno;
        close(fd);
        if (link < 0) return fmt::format("test program refused to attach ({})", std::strerror(err));
        close(link);
        return "";
    }

    bool conntrack_module_without_btf() override {
        // initstate exists for loadable modules only, not for built-in ones.
        return access("/sys/module/nf_conntrack/initstate", R_OK) == 0 &&
               access("/sys/kernel/btf/nf_conntrack", R_OK) != 0;
    }

    KallsymsCounts kallsyms_text() override {
        KallsymsCounts syms;
        std::ifstream in("/proc/kallsyms");
        std::string addr, type, name;
        while (in >> addr >> type >> name) {
            if (type == "t" || type == "T") syms[name]++;
            in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
        }
        return syms;
    }

private:
    // Loaded once, on first use: only when the kernel has a BTF file.
    const KernelBtf& kernel_btf() {
        if (!btf_) {
            const QuietLibbpf quiet;
            btf_ = std::make_unique<KernelBtf>();
        }
        return *btf_;
    }
    std::unique_ptr<KernelBtf> btf_;
};

// Which function each backend hooks per role, and a note for each gap of a usable backend.
void find_hooks(KernelFeatures& f, KernelFacts& k, bool btf_ok) {
    const auto syms = f.kprobes ? k.kallsyms_text() : KallsymsCounts{};
    auto in_btf = [&](const char* fn) { return btf_ok && k.btf_function(fn); };
    const bool conntrack_seen = in_btf("nf_conntrack_in") || syms.count("nf_conntrack_in");
    for (const auto& spec : hook_specs()) {
        FunctionHook h{spec.role, "", "", spec.without == nullptr, spec.without ? spec.without : ""};
        for (const char* fn : spec.funcs) {
            // fentry attaches by BTF name: a renamed copy (.isra) has no BTF of its own.
            if (h.fentry.empty() && in_btf(fn)) h.fentry = fn;
            if (h.kprobe.empty() && f.kprobes) h.kprobe = kprobe_symbol(syms, fn, spec.reads_args);
        }
        auto gap = [&](const char* backend, bool usable, const std::string& got) {
            if (!usable || !got.empty() || !conntrack_seen) return;
            f.notes.push_back(fmt::format("{}: none of {} found for {}: {}", backend,
                                          fmt::join(spec.funcs, "/"), spec.role,
                                          spec.without ? spec.without : "this backend cannot run"));
        };
        gap("fentry", f.fentry, h.fentry);
        gap("kprobe", f.kprobes, h.kprobe);
        f.hooks.push_back(std::move(h));
    }
    if (!conntrack_seen && (f.fentry || f.kprobes))
        f.notes.push_back("nf_conntrack is not loaded: the fentry and kprobe backends hook its functions "
                          "(modprobe nf_conntrack, or any ruleset using conntrack, loads it)");
}

}  // namespace

std::string kprobe_symbol(const KallsymsCounts& syms, const std::string& name, bool exact_only) {
    if (auto it = syms.find(name); it != syms.end()) return it->second == 1 ? name : "";
    if (exact_only) return "";
    std::string found;
    for (auto it = syms.lower_bound(name + "."); it != syms.end() && it->first.rfind(name + ".", 0) == 0; ++it) {
        if (!found.empty() || it->second != 1) return "";
        found = it->first;
    }
    return found;
}

std::unique_ptr<KernelFacts> running_kernel_facts() { return std::make_unique<RunningKernel>(); }

KernelFeatures probe_kernel() { return probe_kernel(*running_kernel_facts()); }

KernelFeatures probe_kernel(KernelFacts& k) {
    KernelFeatures f;
    f.release = k.release();
    std::sscanf(f.release.c_str(), "%d.%d", &f.major, &f.minor);

    f.btf = k.btf_file();
    if (!f.btf) f.notes.push_back("no kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
    f.kprobes = k.kprobe_pmu();
    if (!f.kprobes) f.notes.push_back("kprobes: no kprobe PMU (kernel built without CONFIG_KPROBES)");

    f.ringbuf = k.ringbuf();
    if (!f.ringbuf) f.notes.push_back("no BPF ring buffer (needs 5.8+ and CAP_BPF)");
    f.netfilter_link = k.netfilter_prog();
    if (!f.netfilter_link) f.notes.push_back("no BPF netfilter programs (needs 6.4+ and CAP_BPF)");

    if (f.btf) {
        const bool btf_ok = k.btf_loads();
        if (btf_ok) {
            f.tp_btf = k.tp_btf();
            if (!f.tp_btf) f.notes.push_back("tracepoints kfree_skb/kmem_cache_free not in kernel BTF");
            if (!k.btf_function("nf_conntrack_in")) {
                // fentry attaches by BTF id: a module without BTF has none to give (5.10 and
                // older, where the kprobe backend still reads nf_conn through vmlinux BTF).
                if (k.conntrack_module_without_btf())
                    f.notes.push_back("fentry: the nf_conntrack module has no BTF (kernel without "
                                      "CONFIG_DEBUG_INFO_BTF_MODULES, 5.11+), so fentry cannot attach to its functions");
                else
                    f.notes.push_back("fentry: nf_conntrack_in not in kernel BTF (is nf_conntrack loaded?)");
            } else if (const std::string why = k.fentry_test(); !why.empty()) {
                f.notes.push_back("fentry: " + why);
            } else {
                f.fentry = true;
            }
        }
        find_hooks(f, k, btf_ok);
    }
    return f;
}

namespace {

// Why a function backend cannot run here ("" if it can), and what it would not see.
std::string function_backend_missing(const KernelFeatures& f, Backend b, std::vector<std::string>* gaps) {
    const bool fentry = b == Backend::Fentry;
    const std::string_view name = backend_name(b);
    if (!(fentry ? f.fentry : f.kprobes)) {
        for (const auto& n : f.notes)
            if (n.rfind(fentry ? "fentry:" : "kprobes:", 0) == 0) return n;
        return fmt::format("{}: not available", name);
    }
    std::string missing;
    for (const auto& h : f.hooks) {
        if (!(fentry ? h.fentry : h.kprobe).empty()) continue;
        if (h.required) missing += fmt::format("{}{}", missing.empty() ? "" : ", ", h.role);
        else if (gaps) gaps->push_back(h.without);
    }
    if (f.hooks.empty()) return fmt::format("{}: conntrack's functions were not looked up (no kernel BTF)", name);
    if (!missing.empty()) return fmt::format("{}: no function to hook for {} (see ctbpf probe)", name, missing);
    return "";
}

}  // namespace

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
    auto function_backend = [&](Backend b, const std::string& why) {
        std::vector<std::string> funcs;
        for (const auto& h : f.hooks)
            if (const auto& fn = b == Backend::Fentry ? h.fentry : h.kprobe; !fn.empty()) funcs.push_back(fn);
        BackendChoice c{b, fmt::format("{} [{}]", why, fmt::join(funcs, ", ")), {}};
        for (const auto& h : f.hooks)
            if (h.role == "table_full") c.kernel_drop_reason = !(b == Backend::Fentry ? h.fentry : h.kprobe).empty();
        function_backend_missing(f, b, &c.not_covered);
        for (const auto& g : c.not_covered) c.why += "; not covered: " + g;
        return c;
    };
    const std::string fentry_missing = function_backend_missing(f, Backend::Fentry, nullptr);
    const std::string kprobe_missing = function_backend_missing(f, Backend::Kprobe, nullptr);
    switch (requested) {
        case Backend::Tracepoint:
            if (!tracepoint_ok) throw Error(tracepoint_missing());
            return {Backend::Tracepoint, "requested with --backend tracepoint", {}};
        case Backend::Fentry:
        case Backend::Kprobe: {
            const std::string& missing = requested == Backend::Fentry ? fentry_missing : kprobe_missing;
            if (!missing.empty())
                throw Error(fmt::format("backend '{}' cannot run on kernel {}: {}", backend_name(requested),
                                        f.release, missing));
            return function_backend(requested, fmt::format("requested with --backend {}", backend_name(requested)));
        }
        case Backend::Auto:
            if (fentry_missing.empty())
                return function_backend(Backend::Fentry, "fentry/fexit on conntrack's functions (preferred over "
                                                         "kprobe and tracepoint: typed arguments, least overhead)");
            if (kprobe_missing.empty())
                return function_backend(Backend::Kprobe,
                                        "kprobes on conntrack's functions (" + fentry_missing + ")");
            if (tracepoint_ok)
                return {Backend::Tracepoint,
                        fmt::format("tracepoint + netfilter hooks ({}; {})",
                                    fentry_missing, kprobe_missing),
                        {}};
            throw Error(fmt::format("no backend can run on this kernel: {}; {}; {}", fentry_missing, kprobe_missing,
                                    tracepoint_missing()));
    }
    throw Error("unknown backend");
}

std::string_view drop_attribution(const BackendChoice& c) {
    return c.kernel_drop_reason ? "table full decided in the kernel (allocation failure)"
                                : "table full decided from the table's fill within 1 s of the drop (heuristic)";
}

void require_privileges(bool need_setns) {
    auto has = [](int cap) { return has_capability(cap); };
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
