#!/usr/bin/python3
"""Fills tools/bench/BENCHMARKS.template.md with the figures of one run-all.sh run.

    gen_benchmarks.py RESULTS_DIR TEMPLATE > BENCHMARKS.md

RESULTS_DIR holds what run-all.sh wrote: meta.json, wall.json, steps.jsonl and one
NAME.jsonl per step (Google Benchmark JSON for the micro-benchmarks, JSON lines for the
shell benchmarks). Standard library only. A figure that is missing (a step skipped or
failed, or --quick) is written as "not measured", never invented.
"""
import json
import os
import re
import statistics
import sys

RES, TEMPLATE = sys.argv[1], sys.argv[2]
NA = "not measured"


def load_lines(name):
    p = os.path.join(RES, name + ".jsonl")
    if not os.path.exists(p):
        return []
    rows = []
    for line in open(p):
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def load_gbench(name):
    p = os.path.join(RES, name + ".jsonl")
    try:
        return json.load(open(p)).get("benchmarks", [])
    except (OSError, ValueError):
        return []


def load_json(name, default):
    try:
        return json.load(open(os.path.join(RES, name)))
    except (OSError, ValueError):
        return default


meta = load_json("meta.json", {})
wall = load_json("wall.json", {}).get("wall_seconds")
steps = {r["step"]: r for r in load_lines("steps")}


def cmd(step):
    c = steps.get(step, {}).get("command")
    if not c:
        return NA
    # Paths as a reader on a fresh clone types them.
    build = os.environ.get("CTBPF_BUILD", "./build").rstrip("/")
    return c.replace(build + "/", "build/").replace("bash tools/", "sudo bash tools/")


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    return NA if x is None else f"{x:,.0f}"


def fmt_ratio(x):
    return NA if x is None else f"{x:.2f}x"


def fmt_time(s):
    if s is None:
        return NA
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} us"


def verdict(ok, miss):
    if ok is None:
        return NA
    return "**met**" if ok else f"**missed** ({miss})"


targets = []  # (target, measured, verdict)

# ---------------------------------------------------------------------------------------
# 1. Aggregator
agg = load_gbench("aggregator")


