// Unit tests for naming workloads (userspace/system/workload.cpp): cgroup paths of every
// runtime and driver layout, the runtimes' state files, and the namespace scan on a fake
// /proc, /run/netns and cgroup tree in a temporary directory; one test on the real system.
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "ctbpf/workload.h"

namespace {

namespace fs = std::filesystem;
using namespace ctbpf;

const std::string kId1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string kId3 = "aaaaaaaaaaaabbbbbbbbbbbbccccccccccccddddddddddddeeeeeeeeeeeeffff";
const std::string kUid = "8f3c1d2e-0b4a-4c5d-9e6f-7a8b9c0d1e2f";
const std::string kUidUnderscores = "8f3c1d2e_0b4a_4c5d_9e6f_7a8b9c0d1e2f";

class TempTree : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ctbpf-workload-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& rel, const std::string& text) {
        fs::create_directories((dir_ / rel).parent_path());
        std::ofstream(dir_ / rel) << text;
    }
    void link(const std::string& rel, const std::string& target) {
        fs::create_directories((dir_ / rel).parent_path());
        fs::create_symlink(target, dir_ / rel);
    }
    // One process of a fake /proc.
    void proc(int pid, uint32_t inum, const std::string& comm, const std::string& cgroup) {
        const std::string p = "proc/" + std::to_string(pid);
        link(p + "/ns/net", "net:[" + std::to_string(inum) + "]");
        write(p + "/comm", comm + "\n");
        write(p + "/cgroup", "0::" + cgroup + "\n");
    }
    uint64_t inode(const std::string& rel) {
        struct stat st {};
        EXPECT_EQ(stat((dir_ / rel).c_str(), &st), 0) << rel;
        return st.st_ino;
    }
    WorkloadResolver::Roots roots() {
        return {(dir_ / "proc").string(), (dir_ / "run/netns").string(), (dir_ / "cgroup").string(),
                (dir_ / "root").string()};
    }

    fs::path dir_;
};

// --- cgroup paths --------------------------------------------------------------------------

TEST(ParseCgroupPath, DockerBothDrivers) {
    auto w = parse_cgroup_path("/docker/" + kId1);
    EXPECT_EQ(w.kind, "docker");
    EXPECT_EQ(w.container_id, kId1);
    EXPECT_EQ(w.unit, "");
    EXPECT_EQ(w.label(), "docker 0123456789ab");

    w = parse_cgroup_path("/system.slice/docker-" + kId1 + ".scope");
    EXPECT_EQ(w.kind, "docker");
    EXPECT_EQ(w.container_id, kId1);
    EXPECT_EQ(w.unit, "docker-" + kId1 + ".scope");
    EXPECT_EQ(w.label(), "docker 0123456789ab");

    // systemd inside the container, docker-in-docker: the outer container is the workload.
    w = parse_cgroup_path("/system.slice/docker-" + kId1 + ".scope/init.scope");
    EXPECT_EQ(w.container_id, kId1);
    EXPECT_EQ(w.unit, "docker-" + kId1 + ".scope");
    w = parse_cgroup_path("/docker/" + kId1 + "/docker/" + kId2);
    EXPECT_EQ(w.container_id, kId1);
}

TEST(ParseCgroupPath, KubepodsCgroupfsDriver) {
    auto w = parse_cgroup_path("/kubepods/burstable/pod" + kUid + "/" + kId1);
    EXPECT_EQ(w.kind, "kubepods");
    EXPECT_EQ(w.qos, "burstable");
    EXPECT_EQ(w.pod_uid, kUid);
    EXPECT_EQ(w.container_id, kId1);
    EXPECT_EQ(w.label(), "pod " + kUid);

    w = parse_cgroup_path("/kubepods/pod" + kUid + "/" + kId1);
    EXPECT_EQ(w.qos, "guaranteed");
    EXPECT_EQ(w.pod_uid, kUid);

    w = parse_cgroup_path("/kubepods/besteffort/pod" + kUid + "/crio-" + kId2);
    EXPECT_EQ(w.kind, "cri-o");
    EXPECT_EQ(w.qos, "besteffort");
    EXPECT_EQ(w.container_id, kId2);

    w = parse_cgroup_path("/kubepods/besteffort/pod" + kUid);  // the pod itself
    EXPECT_EQ(w.kind, "kubepods");
    EXPECT_EQ(w.pod_uid, kUid);
    EXPECT_EQ(w.container_id, "");
}

