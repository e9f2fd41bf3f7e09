#!/usr/bin/env bash
# Kernel matrix: boots Debian's cloud kernels under qemu (plain emulation, no KVM needed)
# and runs the scenario test binary of tests/scenario inside (tools/vmtest/gtest.sh), once
# per backend the kernel should offer, with the tests that tests/vm/scenario-tests.txt
# picks: the same assertions the host's ctest runs with the tracepoint backend.
#
#   tools/vmtest/run.sh [--kernel 6.1|6.12|all] [--cache DIR] [--ctbpf BIN] [--loadgen BIN]
#                       [--tests BIN] [--list FILE] [--backends "fentry kprobe"]
#                       [--timeout SECONDS] [--script FILE] [--with COMMAND]...
#
# --tests is the scenario binary (default build/tests/scenario/ctbpf_scenario_tests),
# --list the test list. --script runs FILE in the VM instead of the tests, --with copies
# another host command in (e.g. bpftool): to look around; the console log is kept in the
# cache.
#
# Kernels: the current bookworm 6.1 and bookworm-backports 6.12 cloud images, fetched with
# apt-get download into the cache (default build/vmtest-cache, or $CTBPF_VMTEST_CACHE) and
# reused. Needs: qemu-system-x86 busybox-static cpio xz-utils zstd kmod (tools/setup.sh),
# and nft, conntrack, ip, dash, setpriv on the host (copied into the VM with their libraries).
# Prints the VM's CTBPF-VM-RESULT lines (one per test and backend) and the output of failed
# tests; exits 0 only if every listed test passed with every backend and every VM finished.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

die() { echo "vmtest: $*" >&2; exit 1; }
kernels=all
cache=${CTBPF_VMTEST_CACHE:-$top/build/vmtest-cache}
ctbpf=$top/build/ctbpf
loadgen=$top/build/tools/ctbpf-loadgen
tests=$top/build/tests/scenario/ctbpf_scenario_tests
list=$top/tests/vm/scenario-tests.txt
backends=""
timeout=900
script=$here/gtest.sh
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--ctbpf) ctbpf=$2; shift 2 ;;
	--loadgen) loadgen=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--list) list=$2; shift 2 ;;
	--backends) backends=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--script) script=$(realpath "$2"); shift 2 ;;
	--with) extra+=("$(command -v "$2")") || die "no command '$2'"; shift 2 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
[ "$kernels" = all ] && kernels="6.1 6.12"

for c in qemu-system-x86_64 cpio xz zstd depmod gzip dpkg apt-get nft conntrack ip dash setpriv ldd strip; do
	command -v "$c" >/dev/null || die "'$c' is missing: run tools/setup.sh (qemu-system-x86 busybox-static cpio xz-utils zstd kmod nftables conntrack iproute2 dash util-linux binutils)"
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox must be the static one: install busybox-static"
[ -x "$ctbpf" ] && [ -x "$loadgen" ] && [ -x "$tests" ] || die "build first: $ctbpf, $loadgen or $tests is missing"

# The googletest filters of the list (see its header): EVERY runs once per backend, ONCE
# with the first. A listed test the binary lacks fails the run (the matrix would quietly
# run less); a test the list does not name is only reported, so that adding a scenario
# does not break the matrix before someone decides where it runs.
every="" once=""
if [ "$script" = "$here/gtest.sh" ]; then
	[ -r "$list" ] || die "no test list $list"
	have=$("$tests" --gtest_list_tests | awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')
	[ -n "$have" ] || die "$tests lists no tests"
	while read -r how name _; do
		case $how in
		''|'#'*) continue ;;
		every|once|skip) ;;
		*) die "$list: '$how $name': the first word must be every, once or skip" ;;
		esac
		grep -qxF "$name" <<< "$have" || die "$list names $name, which $tests does not have"
		case $how in
		every) every=$every${every:+:}$name ;;
		once) once=$once${once:+:}$name ;;
		esac
	done < "$list"
	for name in $have; do
		grep -qE "^(every|once|skip)[[:space:]]+$name([[:space:]]|\$)" "$list" ||
			echo "vmtest: warning: $name is not in $list: not run in the VMs"
	done