def gb_median(prefix):
    """Median entry of a benchmark (aggregate 'median' if repeated, else the iterations')."""
    m = [b for b in agg if b.get("run_name", b["name"]) == prefix and b.get("aggregate_name") == "median"]
    if m:
        return m[0]
    its = [b for b in agg if b.get("run_name", b["name"]) == prefix and b.get("run_type", "iteration") == "iteration"]
    if not its:
        return None
    its.sort(key=lambda b: b.get("cpu_time", 0))
    return its[len(its) // 2]


def to_seconds(b, field="cpu_time"):
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
    return b[field] * unit


rows = ["| stream | distinct sources | decode + aggregate, events/s per core |", "|---|---|---|"]
worst_1m = None
for skewed in (0, 1):
    for n in (1000, 100000, 1000000):
        b = gb_median(f"BM_DecodeAggregate/sources:{n}/skewed:{skewed}")
        r = b.get("items_per_second") if b else None
        if n == 1000000 and r is not None:
            worst_1m = r if worst_1m is None else min(worst_1m, r)
        rows.append(f"| {'skewed' if skewed else 'uniform'} | {n:,} | {NA if r is None else f'{r / 1e6:.1f} M'} |")
aggregator_table = "\n".join(rows)
targets.append(("aggregator >= 20 M events/s/core at 1 M distinct sources",
                 NA if worst_1m is None else f"{worst_1m / 1e6:.1f} M/s (the slower of uniform and skewed)",
                 verdict(None if worst_1m is None else worst_1m >= 20e6,
                         None if worst_1m is None else f"{20e6 / worst_1m:.1f}x too slow")))

mem = gb_median("BM_MemoryPerSource/distinct:1000000/iterations:1")
if mem and "bytes_per_source" in mem:
    bps = mem["bytes_per_source"]
    memory_text = (f"Memory: fed 1,000,000 distinct sources (each entry destroyed 1,000 inserts later), "
                   f"the aggregator tracks {mem.get('tracked', 0):,.0f} at its bound and holds "
                   f"**{bps:.0f} bytes per tracked source** (`bytes_per_source` of `BM_MemoryPerSource`: "
                   f"the source summary with the per-source records; record size {mem.get('record_bytes', 0):.0f} B; "
                   f"whole aggregator {mem.get('total_MB', 0):.1f} MB; process RSS growth "
                   f"{mem.get('rss_growth_MB', 0):.1f} MB).")
    targets.append(("<= 64 B per tracked source", f"{bps:.0f} B",
                    verdict(bps <= 64, f"{bps - 64:.0f} B over, {bps / 64:.1f}x")))
else:
    bps = None
    memory_text = "Memory per tracked source: " + NA + " (no `BM_MemoryPerSource` in this build)."
    targets.append(("<= 64 B per tracked source", NA, NA))

rows = ["| distinct sources fed | tracked | top 20 by rate, one query |", "|---|---|---|"]
top_times = {}
for n in (1000, 100000, 1000000):
    b = gb_median(f"BM_TopSources/sources:{n}")
    if b:
        top_times[n] = to_seconds(b)
        rows.append(f"| {n:,} | {b.get('tracked', 0):,.0f} | {fmt_time(top_times[n])} |")
    else:
        rows.append(f"| {n:,} | | {NA} |")
topsources_table = "\n".join(rows)
worst_q = max(top_times.values()) if top_times else None
targets.append(("top sources in <= 1 ms whatever the table size",
                NA if worst_q is None else f"{fmt_time(worst_q)} at worst (live query, bounded state)",
                verdict(None if worst_q is None else worst_q <= 1e-3,
                        None if worst_q is None else f"{worst_q / 1e-3:.1f}x over")))

# Heavy hitters: rows (stream, keys), columns capacity + exact map.
hh = load_gbench("heavy_hitters")
cells = {}
for b in hh:
    m = re.match(r"Sources/(SpaceSaving|ExactMap)/cap:(\d+)/keys:(\d+)/zipf:(\d)", b.get("name", ""))
    if m and b.get("run_type", "iteration") == "iteration" and "items_per_second" in b:
        kind, cap, keys, zipf = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        cells[(zipf, keys, "map" if kind == "ExactMap" else cap)] = b
rows = ["| stream | distinct keys | capacity 1e3 | 1e4 | 1e5 | exact map (bytes/key) |", "|---|---|---|---|---|---|"]
for zipf in (1, 0):
    for keys in (1000, 100000, 10000000):
        if not any((zipf, keys, c) in cells for c in (1000, 10000, 100000, "map")):
            continue
        line = [f"{'Zipf 1.1' if zipf else 'uniform'}", f"{keys:.0e}".replace("+0", "")]
        for c in (1000, 10000, 100000):
            b = cells.get((zipf, keys, c))
            line.append(f"{b['items_per_second'] / 1e6:.1f}" if b else NA)
        b = cells.get((zipf, keys, "map"))
        line.append(f"{b['items_per_second'] / 1e6:.1f} ({b.get('bytes_per_key', 0):.0f})" if b else NA)
        rows.append("| " + " | ".join(line) + " |")
bpk = sorted({round(b.get("bytes_per_key", 0)) for k, b in cells.items() if k[2] != "map" and b.get("bytes_per_key")})
hh_table = "\n".join(rows) if len(rows) > 2 else NA
if bpk:
    hh_table += f"\n\nMemory of the summary itself: {bpk[0]}-{bpk[-1]} bytes per tracked key (17-byte address), fixed at construction."

# ---------------------------------------------------------------------------------------
# 2. Kernel overhead
kernel = {}
rows = ["| view | runs | insert rate with / without | ratio | drop-storm rate with / without | ratio | command |",
        "|---|---|---|---|---|---|---|"]
for view in ("stopped", "watch", "events"):
    lines = load_lines(f"kernel_{view}")
    if not lines:
        continue
    runs = [r for r in lines if "mode" in r]
    res = {}
    for mode in ("inserts", "storm"):
        w = med([r["flows_per_s"] for r in runs if r["mode"] == mode and r["ctbpf"] == "with"])
        wo = med([r["flows_per_s"] for r in runs if r["mode"] == mode and r["ctbpf"] == "without"])
        res[mode] = (w, wo, w / wo if w and wo else None)
    kernel[view] = res
    n = len([r for r in runs if r["mode"] == "inserts" and r["ctbpf"] == "with"])
    label = {"stopped": "stopped (kernel side only)", "watch": "watch", "events": "events --json"}[view]
    rows.append(f"| {label} | {n} | {fmt_rate(res['inserts'][0])} / {fmt_rate(res['inserts'][1])} per s | "
                f"{fmt_ratio(res['inserts'][2])} | {fmt_rate(res['storm'][0])} / {fmt_rate(res['storm'][1])} | "
                f"{fmt_ratio(res['storm'][2])} | `{cmd('kernel_' + view)}` |")
kernel_table = "\n".join(rows)
for mode, goal, what in (("inserts", 0.97, "insert throughput with ctbpf >= 0.97x of without at max rate"),
                         ("storm", 0.90, ">= 0.90x in a table-full drop storm")):
    parts, oks = [], []
    for view in ("watch", "events"):
        r = kernel.get(view, {}).get(mode)
        if r and r[2] is not None:
            parts.append(f"{view}: {r[2]:.2f}x")
            oks.append(r[2] >= goal)
    worst = min((kernel[v][mode][2] for v in ("watch", "events") if kernel.get(v, {}).get(mode, (0, 0, None))[2]),
                default=None)
    targets.append((what, ", ".join(parts) or NA,
                    verdict(all(oks) if oks else None,
                            None if worst is None else f"by {goal - worst:.2f} at worst, {(goal - worst) * 100 / goal:.0f}% short")))

# ---------------------------------------------------------------------------------------
# 3. Completeness
ev_runs = [r for r in load_lines("kernel_events") if r.get("ctbpf") == "with" and "lost" in r]
evc = [r for r in load_lines("events_vs_conntrack") if r.get("observer") == "ctbpf"]
parts = []
lost_total = None
if ev_runs:
    ki = sum(r["kernel_insert"] for r in ev_runs)
    di = sum(r["delivered_insert"] for r in ev_runs)
    kd = sum(r["kernel_drop"] for r in ev_runs)
    dd = sum(r["delivered_drop"] for r in ev_runs)
    sd = sum(r["kernel_drop_delta"] for r in ev_runs)
    lost = sum(r["lost"] for r in ev_runs)
    lost_total = lost
    exact = all(r["kernel_drop"] == r["kernel_drop_delta"] for r in ev_runs)
    parts.append(
        f"`{cmd('kernel_events')}`, the `with` runs ({len(ev_runs)}, inserts and storm, default settings: "
        f"8 MiB ring buffer): ctbpf's kernel totals {ki:,} inserts and {kd:,} drops; the kernel's own "
        f"drop counter (`/proc/net/stat/nf_conntrack` in the netns) {sd:,} "
        f"({'equal in every run' if exact else 'NOT equal in every run: see the raw lines'}); delivered to "
        f"userspace {di:,} inserts and {dd:,} drops; **lost {lost:,}**.")
if evc:
    kn = sum(r["kernel_new"] for r in evc)
    cap = sum(r["captured"] for r in evc)
    lost = sum(r["lost"] for r in evc)
    lost_total = (lost_total or 0) + lost
    parts.append(f"`{cmd('events_vs_conntrack')}`, the ctbpf runs ({len(evc)}): the kernel made {kn:,} entries, "
                 f"`ctbpf events --json` wrote {cap:,} insert events; **lost {lost:,}** (its summary's count).")
completeness_text = "\n\n".join(parts) if parts else NA
targets.append(("zero lost events at max rate and in a storm, default settings, ring <= 16 MiB",
                NA if lost_total is None else f"{lost_total:,} lost (8 MiB ring, the default)",
                verdict(None if lost_total is None else lost_total == 0, f"{lost_total} lost")))

# ---------------------------------------------------------------------------------------
# 4a. conntrack -E vs ctbpf events
evs = load_lines("events_vs_conntrack")
rows = ["| observer | insert rate (median) | ratio to none | captured / kernel | lost | ENOBUFS warnings | CPU s per run (median) | command |",
        "|---|---|---|---|---|---|---|---|"]
base = med([r["flows_per_s"] for r in evs if r["observer"] == "none"])
names = {"none": "none (baseline)", "ctbpf": "ctbpf events --json", "conntrack": "conntrack -E (default buffer)",
         "conntrack_b16m": "conntrack -E -b 16 MiB"}
cpu_ev = {}
for o in ("none", "ctbpf", "conntrack", "conntrack_b16m"):
    rs = [r for r in evs if r["observer"] == o]
    if not rs:
        continue
    rate = med([r["flows_per_s"] for r in rs])
    kn, cap = sum(r["kernel_new"] for r in rs), sum(r["captured"] for r in rs)
    cpu_ev[o] = med([r["cpu_s"] for r in rs])
    rows.append(f"| {names[o]} | {fmt_rate(rate)} | {fmt_ratio(rate / base if base else None)} | "
                + ("- | - | - | - |" if o == "none" else
                   f"{cap:,} / {kn:,} ({cap * 100 / kn:.1f}%) | {sum(r['lost'] for r in rs):,} | "
                   f"{sum(r['enobufs_warnings'] for r in rs)} | {cpu_ev[o]:.2f} |")
                + f" `{rs[0]['command']}` |")
events_table = "\n".join(rows) if len(rows) > 2 else NA

# 4b. CPU at 50k/s
cpu = load_lines("cpu")
rows = ["| observer | share of one core (median) | rate reached (median) | command |", "|---|---|---|---|"]
cpu_med = {}
for o, label in (("ctbpf_watch", "ctbpf watch --json"), ("ctbpf_events", "ctbpf events --json"),
                 ("conntrack", "conntrack -E (all events)")):
    rs = [r for r in cpu if r["observer"] == o]
    if not rs:
        continue
    cpu_med[o] = med([r["cores"] for r in rs])
    rows.append(f"| {label} | {cpu_med[o]:.3f} | {fmt_rate(med([r['rate_reached'] for r in rs]))} /s | `{rs[0]['command']}` |")
cpu_table = "\n".join(rows) if len(rows) > 2 else NA
cpu_rate = f"{cpu[0]['target_rate']:,}" if cpu else "50,000"
w = cpu_med.get("ctbpf_watch")
e = cpu_med.get("ctbpf_events")
targets.append(("at 50 k new entries/s ctbpf uses <= 0.05 of a core",
                NA if w is None else f"watch {w:.3f}, events --json {e:.3f}" if e is not None else f"watch {w:.3f}",
                verdict(None if w is None else w <= 0.05, None if w is None else f"watch {w / 0.05:.1f}x the budget")
                + ("" if e is None or w is None or e <= 0.05 or w > 0.05
                   else f"; `events --json` (every event formatted): missed, {e / 0.05:.1f}x")))

# 4c. Peers
peers = load_lines("peers")
q = [r for r in peers if r.get("what") == "query"]
sizes = sorted({r["size"] for r in q})
live_q = top_times.get(1000000)
rows = ["| entries | seed /proc pipeline | conntrack -L pipeline | ctbpf start, baseline on (of which dump) | ctbpf start, baseline off | ctbpf live query | seed / live query |",
        "|---|---|---|---|---|---|---|"]
seed_by = {}
first_answer = {}
for s in sizes:
    def m(method, field="seconds"):
        return med([r[field] for r in q if r["size"] == s and r["method"] == method])
    seed, lst, on, off = m("seed"), m("list"), m("ctbpf_on"), m("ctbpf_off")
    dump = m("ctbpf_on", "baseline_seconds")
    tops = {k: m(k, "top_count") for k in ("seed", "list", "ctbpf_on")}
    have = next((r["entries"] for r in q if r["size"] == s), s)
    seed_by[s] = seed
    first_answer[s] = (on, off)
    rows.append(f"| {have:,} | {fmt_time(seed)} (top {tops['seed']:.0f}) | {fmt_time(lst)} (top {tops['list']:.0f}) | "
                f"{fmt_time(on)} ({fmt_time(dump)}; top {tops['ctbpf_on']:.0f}) | {fmt_time(off)} | {fmt_time(live_q)} | "
                f"{NA if not (seed and live_q) else f'{seed / live_q:,.0f}x'} |")
peers_table = "\n".join(rows) if sizes else NA
fills = [r for r in peers if r.get("what") == "fill"]
peers_text = ""
if fills:
    peers_text = "Filling the table (two generators): " + ", ".join(
        f"{r['entries']:,} entries in {r['seconds']:.1f} s" for r in fills) + "."
    short = [r for r in fills if r["entries"] < r["size"]]
    if short:
        peers_text += " Some fills fell short of the asked size (drops or expiry): the entries column is what was there."
s1m = seed_by.get(1000000)
targets.append((">= 1000x faster than the seed's /proc pipeline at 1 M entries",
                NA if not (s1m and live_q) else f"{s1m / live_q:,.0f}x (seed {fmt_time(s1m)}, live query {fmt_time(live_q)})",
                verdict(None if not (s1m and live_q) else s1m / live_q >= 1000,
                        None if not (s1m and live_q) else f"{1000 / (s1m / live_q):.1f}x short")))
fa = first_answer.get(250000)
if fa and fa[0] is not None:
    on, off = fa
    targets.append(("first answer within 1 s of start with 250 k entries in the table",
                    f"baseline on {fmt_time(on)}; baseline off {fmt_time(off)} (new entries only)",
                    verdict(on <= 1.0, f"by {on - 1.0:.2f} s with the dump that counts old entries")
                    + ("" if on <= 1.0 or off is None or off > 1.0 else "; met without the dump (but then old entries are not counted)")))
else:
    targets.append(("first answer within 1 s of start with 250 k entries in the table", NA, NA))

# 2b. Per-event cost of each attach point (kernel.bpf_stats_enabled run counts and times)
ac = load_lines("attach_cost")
rows = ["| mode | program | runs per new flow | ns per run | ns per new flow |", "|---|---|---|---|---|"]
for r in ac:
    if r["program"] == "all":
        rows.append(f"| {r['mode']} | **all programs** | | | **{r['ns_per_flow']:.0f}** |")
    else:
        rows.append(f"| {r['mode']} | `{r['program']}` | {r['runs_per_flow']:.2f} | {r['ns_per_run']:.0f} | {r['ns_per_flow']:.0f} |")
attach_table = "\n".join(rows) if ac else NA
# What share of a new flow's CPU cost the programs are: without ctbpf, 2 cores make
# `rate` flows/s, so a flow costs nproc / rate seconds of CPU.
for mode in ("inserts", "storm"):
    tot = next((r["ns_per_flow"] for r in ac if r["mode"] == mode and r["program"] == "all"), None)
    wo = kernel.get("watch", {}).get(mode, (None, None, None))[1]
    if tot and wo:
        flow_ns = meta.get("nproc", 2) * 1e9 / wo
        attach_table += (f"\n\n{mode}: the programs take {tot:.0f} ns per new flow; without ctbpf a new flow "
                         f"costs about {flow_ns:,.0f} ns of CPU here ({meta.get('nproc', 2)} cores / "
                         f"{fmt_rate(wo)} flows/s in section 2), so the programs alone are about "
                         f"{tot * 100 / (flow_ns + tot):.0f}% of the work with ctbpf attached.")

targets_table = "\n".join(f"| {t} | {m} | {v} |" for t, m, v in targets)

# ctbpf's own exit status in the runs that stopped it with SIGTERM (0 expected): a crash on
# exit does not change the figures (the summary is printed first) but must not go unseen.
crashes = {}
for name in ("kernel_watch", "kernel_events", "kernel_stopped", "events_vs_conntrack", "cpu"):
    for r in load_lines(name):
        if r.get("exit") and r.get("observer", "ctbpf") != "conntrack" and r.get("ctbpf", "with") == "with" \
                and not str(r.get("observer", "")).startswith("conntrack"):
            crashes.setdefault(r["exit"], []).append(name)
if crashes:
    targets_table += "\n\n**Note:** ctbpf exited with a non-zero status after SIGTERM in " + "; ".join(
        f"{len(v)} runs with status {k}{' (SIGABRT)' if k == 134 else ''} ({', '.join(sorted(set(v)))})"
        for k, v in crashes.items()) + ": after printing its summary, so the figures stand, but it is a bug to fix."

quick = meta.get("quick")
values = {
    "quick_flag": " --quick" if quick else "",
    "quick_note": ("**This is a `--quick` run** (fewer runs, tables only up to 250,000 entries): "
                   "for trying the suite out, not for quoting.\n\n") if quick else "",
    "machine": f"{meta.get('nproc', '?')} cores ({meta.get('cpu', '?')}), {meta.get('mem_gib', '?')} GiB, "
               f"kernel {meta.get('kernel', '?')}, {meta.get('os', '?')}; tracepoint + netfilter backend "
               f"(no kprobes, fentry refused)",
    "date": meta.get("date", "?"),
    "commit": f"{meta.get('commit', '?')}{' with uncommitted changes' if meta.get('dirty') else ''}",
    "wall": NA if wall is None else f"{wall // 60} min {wall % 60} s",
    "loadavg": " ".join(meta.get("loadavg", [])),
    "targets_table": targets_table,
    "cmd_aggregator": cmd("aggregator"),
    "aggregator_table": aggregator_table,
    "memory_text": memory_text,
    "topsources_table": topsources_table,
    "cmd_heavy_hitters": cmd("heavy_hitters"),
    "hh_table": hh_table,
    "kernel_table": kernel_table,
    "cmd_attach_cost": cmd("attach_cost"),
    "attach_table": attach_table,
    "completeness_text": completeness_text,
    "cmd_events_vs": cmd("events_vs_conntrack"),
    "ev_flows": f"{med([r['kernel_new'] for r in evs if r['observer'] == 'none']) or 0:,.0f}",
    "ev_runs": str(len([r for r in evs if r["observer"] == "none"])),
    "events_table": events_table,
    "cpu_rate": cpu_rate,
    "cmd_cpu": cmd("cpu"),
    "cpu_load": cpu[0]["load"] if cpu else NA,
    "cpu_runs": str(len([r for r in cpu if r["observer"] == "ctbpf_watch"])),
    "cpu_table": cpu_table,
    "cmd_peers": cmd("peers"),
    "peer_runs": str(max([r["run"] for r in q] or [0])),
    "seed_cmd": next((r["command"] for r in q if r["method"] == "seed"), NA),
    "list_cmd": next((r["command"] for r in q if r["method"] == "list"), NA),
    "peers_table": peers_table,
    "peers_text": peers_text,
}

comp = load_lines("composition")
comp_rows = ["| entries | dump (median) | per entry | interval for 1% of a core |", "|---|---|---|---|"]
for size in sorted({r["size"] for r in comp}):
    rs = [r for r in comp if r["size"] == size]
    d = med([r["dump_seconds"] for r in rs])
    comp_rows.append(f"| {med([r['entries'] for r in rs]):,.0f} | {d:.3f} s | {med([r['us_per_entry'] for r in rs]):.2f} us "
                     f"| {max(10.0, 100 * d):.0f} s |")
values["composition_table"] = "\n".join(comp_rows) if comp else NA
values["cmd_composition"] = cmd("composition")

text = open(TEMPLATE).read()
missing = set(re.findall(r"\{\{(\w+)\}\}", text)) - set(values)
if missing:
    sys.exit(f"gen_benchmarks.py: no value for {sorted(missing)}")
sys.stdout.write(re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text))