TEST(ParseCgroupPath, KubepodsSystemdDriver) {
    const std::string pod =
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscores + ".slice";
    auto w = parse_cgroup_path(pod + "/cri-containerd-" + kId1 + ".scope");
    EXPECT_EQ(w.kind, "containerd");
    EXPECT_EQ(w.qos, "burstable");
    EXPECT_EQ(w.pod_uid, kUid);
    EXPECT_EQ(w.container_id, kId1);
    EXPECT_EQ(w.unit, "cri-containerd-" + kId1 + ".scope");
    EXPECT_EQ(w.label(), "pod " + kUid);
    w.pod_name = "web-0";
    w.pod_namespace = "shop";
    EXPECT_EQ(w.label(), "pod shop/web-0");

    w = parse_cgroup_path("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidUnderscores +
                          ".slice/crio-" + kId2 + ".scope");
    EXPECT_EQ(w.kind, "cri-o");
    EXPECT_EQ(w.qos, "besteffort");
    EXPECT_EQ(w.pod_uid, kUid);
    EXPECT_EQ(w.container_id, kId2);

    w = parse_cgroup_path("/kubepods.slice/kubepods-pod" + kUidUnderscores + ".slice");
    EXPECT_EQ(w.kind, "kubepods");
    EXPECT_EQ(w.qos, "guaranteed");
    EXPECT_EQ(w.pod_uid, kUid);

    w = parse_cgroup_path("/system.slice/crio-" + kId2 + ".scope");
    EXPECT_EQ(w.label(), "cri-o fedcba987654");
}

