#!/usr/bin/env bash
# Kernel matrix: boots Debian's cloud kernels under qemu (plain emulation, no KVM needed)
# and runs the scenario test binary of tests/scenario inside (tools/vmtest/gtest.sh), once
# per backend the kernel must offer, with the tests that tests/vm/scenario-tests.txt
# picks: the same assertions the host's ctest runs with the tracepoint backend. Every other
# backend must be refused by ctbpf with a one-line reason. The kernels are the lines of
# tools/vmtest/kernels.txt; `host` runs the same on this machine, without a VM.
#
#   tools/vmtest/run.sh [--kernel NAME|all] [--cache DIR] [--results DIR] [--ctbpf BIN]
#                       [--loadgen BIN] [--tests BIN] [--list FILE] [--backends "fentry kprobe"]
#                       [--smoke] [--timeout SECONDS] [--script FILE] [--with COMMAND]...
#
# --tests is the scenario binary (default build/tests/scenario/ctbpf_scenario_tests),
# --list the test list, --smoke only its smoke tests. --script runs FILE in the VM instead
# of the tests, --with copies another host command in (e.g. bpftool): to look around; the
# console log is kept in the cache. --backends overrides kernels.txt's BACKENDS.
#
# Kernels are fetched with apt-get download into the cache (default build/vmtest-cache, or
# $CTBPF_VMTEST_CACHE) and reused, through a source list and package lists of the cache's
# own (the machine's apt sources are not used or changed), refreshed after a day; offline,
# the last packages found are used. Needs: qemu-system-x86 busybox-static cpio xz-utils zstd
# kmod (tools/setup.sh --tests), and nft, conntrack, ip, dash, setpriv on the host (copied into
# the VM with their libraries).
# Prints the VM's CTBPF-VM-RESULT and CTBPF-VM-REFUSED lines and the output of failed tests,
# writes RESULTS/NAME.json (default build/kernel-matrix; tools/vmtest/matrix.py turns those
# into the README's table); exits 0 only if every listed test passed with every backend,
# every other backend was refused and every VM finished.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

die() { echo "vmtest: $*" >&2; exit 1; }
kernels=all
cache=${CTBPF_VMTEST_CACHE:-$top/build/vmtest-cache}
results=$top/build/kernel-matrix
ctbpf=$top/build/ctbpf
loadgen=$top/build/tools/ctbpf-loadgen
tests=$top/build/tests/scenario/ctbpf_scenario_tests
list=$top/tests/vm/scenario-tests.txt
matrix=$here/kernels.txt
backends=""
smoke=""
timeout=900
script=$here/gtest.sh
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernels=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	--ctbpf) ctbpf=$2; shift 2 ;;
	--loadgen) loadgen=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--list) list=$2; shift 2 ;;
	--backends) backends=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	--timeout) timeout=$2; shift 2 ;;
	--script) script=$(realpath "$2"); shift 2 ;;
	--with) extra+=("$(command -v "$2")") || die "no command '$2'"; shift 2 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

