#!/usr/bin/env bash
# Kernel-side overhead and completeness: the fastest rate of new conntrack entries two
# load generators reach in a test netns, without ctbpf and with `ctbpf events --json`
# attached, alternated RUNS times in the same run (the machine is shared and noisy, so
# only same-run ratios mean anything). Then the same in a table-full drop storm.
# Prints one JSON line per measurement and a summary; BENCHMARKS.md quotes it.
#   sudo bash tools/bench/kernel.sh [RUNS] [FLOWS_PER_GENERATOR]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
FLOWS=${2:-30000}
CTBPF=./build/ctbpf
LOADGEN=./build/tools/ctbpf-loadgen
ns=ctbpf-bench-$$
lock=/tmp/ctbpf-conntrack.lock
exec 9>"$lock"; flock 9          # nf_conntrack_max is global: one user at a time
old_max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
cleanup() { echo "$old_max" > /proc/sys/net/netfilter/nf_conntrack_max; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" nft 'add table inet b; add chain inet b out { type filter hook output priority 0; }; add rule inet b out ct state new counter'
stat_sum() {  # column $1 of /proc/net/stat/nf_conntrack in the netns, summed over CPUs (hex)
  ip netns exec "$ns" python3 -c 'import sys
rows=[l.split() for l in open("/proc/net/stat/nf_conntrack")]
c=rows[0].index(sys.argv[1]); print(sum(int(r[c],16) for r in rows[1:]))' "$1"
}

# One measurement: two generators (one per core) with distinct sources; prints flows/s.
burst() {
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 --src 127.0.1.1 --src 127.0.1.2 --flows "$FLOWS" >/dev/null &
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 --src 127.0.2.1 --src 127.0.2.2 --flows "$FLOWS" >/dev/null &
  wait %1 %2 2>/dev/null || wait
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk -v n=$((FLOWS * 4)) '{printf "%.0f", n / ($2 - $1)}'
}

run() {  # $1 = with|without, $2 = mode
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
  local pid="" out rate d0 d1
  out=$(mktemp)
  if [ "$1" = with ]; then
    "$CTBPF" events --json --netns "$ns" >"$out" 2>/dev/null &
    pid=$!
    sleep 1
  fi
  d0=$(stat_sum drop)
  rate=$(burst)
  d1=$(stat_sum drop)
  local extra=""
  if [ -n "$pid" ]; then
    sleep 0.5; kill -TERM "$pid"; wait "$pid" || true
    extra=$(tail -n 1 "$out" | python3 -c 'import json,sys
s=json.loads(sys.stdin.read()); k=s["kernel"]; d=s["delivered"]
print(",\"kernel_insert\":%d,\"kernel_drop\":%d,\"delivered_insert\":%d,\"delivered_drop\":%d,\"lost\":%d"
      % (k["insert"], k["drop"], d["insert"], d["drop"], s["lost"]))')
  fi
  rm -f "$out"
  echo "{\"mode\":\"$2\",\"ctbpf\":\"$1\",\"flows_per_s\":$rate,\"kernel_drop_delta\":$((d1 - d0))$extra}"
}

echo "# machine: $(nproc) cores, kernel $(uname -r), $RUNS alternated runs, $((FLOWS * 4)) flows each"
for mode in inserts storm; do
  if [ "$mode" = storm ]; then echo 2000 > /proc/sys/net/netfilter/nf_conntrack_max; else echo $((FLOWS * 8)) > /proc/sys/net/netfilter/nf_conntrack_max; fi
  for i in $(seq "$RUNS"); do
    run without "$mode"
    run with "$mode"
  done
done