TEST(ParseCgroupPath, Podman) {
    auto w = parse_cgroup_path("/machine.slice/libpod-" + kId3 + ".scope/container");
    EXPECT_EQ(w.kind, "podman");
    EXPECT_EQ(w.container_id, kId3);
    EXPECT_EQ(w.label(), "podman aaaaaaaaaaaa");
    // Rootless podman, below the user's systemd.
    w = parse_cgroup_path("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId3 + ".scope");
    EXPECT_EQ(w.kind, "podman");
    EXPECT_EQ(w.container_id, kId3);
    // conmon's scope is not the container.
    w = parse_cgroup_path("/machine.slice/libpod-conmon-" + kId3 + ".scope");
    EXPECT_EQ(w.kind, "systemd");
    EXPECT_EQ(w.container_id, "");
}

TEST(ParseCgroupPath, SystemdUsersRootAndUnknown) {
    auto w = parse_cgroup_path("/system.slice/nginx.service");
    EXPECT_EQ(w.kind, "systemd");
    EXPECT_EQ(w.unit, "nginx.service");
    EXPECT_EQ(w.label(), "nginx.service");

    w = parse_cgroup_path("/user.slice/user-1000.slice/session-3.scope");
    EXPECT_EQ(w.kind, "user");
    EXPECT_EQ(w.unit, "session-3.scope");
    EXPECT_EQ(w.label(), "session-3.scope");
    w = parse_cgroup_path("/user.slice/user-1000.slice/user@1000.service/app.slice/foot.service");
    EXPECT_EQ(w.kind, "user");
    EXPECT_EQ(w.unit, "foot.service");
    w = parse_cgroup_path("/user.slice/user-1000.slice");
    EXPECT_EQ(w.kind, "user");
    EXPECT_EQ(w.label(), "/user.slice/user-1000.slice");

    EXPECT_EQ(parse_cgroup_path("/").kind, "");
    EXPECT_EQ(parse_cgroup_path("/").label(), "/");
    EXPECT_EQ(parse_cgroup_path("").label(), "/");
    w = parse_cgroup_path("/batch/job7");
    EXPECT_EQ(w.kind, "");
    EXPECT_EQ(w.label(), "/batch/job7");
    // Not a container id (too short, upper case): a unit like any other.
    w = parse_cgroup_path("/system.slice/docker-0123abcd.scope");
    EXPECT_EQ(w.kind, "systemd");
    EXPECT_EQ(w.container_id, "");
    w = parse_cgroup_path("/docker/0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
    EXPECT_EQ(w.container_id, "");
}

// --- runtime state files -------------------------------------------------------------------

using RuntimeNames = TempTree;

TEST_F(RuntimeNames, ContainerdCriOAndDocker) {
    const std::string root = (dir_ / "root").string();
    write("root/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId1 + "/config.json",
          R"({"ociVersion":"1.1.0","process":{"args":["/pause"]},"annotations":{
              "io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"web-0",
              "io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"x"}})");
    auto w = parse_cgroup_path("/kubepods.slice/kubepods-pod" + kUidUnderscores + ".slice/cri-containerd-" + kId1 +
                               ".scope");
    EXPECT_TRUE(read_runtime_names(w, root));
    EXPECT_EQ(w.pod_name, "web-0");
    EXPECT_EQ(w.pod_namespace, "shop");
    EXPECT_EQ(w.label(), "pod shop/web-0");

    write("root/run/containers/storage/overlay-containers/" + kId2 + "/userdata/config.json",
          R"({"annotations":{"io.kubernetes.pod.name":"dns-1","io.kubernetes.pod.namespace":"kube-system"}})");
    // The cgroupfs driver does not name the runtime: every runtime's state is tried.
    w = parse_cgroup_path("/kubepods/burstable/pod" + kUid + "/" + kId2);
    EXPECT_TRUE(read_runtime_names(w, root));
    EXPECT_EQ(w.label(), "pod kube-system/dns-1");

    write("root/var/lib/docker/containers/" + kId3 + "/config.v2.json",
          R"({"ID":")" + kId3 + R"(","Name":"/web","Config":{"Labels":{"maintainer":"x"}}})");
    w = parse_cgroup_path("/system.slice/docker-" + kId3 + ".scope");
    EXPECT_TRUE(read_runtime_names(w, root));
    EXPECT_EQ(w.container_name, "web");
    EXPECT_EQ(w.pod_name, "");
    EXPECT_EQ(w.label(), "docker web");

    // dockershim: the pod's names are labels of the docker container.
    write("root/var/lib/docker/containers/" + kId1 + "/config.v2.json",
          R"({"Name":"/k8s_app_api-7_prod_u_0","Config":{"Labels":{"io.kubernetes.pod.name":"api-7",
              "io.kubernetes.pod.namespace":"prod"}}})");
    w = parse_cgroup_path("/docker/" + kId1);
    EXPECT_TRUE(read_runtime_names(w, root));
    EXPECT_EQ(w.label(), "pod prod/api-7");
}