# kernels.txt: NAME SUITES PACKAGE BACKENDS TESTS per line.
declare -A k_suites=() k_package=() k_backends=() k_tests=()
names=()
while read -r name suites package bk mode _; do
	case $name in ''|'#'*) continue ;; esac
	[ -n "$mode" ] || die "$matrix: '$name' needs five words: NAME SUITES PACKAGE BACKENDS TESTS"
	case $mode in full|smoke) ;; *) die "$matrix: '$name': TESTS must be full or smoke, not '$mode'" ;; esac
	names+=("$name")
	k_suites[$name]=$suites k_package[$name]=$package k_backends[$name]=${bk//,/ } k_tests[$name]=$mode
done < "$matrix"
if [ "$kernels" = all ]; then
	kernels=""
	for name in "${names[@]}"; do [ "$name" = host ] || kernels="$kernels $name"; done
fi
for name in $kernels; do
	[ -n "${k_tests[$name]:-}" ] || die "unknown kernel '$name' (kernels.txt has: ${names[*]})"
done

for c in qemu-system-x86_64 cpio xz zstd depmod gzip dpkg apt-get nft conntrack ip dash setpriv ldd strip python3; do
	command -v "$c" >/dev/null || die "'$c' is missing: run tools/setup.sh --tests (qemu-system-x86 busybox-static cpio xz-utils zstd kmod nftables conntrack iproute2 dash util-linux binutils python3)"
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox must be the static one: install busybox-static"
[ -x "$ctbpf" ] && [ -x "$loadgen" ] && [ -x "$tests" ] || die "build first: $ctbpf, $loadgen or $tests is missing"

# The googletest filters of the list (see its header) for a full or a smoke run: EVERY
# runs once per backend, ONCE with the first. A listed test the binary lacks fails the run
# (the matrix would quietly run less); a test the list does not name is only reported, so
# that adding a scenario does not break the matrix before someone decides where it runs.
declare -A every=() once=()
if [ "$script" = "$here/gtest.sh" ]; then
	[ -r "$list" ] || die "no test list $list"
	have=$("$tests" --gtest_list_tests | awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')
	[ -n "$have" ] || die "$tests lists no tests"
	every[full]="" once[full]="" every[smoke]="" once[smoke]=""
	while read -r how name mark _; do
		case $how in
		''|'#'*) continue ;;
		every|once|skip) ;;
		*) die "$list: '$how $name': the first word must be every, once or skip" ;;
		esac
		grep -qxF "$name" <<< "$have" || die "$list names $name, which $tests does not have"
		[ "$how" = skip ] && continue
		case $mark in
		'') sets=full ;;
		smoke) sets="full smoke" ;;
		*) die "$list: '$how $name $mark': the only mark is smoke" ;;
		esac
		for set in $sets; do
			case $how in
			every) every[$set]=${every[$set]}${every[$set]:+:}$name ;;
			once) once[$set]=${once[$set]}${once[$set]:+:}$name ;;
			esac
		done
	done < "$list"
	for name in $have; do
		grep -qE "^(every|once|skip)[[:space:]]+$name([[:space:]]|\$)" "$list" ||
			echo "vmtest: warning: $name is not in $list: not run in the VMs"
	done
fi
mkdir -p "$cache/debs" "$results"
cache=$(cd "$cache" && pwd)
# One VM at a time per cache, even across ctest runs: a VM needs both CPUs of a small
# machine, and the cache's files are shared.
exec 9> "$cache/.lock"
flock 9

