#!/usr/bin/env bash
# Installs everything ctbpf needs to build, run and test, from Debian's archive only.
# Idempotent; run as root on Debian 12 (bookworm). Other distributions: see README "Requirements".
set -euo pipefail

die() { echo "setup.sh: $*" >&2; exit 1; }

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

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Build toolchain and libraries.
pkgs=(build-essential cmake pkg-config clang llvm libelf-dev zlib1g-dev
      libcli11-dev libfmt-dev nlohmann-json3-dev libncurses-dev libmnl-dev
      libzstd-dev libmicrohttpd-dev
      googletest libgtest-dev libgmock-dev libbenchmark-dev)
# What the tests drive: real conntrack in network namespaces.
pkgs+=(nftables conntrack iproute2 procps kmod util-linux tmux)
# `ctbpf serve` is scraped by a real Prometheus; promtool and the Python client check the
# exposition and the alert rules.
pkgs+=(prometheus python3-prometheus-client curl)
# The SVG flame graph is checked in a real browser.
pkgs+=(chromium)
# The kernel matrix: Debian kernels booted under qemu (tools/vmtest).
pkgs+=(qemu-system-x86 busybox-static cpio xz-utils zstd)
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports libbpf-dev bpftool >/dev/null

# Check what we rely on, so a broken install fails here and not deep in the build.
v=$(pkg-config --modversion libbpf)
dpkg --compare-versions "$v" ge 1.2 || die "libbpf $v is too old (need >= 1.2 for netfilter links)"
command -v bpftool >/dev/null || die "bpftool was not installed"
echo "setup.sh: ready (libbpf $v, $(bpftool version | head -n1), $(clang --version | head -n1))"