TEST_F(RuntimeNames, MissingOrMalformedStaysUnknown) {
    const std::string root = (dir_ / "root").string();
    auto w = parse_cgroup_path("/system.slice/docker-" + kId1 + ".scope");
    EXPECT_FALSE(read_runtime_names(w, root));  // no file
    EXPECT_EQ(w.label(), "docker 0123456789ab");

    write("root/var/lib/docker/containers/" + kId1 + "/config.v2.json", R"({"Name":"/web","Config":{)");
    EXPECT_FALSE(read_runtime_names(w, root));
    EXPECT_EQ(w.container_name, "");

    // Well-formed JSON of the wrong shape: nothing is taken from it.
    write("root/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId2 + "/config.json",
          R"({"annotations":{"io.kubernetes.cri.sandbox-name":42,"io.kubernetes.cri.sandbox-namespace":["a"]}})");
    w = parse_cgroup_path("/kubepods.slice/cri-containerd-" + kId2 + ".scope");
    EXPECT_TRUE(read_runtime_names(w, root));
    EXPECT_EQ(w.pod_name, "");
    EXPECT_EQ(w.pod_namespace, "");
    write("root/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId2 + "/config.json", "[1,2]");
    EXPECT_FALSE(read_runtime_names(w, root));

    // Podman keeps no pod names; a path without a container reads nothing.
    w = parse_cgroup_path("/machine.slice/libpod-" + kId3 + ".scope");
    EXPECT_FALSE(read_runtime_names(w, root));
    w = parse_cgroup_path("/system.slice/nginx.service");
    EXPECT_FALSE(read_runtime_names(w, root));
}

// --- the namespace scan --------------------------------------------------------------------

using Resolver = TempTree;

constexpr uint32_t kHost = 4026531840, kDocker = 4026532001, kPod = 4026532002, kCni = 4026532003,
                   kBusy = 4026532004, kSpaced = 4026532005;

TEST_F(Resolver, NamesNamespacesFromAFakeProc) {
    const std::string pod =
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidUnderscores + ".slice";
    proc(1, kHost, "systemd", "/init.scope");
    proc(2, kHost, "kthreadd", "/");
    proc(100, kDocker, "sh", "/");  // entered with docker exec from the root cgroup
    proc(101, kDocker, "nginx", "/system.slice/docker-" + kId3 + ".scope");
    proc(102, kDocker, "nginx", "/system.slice/docker-" + kId3 + ".scope");
    proc(200, kPod, "pause", pod + "/cri-containerd-" + kId1 + ".scope");
    proc(201, kPod, "api", pod + "/cri-containerd-" + kId2 + ".scope");
    proc(202, kPod, "api-worker", pod + "/cri-containerd-" + kId2 + ".scope");
    for (int pid = 400; pid < 410; ++pid) proc(pid, kBusy, "w" + std::to_string(pid), "/system.slice/busy.service");
    fs::create_directories(dir_ / "proc/300");           // exited between readdir and the reads
    link("proc/301/ns/net", "net:[" + std::to_string(kDocker) + "]");  // exited after the first read
    write("proc/302/comm", "noaccess\n");                 // ns/net not readable: not ours
    write("proc/302/cgroup", "0::/\n");
    write("proc/uptime", "1.0 1.0\n");                    // not a process
    write("run/netns/c1", "");
    const std::string spaced = (dir_ / "run/netns").string() + "/my\\040ns";
    write("proc/self/mountinfo",
          "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
          "600 25 0:4 net:[" + std::to_string(kCni) + "] /run/docker/netns/0f1e2d3c rw shared:300 - nsfs nsfs rw\n"
          "601 25 0:4 net:[" + std::to_string(kSpaced) + "] " + spaced + " rw shared:301 - nsfs nsfs rw\n"
          "602 25 0:4 mnt:[4026532100] /run/other rw - nsfs nsfs rw\n"
          "603 25 0:4 net:[" + std::to_string(kPod) + "] /var/run/netns/cni-1234 rw - nsfs nsfs rw\n"
          "garbage line\n");
    write("root/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + kId2 + "/config.json",
          R"({"annotations":{"io.kubernetes.cri.sandbox-name":"api-5d9f",
              "io.kubernetes.cri.sandbox-namespace":"shop"}})");
    write("root/var/lib/docker/containers/" + kId3 + "/config.v2.json", R"({"Name":"/frontend","Config":{}})");

    WorkloadResolver r(roots());
    r.refresh();

    const auto host = r.netns(kHost);
    ASSERT_TRUE(host);
    EXPECT_TRUE(host->initial);
    EXPECT_EQ(host->label(), "host");
    EXPECT_EQ(host->holder_count, 2u);
    ASSERT_EQ(host->holders.size(), 2u);
    EXPECT_EQ(host->holders[0].cgroup, "/init.scope");
    EXPECT_EQ(host->holders[1].comm, "kthreadd");

    const auto docker = r.netns(kDocker);
    ASSERT_TRUE(docker);
    EXPECT_FALSE(docker->initial);
    EXPECT_EQ(docker->holder_count, 3u);  // 301 had vanished
    EXPECT_EQ(docker->open_path, (dir_ / "proc/100/ns/net").string());
    EXPECT_EQ(docker->workload.kind, "docker");
    EXPECT_EQ(docker->workload.container_name, "frontend");
    EXPECT_EQ(docker->label(), "docker frontend (nginx 101)");

    const auto pod_ns = r.netns(kPod);
    ASSERT_TRUE(pod_ns);
    EXPECT_EQ(pod_ns->open_path, "/var/run/netns/cni-1234");
    EXPECT_EQ(pod_ns->name, "");
    EXPECT_EQ(pod_ns->workload.container_id, kId2);  // two of three holders
    EXPECT_EQ(pod_ns->label(), "pod shop/api-5d9f (api 201)");

    const auto busy = r.netns(kBusy);
    ASSERT_TRUE(busy);
    EXPECT_EQ(busy->holder_count, 10u);
    ASSERT_EQ(busy->holders.size(), NetnsInfo::kMaxHolders);
    EXPECT_EQ(busy->holders.front().pid, 400);
    EXPECT_EQ(busy->holders.back().pid, 407);
    EXPECT_EQ(busy->label(), "busy.service (w400 400)");

    const auto c1 = r.netns(static_cast<uint32_t>(inode("run/netns/c1")));
    ASSERT_TRUE(c1);
    EXPECT_EQ(c1->name, "c1");
    EXPECT_EQ(c1->open_path, (dir_ / "run/netns/c1").string());
    EXPECT_EQ(c1->label(), "ip netns c1");

    const auto cni = r.netns(kCni);
    ASSERT_TRUE(cni);
    EXPECT_EQ(cni->open_path, "/run/docker/netns/0f1e2d3c");
    EXPECT_EQ(cni->holder_count, 0u);
    EXPECT_EQ(cni->label(), "unknown");

    const auto named = r.netns(kSpaced);  // mounted under run_netns, name escaped in mountinfo
    ASSERT_TRUE(named);
    EXPECT_EQ(named->name, "my ns");
    EXPECT_EQ(named->label(), "ip netns my ns");

    EXPECT_FALSE(r.netns(4026532100));  // a mount namespace
    EXPECT_EQ(r.all().size(), 7u);
    EXPECT_EQ(r.comm(101), "nginx");
    EXPECT_FALSE(r.comm(300));
    EXPECT_FALSE(r.comm(301));
    EXPECT_FALSE(r.comm(302));

    // Names are kept while the container lives, even if the state file goes away; the
    // next refresh drops processes that exited.
    fs::remove(dir_ / ("root/var/lib/docker/containers/" + kId3 + "/config.v2.json"));
    fs::remove_all(dir_ / "proc/102");
    r.refresh();
    EXPECT_EQ(r.netns(kDocker)->label(), "docker frontend (nginx 101)");
    EXPECT_EQ(r.netns(kDocker)->holder_count, 2u);
    EXPECT_FALSE(r.comm(102));
}

