// Kernel probing and backend choice driven by a fake kernel (KernelFacts): which function
// each role hooks, what is noted, which backend is chosen and why one cannot run.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "ctbpf/error.h"
#include "ctbpf/kernel.h"

namespace ctbpf {
namespace {

// Every candidate function of every role, as a kernel with conntrack loaded has them.
const std::set<std::string> kConntrackFuncs = {
    "__nf_conntrack_confirm", "nf_conntrack_in", "nf_conntrack_free", "nf_ct_destroy", "destroy_conntrack",
    "early_drop", "__nf_conntrack_alloc", "nf_conntrack_hash_check_insert"};

// A Debian 6.12 cloud kernel with everything: BTF, ring buffer, netfilter links, kprobes,
// working fentry and conntrack loaded. Tests take things away.
struct FakeKernel final : KernelFacts {
    std::string rel = "6.12.12-cloud-amd64";
    bool btf = true, btf_parses = true, pmu = true, rb = true, nf = true, tp = true;
    std::string fentry_error;  // "" : the test program loads and attaches
    bool module_without_btf = false;
    std::set<std::string> btf_funcs = kConntrackFuncs;
    KallsymsCounts syms;
    int fentry_tests = 0, kallsyms_reads = 0;

    FakeKernel() {
        for (const auto& f : kConntrackFuncs) syms[f] = 1;
        syms["early_drop_list"] = 1;  // a neighbour whose name starts the same
    }
    std::string release() override { return rel; }
    bool btf_file() override { return btf; }
    bool btf_loads() override { return btf_parses; }
    bool kprobe_pmu() override { return pmu; }
    bool ringbuf() override { return rb; }
    bool netfilter_prog() override { return nf; }
    bool tp_btf() override { return tp; }
    bool btf_function(const std::string& name) override { return btf_funcs.count(name) > 0; }
    std::string fentry_test() override {
        ++fentry_tests;
        return fentry_error;
    }
    bool conntrack_module_without_btf() override { return module_without_btf; }
    KallsymsCounts kallsyms_text() override {
        ++kallsyms_reads;
        return syms;
    }

