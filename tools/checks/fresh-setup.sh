#!/usr/bin/env bash
# The README's main command's set-up on a fresh Debian 12, measured: a minimal bookworm
# (debootstrap --variant=minbase, kept as a tarball so later runs skip it) gets this
# working tree, runs tools/setup.sh without --tests (the build-and-run set), then configures
# and builds the ctbpf target, as tools/run.sh does. It shows that set is enough to build
# ctbpf (and that CMake configures without the test packages) and how long each step takes.
# Nothing runs the BPF programs here: a chroot shares the host's kernel, so there is
# nothing to learn about them.
#   sudo bash tools/checks/fresh-setup.sh [--setup-only] [--jobs N]
#   sudo bash tools/checks/fresh-setup.sh --tests     # times `tools/setup.sh --tests` instead
# CTBPF_FRESH_CACHE (default /var/cache/ctbpf-fresh) holds the tarball.
set -euo pipefail
die() { echo "fresh-setup: $*" >&2; exit 1; }

setup_only=0 jobs=2 tests=0
while [ $# -gt 0 ]; do
  case $1 in
    --setup-only) setup_only=1 ;;
    --tests) tests=1 setup_only=1 ;;
    --jobs) jobs=$2; shift ;;
    *) die "unknown argument '$1'" ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, mounts)"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${CTBPF_FRESH_CACHE:-/var/cache/ctbpf-fresh}
tarball=$cache/bookworm-minbase.tar
# The host's own mirror, as its main sources name it (not the security archive).
sources=/etc/apt/sources.list.d/debian.sources
mirror=$( { grep -hsE '^URIs:' "$sources" || true; } | grep -v security | awk 'NR==1 {print $2}')
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", b - a}'; }

mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  base=$(mktemp -d /var/tmp/ctbpf-base.XXXXXX)
  echo "fresh-setup: debootstrap bookworm from $mirror (once; cached in $tarball)"
  debootstrap --variant=minbase bookworm "$base" "$mirror" >/dev/null
  # A fresh machine has downloaded nothing yet.
  rm -f "$base"/var/cache/apt/archives/*.deb
  # Numeric owners: the chroot's users (_apt) are not the host's.
  tar --numeric-owner -C "$base" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$base"
fi

root=$(mktemp -d /var/tmp/ctbpf-fresh.XXXXXX)
cleanup() {
  for m in proc dev/pts dev; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT
tar --numeric-owner -C "$root" -xf "$tarball"
# The host's sources (same mirror, suites and updates), as a cloud image has them.
rm -f "$root/etc/apt/sources.list"
if [ -f "$sources" ]; then cp "$sources" "$root/etc/apt/sources.list.d/debian.sources"; fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
# The working tree as it is (uncommitted changes too), without build trees or git data.
mkdir "$root/src"
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --no-recursion) | tar -C "$root/src" -xf -

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 bash -c "$1"; }

if [ "$tests" -eq 1 ]; then
  t0=$(now)
  in_root 'cd /src && bash tools/setup.sh --tests'
  t1=$(now)
  echo "fresh-setup: tools/setup.sh --tests (build, run and test set) took $(took "$t0" "$t1") s"
  echo "fresh-setup: downloaded $(du -cm "$root"/var/cache/apt/archives/*.deb | awk 'END {print $1}') MiB in $(ls "$root"/var/cache/apt/archives/*.deb | wc -l) packages"
  in_root 'dpkg-query -W -f "\${Installed-Size}\n" | awk "{s += \$1} END {printf \"fresh-setup: installed packages now take %.0f MiB\n\", s / 1024}"'
  exit 0
fi
t0=$(now)
in_root 'cd /src && bash tools/setup.sh'
t1=$(now)
echo "fresh-setup: tools/setup.sh (build and run set) took $(took "$t0" "$t1") s"
# apt keeps what it fetched: the download, which is what a slower network pays for.
echo "fresh-setup: downloaded $(du -cm "$root"/var/cache/apt/archives/*.deb | awk 'END {print $1}') MiB in $(ls "$root"/var/cache/apt/archives/*.deb | wc -l) packages"
in_root 'dpkg-query -W -f "\${Installed-Size}\n" | awk "{s += \$1} END {printf \"fresh-setup: installed packages now take %.0f MiB\n\", s / 1024}"'
for p in googletest libbenchmark-dev chromium qemu-system-x86 prometheus llvm groff-base zsh; do
  if in_root "dpkg-query -W -f '\${Status}' $p 2>/dev/null | grep -q 'install ok installed'"; then
    die "the build-and-run set installed the test package $p"
  fi
done
[ "$setup_only" -eq 0 ] || exit 0

tc=$(now)
in_root 'cd /src && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTBPF_WERROR=ON' >"$root/configure.log" 2>&1 \
  || { cat "$root/configure.log" >&2; die "cmake could not configure with the build-and-run set"; }
grep -i 'ctbpf:' "$root/configure.log" || true
grep -q 'tests not built' "$root/configure.log" || die "CMake did not report the tests as left out"
t2=$(now)
echo "fresh-setup: cmake configure took $(took "$tc" "$t2") s"
in_root "cd /src && cmake --build build -j$jobs --target ctbpf >/dev/null"
t3=$(now)
echo "fresh-setup: building the ctbpf target (-j$jobs) took $(took "$t2" "$t3") s"
in_root '/src/build/ctbpf --version && /src/build/ctbpf --help >/dev/null'
echo "fresh-setup: ok: set-up $(took "$t0" "$t1") s, configure and build $(took "$tc" "$t3") s, total $(awk -v a="$(took "$t0" "$t1")" -v b="$(took "$tc" "$t3")" 'BEGIN {print a + b}') s"
