#include "ctbpf/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "ctbpf/error.h"

namespace ctbpf {

NetnsFile::NetnsFile(const std::string& spec) : spec_(spec.empty() ? "self" : spec) {
    std::string path = spec_ == "self" ? "/proc/thread-self/ns/net"
                       : spec_.find('/') == std::string::npos ? "/run/netns/" + spec_
                                                              : spec_;
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        if (errno == ENOENT)
            throw Error(fmt::format("unknown network namespace '{}' ({} does not exist; see 'ip netns list')", spec_,
                                    path));
        throw Error(fmt::format("cannot open network namespace '{}' ({}): {}", spec_, path, std::strerror(errno)));
    }
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw Error(fmt::format("fstat {}: {}", path, std::strerror(errno)));
    inum_ = static_cast<uint32_t>(st.st_ino);
}

NetnsFile::NetnsFile(NetnsFile&& o) noexcept : fd_(o.fd_), inum_(o.inum_), spec_(std::move(o.spec_)) { o.fd_ = -1; }

NetnsFile::~NetnsFile() {
    if (fd_ >= 0) close(fd_);
}

NetnsEntry::NetnsEntry(const NetnsFile& ns) {
    if (ns.spec() == "self") return;
    home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ < 0) throw Error(fmt::format("opening our own network namespace: {}", std::strerror(errno)));
    if (setns(ns.fd(), CLONE_NEWNET) != 0) {
        const int err = errno;
        close(home_);
        throw Error(fmt::format("entering network namespace '{}': {}", ns.spec(), std::strerror(err)));
    }
}

NetnsEntry::~NetnsEntry() {
    if (home_ < 0) return;
    // Failing to return would leave us silently in the wrong namespace: stop instead.
    if (setns(home_, CLONE_NEWNET) != 0) std::abort();
    close(home_);
}

namespace {
// "net:[4026531840]" -> 4026531840; 0 if it is not a network namespace link.
uint32_t net_link_inum(const char* text) {
    unsigned long v = 0;
    if (std::sscanf(text, "net:[%lu]", &v) != 1) return 0;
    return static_cast<uint32_t>(v);
}
}  // namespace

std::vector<MountEntry> read_mountinfo(const std::filesystem::path& proc) {
    std::vector<MountEntry> out;
    std::ifstream in(proc / "self" / "mountinfo");
    for (std::string line; std::getline(in, line);) {
        const size_t sep = line.find(" - ");
        if (sep == std::string::npos) continue;
        std::istringstream head(line.substr(0, sep)), tail(line.substr(sep + 3));
        std::string id, parent, dev, root, mount;
        MountEntry m;
        if (!(head >> id >> parent >> dev >> root >> mount) || !(tail >> m.fstype)) continue;
        // Mount points escape space, tab, newline and backslash as \ooo.
        for (size_t i = 0; i < mount.size(); ++i) {
            const bool octal = mount[i] == '\\' && i + 3 < mount.size() && mount[i + 1] >= '0' &&
                               mount[i + 1] <= '7' && mount[i + 2] >= '0' && mount[i + 2] <= '7' &&
                               mount[i + 3] >= '0' && mount[i + 3] <= '7';
            if (octal) {
                m.mount_point += static_cast<char>((mount[i + 1] - '0') * 64 + (mount[i + 2] - '0') * 8 + (mount[i + 3] - '0'));
                i += 3;
            } else {
                m.mount_point += mount[i];
            }
        }
        m.root = std::move(root);
        out.push_back(std::move(m));
    }
    return out;
}

std::vector<HostNetns> list_host_netns(const std::filesystem::path& proc, const std::filesystem::path& run) {
    std::map<uint32_t, HostNetns> found;
    // Bind mounts under /run/netns: `ip netns add` names them.
    const std::string run_netns = (run / "netns").string();
    if (DIR* d = opendir(run_netns.c_str())) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            const std::string path = run_netns + "/" + e->d_name;
            struct stat st {};
            if (stat(path.c_str(), &st) != 0) continue;
            HostNetns& h = found[static_cast<uint32_t>(st.st_ino)];
            h.inum = static_cast<uint32_t>(st.st_ino);
            h.path = path;
            h.ip_name = e->d_name;
        }
        closedir(d);
    }
    // Other nsfs mounts (docker's /run/docker/netns, CNI's).
    for (const MountEntry& m : read_mountinfo(proc)) {
        if (m.fstype != "nsfs") continue;
        const uint32_t inum = net_link_inum(m.root.c_str());
        if (!inum || found.count(inum)) continue;
        found[inum] = HostNetns{inum, m.mount_point, "", 0};
    }
    // Processes, lowest pid first (readdir order is not sorted).
    std::vector<int> pids;
    const std::string proc_s = proc.string();
    if (DIR* d = opendir(proc_s.c_str())) {
        while (dirent* e = readdir(d)) {
            char* end = nullptr;
            const long pid = std::strtol(e->d_name, &end, 10);
            if (pid > 0 && end && *end == 0) pids.push_back(static_cast<int>(pid));
        }
        closedir(d);
    }
    std::sort(pids.begin(), pids.end());
    char buf[64];
    for (int pid : pids) {
        const std::string link = proc_s + "/" + std::to_string(pid) + "/ns/net";
        const ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
        if (n <= 0) continue;  // exited, or a kernel thread we may not look at
        buf[n] = 0;
        const uint32_t inum = net_link_inum(buf);
        if (!inum) continue;
        HostNetns& h = found[inum];
        if (h.inum == 0) {
            h.inum = inum;
            h.path = link;
        }
        if (h.pid == 0) h.pid = pid;
    }
    std::vector<HostNetns> out;
    out.reserve(found.size());
    for (auto& [inum, h] : found) out.push_back(std::move(h));
    return out;
}

}  // namespace ctbpf
