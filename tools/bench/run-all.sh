#!/usr/bin/env bash
# The whole benchmark suite in one command; writes BENCHMARKS.md from the measured figures.
#   sudo bash tools/bench/run-all.sh [--quick]
# Builds if needed (cmake -S . -B build; CTBPF_BUILD=DIR to use another build directory),
# runs every benchmark, keeps the raw JSON lines in $CTBPF_BUILD/bench-results/ and fills
# tools/bench/BENCHMARKS.template.md into BENCHMARKS.md (gen_benchmarks.py).
# Full: about 15 minutes on 2 cores; --quick: a couple of minutes, fewer runs and smaller
# sizes, to try it out (the file then says so at the top).
# Needs root: network namespaces, BPF, nf_conntrack_max (restored on exit, under
# /tmp/ctbpf-conntrack.lock, taken by each script in turn).
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK=0
case ${1:-} in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: sudo bash tools/bench/run-all.sh [--quick]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "run-all.sh: needs root (BPF, network namespaces)" >&2; exit 1; }
export CTBPF_BUILD=${CTBPF_BUILD:-./build}
BUILD=$CTBPF_BUILD
OUT=${CTBPF_BENCH_OUT:-$BUILD/bench-results}
start=$(date +%s)

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$BUILD" -j"$(nproc)" --target ctbpf ctbpf-loadgen ctbpf-bench-aggregator ctbpf-bench-heavy-hitters

rm -rf "$OUT"; mkdir -p "$OUT"
if [ $QUICK = 1 ]; then
  REPS=1; KRUNS=2; KFLOWS=15000; ERUNS=1; CRUNS=1; CSECS=5; PEER_SIZES="10000 100000 250000"; PRUNS=1
  HH_FILTER='keys:100000/zipf:1'
else
  REPS=3; KRUNS=5; KFLOWS=30000; ERUNS=5; CRUNS=3; CSECS=10; PEER_SIZES="10000 100000 250000 1000000"; PRUNS=3
  # The uniform 10-million-key stream (its exact map alone holds ~5.7 M keys) is left out:
  # minutes on this machine for a figure the Zipf stream already makes.
  HH_FILTER='keys:(1000|100000)/|keys:10000000/zipf:1'
fi

# Each step: its command (as written to BENCHMARKS.md), stdout kept as OUT/NAME.jsonl.
: >"$OUT/steps.jsonl"
step() {
  local name=$1; shift
  local t0 t1
  echo "== $name: $*" >&2
  t0=$(date +%s.%N)
  "$@" >"$OUT/$name.jsonl"
  t1=$(date +%s.%N)
  /usr/bin/python3 -c 'import json,sys
print(json.dumps({"step": sys.argv[1], "seconds": round(float(sys.argv[3]) - float(sys.argv[2]), 1),
                  "command": " ".join(sys.argv[4:])}))' "$name" "$t0" "$t1" "$@" >>"$OUT/steps.jsonl"
}

/usr/bin/python3 - "$QUICK" >"$OUT/meta.json" <<'PY'
import json, os, platform, subprocess, sys, time
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
print(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "nproc": os.cpu_count(), "kernel": platform.release(),
    "cpu": model, "mem_gib": round(mem / 2**20, 1), "os": sh(". /etc/os-release; echo $PRETTY_NAME"),
    "commit": sh("git rev-parse --short HEAD"), "dirty": bool(sh("git status --porcelain --untracked-files=no")),
    "quick": sys.argv[1] == "1", "loadavg": open("/proc/loadavg").read().split()[:3]}))
PY

# (1) userspace: aggregator and heavy-hitter micro-benchmarks (Google Benchmark, JSON).
step aggregator "$BUILD/tools/ctbpf-bench-aggregator" --benchmark_format=json \
  --benchmark_repetitions=$REPS --benchmark_min_time=0.2
step heavy_hitters "$BUILD/tools/ctbpf-bench-heavy-hitters" --benchmark_format=json \
  --benchmark_min_time=0.1 "--benchmark_filter=$HH_FILTER"
# (2)+(3) kernel overhead and completeness, alternated with/without ctbpf, per view.
step kernel_watch bash tools/bench/kernel.sh $KRUNS $KFLOWS watch
step kernel_events bash tools/bench/kernel.sh $KRUNS $KFLOWS events
[ $QUICK = 1 ] || step kernel_stopped bash tools/bench/kernel.sh 3 $KFLOWS stopped
step attach_cost bash tools/bench/attach-cost.sh $KFLOWS
# (4) peers: ctnetlink events at the maximum rate, CPU at 50k/s, top sources by table size.
step events_vs_conntrack bash tools/bench/events-vs-conntrack-E.sh $ERUNS $KFLOWS
step cpu bash tools/bench/cpu.sh $CRUNS $CSECS 50000
step peers bash tools/bench/peers.sh "$PEER_SIZES" $PRUNS
# (5) what the entries are: one netlink dump per composition, by table size.
step composition bash tools/bench/composition.sh "$PEER_SIZES" $PRUNS

end=$(date +%s)
echo "{\"wall_seconds\": $((end - start))}" >"$OUT/wall.json"
/usr/bin/python3 tools/bench/gen_benchmarks.py "$OUT" tools/bench/BENCHMARKS.template.md >BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "run-all.sh: BENCHMARKS.md written from $OUT in $((end - start)) s" >&2
