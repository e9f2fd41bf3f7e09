// Which workload a network namespace or a cgroup belongs to, in words an operator knows: the
// `ip netns` name, the process, the systemd unit, the container, the Kubernetes pod. Read
// from /proc, /run/netns, /sys/fs/cgroup and the container runtimes' local state files; no
// API calls to any runtime, so a name is given only when a file says it (never guessed).
// Every root is configurable so that tests run on fake trees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ctbpf {

// What a cgroup v2 path says about its workload (parse_cgroup_path), plus the names the
// runtime's state files add (read_runtime_names). Empty strings are unknown.
struct CgroupWorkload {
    std::string path;          // the cgroup path parsed, "/..." relative to the cgroup2 mount
    // The innermost thing recognised: "docker", "containerd", "cri-o", "podman" (a container
    // of that runtime), "kubepods" (inside a pod, runtime not named by the path), "user" (a
    // login session or user manager), "systemd" (another unit), "" (nothing recognised).
    std::string kind;
    std::string unit;          // systemd unit holding it: "nginx.service", "docker-<id>.scope"
    std::string container_id;  // 64 hex digits
    std::string pod_uid;       // with dashes, as kubectl shows it
    std::string qos;           // "guaranteed", "burstable", "besteffort" for pods
    std::string pod_name, pod_namespace;  // from the runtime's state, when it has them
    std::string container_name;           // docker's own name of a plain docker container

    // "pod ns/name", "pod <uid>", "docker <name or 12 hex>", "containerd <12 hex>", "cri-o
    // <12>", "podman <12>", the unit, else the path ("/" for the root cgroup).
    std::string label() const;
};

CgroupWorkload parse_cgroup_path(std::string_view path);

// Fills pod_name/pod_namespace (and container_name for docker) from the state the runtime
// keeps for `w.container_id` under `runtime_root` ("/" on a real host): containerd's OCI
// bundle config.json (k8s.io namespace), CRI-O's userdata/config.json, docker's
// config.v2.json. A missing, unreadable or malformed file leaves the fields empty. Returns
// whether a state file was found and parsed.
bool read_runtime_names(CgroupWorkload& w, const std::string& runtime_root = "/");

struct NetnsHolder {
    int pid = 0;
    std::string comm;
    std::string cgroup;  // cgroup v2 path ("0::" line of /proc/PID/cgroup)
};

struct NetnsInfo {
    uint32_t inum = 0;
    bool initial = false;     // the namespace of pid 1 (or, 6.18+, the initial namespace's fixed inode)
    std::string name;         // `ip netns` name, "" if none
    std::string open_path;    // a path that opens it: its bind mount, else /proc/PID/ns/net
    std::vector<NetnsHolder> holders;  // lowest pids first, at most kMaxHolders
    size_t holder_count = 0;           // every process seen in it
    CgroupWorkload workload;           // of the holders' most common non-root cgroup; not the host's
    static constexpr size_t kMaxHolders = 8;

    // "host", "ip netns <name>", "<workload> (<comm> <pid>)", else "unknown".
    std::string label() const;
};

// A snapshot of every network namespace's name and holders, and a cache of cgroup ids.
// refresh() makes a few system calls per process (about 20 ms per thousand processes on a
// small VM, docs/ARCHITECTURE.md "Naming workloads"): call it from a thread that is not
// reading events, e.g. every few seconds, and look things up from the snapshot on the
// event path. Not thread-safe: the caller serialises refresh and lookups.
// Nothing here throws because a process exited or a file vanished: what cannot be read is
// left out. Without CAP_SYS_PTRACE only the caller's own processes' namespaces are seen
// (the kernel checks ptrace access on /proc/PID/ns/net); the host's namespace is then known
// only on 6.18+, by its fixed inode.
// Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup on a unified host,
// /sys/fs/cgroup/unified on a hybrid one (cgroup v1 controllers beside it); the first
// cgroup2 mount in `proc`/self/mountinfo, else /sys/fs/cgroup.
std::string cgroup2_mount(const std::string& proc = "/proc");

class WorkloadResolver {
public:
    struct Roots {
        std::string proc = "/proc", run_netns = "/run/netns", cgroup = "/sys/fs/cgroup";
        std::string runtime = "/";  // prefix of the container runtimes' state paths
    };
    WorkloadResolver() = default;
    explicit WorkloadResolver(Roots roots) : roots_(std::move(roots)) {}

    void refresh();

    std::optional<NetnsInfo> netns(uint32_t inum) const;
    std::vector<NetnsInfo> all() const;  // by inode
    std::optional<std::string> comm(int pid) const;
    // The path of the cgroup whose id (the cgroup2 directory's inode number, what
    // bpf_get_current_cgroup_id() returns) is `id`. An unknown id walks the cgroup tree
    // again, at most once between refreshes, at most kMaxCgroups directories kMaxDepth deep.
    std::optional<std::string> cgroup_path(uint64_t id);

    static constexpr size_t kMaxCgroups = 100000;
    static constexpr int kMaxDepth = 32;

private:
    struct Proc {
        uint32_t inum = 0;
        std::string comm, cgroup;
    };
    struct RuntimeNames {
        std::string pod_name, pod_namespace, container_name;
    };
    void walk_cgroups();

    Roots roots_;
    std::unordered_map<int, Proc> procs_;
    std::map<uint32_t, NetnsInfo> netns_;
    // Runtime names by container id, kept across refreshes while the container is seen.
    std::unordered_map<std::string, RuntimeNames> runtime_names_;
    std::unordered_map<uint64_t, std::string> cgroups_;
    bool walked_since_refresh_ = false;
};

}  // namespace ctbpf
