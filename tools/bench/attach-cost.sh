#!/usr/bin/env bash
# Per-event cost of each attach point, from the kernel's own BPF statistics
# (kernel.bpf_stats_enabled: run count and run time of every program; restored on exit).
# One burst at the maximum insert rate, then one table-full drop storm, with `ctbpf watch`
# attached to a test netns; prints one JSON line per program and mode:
#   {"mode":..., "program":..., "runs":..., "ns_per_run":..., "runs_per_flow":..., "ns_per_flow":...}
#   sudo bash tools/bench/attach-cost.sh [FLOWS_PER_SOURCE]
set -euo pipefail
FLOWS=${1:-30000}
source "$(dirname "$0")/lib.sh"
old_stats=$(cat /proc/sys/kernel/bpf_stats_enabled)
trap 'echo "$old_stats" > /proc/sys/kernel/bpf_stats_enabled; bench_cleanup' EXIT

# Run counts and times of ctbpf's programs, as JSON {name: [runs, ns]}. Picked by name
# (this bpftool cannot tell the owning pid); the lock keeps other ctbpf runs away.
prog_stats() {
  bpftool prog show --json | /usr/bin/python3 -c 'import json, sys
names = {"nf_before_ct", "nf_after_ct", "nf_before_confirm", "tp_kfree_skb", "tp_kmem_cache_free",
         "fentry_", "kprobe_"}
out = {}
for p in json.load(sys.stdin):
    n = p.get("name", "")
    if n in names or n.startswith(("fentry_", "fexit_", "kprobe_", "kretprobe_")):
        r = out.setdefault(n, [0, 0])
        r[0] += p.get("run_cnt", 0)
        r[1] += p.get("run_time_ns", 0)
print(json.dumps(out))'
}

"$CTBPF" watch --json --interval 60 --baseline off --netns "$ns" >/dev/null 2>&1 &
pid=$!
bench_pids+=("$pid")
sleep 1
echo 1 > /proc/sys/kernel/bpf_stats_enabled
for mode in inserts storm; do
  flush
  if [ "$mode" = storm ]; then set_max 2000; else set_max $((FLOWS * 8)); fi
  s0=$(prog_stats)
  burst "$FLOWS" >/dev/null
  s1=$(prog_stats)
  /usr/bin/python3 - "$mode" "$((FLOWS * 4))" "$s0" "$s1" <<'PY'
import json, sys
mode, flows, a, b = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
total = 0.0
for name in sorted(b):
    runs = b[name][0] - a.get(name, [0, 0])[0]
    ns = b[name][1] - a.get(name, [0, 0])[1]
    if runs == 0:
        continue
    total += ns / flows
    print(json.dumps({"mode": mode, "program": name, "runs": runs, "ns_per_run": round(ns / runs, 1),
                      "runs_per_flow": round(runs / flows, 2), "ns_per_flow": round(ns / flows, 1)}))
print(json.dumps({"mode": mode, "program": "all", "ns_per_flow": round(total, 1)}))
PY
done
kill -TERM "$pid"; wait "$pid" || true
