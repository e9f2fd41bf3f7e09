// Network namespaces named on the command line: a name under /run/netns or a path such as
// /proc/PID/ns/net. Things bound to a namespace (netfilter links, netlink sockets, sysctl
// files) are created while the thread is inside it; NetnsEntry puts the thread back.
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace ctbpf
