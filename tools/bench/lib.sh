# Shared by the tools/bench/*.sh scripts (sourced, not run). Sets:
#   CTBPF, LOADGEN   binaries of the build in $CTBPF_BUILD (default ./build of the repo)
#   ns               a fresh test netns (deleted on exit), conntrack switched on in it
# and holds /tmp/ctbpf-conntrack.lock for the script's lifetime: nf_conntrack_max is global
# and others run tests on this machine too. The old nf_conntrack_max is restored on exit.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${CTBPF_BUILD:-./build}
CTBPF=$BUILD/ctbpf
LOADGEN=$BUILD/tools/ctbpf-loadgen
for b in "$CTBPF" "$LOADGEN"; do
  [ -x "$b" ] || { echo "missing $b (build first, or set CTBPF_BUILD)" >&2; exit 1; }
done
ns=ctbpf-bench-$$
exec 9>/tmp/ctbpf-conntrack.lock; flock 9
old_max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
bench_pids=()
bench_cleanup() {
  local p
  for p in "${bench_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  echo "$old_max" > /proc/sys/net/netfilter/nf_conntrack_max
  ip netns del "$ns" 2>/dev/null || true
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
# A rule matching on ct state makes conntrack track the netns's traffic.
ip netns exec "$ns" nft 'add table inet b; add chain inet b out { type filter hook output priority 0; }; add rule inet b out ct state new counter'

set_max() { echo "$1" > /proc/sys/net/netfilter/nf_conntrack_max; }
ns_count() { ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_count; }
flush() { ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true; }
now() { date +%s.%N; }
# CPU time (user + system) of a process in seconds, from /proc/PID/stat fields 14 and 15.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
# Column $1 of /proc/net/stat/nf_conntrack in the netns, summed over CPUs (hex).
stat_sum() {
  ip netns exec "$ns" /usr/bin/python3 -c 'import sys
rows=[l.split() for l in open("/proc/net/stat/nf_conntrack")]
c=rows[0].index(sys.argv[1]); print(sum(int(r[c],16) for r in rows[1:]))' "$1"
}
# Two load generators, one per core, two sources each, FLOWS flows per source, all at once
# (the maximum insert rate). Prints flows/s over the whole burst.
burst() {  # $1 = flows per source
  local t0 t1
  t0=$(now)
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 --src 127.0.1.1 --src 127.0.1.2 --flows "$1" >/dev/null &
  local a=$!
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 --src 127.0.2.1 --src 127.0.2.2 --flows "$1" >/dev/null &
  local b=$!
  wait "$a" "$b"
  t1=$(now)
  awk -v n=$(($1 * 4)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}
