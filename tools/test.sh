#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine, as root: installs what it needs,
# builds, runs every test (unit + real-kernel scenarios). Exit code is ctest's.
#   sudo bash tools/test.sh            # everything
#   sudo bash tools/test.sh -L unit    # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root: it installs packages and the scenarios load BPF programs and create network namespaces" >&2
  exit 1
fi
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# A scenario that cannot run here fails instead of skipping (root and BTF are present).
export CTBPF_REQUIRE_PRIVILEGED="${CTBPF_REQUIRE_PRIVILEGED:-1}"
cd build
ctest --output-on-failure --timeout 600 "$@"
