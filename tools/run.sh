#!/usr/bin/env bash
# Sets up, builds and runs ctbpf on a fresh Debian 12 machine, as root.
#   sudo bash tools/run.sh                       # ctbpf events (live events; Ctrl-C for the totals)
#   sudo bash tools/run.sh events --json --netns NAME
#   sudo bash tools/run.sh probe
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "run.sh: run as root (it installs packages; ctbpf needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)" >&2
  exit 1
fi
# Only what building and running need (no test packages), and only the binary: the tests,
# if configured in this build directory, are tools/test.sh's business.
bash tools/setup.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ctbpf >&2
[ $# -gt 0 ] || set -- events
exec ./build/ctbpf "$@"
