"""The `cluster` group of the bench (bench/README.md): 1 node against 3 nodes on loopback, on
one PostgreSQL database and one NATS (`--postgres URL`, `--nats URL`; bench/run starts
throwaway ones). Measured per cluster size: warm sync p50 at 1 connection on one node;
throughput of 64 connections spread evenly over the nodes; async events/s end to end (none
lost); time from a code update answered on one node to the new code answering on another
(median of rounds). Those calls run on the node they reached (no limit is reached, so
nothing is forwarded). On 3 nodes, forwarding's cost: a function with `max_instance_num` 1
whose one instance lives on node 0, called at 1 connection on node 0 (local) and on node 1
(every call forwarded to node 0), in interleaved rounds; node 0's and node 1's own
`/metrics` show that node 0 served every call.

Each node has its own data dir; code packages come from PostgreSQL.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

# The running bench.py (its token, project and helpers), not a second copy of it.
import __main__ as bench

UPDATE_ROUNDS = 7
FORWARD_ROUNDS = 3

ANSWERING = """#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o /dev/null "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\\r\\n')
  curl -sS -o /dev/null -X POST -d '"WORD"' "$API/response/$id" || exit 1
done
"""


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def with_db(url, db):
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + db))


def start(a, tmp, size, postgres, nats):
    """`size` nodes on a fresh database; returns the nodes and the database's name."""
    db = f"fgs_bench_{os.getpid()}_{size}"
    psql(postgres, f"DROP DATABASE IF EXISTS {db}")
    psql(postgres, f"CREATE DATABASE {db}")
    nodes = [bench.Fgs(a.fgs, tmp, f"cluster{size}-{i}", 2, extra=[
        "--store", with_db(postgres, db), "--nats", nats, "--node-id", f"bench-{i}"])
        for i in range(size)]
    return nodes, db


