#include "ctbpf/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

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

}  // namespace ctbpf
