#!/usr/bin/env python3
"""Interleaved A/B of fgs builds on the warm path (bench/README.md, "Comparing builds").

    bench/ab.py --echo target/bench/release/fgs-bench-echo \
        base=/tmp/fgs-main new=target/release/fgs [name=BIN:--flag,value ...]

Starts every variant's `fgs serve` at once (as bench.py starts one: temporary data dir, its own
cgroup parent, the bench's echo as a Custom `bootstrap`), then runs `rounds` rounds; in each, every
variant in turn (the order rotates from round to round) gets bench.py's wrk warm-up and a `secs` run
at `conns` connections of `fgs sync, token`, measured by bench.py's `wrk()`: calls/s, p50, and
cpu per call of fgs, of its runtime processes (its descendants), of wrk, and of the whole
machine (all cpus' non-idle time from /proc/stat). The machine moves by
10-20 % between runs: only the medians over rounds, read side by side, mean anything.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import bench


def measure(fgs, url, conns, secs, tmp):
    r = bench.wrk(url, conns, secs, {"X-Auth-Token": bench.TOKEN,
                                     "Content-Type": "application/json"},
                  [fgs.pid], tmp=tmp, runtimes_of=fgs.pid)
    return {
        "rps": r["rps"],
        "p50_ms": r["p50_ms"],
        "errors": r["errors"],
        "fgs_us": r["cpu_us_per_call"][str(fgs.pid)],
        "runtimes_us": r["runtimes_cpu_us"],
        "wrk_us": r["wrk_cpu_us"],
        "machine_us": r["machine_busy_us"],
        "runtimes": r["runtimes_measured"],
    }


COLS = [("rps", "calls/s", "{:,.0f}"), ("p50_ms", "p50 ms", "{:.3f}"),
        ("fgs_us", "fgs us", "{:.1f}"), ("runtimes_us", "runtimes us", "{:.1f}"),
        ("wrk_us", "wrk us", "{:.1f}"), ("machine_us", "machine us", "{:.1f}")]


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
                r = measure(fgs, urls[name], a.conns, a.secs, tmp)
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