    // The function is gone from this kernel build (inlined everywhere, or renamed).
    void remove(const std::string& fn) {
        btf_funcs.erase(fn);
        syms.erase(fn);
    }
    // Only a compiler-made copy is left: kallsyms names it, BTF has no function for it.
    void isra(const std::string& fn) {
        remove(fn);
        syms[fn + ".isra.0"] = 1;
    }
    // The project's own machines: 6.18, no kprobes, fentry refused.
    void like_host() {
        rel = "6.18.1";
        pmu = false;
        fentry_error = "test program refused to load (Operation not permitted)";
    }
};

const FunctionHook& hook(const KernelFeatures& f, const std::string& role) {
    for (const auto& h : f.hooks)
        if (h.role == role) return h;
    static const FunctionHook none;
    ADD_FAILURE() << "no role " << role;
    return none;
}

bool has_note(const KernelFeatures& f, const std::string& part) {
    return std::any_of(f.notes.begin(), f.notes.end(),
                       [&](const std::string& n) { return n.find(part) != std::string::npos; });
}

std::string error_of(const KernelFeatures& f, Backend b) {
    try {
        choose_backend(f, b);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

#define EXPECT_CONTAINS(hay, needle) EXPECT_NE(std::string(hay).find(needle), std::string::npos) << (hay)

TEST(ProbeKernel, EverythingAvailableResolvesEachRoleToItsFirstCandidate) {
    FakeKernel k;
    const KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(f.release, "6.12.12-cloud-amd64");
    EXPECT_EQ(f.major, 6);
    EXPECT_EQ(f.minor, 12);
    EXPECT_TRUE(f.btf && f.ringbuf && f.tp_btf && f.netfilter_link && f.kprobes && f.fentry);
    EXPECT_TRUE(f.notes.empty()) << f.notes.front();
    ASSERT_EQ(f.hooks.size(), 6u);
    const std::pair<const char*, const char*> expected[] = {
        {"insert", "__nf_conntrack_confirm"}, {"drop", "nf_conntrack_in"},
        {"destroy", "nf_conntrack_free"},     {"early_drop", "early_drop"},
        {"table_full", "__nf_conntrack_alloc"}, {"netlink_insert", "nf_conntrack_hash_check_insert"}};
    for (const auto& [role, fn] : expected) {
        EXPECT_EQ(hook(f, role).fentry, fn) << role;
        EXPECT_EQ(hook(f, role).kprobe, fn) << role;
    }
    for (const char* role : {"insert", "drop", "destroy"}) EXPECT_TRUE(hook(f, role).required) << role;
    for (const char* role : {"early_drop", "table_full", "netlink_insert"}) {
        EXPECT_FALSE(hook(f, role).required) << role;
        EXPECT_FALSE(hook(f, role).without.empty()) << role;
    }
}

TEST(ChooseBackend, FentryPreferredAndDecidesTableFullInTheKernel) {
    FakeKernel k;
    const BackendChoice c = choose_backend(probe_kernel(k), Backend::Auto);
    EXPECT_EQ(c.backend, Backend::Fentry);
    EXPECT_TRUE(c.not_covered.empty());
    EXPECT_TRUE(c.kernel_drop_reason);
    EXPECT_EQ(drop_attribution(c), "table full decided in the kernel (allocation failure)");
    EXPECT_CONTAINS(c.why, "__nf_conntrack_confirm");
}

TEST(ChooseBackend, KprobeWhenFentryIsRefused) {
    FakeKernel k;
    k.fentry_error = "test program refused to load (Operation not permitted)";
    const KernelFeatures f = probe_kernel(k);
    EXPECT_FALSE(f.fentry);
    EXPECT_TRUE(has_note(f, "fentry: test program refused to load (Operation not permitted)"));
    const BackendChoice c = choose_backend(f, Backend::Auto);
    EXPECT_EQ(c.backend, Backend::Kprobe);
    EXPECT_TRUE(c.kernel_drop_reason);
    EXPECT_CONTAINS(c.why, "refused to load");
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "refused to load (Operation not permitted)");
}

TEST(ChooseBackend, TracepointOnAKernelWithoutKprobesOrFentry) {
    FakeKernel k;
    k.like_host();
    const KernelFeatures f = probe_kernel(k);
    EXPECT_FALSE(f.kprobes);
    EXPECT_EQ(k.kallsyms_reads, 0) << "kallsyms is read only for kprobes";
    EXPECT_TRUE(has_note(f, "kprobes: no kprobe PMU"));
    for (const auto& h : f.hooks) EXPECT_EQ(h.kprobe, "") << h.role;
    const BackendChoice c = choose_backend(f, Backend::Auto);
    EXPECT_EQ(c.backend, Backend::Tracepoint);
    EXPECT_FALSE(c.kernel_drop_reason);
    EXPECT_EQ(drop_attribution(c), "table full decided from the table's fill within 1 s of the drop (heuristic)");
    EXPECT_CONTAINS(c.why, "refused to load");
    EXPECT_CONTAINS(c.why, "no kprobe PMU");
    EXPECT_EQ(choose_backend(f, Backend::Tracepoint).backend, Backend::Tracepoint);
    EXPECT_FALSE(choose_backend(f, Backend::Tracepoint).kernel_drop_reason);
}

TEST(ChooseBackend, NoBackendAtAllNamesWhatEachLacks) {
    FakeKernel k;
    k.like_host();
    k.rel = "5.15.0";
    k.nf = false;
    const std::string e = error_of(probe_kernel(k), Backend::Auto);
    EXPECT_CONTAINS(e, "no backend can run");
    EXPECT_CONTAINS(e, "refused to load");
    EXPECT_CONTAINS(e, "no kprobe PMU");
    EXPECT_CONTAINS(e, "netfilter links (kernel 6.4+)");
}

TEST(ChooseBackend, NoBtfIsRefused) {
    FakeKernel k;
    k.btf = false;
    const KernelFeatures f = probe_kernel(k);
    EXPECT_TRUE(has_note(f, "no kernel BTF"));
    EXPECT_TRUE(f.hooks.empty());
    EXPECT_FALSE(f.fentry);
    EXPECT_EQ(k.fentry_tests, 0);
    for (Backend b : {Backend::Auto, Backend::Fentry, Backend::Kprobe, Backend::Tracepoint})
        EXPECT_CONTAINS(error_of(f, b), "CONFIG_DEBUG_INFO_BTF");
}

TEST(ChooseBackend, BtfThatDoesNotParseLeavesFentryAndTracepointsOff) {
    FakeKernel k;
    k.btf_parses = false;
    const KernelFeatures f = probe_kernel(k);
    EXPECT_FALSE(f.fentry);
    EXPECT_FALSE(f.tp_btf);
    EXPECT_EQ(k.fentry_tests, 0);
    for (const auto& h : f.hooks) EXPECT_EQ(h.fentry, "") << h.role;
    // kallsyms still gives kprobes their functions.
    EXPECT_EQ(choose_backend(f, Backend::Auto).backend, Backend::Kprobe);
}

TEST(ChooseBackend, NoRingBufferIsRefused) {
    FakeKernel k;
    k.rb = false;
    const KernelFeatures f = probe_kernel(k);
    EXPECT_TRUE(has_note(f, "no BPF ring buffer"));
    for (Backend b : {Backend::Auto, Backend::Fentry, Backend::Kprobe, Backend::Tracepoint})
        EXPECT_CONTAINS(error_of(f, b), "ring buffer is not available");
}

TEST(ChooseBackend, KernelsBelow58AreRefused) {
    for (const char* rel : {"5.7.19", "5.4.0-150-generic", "4.19.0-27-amd64", "3.10.0"}) {
        FakeKernel k;
        k.rel = rel;
        const std::string e = error_of(probe_kernel(k), Backend::Auto);
        EXPECT_CONTAINS(e, "too old");
        EXPECT_CONTAINS(e, "5.8");
        EXPECT_CONTAINS(e, rel);
    }
    FakeKernel k;
    k.rel = "5.8.0";
    k.nf = false;
    EXPECT_EQ(choose_backend(probe_kernel(k), Backend::Auto).backend, Backend::Fentry);
}

TEST(ChooseBackend, RequiredHookMissingRulesTheFunctionBackendsOut) {
    FakeKernel k;
    k.remove("__nf_conntrack_confirm");
    const KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(hook(f, "insert").fentry, "");
    EXPECT_EQ(hook(f, "insert").kprobe, "");
    EXPECT_TRUE(has_note(f, "fentry: none of __nf_conntrack_confirm found for insert: this backend cannot run"));
    EXPECT_TRUE(has_note(f, "kprobe: none of __nf_conntrack_confirm found for insert: this backend cannot run"));
    EXPECT_EQ(choose_backend(f, Backend::Auto).backend, Backend::Tracepoint);
    for (Backend b : {Backend::Fentry, Backend::Kprobe}) {
        const std::string e = error_of(f, b);
        EXPECT_CONTAINS(e, std::string(backend_name(b)) + ": no function");
        EXPECT_CONTAINS(e, "no function to hook for insert");
    }
}

TEST(ChooseBackend, EveryDestroyCandidateIsTriedInOrder) {
    FakeKernel k;
    k.remove("nf_conntrack_free");
    KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(hook(f, "destroy").fentry, "nf_ct_destroy");
    EXPECT_EQ(hook(f, "destroy").kprobe, "nf_ct_destroy");
    k.remove("nf_ct_destroy");
    f = probe_kernel(k);
    EXPECT_EQ(hook(f, "destroy").fentry, "destroy_conntrack");
    k.remove("destroy_conntrack");
    f = probe_kernel(k);
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "no function to hook for destroy");
}

TEST(ChooseBackend, OptionalHookMissingIsListedAsNotCovered) {
    FakeKernel k;
    k.remove("nf_conntrack_hash_check_insert");
    const KernelFeatures f = probe_kernel(k);
    EXPECT_TRUE(has_note(f, "fentry: none of nf_conntrack_hash_check_insert found for netlink_insert"));
    const BackendChoice c = choose_backend(f, Backend::Auto);
    EXPECT_EQ(c.backend, Backend::Fentry);
    ASSERT_EQ(c.not_covered.size(), 1u);
    EXPECT_EQ(c.not_covered[0], hook(f, "netlink_insert").without);
    EXPECT_CONTAINS(c.why, "not covered: entries created through ctnetlink");
    EXPECT_TRUE(c.kernel_drop_reason);
}

TEST(ChooseBackend, WithoutTheAllocatorDropReasonsAreLeftToUserSpace) {
    FakeKernel k;
    k.remove("__nf_conntrack_alloc");
    const KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(hook(f, "table_full").fentry, "");
    EXPECT_EQ(hook(f, "early_drop").fentry, "early_drop");
    for (Backend b : {Backend::Auto, Backend::Fentry, Backend::Kprobe}) {
        const BackendChoice c = choose_backend(f, b);
        EXPECT_FALSE(c.kernel_drop_reason) << backend_name(b);
        ASSERT_EQ(c.not_covered.size(), 1u);
        EXPECT_EQ(c.not_covered[0], hook(f, "table_full").without);
        EXPECT_CONTAINS(drop_attribution(c), "heuristic");
    }
}

TEST(ChooseBackend, EarlyDropFallsBackToTheAllocatorThenToTheRule) {
    FakeKernel k;
    k.remove("early_drop");
    KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(hook(f, "early_drop").fentry, "__nf_conntrack_alloc");
    EXPECT_EQ(hook(f, "early_drop").kprobe, "__nf_conntrack_alloc");
    k.remove("__nf_conntrack_alloc");
    f = probe_kernel(k);
    const BackendChoice c = choose_backend(f, Backend::Kprobe);
    EXPECT_EQ(c.not_covered.size(), 2u);  // early_drop and table_full
    EXPECT_FALSE(c.kernel_drop_reason);
}

TEST(ChooseBackend, RenamedCopyIsTakenByKprobesOnlyWhereNoArgumentIsRead) {
    FakeKernel k;
    k.isra("early_drop");  // early_drop's hook reads no argument
    KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(hook(f, "early_drop").kprobe, "early_drop.isra.0");
    // fentry attaches by BTF name: it takes the next candidate.
    EXPECT_EQ(hook(f, "early_drop").fentry, "__nf_conntrack_alloc");

    FakeKernel k2;
    k2.isra("nf_conntrack_hash_check_insert");  // reads ct: a copy's arguments may differ
    f = probe_kernel(k2);
    EXPECT_EQ(hook(f, "netlink_insert").kprobe, "");
    EXPECT_EQ(hook(f, "netlink_insert").fentry, "");
    EXPECT_EQ(choose_backend(f, Backend::Kprobe).not_covered.size(), 1u);

    FakeKernel k3;
    k3.isra("nf_conntrack_in");  // required, and its arguments are read
    k3.fentry_error = "unused";
    f = probe_kernel(k3);
    EXPECT_EQ(hook(f, "drop").kprobe, "");
    EXPECT_EQ(hook(f, "drop").fentry, "");
    EXPECT_TRUE(has_note(f, "fentry: nf_conntrack_in not in kernel BTF"));
    EXPECT_EQ(k3.fentry_tests, 0) << "no fentry test program without its target in BTF";
    EXPECT_CONTAINS(error_of(f, Backend::Kprobe), "no function to hook for drop");
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "nf_conntrack_in not in kernel BTF");
    EXPECT_EQ(choose_backend(f, Backend::Auto).backend, Backend::Tracepoint);
}

// Debian 11's 5.10: nf_conntrack is a module without BTF (no CONFIG_DEBUG_INFO_BTF_MODULES
// before 5.11), kprobes work, no netfilter links.
TEST(ChooseBackend, ModuleWithoutBtfRefusesFentryByNameAndUsesKprobes) {
    FakeKernel k;
    k.rel = "5.10.0-32-cloud-amd64";
    k.nf = false;
    k.btf_funcs.clear();
    k.module_without_btf = true;
    const KernelFeatures f = probe_kernel(k);
    EXPECT_EQ(k.fentry_tests, 0);
    EXPECT_FALSE(has_note(f, "nf_conntrack is not loaded")) << "kallsyms shows it is";
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "nf_conntrack module has no BTF");
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "CONFIG_DEBUG_INFO_BTF_MODULES");
    const BackendChoice c = choose_backend(f, Backend::Auto);
    EXPECT_EQ(c.backend, Backend::Kprobe);
    EXPECT_CONTAINS(c.why, "nf_conntrack module has no BTF");
    EXPECT_TRUE(c.not_covered.empty());
}

