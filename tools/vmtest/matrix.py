#!/usr/bin/env python3
"""The kernel matrix's results (tools/vmtest/run.sh) and the README's table made from them.

  matrix.py record --name N --release R ... --out build/kernel-matrix/N.json < CTBPF-VM lines
  matrix.py table   [--results DIR]                 the README section, on stdout
  matrix.py readme  [--results DIR] --write|--check [README.md]

One results file per kernel of tools/vmtest/kernels.txt, written by each run, so that the
kernels can run as separate ctest tests. `readme --check` fails when the README's section
differs from what the results give (the README is not edited by hand); `--write` replaces
it. The host row is compared only when this machine runs the kernel the README names: on
another machine it says nothing about the code.
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
BACKENDS = ("fentry", "kprobe", "tracepoint")
BEGIN = "<!-- kernel-matrix begin: made by tools/vmtest/matrix.py from the matrix's results; do not edit -->"
END = "<!-- kernel-matrix end -->"
DEBIAN = {"bullseye": "Debian 11", "bookworm": "Debian 12", "trixie": "Debian 13", "forky": "Debian 14",
          "sid": "Debian unstable"}


def kernels_txt():
    rows = []
    with open(os.path.join(HERE, "kernels.txt")) as f:
        for line in f:
            words = line.split()
            if words and not words[0].startswith("#"):
                rows.append({"name": words[0], "suites": words[1], "tests": words[4]})
    return rows


def record(a):
    backends = {b: {"result": "none", "passed": 0, "run": 0, "known": 0} for b in BACKENDS}
    known = set(a.known.split())
    for line in sys.stdin:
        line = line.rstrip("\n")
        m = re.match(r"CTBPF-VM-REFUSED kernel=\S+ backend=(\S+) reason=(.*)$", line)
        if m and m.group(1) in backends:
            backends[m.group(1)] = {"result": "refused", "reason": m.group(2).strip()}
            continue
        m = re.match(r"CTBPF-VM-RESULT kernel=\S+ backend=(\S+) test=(\S+) pass=([01])", line)
        if not m or m.group(1) not in backends or backends[m.group(1)]["result"] == "refused":
            continue
        b, test, ok = m.group(1), m.group(2), m.group(3) == "1"
        r = backends[b]
        if test not in ("run", "refusal"):
            r["run"] += 1
            r["passed"] += ok
        if not ok:
            if f"{a.name}:{b}" in known or f"{a.name}:{b}:{test}" in known:
                r["known"] += 1
            else:
                r["result"] = "failed"
        if r["result"] == "none" and ok:
            r["result"] = "exact"
    for r in backends.values():
        if r["result"] == "exact" and r["known"]:
            r["result"] = "known failures"
    out = {"name": a.name, "release": a.release, "packages": a.packages, "suites": a.suites, "tests": a.tests,
           "seconds": a.seconds, "failures": a.failures, "backends": backends}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".new", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(a.out + ".new", a.out)


def load(results):
    rows, missing = [], []
    for k in kernels_txt():
        path = os.path.join(results, k["name"] + ".json")
        if os.path.exists(path):
            with open(path) as f:
                rows.append(json.load(f))
        else:
            missing.append(k["name"])
    return rows, missing


def kernel_cell(r):
    if r["name"] == "host":
        return f"this project's machine: {r['release']} (no VM)"
    suite = r["suites"].split(",")[0]
    # "linux-image-5.10.0-32-cloud-amd64 5.10.223-1,...": the upstream version is the package's.
    version = r["packages"].split(",")[0].split(" ")[-1].split("-")[0].split("+")[0]
    return f"{DEBIAN.get(suite, suite)} ({suite}) {version}, `{r['release']}` (qemu)"


def backend_cell(b):
    if b["result"] == "refused":
        # The column names the backend and the row the kernel: keep what is missing.
        reason = re.sub(r"^backend '\w+' cannot run on kernel \S+: (\w+: )?", "", b["reason"])
        return "refused: " + reason.replace("|", "\\|")
    if b["result"] == "none":
        return "not run"
    return f"{b['result']} ({b['passed']} of {b['run']} tests)"


def table(results):
    rows, missing = load(results)
    if not rows:
        raise SystemExit(f"matrix.py: no results in {results}: run the kernel matrix (ctest -L vm, or tools/vmtest/run.sh)")
    vms = [r for r in rows if r["name"] != "host"]
    oldest = min(vms, key=lambda r: [int(x) for x in re.findall(r"\d+", r["release"])[:2]]) if vms else None
    lines = [BEGIN, "| kernel | tests | fentry | kprobe | tracepoint |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {kernel_cell(r)} | {r['tests']} | "
                     + " | ".join(backend_cell(r["backends"][b]) for b in BACKENDS) + " |")
    lines.append("")
    if oldest:
        lines.append(f"Oldest kernel tested: {'.'.join(re.findall(r'[0-9]+', oldest['release'])[:2])} "
                     f"({kernel_cell(oldest).split(',')[0]}).")
    if missing:
        lines.append(f"Not run: {', '.join(missing)}.")
    lines.append(END)
    return "\n".join(lines) + "\n", rows


def versionless(line):
    """A table line without kernel point releases and package names (major.minor stays)."""
    return re.sub(r"`[^`]*`|\b\d+\.\d+\.\d+\S*", "V", line)


def readme(a):
    text, rows = table(a.results)
    with open(a.readme) as f:
        old = f.read()
    start, end = old.find(BEGIN), old.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"matrix.py: {a.readme} has no kernel-matrix section (the markers {BEGIN!r} ... {END!r})")
    current = old[start:end + len(END) + 1]
    if a.write:
        with open(a.readme + ".new", "w") as f:
            f.write(old[:start] + text + old[end + len(END) + 1:])
        os.replace(a.readme + ".new", a.readme)
        return 0
    host = next((r for r in rows if r["name"] == "host"), None)
    expected = text.splitlines()
    have = current.splitlines()
    if host:
        mine = next((i for i, l in enumerate(expected) if l.startswith("| this project's machine:")), None)
        theirs = next((i for i, l in enumerate(have) if l.startswith("| this project's machine:")), None)
        if mine is not None and theirs is not None and f": {host['release']} (" not in have[theirs]:
            print(f"matrix.py: the README's host row is another kernel than this machine's {host['release']}: "
                  "not compared")
            expected[mine] = have[theirs]
    if expected == have:
        times = ", ".join(f"{r['name']} {r['seconds']} s" for r in rows)
        print(f"matrix.py: {a.readme}'s kernel table matches the matrix's results ({times})")
        return 0
    # Debian's security suites and unstable replace their kernel packages: a fresh machine may
    # test a newer point release than the README names. Same results on it still pass (said
    # here); any other difference fails.
    if [versionless(l) for l in expected] == [versionless(l) for l in have]:
        print(f"matrix.py: {a.readme}'s kernel table has the same results, but the archive now has other "
              "kernel point releases than it names; to refresh it: tools/vmtest/matrix.py readme --write")
        return 0
    print(f"matrix.py: {a.readme}'s kernel table differs from the kernel matrix's last results "
          f"({a.results}); if the results are right, run: tools/vmtest/matrix.py readme --write", file=sys.stderr)
    import difflib
    sys.stderr.writelines(difflib.unified_diff([l + "\n" for l in have], [l + "\n" for l in expected],
                                               "README.md", "matrix results"))
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    for opt in ("name", "release", "packages", "suites", "tests", "out"):
        r.add_argument("--" + opt, required=True)
    r.add_argument("--seconds", type=int, required=True)
    r.add_argument("--failures", type=int, required=True)
    r.add_argument("--known", default="")
    for name in ("table", "readme"):
        s = sub.add_parser(name)
        s.add_argument("--results", default=os.path.join(TOP, "build", "kernel-matrix"))
    s.add_argument("readme", nargs="?", default=os.path.join(TOP, "README.md"))
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true")
    g.add_argument("--check", action="store_true")
    a = p.parse_args()
    if a.cmd == "record":
        record(a)
    elif a.cmd == "table":
        sys.stdout.write(table(a.results)[0])
    else:
        return readme(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
