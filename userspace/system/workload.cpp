#include "ctbpf/workload.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ctbpf/fd.h"
#include "ctbpf/netns.h"
#include "ctbpf/system.h"

namespace ctbpf {

namespace {

using json = nlohmann::json;
using DirPtr = std::unique_ptr<DIR, int (*)(DIR*)>;

// containerd's config.json holds the whole OCI spec (tens of KiB); anything far larger is
// not a state file we understand, and reading it whole would stall a refresh.
constexpr size_t kMaxStateFile = 4u << 20;
constexpr size_t kMaxProcFile = 1u << 20;  // mountinfo on a host with thousands of mounts

// `short_read_ends`: a /proc file made by one show() call (comm, cgroup) comes whole in the
// first read that has room for it, so a short read is its end and the read that would
// return 0 is saved: a refresh is mostly system calls, a few per process.
bool read_file(int dirfd, const std::string& path, std::string& out, size_t limit, bool short_read_ends = false) {
    UniqueFd fd(openat(dirfd, path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    out.clear();
    std::array<char, 4096> buf;
    for (;;) {
        const ssize_t n = read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || out.size() + static_cast<size_t>(n) > limit) return false;
        if (n == 0) return true;
        out.append(buf.data(), static_cast<size_t>(n));
        if (short_read_ends && static_cast<size_t>(n) < buf.size()) return true;
    }
}

// "net:[4026531840]" -> 4026531840; 0 if it is not a network namespace link.
uint32_t parse_ns_link(std::string_view link) {
    if (!link.starts_with("net:[") || !link.ends_with("]")) return 0;
    return static_cast<uint32_t>(std::strtoul(std::string(link.substr(5, link.size() - 6)).c_str(), nullptr, 10));
}

uint32_t read_ns_link(int dirfd, const char* path) {
    std::array<char, 64> buf;
    const ssize_t n = readlinkat(dirfd, path, buf.data(), buf.size());
    return n > 0 && static_cast<size_t>(n) < buf.size() ? parse_ns_link({buf.data(), static_cast<size_t>(n)}) : 0;
}

bool is_hex64(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string join(const std::string& root, std::string_view rel) {
    return root.ends_with('/') ? root + std::string(rel) : root + "/" + std::string(rel);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    while (!s.empty()) {
        const size_t at = s.find(sep);
        if (at != 0) parts.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return parts;
}

// The cgroup v2 path from /proc/PID/cgroup ("0::/path"); "" on a v1-only host.
bool read_cgroup(int dirfd, const std::string& path, std::string& cgroup) {
    std::string text;
    if (!read_file(dirfd, path, text, kMaxProcFile, true)) return false;
    for (std::string_view line : split(text, '\n'))
        if (line.starts_with("0::")) cgroup = line.substr(3);
    return true;
}

std::string json_string(const json& j, const char* key) {
    if (!j.is_object()) return {};
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& json_object(const json& j, const char* key) {
    static const json empty = json::object();
    if (!j.is_object()) return empty;
    const auto it = j.find(key);
    return it != j.end() && it->is_object() ? *it : empty;
}

}  // namespace

CgroupWorkload parse_cgroup_path(std::string_view path) {
    // Prefixes of a container's own cgroup, with either cgroup driver: systemd names it
    // "<prefix><id>.scope", cgroupfs "<prefix><id>" (docker's cgroupfs layout is
    // "/docker/<id>", handled below).
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kRuntimes = {{
        {"docker-", "docker"}, {"cri-containerd-", "containerd"}, {"crio-", "cri-o"}, {"libpod-", "podman"}}};
    CgroupWorkload w;
    w.path = path;
    bool in_pods = false;
    std::string_view parent;
    const auto parts = split(path, '/');
    for (size_t i = 0; i < parts.size(); parent = parts[i++]) {
        const std::string_view part = parts[i];
        std::string_view stem = part;
        for (std::string_view suffix : {".scope", ".slice", ".service"})
            if (stem.ends_with(suffix)) stem.remove_suffix(suffix.size());
        if (i == 0 && (part == "kubepods" || part == "kubepods.slice")) {
            in_pods = true;
            w.kind = "kubepods";
            continue;
        }
        if (i == 0 && part == "user.slice") w.kind = "user";
        if (in_pods && stem.starts_with("pod") && stem.size() > 3) {  // cgroupfs: "pod<uid>"
            w.pod_uid = stem.substr(3);
            continue;
        }
        if (in_pods && stem.starts_with("kubepods-")) {
            // systemd: "kubepods-burstable.slice", "kubepods-burstable-pod<uid_with_underscores>.slice"
            // (systemd reserves "-" for nesting, so the kubelet writes the uid's dashes as "_").
            for (std::string_view token : split(stem, '-')) {
                if (token == "burstable" || token == "besteffort") w.qos = token;
                if (token.starts_with("pod") && token.size() > 3) {
                    w.pod_uid = token.substr(3);
                    std::replace(w.pod_uid.begin(), w.pod_uid.end(), '_', '-');
                }
            }
            continue;
        }
        if (in_pods && (part == "burstable" || part == "besteffort")) {
            w.qos = part;
            continue;
        }
        std::string_view kind;
        std::string_view id;
        for (const auto& [prefix, runtime] : kRuntimes)
            if (stem.starts_with(prefix) && is_hex64(stem.substr(prefix.size()))) {
                kind = runtime;
                id = stem.substr(prefix.size());
            }
        if (kind.empty() && is_hex64(part) && (parent == "docker" || in_pods)) {
            kind = parent == "docker" ? "docker" : "kubepods";
            id = part;
        }
        if (!kind.empty()) {
            w.kind = kind;
            w.container_id = id;
            if (part.ends_with(".scope")) w.unit = part;
            // The outermost container is the one this host's runtime knows and keeps state
            // for; cgroups below it (systemd in the container, docker-in-docker) are its own.
            break;
        }
        if (part.ends_with(".service") || part.ends_with(".scope")) w.unit = part;
    }
    if (!w.pod_uid.empty() && w.qos.empty()) w.qos = "guaranteed";  // directly under kubepods
    if (w.kind.empty() && !w.unit.empty()) w.kind = "systemd";
    return w;
}

std::string CgroupWorkload::label() const {
    if (path.empty() || path == "/") return "/";
    if (!pod_name.empty())
        return pod_namespace.empty() ? "pod " + pod_name : fmt::format("pod {}/{}", pod_namespace, pod_name);
    if (!pod_uid.empty()) return "pod " + pod_uid;
    if (!container_id.empty())
        return fmt::format("{} {}", kind, container_name.empty() ? container_id.substr(0, 12) : container_name);
    if (!unit.empty()) return unit;
    return path;
}

bool read_runtime_names(CgroupWorkload& w, const std::string& runtime_root) {
    struct Source {
        std::string_view kind, dir, file;
    };
    static constexpr std::array<Source, 3> kSources = {{
        {"containerd", "run/containerd/io.containerd.runtime.v2.task/k8s.io/", "/config.json"},
        {"cri-o", "run/containers/storage/overlay-containers/", "/userdata/config.json"},
        {"docker", "var/lib/docker/containers/", "/config.v2.json"},
    }};
    // The id becomes a path component: only ever 64 hex digits, so never "..".
    if (!is_hex64(w.container_id)) return false;
    for (const Source& s : kSources) {
        // The cgroupfs driver's "/kubepods/<qos>/pod<uid>/<id>" does not say which runtime.
        if (w.kind != s.kind && w.kind != "kubepods") continue;
        std::string text;
        if (!read_file(AT_FDCWD, join(runtime_root, fmt::format("{}{}{}", s.dir, w.container_id, s.file)), text,
                       kMaxStateFile))
            continue;
        const json j = json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return false;
        if (s.kind == "docker") {
            const json& labels = json_object(json_object(j, "Config"), "Labels");
            w.pod_name = json_string(labels, "io.kubernetes.pod.name");
            w.pod_namespace = json_string(labels, "io.kubernetes.pod.namespace");
            w.container_name = json_string(j, "Name");
            if (w.container_name.starts_with('/')) w.container_name.erase(0, 1);
        } else {
            const json& annotations = json_object(j, "annotations");
            const bool cri = s.kind == "containerd";
            w.pod_name = json_string(annotations, cri ? "io.kubernetes.cri.sandbox-name" : "io.kubernetes.pod.name");
            w.pod_namespace =
                json_string(annotations, cri ? "io.kubernetes.cri.sandbox-namespace" : "io.kubernetes.pod.namespace");
        }
        return true;
    }
    return false;
}

std::string NetnsInfo::label() const {
    if (initial) return "host";
    if (!name.empty()) return "ip netns " + name;
    if (holders.empty()) return "unknown";
    // Name the process of the chosen cgroup when one is kept, so the two halves agree.
    const auto it = std::find_if(holders.begin(), holders.end(),
                                 [&](const NetnsHolder& h) { return h.cgroup == workload.path; });
    const NetnsHolder& h = it != holders.end() ? *it : holders.front();
    const std::string who = fmt::format("({} {})", h.comm, h.pid);
    const std::string what = workload.label();
    return what == "/" ? who : what + " " + who;
}

void WorkloadResolver::refresh() {
    procs_.clear();
    netns_.clear();
    walked_since_refresh_ = false;

    UniqueFd proc_fd(open(roots_.proc.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    // Since 6.18 the initial namespace has a fixed inode, below the range ever handed out
    // dynamically: it names the host when pid 1's link is not ours to read.
    uint32_t initial = proc_fd ? read_ns_link(proc_fd.get(), "1/ns/net") : 0;
    if (initial == 0) initial = static_cast<uint32_t>(kInitialNetnsInode);

    // Every file of a process is read through one directory fd: if the pid exits and is
    // reused mid-scan the reads fail (ESRCH) instead of mixing two processes.
    std::vector<int> pids;
    if (DirPtr dir(opendir(roots_.proc.c_str()), closedir); dir) {
        while (const dirent* e = readdir(dir.get())) {
            const std::string_view name = e->d_name;
            if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
                continue;
            UniqueFd pfd(openat(dirfd(dir.get()), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!pfd) continue;
            Proc p;
            p.inum = read_ns_link(pfd.get(), "ns/net");
            // Unreadable: the process is gone, or not ours to look at.
            if (p.inum == 0 || !read_file(pfd.get(), "comm", p.comm, kMaxProcFile, true)) continue;
            if (p.comm.ends_with('\n')) p.comm.pop_back();
            // The host's label is "host" whatever its cgroups say, so the costliest file
            // here is read for its processes (kernel threads included) only if kept below.
            if (p.inum != initial && !read_cgroup(pfd.get(), "cgroup", p.cgroup)) continue;
            const int pid = std::atoi(e->d_name);
            pids.push_back(pid);
            procs_.emplace(pid, std::move(p));
        }
    }
    std::sort(pids.begin(), pids.end());

    std::map<uint32_t, std::map<std::string, size_t>> cgroup_counts;
    for (int pid : pids) {
        Proc& p = procs_.at(pid);
        NetnsInfo& ns = netns_[p.inum];
        ns.inum = p.inum;
        ++ns.holder_count;
        if (ns.holders.size() < NetnsInfo::kMaxHolders) {
            // By path, not through the scan's fd: a pid reused meanwhile shows the new
            // process's cgroup in a list that is only shown, never counted.
            if (p.inum == initial) read_cgroup(proc_fd.get(), fmt::format("{}/cgroup", pid), p.cgroup);
            ns.holders.push_back({pid, p.comm, p.cgroup});
        }
        if (!p.cgroup.empty() && p.cgroup != "/" && p.inum != initial) ++cgroup_counts[p.inum][p.cgroup];
    }

    auto bind_mount = [&](uint32_t inum, const std::string& path, std::string_view name) {
        NetnsInfo& ns = netns_[inum];
        ns.inum = inum;
        if (ns.name.empty()) ns.name = name;
        if (ns.open_path.empty()) ns.open_path = path;
    };
    if (DirPtr dir(opendir(roots_.run_netns.c_str()), closedir); dir) {
        while (const dirent* e = readdir(dir.get())) {
            struct stat st {};
            if (e->d_name[0] == '.' || fstatat(dirfd(dir.get()), e->d_name, &st, 0) != 0 || S_ISDIR(st.st_mode))
                continue;
            bind_mount(static_cast<uint32_t>(st.st_ino), join(roots_.run_netns, e->d_name), e->d_name);
        }
    }
    // Namespaces kept by a bind mount elsewhere (docker's /run/docker/netns, CNI's).
    // Fields: id parent dev root mountpoint options [optional...] - fstype source superopts.
    for (const MountEntry& m : read_mountinfo(roots_.proc)) {
        if (m.fstype != "nsfs") continue;
        const uint32_t inum = parse_ns_link(m.root);
        if (inum == 0) continue;
        const std::string netns_dir = join(roots_.run_netns, "");
        const bool named =
            m.mount_point.starts_with(netns_dir) && m.mount_point.find('/', netns_dir.size()) == std::string::npos;
        bind_mount(inum, m.mount_point, named ? std::string_view(m.mount_point).substr(netns_dir.size()) : "");
    }

    std::unordered_map<std::string, RuntimeNames> names_seen;
    for (auto& [inum, ns] : netns_) {
        ns.initial = inum == initial || inum == kInitialNetnsInode;
        if (ns.open_path.empty() && !ns.holders.empty())
            ns.open_path = join(roots_.proc, fmt::format("{}/ns/net", ns.holders.front().pid));
        // The most common cgroup among the holders, the root cgroup (kernel threads, and
        // everything where cgroups are not delegated) aside: a container or pod shares one
        // namespace and most of its processes sit in its own cgroup, and unlike the common
        // parent of all holders it keeps the container id the runtime names come from.
        // Ties go to the shorter path, the outer of two nested workloads.
        const auto& counts = cgroup_counts[inum];
        const auto best = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
            return a.second != b.second ? a.second < b.second : a.first.size() > b.first.size();
        });
        if (best == counts.end()) continue;
        ns.workload = parse_cgroup_path(best->first);
        const std::string& id = ns.workload.container_id;
        if (id.empty()) continue;
        // Names are kept while the container lives; a failed lookup is tried again next
        // refresh, as the runtime may not have written its state yet.
        if (const auto it = runtime_names_.find(id); it != runtime_names_.end()) {
            ns.workload.pod_name = it->second.pod_name;
            ns.workload.pod_namespace = it->second.pod_namespace;
            ns.workload.container_name = it->second.container_name;
            names_seen.emplace(id, it->second);
        } else if (read_runtime_names(ns.workload, roots_.runtime)) {
            names_seen.emplace(id, RuntimeNames{ns.workload.pod_name, ns.workload.pod_namespace,
                                                ns.workload.container_name});
        }
    }
    runtime_names_ = std::move(names_seen);
}

std::optional<NetnsInfo> WorkloadResolver::netns(uint32_t inum) const {
    const auto it = netns_.find(inum);
    if (it == netns_.end()) return std::nullopt;
    return it->second;
}

std::vector<NetnsInfo> WorkloadResolver::all() const {
    std::vector<NetnsInfo> out;
    out.reserve(netns_.size());
    for (const auto& [inum, ns] : netns_) out.push_back(ns);
    return out;
}

std::optional<std::string> WorkloadResolver::comm(int pid) const {
    const auto it = procs_.find(pid);
    if (it == procs_.end()) return std::nullopt;
    return it->second.comm;
}

std::optional<std::string> WorkloadResolver::cgroup_path(uint64_t id) {
    if (const auto it = cgroups_.find(id); it != cgroups_.end()) return it->second;
    if (walked_since_refresh_) return std::nullopt;
    walk_cgroups();
    if (const auto it = cgroups_.find(id); it != cgroups_.end()) return it->second;
    return std::nullopt;
}

void WorkloadResolver::walk_cgroups() {
    walked_since_refresh_ = true;
    std::unordered_map<uint64_t, std::string> found;
    struct stat st {};
    if (stat(roots_.cgroup.c_str(), &st) != 0) return;
    found.emplace(st.st_ino, "/");
    std::vector<std::pair<std::string, int>> todo = {{"", 0}};  // path below the root, depth
    while (!todo.empty() && found.size() < kMaxCgroups) {
        const auto [rel, depth] = std::move(todo.back());
        todo.pop_back();
        DirPtr dir(opendir((roots_.cgroup + rel).c_str()), closedir);
        if (!dir) continue;  // removed meanwhile
        while (const dirent* e = readdir(dir.get())) {
            // Each cgroup holds dozens of control files: d_type skips them without a stat.
            if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)) continue;
            if (fstatat(dirfd(dir.get()), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
            std::string path = rel + "/" + e->d_name;
            if (depth + 1 < kMaxDepth) todo.emplace_back(path, depth + 1);
            found.emplace(st.st_ino, std::move(path));
            if (found.size() >= kMaxCgroups) break;
        }
    }
    cgroups_ = std::move(found);
}

std::string cgroup2_mount(const std::string& proc) {
    for (const MountEntry& m : read_mountinfo(proc))
        if (m.fstype == "cgroup2" && m.root == "/") return m.mount_point;
    return "/sys/fs/cgroup";
}

}  // namespace ctbpf