# apt with a source list and package lists of the cache's own, one per set of suites. The
# archive is the one the machine's Debian sources name, else deb.debian.org.
apt_opts() {
	local dir=$cache/apt/${1//,/+}
	echo "-o Dir::Etc::sourcelist=$dir/sources.sources -o Dir::Etc::sourceparts=- -o Dir::Etc::preferencesparts=$dir/none" \
		"-o Dir::State::Lists=$dir/lists -o Dir::Cache=$dir/cache -o Dir::State::status=/dev/null" \
		"-o Acquire::Languages=none -o APT::Sandbox::User=root -o Debug::NoLocking=1"
}
apt_lists() {
	local suites=$1 dir=$cache/apt/${1//,/+} archive suite
	archive=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	archive=${archive%/}
	archive=${archive:-http://deb.debian.org/debian}
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/none"
	: > "$dir/sources.sources.new"
	for suite in ${suites//,/ }; do
		local uri=$archive
		[[ $suite == *-security ]] && uri=${archive%/debian}/debian-security
		printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: amd64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' \
			"$uri" "$suite" >> "$dir/sources.sources.new"
	done
	mv "$dir/sources.sources.new" "$dir/sources.sources"
	# Kernels move on (security updates); a day-old list is recent enough for a test.
	if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
		# shellcheck disable=SC2046
		apt-get $(apt_opts "$suites") -q update >&2 ||
			echo "vmtest: apt-get update for $suites failed: using what is cached" >&2
	fi
}

# The packages that make up a kernel: the image (PACKAGE, or the linux-image-* it depends
# on) and its linux-*-ABI dependencies (from Debian 14 the image package is split into
# linux-binary-*, linux-modules-* and linux-base-*). Asked from apt; the last answer, kept in
# the cache, if apt cannot tell.
kernel_packages() {
	local name=$1 suites=${k_suites[$1]} pkg=${k_package[$1]} img abi out saved=$cache/packages-$1
	apt_lists "$suites"
	# shellcheck disable=SC2046
	img=$(apt-cache $(apt_opts "$suites") depends "$pkg" 2>/dev/null |
		awk '/^  Depends: linux-image-[0-9]/ { print $2; exit }' || true)
	[ -n "$img" ] || img=$pkg
	abi=${img#linux-image-}
	# shellcheck disable=SC2046
	out=$(apt-cache $(apt_opts "$suites") depends "$img" 2>/dev/null |
		awk -v abi="-$abi" '$1 ~ /Depends:$/ && $2 ~ /^linux-/ && substr($2, length($2) - length(abi) + 1) == abi { print $2 }' |
		sort -u || true)
	if apt-cache $(apt_opts "$suites") show "$img" >/dev/null 2>&1; then
		printf '%s\n' "$img" $out > "$saved"
	fi
	[ -s "$saved" ] || die "no kernel package for $name found in ${suites} and none cached"
	cat "$saved"
}

# Downloads (once) and unpacks a kernel's packages; prints the unpacked tree, laid out as
# lib/modules/VERSION (with modules.dep) and boot/vmlinuz-VERSION whatever the package's
# layout (Debian 14 ships both under usr/lib/modules).
kernel_tree() {
	local name=$1 pkgs tree pkg ver deb
	pkgs=$(kernel_packages "$name")
	tree=$cache/kernels/$(head -n 1 <<< "$pkgs")
	# .packages came with the kernel list (kernels.txt): a tree unpacked before it is redone.
	if [ ! -f "$tree/.ok" ] || [ ! -f "$tree/.packages" ]; then
		for pkg in $pkgs; do
			if ! ls "$cache/debs/${pkg}_"*.deb >/dev/null 2>&1; then
				# shellcheck disable=SC2046
				(cd "$cache/debs" && apt-get $(apt_opts "${k_suites[$name]}") -q download "$pkg" >&2) ||
					die "apt-get download $pkg failed"
			fi
		done
		rm -rf "$tree" && mkdir -p "$tree"
		for pkg in $pkgs; do
			deb=$(ls "$cache/debs/${pkg}_"*.deb | sort -V | tail -n 1)
			dpkg -x "$deb" "$tree"
			dpkg-deb --showformat='${Package} ${Version}\n' -W "$deb" >> "$tree/.packages"
		done
		if [ -d "$tree/usr/lib/modules" ] && [ ! -d "$tree/lib/modules" ]; then
			mkdir -p "$tree/lib" && mv "$tree/usr/lib/modules" "$tree/lib/modules"
		fi
		ver=$(ls "$tree/lib/modules")
		if [ ! -f "$tree/boot/vmlinuz-$ver" ] && [ -f "$tree/lib/modules/$ver/vmlinuz" ]; then
			mkdir -p "$tree/boot" && mv "$tree/lib/modules/$ver/vmlinuz" "$tree/boot/vmlinuz-$ver"
		fi
		[ -f "$tree/boot/vmlinuz-$ver" ] || die "no vmlinuz in $pkgs"
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
	# nft_counter is built into nf_tables on the 6.x kernels; on 5.10 it is a module of its own.
	for m in nf_conntrack nf_tables nft_ct nf_conntrack_netlink 'nft_counter?'; do
		path=$(grep -oE "^[^:]*/${m%\?}\.ko(\.xz|\.zst|\.gz)?:" "$dep" | tr -d :) || {
			[[ $m == *\? ]] && continue
			die "module $m not in $dep"
		}
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

# gtest.sh's settings: the backends, the test filters, the deadline.
vm_conf() {
	local want=$1 set=$2 deadline=$3
	cat <<-EOF
	BACKENDS="$want"
	EVERY="${every[$set]:-}"
	ONCE="${once[$set]:-}"
	DEADLINE=$deadline
	EOF
}

build_initrd() {
	local tree=$1 ver=$2 want=$3 set=$4 out=$5 root=$cache/root-$2
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
	vm_conf "$want" "$set" $((timeout - 20)) > "$root/etc/ctbpf-vm.conf"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
	rm -rf "$root"
}

# The matrix's host row: gtest.sh on this machine, every backend ctbpf does not refuse.
run_host() {
	local work=$1 log=$2 up
	up=$(cut -d. -f1 /proc/uptime)
	{
		vm_conf "${backends:-auto}" "$set" $((up + timeout - 20))
		echo "TESTS_BIN=$tests CTBPF_BIN=$ctbpf LOADGEN_BIN=$loadgen IN_VM=0 WORK=$work"
	} > "$work/conf"
	CTBPF_VM_CONF=$work/conf timeout -k 10 "$timeout" sh "$script" > "$log" 2>&1
	echo "CTBPF-VM-DONE kernel=$(uname -r)" >> "$log"
}

# Results that fail for a reason outside ctbpf's fentry/kprobe code, as NAME:BACKEND (a
# whole backend) or NAME:BACKEND:Suite.Test (one test); they still run and are reported,
# but do not fail the test (see docs/vm-matrix.md).
known_failures=${CTBPF_VMTEST_KNOWN_FAILURES-""}

failed=0
for series in $kernels; do
	start=$(date +%s)
	set=${k_tests[$series]}
	[ -z "$smoke" ] || set=smoke
	want=${backends:-${k_backends[$series]}}
	if [ "$series" = host ]; then
		ver=$(uname -r) log=$cache/console-host.log work=$(mktemp -d)
		packages="host"
		echo "vmtest: running on this machine, $ver (backends: every one ctbpf does not refuse; $set tests)"
		set +e
		run_host "$work" "$log"
		rc=$?
		set -e
		rm -rf "$work"
	else
		tree=$(kernel_tree "$series")
		ver=$(ls "$tree/lib/modules")
		packages=$(paste -sd , "$tree/.packages")
		initrd=$cache/initrd-$ver.gz log=$cache/console-$ver.log
		build_initrd "$tree" "$ver" "$want" "$set" "$initrd"
		echo "vmtest: booting $ver (backends: $want; $set tests)"
		set +e
		timeout -k 10 "$timeout" qemu-system-x86_64 -m 1024 -smp 2 -nographic -no-reboot -nic none \
			-kernel "$tree/boot/vmlinuz-$ver" -initrd "$initrd" \
			-append "console=ttyS0 quiet panic=-1" < /dev/null > "$log" 2>&1
		rc=$?
		set -e
	fi
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
	if [ "$series" != host ] || [ -n "$backends" ]; then
		for b in $want; do
			grep -q "^CTBPF-VM-RESULT .* backend=$b " <<< "$lines" || { echo "vmtest: $ver: no result for backend $b"; bad=$((bad + 1)); }
		done
	fi
	for b in fentry kprobe tracepoint; do
		grep -qE "^CTBPF-VM-(RESULT|REFUSED) .* backend=$b " <<< "$lines" || { echo "vmtest: $ver: backend $b neither ran nor was refused"; bad=$((bad + 1)); }
	done
	if [ $rc -ne 0 ] || ! grep -q '^CTBPF-VM-DONE' <<< "$lines"; then
		echo "vmtest: $ver: the run did not finish (exit $rc, timeout ${timeout}s); log tail:"
		tail -n 40 "$log"
		bad=$((bad + 1))
	fi
	[ $known -eq 0 ] || echo "vmtest: $ver: $known failed runs not counted, known failures: $known_failures"
	seconds=$(($(date +%s) - start))
	echo "vmtest: $ver: $passed of $runs test runs passed, $bad failures, $seconds s (log: $log)"
	if [ "$script" = "$here/gtest.sh" ]; then
		python3 "$here/matrix.py" record --name "$series" --release "$ver" --packages "$packages" \
			--suites "${k_suites[$series]}" --tests "$set" --seconds "$seconds" --failures "$bad" \
			--known "$known_failures" --out "$results/$series.json" <<< "$lines"
	fi
	[ "$bad" -eq 0 ] || failed=1
done
exit $failed