TEST_F(Resolver, EmptyOrMissingTrees) {
    WorkloadResolver r(roots());  // nothing exists
    r.refresh();
    EXPECT_TRUE(r.all().empty());
    EXPECT_FALSE(r.comm(1));
    EXPECT_FALSE(r.cgroup_path(1));
}

TEST_F(Resolver, CgroupIdsAreDirectoryInodes) {
    fs::create_directories(dir_ / "cgroup/system.slice/nginx.service");
    fs::create_directories(dir_ / "cgroup/kubepods.slice/kubepods-besteffort.slice");
    write("cgroup/cgroup.procs", "1\n");
    write("cgroup/system.slice/nginx.service/cgroup.procs", "42\n");
    WorkloadResolver r(roots());
    r.refresh();
    EXPECT_EQ(r.cgroup_path(inode("cgroup")), "/");
    EXPECT_EQ(r.cgroup_path(inode("cgroup/system.slice/nginx.service")), "/system.slice/nginx.service");
    EXPECT_EQ(r.cgroup_path(inode("cgroup/kubepods.slice/kubepods-besteffort.slice")),
              "/kubepods.slice/kubepods-besteffort.slice");
    EXPECT_FALSE(r.cgroup_path(inode("cgroup/cgroup.procs")));  // a file, not a cgroup

    // A cgroup made after the walk is found only after the next refresh: one walk per refresh.
    fs::create_directories(dir_ / "cgroup/system.slice/late.service");
    EXPECT_FALSE(r.cgroup_path(inode("cgroup/system.slice/late.service")));
    r.refresh();
    EXPECT_EQ(r.cgroup_path(inode("cgroup/system.slice/late.service")), "/system.slice/late.service");
    EXPECT_EQ(r.cgroup_path(inode("cgroup/system.slice/nginx.service")), "/system.slice/nginx.service");
}

