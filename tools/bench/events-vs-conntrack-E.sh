#!/usr/bin/env bash
# Event capture at the maximum insert rate: `conntrack -E` (ctnetlink events) against
# `ctbpf events --json`, each writing to a file, alternated RUNS times in the same run with
# a run without any observer as the baseline. Two load generators, one per core, make
# 4 x FLOWS new UDP entries as fast as they can. Per run: the insert rate reached, the new
# entries the kernel made (the netns's entry count after the burst, the table was flushed
# before), the insert events each observer wrote, what it says it lost (conntrack: ENOBUFS
# warnings on stderr; ctbpf: `lost` in its summary), and its CPU time (user + system from
# /proc/PID/stat, from just before the burst until the events have drained).
# One JSON line per run on stdout.
#   sudo bash tools/bench/events-vs-conntrack-E.sh RUNS FLOWS
set -euo pipefail
RUNS=${1:-3}
FLOWS=${2:-30000}
source "$(dirname "$0")/lib.sh"
set_max $((FLOWS * 8))
tmp=$(mktemp -d)
trap 'bench_cleanup; rm -rf "$tmp"' EXIT

run() {  # $1 = none | ctbpf | conntrack | conntrack_b16m
  flush
  local pid="" cmd="" out=$tmp/out err=$tmp/err
  : >"$out"; : >"$err"
  case $1 in
    ctbpf) cmd="ctbpf events --json --netns NS > FILE"
      "$CTBPF" events --json --netns "$ns" >"$out" 2>"$err" & pid=$! ;;
    conntrack) cmd="ip netns exec NS conntrack -E -e NEW > FILE"
      ip netns exec "$ns" conntrack -E -e NEW >"$out" 2>"$err" & pid=$! ;;
    conntrack_b16m) cmd="ip netns exec NS conntrack -E -e NEW -b 16777216 > FILE"
      ip netns exec "$ns" conntrack -E -e NEW -b 16777216 >"$out" 2>"$err" & pid=$! ;;
    none) cmd="(no observer)" ;;
  esac
  [ -n "$pid" ] && bench_pids+=("$pid") && sleep 1
  local c0=0 c1=0 t0 t1 rate made
  [ -n "$pid" ] && c0=$(cpu_s "$pid")
  t0=$(now)
  rate=$(burst "$FLOWS")
  made=$(ns_count)
  # Let the observer drain what is queued (file size stable for 0.5 s, at most 10 s).
  if [ -n "$pid" ]; then
    local last=-1 size i
    for i in $(seq 20); do
      size=$(stat -c %s "$out"); [ "$size" = "$last" ] && break; last=$size; sleep 0.5
    done
    c1=$(cpu_s "$pid")
  fi
  t1=$(now)
  local captured=0 lost=0 enobufs=0 rc=0
  if [ "$1" = ctbpf ]; then
    kill -TERM "$pid"; wait "$pid" || rc=$?
    captured=$(grep -c '"type":"insert"' "$out" || true)
    lost=$(tail -n 1 "$out" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["lost"])')
  elif [ -n "$pid" ]; then
    kill -INT "$pid"; wait "$pid" || rc=$?
    captured=$(grep -c 'NEW' "$out" || true)
    enobufs=$(grep -ci 'ENOBUFS\|No buffer space' "$err" || true)
    # conntrack cannot count what it lost; the shortfall against the kernel is the loss.
    lost=$((made - captured))
  fi
  /usr/bin/python3 -c 'import json,sys
a = sys.argv
print(json.dumps({"observer": a[1], "flows_per_s": int(a[2]), "kernel_new": int(a[3]), "captured": int(a[4]),
  "lost": int(a[5]), "enobufs_warnings": int(a[6]), "cpu_s": round(float(a[8]) - float(a[7]), 2),
  "window_s": round(float(a[10]) - float(a[9]), 2), "command": a[11], "exit": int(a[12])}))' \
    "$1" "$rate" "$made" "$captured" "$lost" "$enobufs" "$c0" "$c1" "$t0" "$t1" "$cmd" "$rc"
}

for i in $(seq "$RUNS"); do
  for o in none ctbpf conntrack conntrack_b16m; do run "$o"; done
done
