#!/usr/bin/env bash
# Installs the build into a scratch DESTDIR and checks what a package would ship: the files
# are where the README says, the unit starts the installed binary, and that binary runs and
# reports CMake's project(VERSION).
#   check_install.sh BUILD_DIR SCRATCH VERSION PREFIX BINDIR UNITDIR DATADIR DOCDIR MANDIR
set -euo pipefail
build=$1 scratch=$2 version=$3 prefix=$4 bindir=$5 unitdir=$6 datadir=$7 docdir=$8 mandir=$9

rm -rf "$scratch"
DESTDIR="$scratch" cmake --install "$build" >/dev/null
root="$scratch$prefix"
fail=0
expect() {
  if [ ! -s "$root/$1" ]; then echo "check_install: missing or empty: $prefix/$1" >&2; fail=1; fi
}
expect "$bindir/ctbpf"
expect "$unitdir/ctbpf-serve.service"
expect "$datadir/ctbpf/prometheus/alerts.yml"
expect "$datadir/ctbpf/grafana/ctbpf-dashboard.json"
expect "$datadir/ctbpf/kubernetes/ctbpf-daemonset.yaml"
expect "$docdir/README.md"
expect "$docdir/LICENSE"
expect "$docdir/docs/ARCHITECTURE.md"
expect "$docdir/docs/metrics.md"
expect "$mandir/man8/ctbpf.8"
# bash-completion loads a command's completion by the command's name.
expect "$datadir/bash-completion/completions/ctbpf"
expect "$datadir/zsh/site-functions/_ctbpf"
[ -x "$root/$bindir/ctbpf" ] || { echo "check_install: ctbpf is not executable" >&2; fail=1; }
[ "$fail" -eq 0 ] || exit 1

# A unit pointing at a path the install did not create would fail only on the target host.
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root/$unitdir/ctbpf-serve.service")
if [ "$exec_start" != "$prefix/$bindir/ctbpf" ]; then
  echo "check_install: the unit runs '$exec_start', the binary is installed as $prefix/$bindir/ctbpf" >&2
  exit 1
fi

got=$("$root/$bindir/ctbpf" --version)
if [ "$got" != "ctbpf $version" ]; then
  echo "check_install: installed ctbpf --version says '$got', CMake's project version is $version" >&2
  exit 1
fi
"$root/$bindir/ctbpf" --help | grep -q '^ctbpf: live observer' || { echo "check_install: --help" >&2; exit 1; }
rm -rf "$scratch"
echo "check_install: ok ($prefix/$bindir/ctbpf, ctbpf $version)"
