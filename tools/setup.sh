#!/usr/bin/env bash
# Installs what ctbpf needs, from Debian's archive only. Idempotent; run as root on Debian 12
# (bookworm). Other distributions: see README "Requirements" and "Dependencies".
#   bash tools/setup.sh            # what building and running ctbpf needs (tools/run.sh)
#   bash tools/setup.sh --tests    # that, and what the tests add (tools/test.sh, .ci/run)
set -euo pipefail

die() { echo "setup.sh: $*" >&2; exit 1; }

tests=0
case "${1:-}" in
  "") ;;
  --tests) tests=1 ;;
  *) die "unknown argument '$1' (use: setup.sh [--tests])" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages with apt-get)"
. /etc/os-release 2>/dev/null || die "cannot read /etc/os-release: unsupported system"
if [ "${ID:-}" != debian ] || [ "${VERSION_CODENAME:-}" != bookworm ]; then
  die "unsupported distribution '${PRETTY_NAME:-unknown}': this script supports Debian 12 (bookworm); install the packages listed in README.md by hand"
fi

# libbpf >= 1.2 (netfilter links) and a matching bpftool are only in bookworm-backports.
# Use the same mirror as the main sources, in a file of our own; debian.sources stays untouched.
bp=/etc/apt/sources.list.d/ctbpf-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$( { grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list || true; } \
           | grep -v security | awk 'NR==1 {print $2}')
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  cat > "$bp" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

# Building and running: exactly what CMakeLists.txt finds outside the tests (the -dev
# packages pull in the shared libraries the binary links), and nothing else, so the
# README's main command does not download a browser and an emulator. llvm is not here:
# `clang -target bpf` and bpftool produce the BPF object without LLVM's tools.
run=(build-essential cmake pkg-config clang libelf-dev zlib1g-dev
     libcli11-dev libfmt-dev nlohmann-json3-dev libncurses-dev libmnl-dev
     libzstd-dev libmicrohttpd-dev)
test_pkgs=()
if [ "$tests" -eq 1 ]; then
  # Unit tests, micro-benchmarks (built by the test command), the tests' scripts; llvm's
  # tools (llvm-objdump) are for looking into the BPF objects, nothing calls them.
  test_pkgs+=(googletest libgtest-dev libgmock-dev libbenchmark-dev python3 llvm)
  # What the tests drive: real conntrack in network namespaces.
  test_pkgs+=(nftables conntrack iproute2 procps kmod util-linux tmux)
  # `ctbpf serve` is scraped by a real Prometheus; promtool and the Python client check the
  # exposition and the alert rules.
  test_pkgs+=(prometheus python3-prometheus-client curl)
  # The SVG flame graph is checked in a real browser.
  test_pkgs+=(chromium)
  # The kernel matrix: Debian kernels booted under qemu (tools/vmtest).
  test_pkgs+=(qemu-system-x86 busybox-static cpio xz-utils zstd)
  # The generated man page is rendered (groff, man) and the zsh completion parsed.
  test_pkgs+=(groff-base man-db zsh)
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${run[@]}" "${test_pkgs[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports libbpf-dev bpftool >/dev/null

# Check what we rely on, so a broken install fails here and not deep in the build.
v=$(pkg-config --modversion libbpf)
dpkg --compare-versions "$v" ge 1.2 || die "libbpf $v is too old (need >= 1.2 for netfilter links)"
command -v bpftool >/dev/null || die "bpftool was not installed"
what="build and run"
[ "$tests" -eq 0 ] || what="build, run and test"
echo "setup.sh: ready to $what (libbpf $v, $(bpftool version | head -n1), $(clang --version | head -n1))"
