#!/usr/bin/env bash
# What the entries are costs one netlink dump of the table (issue 13): its time per entry,
# as `ctbpf status --json` reports it (composition.dump_seconds), at each table size, and
# the composition interval that keeps dumping under 1% of a core (100 x the dump, at least
# the 10 s default). The table holds SIZE unreplied UDP entries from 20 sources.
# One JSON line per measurement on stdout.
#   sudo bash tools/bench/composition.sh "10000 100000 250000" RUNS
set -euo pipefail
SIZES=${1:-"10000 100000 250000"}
RUNS=${2:-3}
source "$(dirname "$0")/lib.sh"

biggest=0
for s in $SIZES; do [ "$s" -gt "$biggest" ] && biggest=$s; done
set_max $((biggest + biggest / 10 + 10000))
ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3600

for size in $SIZES; do
  flush
  srcs=()
  for i in $(seq 1 20); do srcs+=(--src "127.0.1.$i"); done
  ip netns exec "$ns" "$LOADGEN" --fast --port 1 "${srcs[@]}" --flows $((size / 20)) >/dev/null
  for r in $(seq 1 "$RUNS"); do
    t0=$(now)
    out=$("$CTBPF" status --json --netns "$ns" --window 0.1s || true)
    t1=$(now)
    /usr/bin/python3 -c 'import json,sys
j = json.loads(sys.argv[1]); c = j["composition"]; n = max(1, c["total"]); d = c["dump_seconds"]
print(json.dumps({"size": int(sys.argv[2]), "run": int(sys.argv[3]), "entries": c["total"], "dump_seconds": d,
                  "us_per_entry": round(d / n * 1e6, 3), "interval_at_1pct_s": max(10.0, round(100 * d, 1)),
                  "status_seconds": round(float(sys.argv[5]) - float(sys.argv[4]), 3)}))' "$out" "$size" "$r" "$t0" "$t1"
  done
done