TEST(ChooseBackend, ConntrackNotLoadedIsSaidOnce) {
    FakeKernel k;
    for (const auto& fn : kConntrackFuncs) k.remove(fn);
    const KernelFeatures f = probe_kernel(k);
    EXPECT_TRUE(has_note(f, "nf_conntrack is not loaded"));
    EXPECT_FALSE(has_note(f, "none of")) << "no per-role notes when conntrack is absent";
    EXPECT_EQ(choose_backend(f, Backend::Auto).backend, Backend::Tracepoint);
}

TEST(ChooseBackend, ForcingAnUnavailableBackendNamesWhatIsMissing) {
    FakeKernel host;
    host.like_host();
    const KernelFeatures f = probe_kernel(host);
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "backend 'fentry' cannot run on kernel 6.18.1");
    EXPECT_CONTAINS(error_of(f, Backend::Fentry), "Operation not permitted");
    EXPECT_CONTAINS(error_of(f, Backend::Kprobe), "backend 'kprobe' cannot run on kernel 6.18.1");
    EXPECT_CONTAINS(error_of(f, Backend::Kprobe), "no kprobe PMU (kernel built without CONFIG_KPROBES)");

    FakeKernel old;  // Debian 12's 6.1: no netfilter links yet
    old.rel = "6.1.0-31-cloud-amd64";
    old.nf = false;
    const std::string e = error_of(probe_kernel(old), Backend::Tracepoint);
    EXPECT_CONTAINS(e, "netfilter links (kernel 6.4+)");
    EXPECT_CONTAINS(e, "6.1.0-31-cloud-amd64 has netfilter links: no, tracepoints: yes");

    FakeKernel no_tp;
    no_tp.tp = false;
    const KernelFeatures g = probe_kernel(no_tp);
    EXPECT_TRUE(has_note(g, "tracepoints kfree_skb/kmem_cache_free not in kernel BTF"));
    EXPECT_CONTAINS(error_of(g, Backend::Tracepoint), "tracepoints: no");
}

