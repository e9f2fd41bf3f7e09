// Network namespaces named on the command line: a name under /run/netns or a path such as
// /proc/PID/ns/net. Things bound to a namespace (netfilter links, netlink sockets, sysctl
// files) are created while the thread is inside it; NetnsEntry puts the thread back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ctbpf {

// An open namespace file; throws Error("unknown network namespace ...") if it is missing.
class NetnsFile {
public:
    explicit NetnsFile(const std::string& spec);  // "" or "self": our own namespace
    ~NetnsFile();
    NetnsFile(NetnsFile&& o) noexcept;
    NetnsFile(const NetnsFile&) = delete;
    NetnsFile& operator=(const NetnsFile&) = delete;
    int fd() const { return fd_; }
    uint32_t inum() const { return inum_; }
    const std::string& spec() const { return spec_; }

private:
    int fd_ = -1;
    uint32_t inum_ = 0;
    std::string spec_;
};

// While alive, the calling thread is inside `ns` (a no-op for our own namespace).
class NetnsEntry {
public:
    explicit NetnsEntry(const NetnsFile& ns);
    ~NetnsEntry();
    NetnsEntry(const NetnsEntry&) = delete;
    NetnsEntry& operator=(const NetnsEntry&) = delete;

private:
    int home_ = -1;
};

// One line of /proc/self/mountinfo: what is mounted (its root in its filesystem, e.g.
// "net:[4026532177]" for an nsfs bind mount), where (octal escapes undone) and its type.
struct MountEntry {
    std::string root, mount_point, fstype;
};
// Every line of `proc`/self/mountinfo (fields: id parent dev root mountpoint options
// [optional...] - fstype source superopts); malformed lines are skipped.
std::vector<MountEntry> read_mountinfo(const std::filesystem::path& proc = "/proc");

// A network namespace found on the host, and a path that opens it now.
struct HostNetns {
    uint32_t inum = 0;
    std::string path;     // /run/netns/NAME, another nsfs mount, or /proc/PID/ns/net
    std::string ip_name;  // its `ip netns` name, "" if none
    int pid = 0;          // a process inside it (the lowest pid), 0 if only mounted
};

// Every network namespace something holds: a bind mount under `run`/netns, any other nsfs
// mount in `proc`/self/mountinfo (docker's /run/docker/netns, CNI's), and every process's
// `proc`/PID/ns/net. Sorted by inode. A namespace that only open file descriptors or
// BPF links hold is not found (nothing names it). Costs one readlink per process (about
// 2 us each here); processes that exit meanwhile are skipped.
std::vector<HostNetns> list_host_netns(const std::filesystem::path& proc = "/proc",
                                       const std::filesystem::path& run = "/run");

}  // namespace ctbpf
