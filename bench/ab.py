#!/usr/bin/env python3
"""Interleaved A/B of fgs builds on the warm path (bench/README.md, "Comparing builds").

    bench/ab.py --echo target/bench/release/fgs-bench-echo \
        base=/tmp/fgs-main new=target/release/fgs [name=BIN:--flag,value ...]

Starts every variant's `fgs serve` at once (as bench.py starts one: temporary data dir, its own
cgroup parent, the bench's echo as a Custom `bootstrap`), then runs `rounds` rounds; in each, every
variant in turn (the order rotates from round to round) gets bench.py's wrk warm-up and a `secs` run
at `conns` connections of `fgs sync, token`. Per run: calls/s, p50, and cpu per call of fgs, of
its runtime processes (every `bootstrap` below it), of wrk, and of the whole machine (all cpus'
non-idle time from /proc/stat), plus fgs's context switches per call. The machine moves by
10-20 % between runs: only the medians over rounds, read side by side, mean anything.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import bench


def descendants(root, comm):
    """Pids of the processes named `comm` below `root`."""
    parent, names = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        head, tail = s.rsplit(")", 1)
        names[int(d)] = head.split("(", 1)[1]
        parent[int(d)] = int(tail.split()[1])
    out = []
    for pid, name in names.items():
        if name != comm:
            continue
        p = parent.get(pid)
        while p and p != root:
            p = parent.get(p)
        if p == root:
            out.append(pid)
    return out


def busy_ticks():
    """All cpus' non-idle, non-iowait time, in clock ticks."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]


def switches(pid):
    """Context switches of every thread of `pid`."""
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                n += sum(int(x.split()[1]) for x in f if "ctxt_switches" in x)
        except OSError:
            pass
    return n


def cpu_sum(pids):
    total = 0.0
    for p in pids:
        try:
            total += bench.cpu_seconds(p)
        except OSError:
            pass
    return total


def run_wrk(cmd):
    """Runs wrk; returns its stdout and its own cpu seconds (user + system)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"wrk failed: {status}")
    return out, ru.ru_utime + ru.ru_stime


def measure(fgs, url, conns, secs, script):
    threads = ["-t", "1" if conns == 1 else "2", "-c", str(conns), "--timeout", "10s",
               "-s", script, url]
    # Warm-up, as bench.py's: until a second of load runs without a slow call (the instances
    # have scaled out), at most 15 times.
    for _ in range(15):
        out, _ = run_wrk(["wrk", "-d", "1s", *threads])
        if json.loads(re.search(r"BENCH (\{.*\})", out).group(1))["p99_us"] < 50_000:
            break
    runtimes = descendants(fgs.pid, "bootstrap")
    f0, r0, b0, s0 = bench.cpu_seconds(fgs.pid), cpu_sum(runtimes), busy_ticks(), switches(
        fgs.pid)
    out, wrk_cpu = run_wrk(["wrk", "-d", f"{secs}s", *threads])
    f1, r1, b1, s1 = bench.cpu_seconds(fgs.pid), cpu_sum(runtimes), busy_ticks(), switches(
        fgs.pid)
    r = json.loads(re.search(r"BENCH (\{.*\})", out).group(1))
    n = max(r["requests"], 1)
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "errors": r["errors"] + r["non2xx"],
        "fgs_us": (f1 - f0) / n * 1e6,
        "runtimes_us": (r1 - r0) / n * 1e6,
        "wrk_us": wrk_cpu / n * 1e6,
        "machine_us": (b1 - b0) / bench.CLK_TCK / n * 1e6,
        "fgs_switches": (s1 - s0) / n,
        "runtimes": len(runtimes),
    }


COLS = [("rps", "calls/s", "{:,.0f}"), ("p50_ms", "p50 ms", "{:.3f}"),
        ("fgs_us", "fgs us", "{:.1f}"), ("runtimes_us", "runtimes us", "{:.1f}"),
        ("wrk_us", "wrk us", "{:.1f}"), ("machine_us", "machine us", "{:.1f}"),
        ("fgs_switches", "fgs cs", "{:.2f}")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="NAME=BIN[:ARG,ARG...]",
                    help="a build to compare, with extra `fgs serve` arguments after a colon")
    ap.add_argument("--echo", required=True, help="bench/echo's binary (the runtime)")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prewarm", type=int, default=2)
    ap.add_argument("--out", help="write every run as JSON here")
    a = ap.parse_args()
    variants = []
    for v in a.variants:
        name, _, rest = v.partition("=")
        binary, _, args = rest.partition(":")
        if not name or not os.access(binary, os.X_OK):
            ap.error(f"{v}: want NAME=BIN[:ARG,ARG...] with an executable BIN")
        variants.append((name, binary, [x for x in args.split(",") if x]))
    tmp = tempfile.mkdtemp(prefix="fgs-ab-")
    script = os.path.join(tmp, "wrk.lua")
    with open(script, "w") as f:
        f.write(bench.WRK_LUA % (bench.lua_str(bench.EVENT.decode()), "\n".join(
            f"wrk.headers[{bench.lua_str(k)}] = {bench.lua_str(v)}" for k, v in
            {"X-Auth-Token": bench.TOKEN, "Content-Type": "application/json"}.items())))
    echo = open(a.echo, "rb").read()
    started, runs = [], {name: [] for name, _, _ in variants}
    try:
        for name, binary, extra in variants:
            fgs = bench.Fgs(binary, tmp, name, a.prewarm, extra=extra)
            started.append((name, fgs))
            fgs.create("echo", "Custom", "bootstrap", [("bootstrap", echo, 0o755)])
        urls = {name: f"{fgs.base}/v2/{bench.PROJECT}/fgs/functions/echo/invocations"
                for name, fgs in started}
        load = os.getloadavg()[0]
        for k in range(a.rounds):
            order = started[k % len(started):] + started[:k % len(started)]
            for name, fgs in order:
                bench.settle(5)
                r = measure(fgs, urls[name], a.conns, a.secs, script)
                r["round"] = k
                runs[name].append(r)
                print(f"round {k} {name:>10}: " + "  ".join(
                    f"{label} {fmt.format(r[key])}" for key, label, fmt in COLS)
                    + (f"  ERRORS {r['errors']}" if r["errors"] else ""), file=sys.stderr)
        print(f"\n{a.conns} connections, {a.secs} s runs, {a.rounds} rounds, medians "
              f"[min-max]; load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}")
        print("| variant | " + " | ".join(label for _, label, _ in COLS) + " |")
        print("|---" * (len(COLS) + 1) + "|")
        for name, rs in runs.items():
            cells = []
            for key, _, fmt in COLS:
                xs = [r[key] for r in rs]
                cells.append(f"{fmt.format(statistics.median(xs))} "
                             f"[{fmt.format(min(xs))}-{fmt.format(max(xs))}]")
            print(f"| {name} | " + " | ".join(cells) + " |")
        if a.out:
            with open(a.out, "w") as f:
                json.dump({"conns": a.conns, "secs": a.secs, "runs": runs,
                           "variants": {n: {"binary": b, "args": x} for n, b, x in variants}},
                          f, indent=1)
    finally:
        for _, fgs in started:
            fgs.stop()
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