def wrk_spread(urls, conns, secs, tmp):
    """One wrk per URL at once, `conns` split evenly; the summed requests/s and errors."""
    script = os.path.join(tmp, "wrk-cluster.lua")
    with open(script, "w") as f:
        f.write(bench.WRK_LUA % (bench.lua_str(bench.EVENT.decode()),
                                 f"wrk.headers[\"X-Auth-Token\"] = {bench.lua_str(bench.TOKEN)}\n"
                                 "wrk.headers[\"Content-Type\"] = \"application/json\""))
    per = max(conns // len(urls), 1)

    def run(url, d):
        return subprocess.Popen(["wrk", "-t", "1", "-c", str(per), "-d", d, "--timeout", "10s",
                                 "-s", script, url], stdout=subprocess.PIPE, text=True)
    def load(d):
        outs = [p.communicate()[0] for p in [run(u, d) for u in urls]]
        return [json.loads(re.search(r"BENCH (\{.*\})", o).group(1)) for o in outs]
    # Warm-up as bench.wrk does: until a second of load runs without a slow call (instances
    # have scaled out on every node), at most 15 times.
    for _ in range(15):
        if max(r["p99_us"] for r in load("1s")) < 50_000:
            break
    rs = load(f"{secs}s")
    rps = sum(r["requests"] / (r["duration_us"] / 1e6) for r in rs)
    return rps, sum(r["errors"] + r["non2xx"] for r in rs)


def async_spread(nodes, name, n):
    """After a warm-up of n/5 (instances scale out on every node), n async events submitted
    over the nodes at once, timed until all n succeeded."""
    per = max(n // 5 // len(nodes), 8)
    for k in range(len(nodes)):
        bench.submit_async(nodes[k], name, per)
    base = bench.wait_async(nodes[0], name, per * len(nodes), timeout=300)
    t0 = time.perf_counter()
    errs = []
    ts = [threading.Thread(target=lambda k=k: errs.extend(bench.submit_async(
        nodes[k], name, n // len(nodes)))) for k in range(len(nodes))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total_n = (n // len(nodes)) * len(nodes)
    done = bench.wait_async(nodes[0], name, base + total_n, timeout=300) - base
    secs = time.perf_counter() - t0
    failed = bench.async_count(nodes[0], name, "FAIL") + bench.async_count(
        nodes[0], name, "DISCARD")
    return total_n, done, failed, len(errs), secs


def answer(node, name):
    conn = bench.http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    conn.request("POST", f"/v2/{bench.PROJECT}/fgs/functions/{name}/invocations", body=b"{}",
                 headers={"X-Auth-Token": bench.TOKEN, "Content-Type": "application/json"})
    out = conn.getresponse().read()
    conn.close()
    return out


def update_latency(nodes, tmp):
    """Median over rounds of: code update answered on one node -> new code answering on
    another (the same node when there is one)."""
    writer, reader = nodes[-1], nodes[0]
    files = lambda w: [("bootstrap", ANSWERING.replace("WORD", w).encode(), 0o755)]
    writer.create("upd", "Custom", "bootstrap", files("r0"))
    took = []
    for r in range(1, UPDATE_ROUNDS + 1):
        while answer(reader, "upd") != b'"r%d"' % (r - 1):
            time.sleep(0.01)
        writer.api("PUT", "/functions/upd/code", {
            "code_type": "zip", "code_filename": "code.zip",
            "func_code": {"file": bench.b64zip(files(f"r{r}"))}})
        t0 = time.perf_counter()
        while answer(reader, "upd") != b'"r%d"' % r:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("the update was not followed in 10 s")
        took.append((time.perf_counter() - t0) * 1000)
    return statistics.median(took)


def invocations(node, name):
    """Invocations of `name` this node ran, by its own `/metrics` (every outcome)."""
    conn = bench.http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    conn.request("GET", "/metrics", headers={"X-Auth-Token": bench.TOKEN})
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("fgs_invocations_total{") and f'function="{name}"' in line)


def forwarding(nodes, boot, secs, rounds, tmp):
    """Warm sync calls at 1 connection to a function whose one instance (`max_instance_num`
    1) is on node 0: on node 0 (local) and on node 1 (forwarded to node 0), `rounds`
    interleaved pairs; the median p50 and p99 of each, and how many calls each node ran."""
    local_node, far = nodes[0], nodes[1]
    local_node.create("fwd", "Custom", "bootstrap", boot)
    local_node.api("PUT", "/functions/fwd/config-max-instance", {"max_instance_num": 1})
    # The first call starts the one instance, on node 0.
    if answer(local_node, "fwd") != b"{}":
        raise RuntimeError("the forwarding row's function does not answer")
    url = lambda s: f"{s.base}/v2/{bench.PROJECT}/fgs/functions/fwd/invocations"
    token = {"X-Auth-Token": bench.TOKEN, "Content-Type": "application/json"}
    before = [invocations(s, "fwd") for s in (local_node, far)]
    local, fwd = [], []
    for _ in range(rounds):
        bench.settle()
        local.append(bench.wrk(url(local_node), 1, secs, token, [local_node.pid], tmp=tmp))
        bench.settle()
        fwd.append(bench.wrk(url(far), 1, secs, token, [far.pid, local_node.pid], tmp=tmp))
    ran = [invocations(s, "fwd") - b for s, b in zip((local_node, far), before)]
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    far_cpu = statistics.median(r["cpu_us_per_call"][str(far.pid)] for r in fwd)
    return {
        "scenario": "cluster forwarding", "conns": 1, "nodes": len(nodes), "rounds": rounds,
        "p50_ms": med(fwd, "p50_ms"), "p99_ms": med(fwd, "p99_ms"), "rps": med(fwd, "rps"),
        "cpu_us": None, "rss_mb": None,
        "local_p50_ms": med(local, "p50_ms"), "local_p99_ms": med(local, "p99_ms"),
        "forwarded_p50_ms": med(fwd, "p50_ms"), "forwarded_p99_ms": med(fwd, "p99_ms"),
        "added_p50_ms": statistics.median(f["p50_ms"] - l["p50_ms"]
                                          for l, f in zip(local, fwd)),
        "forwarding_node_cpu_us_per_call": far_cpu,
        "rounds_local": local, "rounds_forwarded": fwd,
        "ran_on_node0": ran[0], "ran_on_node1": ran[1],
        "calls_measured": sum(r["requests"] for r in local + fwd),
        # Forwarding not happening (node 1 ran calls, or node 0 fewer than were measured;
        # wrk's warm-ups add to node 0's) is an error of the row.
        "errors": sum(r["errors"] for r in local + fwd) + int(ran[1] > 0)
        + int(ran[0] < sum(r["requests"] for r in local + fwd)),
    }


def run(res, a, tmp, echo, secs, quick):
    if not (a.postgres and a.nats):
        print("cluster: skipped (no --postgres and --nats)", file=sys.stderr)
        return
    boot = [("bootstrap", echo, 0o755)]
    for size in (1, 3):
        print(f"cluster of {size} on PostgreSQL + NATS", file=sys.stderr)
        nodes, db = start(a, tmp, size, a.postgres, a.nats)
        try:
            nodes[0].create("echo", "Custom", "bootstrap", boot)
            nodes[0].create("noop", "Custom", "bootstrap", boot)
            time.sleep(0.5)
            bench.settle()
            inv = lambda s: f"{s.base}/v2/{bench.PROJECT}/fgs/functions/echo/invocations"
            token = {"X-Auth-Token": bench.TOKEN, "Content-Type": "application/json"}
            r = bench.wrk(inv(nodes[0]), 1, secs, token, [nodes[0].pid], tmp=tmp)
            p50 = r["p50_ms"]
            rps, errors = wrk_spread([inv(s) for s in nodes], 64, secs, tmp)
            n, done, failed, refused, asecs = async_spread(nodes, "noop",
                                                           300 if quick else 3000)
            upd = update_latency(nodes, tmp)
            if size > 1:
                f = forwarding(nodes, boot, secs, 1 if quick else FORWARD_ROUNDS, tmp)
                res.append(f)
                print(f"  forwarding: p50 {f['local_p50_ms']:.3f} ms local, "
                      f"{f['forwarded_p50_ms']:.3f} ms forwarded (+{f['added_p50_ms']:.3f} ms, "
                      f"median of {f['rounds']} paired rounds); p99 {f['local_p99_ms']:.3f} / "
                      f"{f['forwarded_p99_ms']:.3f} ms; node 0 ran {f['ran_on_node0']:.0f} "
                      f"calls, node 1 {f['ran_on_node1']:.0f}", file=sys.stderr)
            row = {"scenario": f"cluster {size} node(s)", "conns": 64, "nodes": size,
                   "p50_ms": p50, "p99_ms": r["p99_ms"], "rps": rps, "cpu_us": None,
                   "rss_mb": None, "async_events": n, "async_succeeded": done,
                   "async_failed": failed, "async_refused": refused,
                   "async_per_s": done / asecs, "update_followed_ms": upd,
                   "errors": errors + failed + refused + (n - done)}
            res.append(row)
            print(f"  {size} node(s): warm p50 {p50:.3f} ms (1 conn, one node); "
                  f"64 conns over the nodes {rps:.0f}/s; async {done}/{n} in {asecs:.1f} s "
                  f"({done / asecs:.0f}/s, {failed} failed); update followed in {upd:.0f} ms "
                  f"(median of {UPDATE_ROUNDS})", file=sys.stderr)
        finally:
            for s in nodes:
                s.stop()
            psql(a.postgres, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
