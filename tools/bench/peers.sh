#!/usr/bin/env bash
# "Which sources hold the conntrack table?" answered by the peers and by ctbpf, one after
# the other on the same table, RUNS times each, at each table size:
#   seed     cat /proc/net/nf_conntrack | cut | sort | uniq -c | sort -nr | head
#   list     conntrack -L (ctnetlink dump, text) | the same grouping
#   ctbpf    ctbpf watch --once --json --baseline on|off (start, attach, optional netlink
#            dump of what predates it, one snapshot after --interval 0.1 s), wall time to
#            the first answer
# The table holds SIZE UDP entries from 20 sources (10 with 6% of the entries each, 10 with
# 4%), made by two generators before timing. The cost of one top-sources query on ctbpf's
# live state is the aggregator micro-benchmark (BM_TopSources), not measured here.
# One JSON line per measurement on stdout.
#   sudo bash tools/bench/peers.sh "10000 100000 1000000" RUNS
set -euo pipefail
SIZES=${1:-"10000 100000 1000000"}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"

biggest=0
for s in $SIZES; do [ "$s" -gt "$biggest" ] && biggest=$s; done
set_max $((biggest + biggest / 10 + 10000))
# Entries must outlive the measurements (unreplied UDP: 30 s by default). Per netns.
ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3600

SEED="cat /proc/net/nf_conntrack | cut -d= -f2 | cut -d' ' -f1 | sort | uniq -c | sort -nr | head"
LIST="conntrack -L 2>/dev/null | cut -d= -f2 | cut -d' ' -f1 | sort | uniq -c | sort -nr | head"

fill() {  # $1 = entries: 10 sources with 6%, 10 with 4% (the first 10 are the answer)
  local n=$1 a b srcs_a=() srcs_b=() i
  a=$((n * 6 / 100)); b=$((n * 4 / 100))
  for i in $(seq 1 10); do srcs_a+=(--src "127.0.1.$i"); srcs_b+=(--src "127.0.2.$i"); done
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 "${srcs_a[@]}" --flows "$a" >/dev/null &
  local p=$!
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 "${srcs_b[@]}" --flows "$b" >/dev/null
  wait "$p"
}

# Wall time of a shell pipeline in the netns; prints "seconds top_count".
time_pipe() {
  local t0 t1 out
  t0=$(now)
  out=$(ip netns exec "$ns" sh -c "$1")
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v top="$(echo "$out" | awk 'NR == 1 { print $1 }')" \
    'BEGIN { printf "%.4f %s", b - a, (top == "" ? 0 : top) }'
}

# Wall time of ctbpf watch --once; prints "seconds top_entries baseline_seconds".
time_ctbpf() {  # $1 = on|off
  local t0 t1 out
  t0=$(now)
  out=$("$CTBPF" watch --json --once --interval 0.1 --baseline "$1" --netns "$ns" 2>/dev/null)
  t1=$(now)
  echo "$out" | /usr/bin/python3 -c '
import json, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
s = json.loads(sys.stdin.read().strip().splitlines()[-1])
top = max([x.get("entries", 0) for x in s.get("sources", [])] or [0])
print("%.4f %d %s" % (t1 - t0, top, s.get("table", {}).get("baseline_seconds", 0)))' "$t0" "$t1"
}

for size in $SIZES; do
  flush
  t0=$(now); fill "$size"; t1=$(now)
  have=$(ns_count)
  echo "{\"what\":\"fill\",\"size\":$size,\"entries\":$have,\"seconds\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')}"
  for run in $(seq "$RUNS"); do
    # Rotate the order each run so drift on a noisy machine does not favour one method.
    methods=(seed list ctbpf_on ctbpf_off)
    k=$(( (run - 1) % 4 ))
    for m in "${methods[@]:k}" "${methods[@]:0:k}"; do
      case $m in
        seed) read -r sec top <<<"$(time_pipe "$SEED")"; cmd="ip netns exec NS sh -c \"$SEED\""; bl=0 ;;
        list) read -r sec top <<<"$(time_pipe "$LIST")"; cmd="ip netns exec NS sh -c \"$LIST\""; bl=0 ;;
        ctbpf_on|ctbpf_off)
          b=${m#ctbpf_}
          read -r sec top bl <<<"$(time_ctbpf "$b")"
          cmd="ctbpf watch --json --once --interval 0.1 --baseline $b --netns NS" ;;
      esac
      /usr/bin/python3 -c 'import json,sys
print(json.dumps({"what": "query", "size": int(sys.argv[1]), "entries": int(sys.argv[2]), "run": int(sys.argv[3]),
  "method": sys.argv[4], "seconds": float(sys.argv[5]), "top_count": int(sys.argv[6]),
  "baseline_seconds": float(sys.argv[7]), "command": sys.argv[8]}))' \
        "$size" "$have" "$run" "$m" "$sec" "$top" "$bl" "$cmd"
    done
  done
done