TEST(KprobeSymbol, ExactNameWhenUnique) {
    const KallsymsCounts syms = {{"early_drop", 1}, {"early_drop.isra.0", 1}, {"dup", 2}, {"dup.isra.0", 1}};
    EXPECT_EQ(kprobe_symbol(syms, "early_drop", true), "early_drop");
    EXPECT_EQ(kprobe_symbol(syms, "early_drop", false), "early_drop");
    // Ambiguous: a kprobe by name would be refused, and a copy is no substitute.
    EXPECT_EQ(kprobe_symbol(syms, "dup", false), "");
    EXPECT_EQ(kprobe_symbol(syms, "dup", true), "");
    EXPECT_EQ(kprobe_symbol(syms, "absent", false), "");
}

TEST(KprobeSymbol, CompilerCopyOnlyWhenAllowedAndUnique) {
    EXPECT_EQ(kprobe_symbol({{"f.isra.0", 1}}, "f", false), "f.isra.0");
    EXPECT_EQ(kprobe_symbol({{"f.constprop.0", 1}}, "f", false), "f.constprop.0");
    EXPECT_EQ(kprobe_symbol({{"f.isra.0", 1}}, "f", true), "");
    EXPECT_EQ(kprobe_symbol({{"f.isra.0", 1}, {"f.constprop.0", 1}}, "f", false), "");
    EXPECT_EQ(kprobe_symbol({{"f.isra.0", 2}}, "f", false), "");
    // Other functions that merely start with the name are not copies of it.
    EXPECT_EQ(kprobe_symbol({{"f_list", 1}, {"f2.isra.0", 1}, {"ff", 1}}, "f", false), "");
    EXPECT_EQ(kprobe_symbol({{"e", 1}, {"f_list", 1}, {"f.isra.0", 1}, {"g", 1}}, "f", false), "f.isra.0");
}

}  // namespace
}  // namespace ctbpf