fi
mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)
# One VM at a time per cache, even across ctest runs: a VM needs both CPUs of a small
# machine, and the cache's files are shared.
exec 9> "$cache/.lock"
flock 9

# The current image package of a series, asked from apt; the newest cached one if apt
# cannot tell (no package lists).
kernel_package() {
	local pkg="" re
	case $1 in
	6.1) re='linux-image-6\.1\.0-[0-9]+-cloud-amd64'
		pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null | grep -E "^$re\$" | sort -V | tail -n 1 || true) ;;
	6.12) re='linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64'
		pkg=$(apt-cache depends linux-image-6.12-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-6\.12/ { print $2; exit }' || true) ;;
	*) die "unknown kernel series '$1' (6.1 or 6.12)" ;;
	esac
	[ -n "$pkg" ] || pkg=$(ls "$cache/debs" | grep -oE "^${re}_" | tr -d _ | sort -V | tail -n 1 || true)
	[ -n "$pkg" ] || die "no linux-image package for $1 found (apt-get update?) and none cached in $cache/debs"
	echo "$pkg"
}

# Downloads (once) and unpacks the image; prints the unpacked tree.
kernel_tree() {
	local pkg=$1 tree=$cache/kernels/$1
	if [ ! -f "$tree/.ok" ]; then
		if ! ls "$cache/debs/${pkg}_"*.deb >/dev/null 2>&1; then
			(cd "$cache/debs" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
		fi
		rm -rf "$tree" && mkdir -p "$tree"
		dpkg -x "$(ls "$cache/debs/${pkg}_"*.deb | tail -n 1)" "$tree"
		local ver
		ver=$(ls "$tree/lib/modules")
		depmod -b "$tree" "$ver"  # the package has no modules.dep
		touch "$tree/.ok"
	fi
	echo "$tree"
}

# Copies a binary and its shared libraries (as ldd resolves them) into the initramfs.
copy_with_libs() {
	local root=$1 bin=$2 dest=$3 lib
	install -D -m 755 "$bin" "$root$dest"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		[ -e "$root$lib" ] || install -D -m 755 "$lib" "$root$lib"
	done
}

# Modules conntrack and the test ruleset need, dependencies first, decompressed.
copy_modules() {
	local root=$1 tree=$2 ver=$3 dep m path
	dep=$tree/lib/modules/$ver/modules.dep
	local -a order=()
	declare -A seen=()
	add() {
		[ -n "${seen[$1]:-}" ] && return
		seen[$1]=1
		local d
		for d in $(awk -v m="$1:" '$1 == m { for (i = 2; i <= NF; i++) print $i }' "$dep"); do add "$d"; done
		order+=("$1")
	}
	for m in nf_conntrack nf_tables nft_ct nf_conntrack_netlink; do
		path=$(grep -oE "^[^:]*/$m\.ko(\.xz|\.zst|\.gz)?:" "$dep" | tr -d :) || die "module $m not in $dep"
		add "$path"
	done
	: > "$root/etc/ctbpf-modules"
	for m in "${order[@]}"; do
		local out=${m%.xz}
		out=${out%.zst}
		out=${out%.gz}
		mkdir -p "$(dirname "$root/lib/modules/$out")"
		case $m in
		*.xz) xz -dc "$tree/lib/modules/$ver/$m" ;;
		*.zst) zstd -qdc "$tree/lib/modules/$ver/$m" ;;
		*.gz) gzip -dc "$tree/lib/modules/$ver/$m" ;;
		*) cat "$tree/lib/modules/$ver/$m" ;;
		esac > "$root/lib/modules/$out"
		echo "$out" >> "$root/etc/ctbpf-modules"
	done
}

