#!/usr/bin/env bash
# Kernel-side overhead and completeness: the fastest rate of new conntrack entries two
# load generators reach in a test netns, without ctbpf and with `ctbpf events --json`
# attached, alternated RUNS times in the same run (the machine is shared and noisy, so
# only same-run ratios mean anything). Then the same in a table-full drop storm.
# Prints one JSON line per measurement and a summary; BENCHMARKS.md quotes it.
#   sudo bash tools/bench/kernel.sh [RUNS] [FLOWS_PER_SOURCE] [events|watch|stopped]
# (binaries from $CTBPF_BUILD, default ./build; run-all.sh runs it for every view)
set -euo pipefail
RUNS=${1:-5}
FLOWS=${2:-30000}
VIEW=${3:-events}   # events: every event as JSON; watch: aggregation only; stopped: reader frozen
source "$(dirname "$0")/lib.sh"   # CTBPF, LOADGEN (from $CTBPF_BUILD), test netns $ns, the lock

run() {  # $1 = with|without, $2 = mode
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
  local pid="" out rate d0 d1
  out=$(mktemp)
  if [ "$1" = with ]; then
    if [ "$VIEW" = watch ] || [ "$VIEW" = stopped ]; then
      "$CTBPF" watch --json --interval 60 --baseline off --netns "$ns" >/dev/null 2>&1 &
    else
      "$CTBPF" events --json --netns "$ns" >"$out" 2>/dev/null &
    fi
    pid=$!
    bench_pids+=("$pid")
    sleep 1
    # stopped: programs attached, reader frozen: the kernel side's cost alone.
    [ "$VIEW" = stopped ] && kill -STOP "$pid"
  fi
  d0=$(stat_sum drop)
  rate=$(burst "$FLOWS")
  d1=$(stat_sum drop)
  local extra="" rc=0
  if [ -n "$pid" ]; then
    [ "$VIEW" = stopped ] && kill -CONT "$pid"
    sleep 0.5; kill -TERM "$pid"; wait "$pid" || rc=$?
    [ "$VIEW" = events ] && extra=$(tail -n 1 "$out" | /usr/bin/python3 -c 'import json,sys
s=json.loads(sys.stdin.read()); k=s["kernel"]; d=s["delivered"]
print(",\"kernel_insert\":%d,\"kernel_drop\":%d,\"delivered_insert\":%d,\"delivered_drop\":%d,\"lost\":%d"
      % (k["insert"], k["drop"], d["insert"], d["drop"], s["lost"]))')
  fi
  rm -f "$out"
  [ -n "$extra" ] || extra=""
  echo "{\"mode\":\"$2\",\"view\":\"$VIEW\",\"ctbpf\":\"$1\",\"flows_per_s\":$rate,\"kernel_drop_delta\":$((d1 - d0)),\"exit\":$rc$extra}"
}

echo "# machine: $(nproc) cores, kernel $(uname -r), $RUNS alternated runs, $((FLOWS * 4)) flows each"
results=$(mktemp)
for mode in inserts storm; do
  if [ "$mode" = storm ]; then echo 2000 > /proc/sys/net/netfilter/nf_conntrack_max; else echo $((FLOWS * 8)) > /proc/sys/net/netfilter/nf_conntrack_max; fi
  for i in $(seq "$RUNS"); do
    run without "$mode" | tee -a "$results"
    run with "$mode" | tee -a "$results"
  done
done
# Medians per mode and the ratio with/without (same run, alternated).
/usr/bin/python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for mode in ("inserts", "storm"):
    w = [r["flows_per_s"] for r in rows if r["mode"] == mode and r["ctbpf"] == "with"]
    wo = [r["flows_per_s"] for r in rows if r["mode"] == mode and r["ctbpf"] == "without"]
    lost = sum(r.get("lost", 0) for r in rows if r["mode"] == mode)
    if w and wo:
        print(json.dumps({"summary": mode, "view": rows[0]["view"], "median_without": statistics.median(wo),
                          "median_with": statistics.median(w),
                          "ratio": round(statistics.median(w) / statistics.median(wo), 3), "lost": lost}))
PY
rm -f "$results"
