#!/bin/sh
# Runs inside the test VM (started by init.sh), as root: the scenario test binary of
# tests/scenario once per backend in /etc/ctbpf-vm.conf (BACKENDS), with the tests
# tests/vm/scenario-tests.txt picks (EVERY each time, ONCE with the first backend only).
# googletest's own output goes to the console as it comes, so a hung VM shows where it
# stopped; then each test becomes one line
#   CTBPF-VM-RESULT kernel=K backend=B test=Suite.Name pass=1|0 ms=N
# and a failed one also prints its output as CTBPF-VM-LOG lines (the console's other lines
# are hard to pick out of a CI log). A run that crashed, was killed at the deadline or ran
# fewer tests than listed adds a failed result named `run`.
#
# DEADLINE (seconds since boot) comes before the host's qemu timeout: a run still going
# then is killed, so that the VM still reports and powers off. Slow runs (emulation on a
# busy machine) use the time they need; only a hang costs the backends after it.
. /etc/ctbpf-vm.conf
kernel=$(uname -r)
bin=/usr/local/bin/ctbpf_scenario_tests
export CTBPF_TEST_BIN=/usr/local/bin/ctbpf CTBPF_TEST_LOADGEN=/usr/local/bin/ctbpf-loadgen
# A skip here means a listed test did not run: count it as a failure, as CI does.
export CTBPF_REQUIRE_PRIVILEGED=1

# googletest's output on stdin; prints the result lines.
results() {
	awk -v k="$kernel" -v b="$backend" '
	function flush(name, pass, ms, why,   i, n) {
		print "CTBPF-VM-RESULT kernel=" k " backend=" b " test=" name " pass=" pass " ms=" ms why
		if (pass) return
		n = nlog > 80 ? 80 : nlog
		for (i = 1; i <= n; i++) print "CTBPF-VM-LOG backend=" b " test=" name ": " buf[i]
		if (nlog > n) print "CTBPF-VM-LOG backend=" b " test=" name ": (" nlog - n " more lines in the console log)"
	}
	/\[ RUN      \] / { nlog = 0; next }
	match($0, /\[ +(OK|FAILED|SKIPPED) +\] [^ ]+ \([0-9]+ ms\)/) {
		split(substr($0, RSTART, RLENGTH), f, " ")
		# f: "[", OK|FAILED|SKIPPED, "]", name, "(N", "ms)"
		ms = substr(f[5], 2)
		if (f[2] == "OK") flush(f[4], 1, ms, "")
		else flush(f[4], 0, ms, f[2] == "SKIPPED" ? " detail=skipped" : "")
		nlog = 0
		next
	}
	{ buf[++nlog] = $0 }'
}

first=1
for backend in $BACKENDS; do
	filter=$EVERY
	[ -z "$first" ] || filter="$filter${ONCE:+:$ONCE}"
	first=
	expected=$("$bin" --gtest_list_tests --gtest_filter="$filter" | grep -c '^  ')
	left=$((DEADLINE - $(cut -d. -f1 /proc/uptime)))
	[ "$left" -gt 5 ] || left=5
	echo "CTBPF-VM-RUN kernel=$kernel backend=$backend tests=$expected seconds_left=$left"
	t0=$(date +%s)
	{
		CTBPF_TEST_BACKEND=$backend timeout -s KILL "$left" "$bin" --gtest_filter="$filter" --gtest_color=no 2>&1
		echo $? > /tmp/gtest.rc
	} | tee /tmp/gtest.out
	rc=$(cat /tmp/gtest.rc)
	results < /tmp/gtest.out > /tmp/results
	cat /tmp/results
	ran=$(grep -c '^CTBPF-VM-RESULT' /tmp/results)
	failed=$(grep -c ' pass=0 ' /tmp/results)
	# googletest exits 1 when a test failed; anything else, or a count that does not add up,
	# is a run that broke off.
	if [ "$ran" != "$expected" ] || { [ "$rc" != 0 ] && [ "$rc" != 1 ]; } || { [ "$rc" = 1 ] && [ "$failed" = 0 ]; }; then
		why="exit-$rc"
		[ "$rc" = 137 ] && why="killed-at-the-deadline-after-${left}s"
		echo "CTBPF-VM-RESULT kernel=$kernel backend=$backend test=run pass=0 ms=0 detail=$why,ran-$ran-of-$expected"
		tail -n 20 /tmp/gtest.out | sed "s/^/CTBPF-VM-LOG backend=$backend test=run: /"
	fi
	echo "CTBPF-VM-RUN kernel=$kernel backend=$backend seconds=$(($(date +%s) - t0))"
	conntrack -F 2>/dev/null
done
