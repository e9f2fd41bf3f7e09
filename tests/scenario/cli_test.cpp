// Small things a new user hit at the command line: a clear line (with the reason) and no
// half-written file when export cannot write, probe without privileges, an unknown command.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.h"

using namespace scenario;

namespace {

using Cli = PrivilegedTest;

// A tmpfs of `size` mounted at a fresh directory (read-only with ro); unmounted at the end.
struct Tmpfs {
    std::string dir;
    Tmpfs(const std::string& opts) {
        dir = sh_ok("mktemp -d /tmp/ctbpf-cli-XXXXXX");
        dir.erase(dir.find_last_not_of('\n') + 1);
        sh_ok(fmt::format("mount -t tmpfs -o {} ctbpf-test {}", opts, dir));
    }
    ~Tmpfs() { sh(fmt::format("umount {} && rmdir {}", dir, dir)); }
};

const std::string kRecording = std::string(CTBPF_SOURCE_DIR) + "/tests/fuzz/corpus/clean_v2_baseline.ctrec";

}  // namespace

TEST_F(Cli, ExportSaysWhyItCannotWriteAndLeavesNoPartialFile) {
    {
        Tmpfs ro("ro,size=1m");
        const auto r = sh(fmt::format("{} export {} --format svg -o {}/out.svg", CTBPF_BIN, kRecording, ro.dir));
        EXPECT_EQ(r.status, 1) << r.err;
        EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
    {
        Tmpfs full("size=4k");
        sh_ok(fmt::format("echo old > {}/out.svg", full.dir));
        const auto r = sh(fmt::format("{} export {} --format svg -o {}/out.svg", CTBPF_BIN, kRecording, full.dir));
        EXPECT_EQ(r.status, 1) << r.err;
        EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
        // The old file is untouched and no temporary is left behind.
        EXPECT_EQ(sh_ok(fmt::format("cat {}/out.svg", full.dir)), "old\n");
        EXPECT_EQ(sh_ok(fmt::format("ls {}", full.dir)), "out.svg\n");
    }
    {
        Tmpfs ok("size=4m");
        const auto r = sh(fmt::format("{} export {} --format svg -o {}/out.svg", CTBPF_BIN, kRecording, ok.dir));
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(sh_ok(fmt::format("ls {}", ok.dir)), "out.svg\n");
    }
}

TEST_F(Cli, ProbeWithoutPrivilegesSaysSoAndAnUnknownCommandIsNamed) {
    const auto r = sh(fmt::format("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} probe",
                                  CTBPF_BIN));
    EXPECT_NE(r.out.find("missing privileges: CAP_BPF"), std::string::npos) << r.out << r.err;
    const auto u = sh(fmt::format("{} frobnicate", CTBPF_BIN));
    EXPECT_EQ(u.status, 2);
    EXPECT_NE(u.err.find("unknown command 'frobnicate'"), std::string::npos) << u.err;
}