TEST_F(Resolver, CgroupWalkIsBoundedInDepth) {
    std::string deep = "cgroup";
    for (int i = 0; i < WorkloadResolver::kMaxDepth + 5; ++i) deep += "/d";
    fs::create_directories(dir_ / deep);
    WorkloadResolver r(roots());
    r.refresh();
    EXPECT_FALSE(r.cgroup_path(inode(deep)));
    std::string within = "cgroup";
    for (int i = 0; i < WorkloadResolver::kMaxDepth; ++i) within += "/d";
    EXPECT_TRUE(r.cgroup_path(inode(within)));
}

// --- the real system: what holds as root and as a user -------------------------------------

std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

TEST(WorkloadResolverRealSystem, FindsOurselves) {
    WorkloadResolver r;
    const auto start = std::chrono::steady_clock::now();
    r.refresh();
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
    std::printf("refresh of the real /proc: %lld us for %zu namespaces\n", static_cast<long long>(us), r.all().size());

    struct stat st {};
    ASSERT_EQ(stat("/proc/self/ns/net", &st), 0);
    const auto ours = r.netns(static_cast<uint32_t>(st.st_ino));
    ASSERT_TRUE(ours);
    EXPECT_GE(ours->holder_count, 1u);
    EXPECT_FALSE(ours->open_path.empty());
    EXPECT_FALSE(ours->label().empty());
    EXPECT_EQ(r.comm(getpid()), read_line("/proc/self/comm"));
}

TEST(WorkloadResolverRealSystem, FindsOurCgroupById) {
    // cgroup v2 is at /sys/fs/cgroup on a unified host and /sys/fs/cgroup/unified on a
    // hybrid one (this project's machines): cgroup2_mount() finds it.
    const std::string root = cgroup2_mount();
    struct statfs sfs {};
    struct stat st {};
    std::string cgroup;
    for (std::ifstream in("/proc/self/cgroup"); std::getline(in, cgroup);)
        if (cgroup.starts_with("0::")) break;
    if (statfs(root.c_str(), &sfs) != 0 || sfs.f_type != CGROUP2_SUPER_MAGIC || !cgroup.starts_with("0::"))
        GTEST_SKIP() << "no cgroup v2 hierarchy mounted here";
    cgroup.erase(0, 3);
    ASSERT_EQ(stat((root + (cgroup == "/" ? "" : cgroup)).c_str(), &st), 0);
    WorkloadResolver r(WorkloadResolver::Roots{.cgroup = root});
    EXPECT_EQ(r.cgroup_path(st.st_ino), cgroup);
}

TEST(WorkloadResolverRealSystem, Cgroup2MountIsFoundInMountinfo) {
    char dir[] = "/tmp/ctbpf-mi-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string base = dir;
    std::filesystem::create_directories(base + "/self");
    std::ofstream(base + "/self/mountinfo")
        << "25 30 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
        << "33 25 0:28 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup rw,memory\n"
        << "34 25 0:29 / /sys/fs/cgroup/unified rw shared:11 - cgroup2 cgroup2 rw\n";
    EXPECT_EQ(cgroup2_mount(base), "/sys/fs/cgroup/unified");
    std::ofstream(base + "/self/mountinfo") << "25 30 0:23 / /sys rw - sysfs sysfs rw\n";
    EXPECT_EQ(cgroup2_mount(base), "/sys/fs/cgroup");
    std::filesystem::remove_all(base);
}

}  // namespace
