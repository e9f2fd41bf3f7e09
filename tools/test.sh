#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine, as root: installs what it needs
# (tools/setup.sh --tests: the build set plus every test package),
# builds (warnings are errors), runs every test (unit + real-kernel scenarios), then builds
# the unit tests again with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan and
# runs them there. Exit code: ctest's, or the sanitizer run's if only that failed.
#   sudo bash tools/test.sh            # everything
#   sudo bash tools/test.sh -L unit    # extra arguments go to the first ctest run
#   CTBPF_SANITIZE_RUN=0 sudo bash tools/test.sh   # without the sanitizer run
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root: it installs packages and the scenarios load BPF programs and create network namespaces" >&2
  exit 1
fi
bash tools/setup.sh --tests
# ON, not the default AUTO: a build directory first configured by tools/run.sh (no test
# packages then) gets its tests, and a missing test package fails here.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTBPF_WERROR=ON -DCTBPF_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
# A scenario that cannot run here fails instead of skipping (root and BTF are present).
export CTBPF_REQUIRE_PRIVILEGED="${CTBPF_REQUIRE_PRIVILEGED:-1}"
status=0
(cd build && ctest --output-on-failure --timeout 600 "$@") || status=$?

if [ "${CTBPF_SANITIZE_RUN:-1}" != 0 ]; then
  # Only what the unit tests need (ctbpf_unit_test_programs), not the CLI or the scenarios:
  # the privileged tests change global kernel state and would run a second time for little.
  # Debug (-O0), not -O1: here it built in 234 s against about 590 s (at lower load, though),
  # and its slower tests (72 s against 16 s) do not take that back.
  # The install and cli-docs tests are left out: they need the ctbpf binary, not built here.
  start=$(date +%s)
  cmake -S . -B build-asan -DCTBPF_SANITIZE=ON -DCTBPF_BUILD_TESTS=ON -DCTBPF_VM_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$(nproc)" --target ctbpf_unit_test_programs
  # Leaks fail the run (LSan is on by default); the tests' child processes (promtool,
  # python3) are not instrumented, so these settings do not reach them.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
  asan_status=0
  (cd build-asan && ctest --output-on-failure --timeout 600 -L unit -LE 'install|cli-docs') || asan_status=$?
  echo "test.sh: sanitizer build and unit tests took $(( $(date +%s) - start )) s"
  [ "$status" -ne 0 ] || status=$asan_status
fi
exit "$status"