build_initrd() {
	local tree=$1 ver=$2 want=$3 out=$4 root=$cache/root-$2
	rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,run,usr/bin}
	cp /bin/busybox "$root/bin/busybox"
	# The tests' sh -c and ip netns exec need a shell that runs what PATH finds: busybox sh
	# runs its own applets first (its `ip` has no netns). init.sh keeps this /bin/sh.
	copy_with_libs "$root" "$(command -v dash)" /bin/sh
	install -m 755 "$here/init.sh" "$root/init"
	install -m 755 "$script" "$root/run-tests.sh"
	copy_with_libs "$root" "$ctbpf" /usr/local/bin/ctbpf
	copy_with_libs "$root" "$loadgen" /usr/local/bin/ctbpf-loadgen
	copy_with_libs "$root" "$tests" /usr/local/bin/ctbpf_scenario_tests
	# Debug information would only fill the VM's memory (the initramfs lives there).
	strip --strip-debug "$root"/usr/local/bin/ctbpf*
	for c in nft conntrack ip; do copy_with_libs "$root" "$(command -v $c)" "/usr/sbin/$c"; done
	# util-linux's, for the capability options busybox's applet lacks.
	copy_with_libs "$root" "$(command -v setpriv)" /usr/bin/setpriv
	for c in "${extra[@]}"; do copy_with_libs "$root" "$c" "/usr/local/bin/$(basename "$c")"; done
	cp /etc/protocols /etc/services "$root/etc/" 2>/dev/null || true
	copy_modules "$root" "$tree" "$ver"
	# DEADLINE: seconds after boot by which gtest.sh kills a run that is still going, so
	# that the VM reports and powers off before qemu's timeout.
	cat > "$root/etc/ctbpf-vm.conf" <<-EOF
	BACKENDS="$want"
	EVERY="$every"
	ONCE="$once"
	DEADLINE=$((timeout - 20))
	EOF
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
	rm -rf "$root"
}

# Results that fail for a reason outside ctbpf's fentry/kprobe code, as SERIES:BACKEND (a
# whole backend) or SERIES:BACKEND:Suite.Test (one test); they still run and are reported,
# but do not fail the test (see docs/vm-matrix.md).
known_failures=${CTBPF_VMTEST_KNOWN_FAILURES-""}

failed=0
for series in $kernels; do
	start=$(date +%s)
	pkg=$(kernel_package "$series")
	tree=$(kernel_tree "$pkg")
	ver=$(ls "$tree/lib/modules")
	# Backends this kernel must offer: fentry and kprobe everywhere, tracepoint from 6.4.
	want=$backends
	if [ -z "$want" ]; then
		want="fentry kprobe"
		[ "$(printf '%s\n' 6.4 "$ver" | sort -V | head -n 1)" = 6.4 ] && want="$want tracepoint"
	fi
	initrd=$cache/initrd-$ver.gz log=$cache/console-$ver.log
	build_initrd "$tree" "$ver" "$want" "$initrd"
	echo "vmtest: booting $ver (backends: $want)"
	set +e
	timeout -k 10 "$timeout" qemu-system-x86_64 -m 1024 -smp 2 -nographic -no-reboot -nic none \
		-kernel "$tree/boot/vmlinuz-$ver" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1" < /dev/null > "$log" 2>&1
	rc=$?
	set -e
	# The console has no clean line starts (terminal resets): take the marked lines out.
	lines=$(tr -d '\r' < "$log" | grep -o 'CTBPF-VM-.*' || true)
	echo "$lines"
	runs=0 passed=0 bad=0 known=0
	while read -r tag _ b t p _; do
		[ "$tag" = CTBPF-VM-RESULT ] || continue
		runs=$((runs + 1))
		b=${b#backend=} t=${t#test=}
		if [ "$p" = pass=1 ]; then
			passed=$((passed + 1))
		elif [[ " $known_failures " == *" $series:$b "* || " $known_failures " == *" $series:$b:$t "* ]]; then
			known=$((known + 1))
		else
			bad=$((bad + 1))
		fi
	done <<< "$lines"
	for b in $want; do
		grep -q "^CTBPF-VM-RESULT .* backend=$b " <<< "$lines" || { echo "vmtest: $ver: no result for backend $b"; bad=$((bad + 1)); }
	done
	if [ $rc -ne 0 ] || ! grep -q '^CTBPF-VM-DONE' <<< "$lines"; then
		echo "vmtest: $ver: the VM did not finish (qemu exit $rc, timeout ${timeout}s); console tail:"
		tail -n 40 "$log"
		bad=$((bad + 1))
	fi
	[ $known -eq 0 ] || echo "vmtest: $ver: $known failed runs not counted, known failures: $known_failures"
	echo "vmtest: $ver: $passed of $runs test runs passed, $bad failures, $(($(date +%s) - start)) s (console log: $log)"
	[ "$bad" -eq 0 ] || failed=1
done
exit $failed
