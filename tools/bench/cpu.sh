#!/usr/bin/env bash
# CPU used by the observer at a moderate, steady load: two generators (one per core) paced
# at RATE/2 new UDP entries/s each (`ctbpf-loadgen --rate`) for SECONDS, unreplied-UDP timeout 3 s in the test
# netns so the table is in steady state (about as many destroys as inserts). Observers:
# `ctbpf watch --json` (the live view's work: aggregation, a snapshot a second),
# `ctbpf events --json` to a file, and `conntrack -E` to a file for comparison. CPU =
# (user + system) from /proc/PID/stat over the load's middle (1 s after start to its end),
# divided by that wall time: the share of one core. The BPF programs run in the generator's
# context, so they are not in this figure (kernel.sh measures their cost as insert rate).
# One JSON line per run on stdout.
#   sudo bash tools/bench/cpu.sh RUNS SECONDS RATE
set -euo pipefail
RUNS=${1:-3}
SECONDS_=${2:-10}
RATE=${3:-50000}
source "$(dirname "$0")/lib.sh"
set_max 1100000
ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3
# Flows per round (2 x 60,000 at RATE/2 each) outlast the 3 s timeout: every flow is new.
LOAD="ctbpf-loadgen --fast --port 1 --flows 60000 --rate $((RATE / 2)) --seconds $SECONDS_"
SRC_A="--src 127.0.3.1 --src 127.0.3.2"
SRC_B="--src 127.0.4.1 --src 127.0.4.2"

run() {  # $1 = ctbpf_watch | ctbpf_events | conntrack
  flush
  local pid cmd
  case $1 in
    ctbpf_watch) cmd="ctbpf watch --json --netns NS > /dev/null"
      "$CTBPF" watch --json --netns "$ns" >/dev/null 2>&1 & pid=$! ;;
    ctbpf_events) cmd="ctbpf events --json --netns NS > FILE"
      "$CTBPF" events --json --netns "$ns" >"$tmp/out" 2>/dev/null & pid=$! ;;
    conntrack) cmd="ip netns exec NS conntrack -E > FILE"
      ip netns exec "$ns" conntrack -E >"$tmp/out" 2>/dev/null & pid=$! ;;
  esac
  bench_pids+=("$pid")
  sleep 1.5
  local lg="$tmp/lg" c0 c1 t0 t1
  # shellcheck disable=SC2086 # word splitting of the option strings is meant
  ip netns exec "$ns" "$LOADGEN" ${LOAD#ctbpf-loadgen } $SRC_A >"$lg" &
  local gen=$!
  # shellcheck disable=SC2086
  ip netns exec "$ns" "$LOADGEN" ${LOAD#ctbpf-loadgen } $SRC_B >"$lg.b" &
  local gen_b=$!
  sleep 1
  c0=$(cpu_s "$pid"); t0=$(now)
  wait "$gen" "$gen_b"
  c1=$(cpu_s "$pid"); t1=$(now)
  local rc=0
  kill -TERM "$pid"; wait "$pid" || rc=$?
  /usr/bin/python3 -c 'import json,sys
a = sys.argv; lg = [json.load(open(f)) for f in (a[6], a[6] + ".b")]
wall = float(a[5]) - float(a[4])
print(json.dumps({"observer": a[1], "cpu_s": round(float(a[3]) - float(a[2]), 2), "wall_s": round(wall, 2),
  "cores": round((float(a[3]) - float(a[2])) / wall, 4), "rate_reached": round(sum(g["sent"] / g["seconds"] for g in lg)),
  "target_rate": int(a[7]), "command": a[8], "load": a[9], "exit": int(a[10])}))' \
    "$1" "$c0" "$c1" "$t0" "$t1" "$lg" "$RATE" "$cmd" "ip netns exec NS $LOAD $SRC_A & ip netns exec NS $LOAD $SRC_B" "$rc"
}

tmp=$(mktemp -d)
trap 'bench_cleanup; rm -rf "$tmp"' EXIT
for i in $(seq "$RUNS"); do
  for o in ctbpf_watch ctbpf_events conntrack; do run "$o"; done
done
