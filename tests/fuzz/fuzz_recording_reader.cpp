// Fuzz target for RecordingReader: any bytes as a recording file. The reader may throw
// ctbpf::Error, but must never crash, hang or read out of bounds.
//
// libFuzzer (from the source tree; add -DCTBPF_FUZZ_IGNORE_CRC to get past the checksums
// into the payload parsers):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I include
//     tests/fuzz/fuzz_recording_reader.cpp userspace/record/*.cpp
//     userspace/decode/decode.cpp -lzstd -lz -o fuzz_recording_reader
//   ./fuzz_recording_reader -max_total_time=60 -dict=tests/fuzz/recording.dict
//     corpus_work tests/fuzz/corpus
//   (libFuzzer adds new inputs to the first directory: keep that one outside the tree)
// Replay: build with -DCTBPF_FUZZ_REPLAY (any compiler, no libFuzzer) and run it with
// corpus directories or files as arguments.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "ctbpf/error.h"
#include "ctbpf/recording.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // One memfd per process, rewritten for each input: no files left behind.
    static const int fd = memfd_create("ctbpf-fuzz", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != ssize_t(size)) return 0;
    try {
        ctbpf::RecordingReader r("/proc/self/fd/" + std::to_string(fd));
        ctbpf::Frame f;
        size_t seen = 0;
        while (r.next(f)) seen += f.events.size() + f.marker.size() + f.snapshot.tables.size();
        seen += r.header().hostname.size() + r.header().netns.size() + r.warnings().size();
        (void)r.clean_close();
        (void)r.end_totals();
        (void)seen;
    } catch (const ctbpf::Error&) {
        // Rejected files are fine; crashes are not.
    }
    return 0;
}

#ifdef CTBPF_FUZZ_REPLAY
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

// Runs the target over every file named or inside a directory named on the command line.
int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    size_t runs = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<fs::path> files;
        if (fs::is_directory(argv[i])) {
            for (const auto& e : fs::directory_iterator(argv[i]))
                if (e.is_regular_file()) files.push_back(e.path());
        } else {
            files.emplace_back(argv[i]);
        }
        for (const auto& p : files) {
            std::ifstream in(p, std::ios::binary);
            if (!in) {
                std::cerr << "cannot read " << p << "\n";
                return 1;
            }
            std::vector<char> buf{std::istreambuf_iterator<char>(in), {}};
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
            ++runs;
        }
    }
    std::cout << "replayed " << runs << " inputs\n";
    return runs > 0 ? 0 : 1;
}
#endif
