#!/usr/bin/env python3
"""The fgs benchmark driver (run it through `bench/run`, which builds what it needs).

Starts `fgs serve` on 127.0.0.1:0 with a temporary data dir, deploys the benchmark functions,
drives them with wrk and prints a table; writes the figures as JSON. Everything runs on
loopback, is bounded in time, and is cleaned up at the end (fgs and the peers are stopped, the
temporary directories removed). Scenarios and how each is measured: bench/README.md.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import io
import json
import os
import re
import resource
import urllib.request
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TOKEN = "bench-token-" + os.urandom(8).hex()
AK, SK = "BENCHAK" + os.urandom(4).hex().upper(), os.urandom(16).hex()
PROJECT = "bench" + os.urandom(8).hex()
EVENT = b'{"hello":"world","n":42}'
# Process names an instance is made of: the runtime, the sandbox shim and init (fgs re-exec'd
# while it sets up, `fgs-shim` and `fgs-init` once the runtime runs), the egress helper.
INSTANCE_COMMS = {"bootstrap", "fgs", "fgs-shim", "fgs-init", "passt", "passt.avx2", "pasta",
                  "pasta.avx2"}


# ---------------------------------------------------------------- processes and /proc


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak(pid):
    """Resets VmHWM (Linux >= 4.0), so that each scenario reports its own peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def children_map():
    """pid -> its child pids, for every process on the host."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    """Every process below `pid` (its runtimes, with their sandbox's helpers), not `pid`."""
    kids, out, todo = children_map(), [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def cpu_of(pids):
    """pid -> cpu seconds of those of `pids` still running."""
    out = {}
    for p in pids:
        try:
            out[p] = cpu_seconds(p)
        except (OSError, ValueError, IndexError):
            pass
    return out


def cpu_ticks():
    """All cpus' (total, idle or waiting for I/O) time in clock ticks, from /proc/stat (user,
    nice, system, idle, iowait, irq, softirq, steal; guest time is inside user already)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]


def machine_busy_seconds():
    """All cpus' time neither idle nor waiting for I/O."""
    total, idle = cpu_ticks()
    return (total - idle) / CLK_TCK


def processes():
    """pid -> (comm, PSS bytes) of every process on the host. PSS, not RSS: pages shared between
    the instances (the same binary, the same libraries) are counted once, split among them."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{d}/smaps_rollup") as f:
                pss = next(int(x.split()[1]) for x in f if x.startswith("Pss:")) * 1024
        except (OSError, StopIteration):
            continue
        out[int(d)] = (comm, pss)
    return out


def settle(limit=20.0):
    """Waits (at most `limit` s) until the machine's cpus are at least 90 % idle over half a
    second: a stopped fgs leaves the kernel removing its instances' cgroups for seconds after,
    and that work would otherwise be billed to the next scenario."""
    deadline = time.time() + limit
    while time.time() < deadline:
        t0, i0 = cpu_ticks()
        time.sleep(0.5)
        t1, i1 = cpu_ticks()
        if t1 > t0 and (i1 - i0) / (t1 - t0) >= 0.9:
            return


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/")
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


class Fgs:
    """One `fgs serve` with its own data dir, cgroup parent and sandbox run dir."""

    def __init__(self, binary, tmp, tag, prewarm, extra=(), data=None):
        self.dir = os.path.join(tmp, tag)
        os.makedirs(self.dir)
        self.log = open(os.path.join(self.dir, "fgs.log"), "w")
        cmd = [binary, "serve", "--listen", "127.0.0.1:0",
               "--data-dir", data or os.path.join(self.dir, "data"), *extra,
               "--auth-token", TOKEN, "--access-key", AK, "--secret-key", SK,
               "--project-id", PROJECT, "--prewarm", str(prewarm),
               "--instance-idle-timeout", "1h", "--queue-limit", "1000",
               "--cgroup-parent", f"fgs-bench-{os.getpid()}-{tag}",
               "--sandbox-run-dir", os.path.join(self.dir, "run")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={"FGS_LOG": "warn", **os.environ})
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if not m:
            raise RuntimeError(f"fgs did not start: {line!r}; see {self.log.name}")
        self.port = int(m.group(2))
        self.base = f"http://127.0.0.1:{self.port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def egress(self):
        """How instances get egress (`veth`, `pasta` or `none`), from /healthz."""
        with urllib.request.urlopen(self.base + "/healthz", timeout=10) as r:
            return json.load(r)["isolation"]["egress"]

    def api(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        h = {"X-Auth-Token": TOKEN, "Content-Type": "application/json", **(headers or {})}
        try:
            self.conn.request(method, f"/v2/{PROJECT}/fgs{path}", body=data, headers=h)
            r = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request(method, f"/v2/{PROJECT}/fgs{path}", body=data, headers=h)
            r = self.conn.getresponse()
        out = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {out[:300]!r}")
        return json.loads(out) if out and r.getheader("content-type", "").startswith(
            "application/json") else out

    def create(self, name, runtime, handler, files, user_data=None):
        body = {"func_name": name, "package": "default", "runtime": runtime,
                "handler": handler, "memory_size": 128, "timeout": 30, "code_type": "zip",
                "code_filename": "code.zip", "func_code": {"file": b64zip(files)}}
        if user_data:
            body["user_data"] = json.dumps(user_data)
        return self.api("POST", "/functions", body)

    def stop(self):
        terminate(self.proc)
        self.log.close()


class Relay:
    """The protocol's floor (crates/pool/examples/relay_floor.rs): a server that relays each
    POST to one of `runtimes` bench/echo Custom runtimes over the Runtime API and nothing else,
    served as fgs serves (thread-per-core, the poll window)."""

    def __init__(self, binary, echo, runtimes=64, extra=()):
        self.proc = subprocess.Popen([binary, "--runtime", echo, "--runtimes", str(runtimes),
                                      *extra], stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError(f"the relay did not start: {line!r}")
        self.base = f"http://127.0.0.1:{m.group(2)}"

    def stop(self):
        terminate(self.proc)


def terminate(proc):
    """SIGTERM, then SIGKILL if the process has not ended 30 s later."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def b64zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content, mode in files:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------- signing (SPEC.md 2)


def sdk_sign(method, url, headers, body):
    """SDK-HMAC-SHA256, as the official SDKs sign; the date is now, valid for 15 minutes."""
    u = urllib.parse.urlsplit(url)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    h = {**headers, "Host": u.netloc, "X-Sdk-Date": date}
    path = "/".join(urllib.parse.quote(urllib.parse.unquote(s), safe="~")
                    for s in u.path.split("/"))
    if not path.endswith("/"):
        path += "/"
    names = sorted(k.lower() for k in h)
    lines = "".join(f"{k}:{h[next(x for x in h if x.lower() == k)].strip()}\n" for k in names)
    canonical = "\n".join([method, path, "", lines, ";".join(names),
                           hashlib.sha256(body).hexdigest()])
    sts = "SDK-HMAC-SHA256\n%s\n%s" % (date, hashlib.sha256(canonical.encode()).hexdigest())
    sig = hmac.new(SK.encode(), sts.encode(), hashlib.sha256).hexdigest()
    del h["Host"]  # wrk sends it, with the same value
    h["Authorization"] = (f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders={';'.join(names)}, "
                          f"Signature={sig}")
    return h


# ---------------------------------------------------------------- load generator


WRK_LUA = """
wrk.method = "POST"
wrk.body = %s
%s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,' ..
    '"errors":%%d,"non2xx":%%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(url, conns, seconds, headers, pids, body=EVENT, tmp="/tmp", runtimes_of=None):
    """One wrk run; the CPU time and peak RSS of each pid in `pids` are taken around it, and so
    are the machine's busy cpu time and wrk's own. With `runtimes_of` (a pid), the summed cpu
    time of its descendants as found after the warm-up (the runtime processes) too."""
    hs = "\n".join(f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items())
    script = os.path.join(tmp, "wrk.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA % (lua_str(body.decode()), hs))
    threads = 1 if conns == 1 else 2
    # Warm-up: connections open, instances scale out (64 connections on fgs: 64 cold starts),
    # caches fill. Repeated until a second of load runs without a slow call, at most 15 times.
    for _ in range(15):
        w = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", "1s",
                            "--timeout", "10s", "-s", script, url],
                           capture_output=True, text=True, check=True).stdout
        m = re.search(r"BENCH (\{.*\})", w)
        if m and json.loads(m.group(1))["p99_us"] < 50_000:
            break
    for p in pids:
        reset_peak(p)
    rt_pids = descendants(runtimes_of) if runtimes_of else []
    rt0 = cpu_of(rt_pids)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = machine_busy_seconds()
    cpu0 = {p: cpu_seconds(p) for p in pids}
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
                          "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    cpu = {p: cpu_seconds(p) - cpu0[p] for p in pids}
    busy = machine_busy_seconds() - busy0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rt1 = cpu_of(rt_pids)
    rt = sum(rt1[p] - rt0[p] for p in rt1 if p in rt0)
    m = re.search(r"BENCH (\{.*\})", out)
    r = json.loads(m.group(1))
    n = max(r["requests"], 1)
    return {
        # The runtimes' cpu summed (None without `runtimes_of`), the whole machine's busy cpu
        # (everything: the server, runtimes, wrk, the kernel's softirq, other work) and wrk's.
        "runtimes_cpu_us": rt / n * 1e6 if runtimes_of else None,
        "runtimes_measured": len(rt1) if runtimes_of else None,
        "machine_busy_us": busy / n * 1e6,
        "wrk_cpu_us": (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
        / n * 1e6,
        "conns": conns,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "requests": r["requests"],
        "errors": r["errors"] + r["non2xx"],
        "cpu_us_per_call": {str(p): cpu[p] / n * 1e6 for p in pids},
        "peak_rss_mb": {str(p): status_kb(p, "VmHWM") / 1024 for p in pids},
    }


# ---------------------------------------------------------------- scenarios


def warm(res, name, fgs, url, conns, secs, headers, tmp, extra_pids=(), runtimes=False):
    """`runtimes`: also the cpu of the server's descendants (its runtime processes)."""
    for c in conns:
        r = wrk(url, c, secs, headers, [fgs.pid, *extra_pids], tmp=tmp,
                runtimes_of=fgs.pid if runtimes else None)
        r["scenario"] = name
        r["cpu_us"] = r["cpu_us_per_call"][str(fgs.pid)]
        r["rss_mb"] = r["peak_rss_mb"][str(fgs.pid)]
        res.append(r)
        print(f"  {name} c={c}: p50 {r['p50_ms']:.3f} ms, {r['rps']:.0f}/s, "
              f"{r['errors']} errors", file=sys.stderr)


def extension_cost(res, fgs, secs, headers, tmp, rounds):
    """What each extension adds at 1 connection: `echo`, `ext1` and `ext10` one after the other,
    `rounds` times; per round, (p50 with n extensions - p50 without) / n, and the median over the
    rounds. Paired runs a few seconds apart: the machine's speed drifts more than that between
    scenario groups. The table shows each function's median run."""
    names = {0: "echo", 1: "ext1", 10: "ext10"}
    runs = {n: [] for n in names}
    for _ in range(rounds):
        for n, fn in names.items():
            r = wrk(f"{fgs.base}/v2/{PROJECT}/fgs/functions/{fn}/invocations", 1, secs, headers,
                    [fgs.pid], tmp=tmp)
            r["cpu_us"] = r["cpu_us_per_call"][str(fgs.pid)]
            r["rss_mb"] = r["peak_rss_mb"][str(fgs.pid)]
            runs[n].append(r)
    cost = {}
    for n in (1, 10):
        deltas = [(e["p50_ms"] - b["p50_ms"]) / n * 1000 for b, e in zip(runs[0], runs[n])]
        cost[str(n)] = statistics.median(deltas)
        mid = sorted(runs[n], key=lambda r: r["p50_ms"])[len(runs[n]) // 2]
        mid["scenario"] = f"fgs sync, {n} extension{'s' if n > 1 else ''}"
        res.append(mid)
        print(f"  {n} extension(s): {cost[str(n)]:.0f} us each (rounds: "
              f"{', '.join(f'{d:.0f}' for d in deltas)})", file=sys.stderr)
    res.append({"scenario": "extension cost", "per_extension_us": cost, "rounds": rounds,
                "p50_ms": None, "p99_ms": None, "rps": None, "cpu_us": None, "rss_mb": None})


def peer(res, name, pid, url, conns, secs, tmp):
    for c in conns:
        r = wrk(url, c, secs, {"Content-Type": "application/json"}, [pid], tmp=tmp)
        r["scenario"] = name
        r["cpu_us"] = r["cpu_us_per_call"][str(pid)]
        r["rss_mb"] = r["peak_rss_mb"][str(pid)]
        res.append(r)
        print(f"  {name} c={c}: p50 {r['p50_ms']:.3f} ms, {r['rps']:.0f}/s", file=sys.stderr)


def timed_invoke(fgs, name, body):
    conn = http.client.HTTPConnection("127.0.0.1", fgs.port, timeout=60)
    t0 = time.perf_counter()
    conn.request("POST", f"/v2/{PROJECT}/fgs/functions/{name}/invocations", body=body,
                 headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"})
    r = conn.getresponse()
    out = r.read()
    dt = time.perf_counter() - t0
    conn.close()
    if r.status != 200 or r.getheader("x-is-func-err") == "true":
        raise RuntimeError(f"invoke {name}: {r.status} {out[:300]!r}")
    return dt * 1000


def cold_starts(res, fgs, label, functions, samples):
    """A cold start per sample: changing `user_data` retires the pool (a new instance template),
    so the next call starts a new instance. The pause lets the old instance stop and the
    pre-warmed sandbox pool refill, as between real cold starts; it is not measured."""
    for name, user_data, body in functions:
        times = []
        for i in range(samples):
            fgs.api("PUT", f"/functions/{name}/config",
                    {"user_data": json.dumps({**user_data, "BENCH_GEN": str(i)})})
            time.sleep(0.25)
            times.append(timed_invoke(fgs, name, body))
        times.sort()
        r = {"scenario": f"cold {name} ({label})", "conns": 1, "samples": samples,
             "p50_ms": statistics.median(times),
             "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
             "min_ms": times[0], "rps": None, "cpu_us": None, "rss_mb": None}
        res.append(r)
        print(f"  {r['scenario']}: p50 {r['p50_ms']:.1f} ms, min {r['min_ms']:.1f} ms",
              file=sys.stderr)


def warm_latency(res, fgs, functions, samples):
    """Sequential invocations of an instance already started: the runtime's own cost per event
    next to the others' (one connection, no concurrency)."""
    for name, _, body in functions:
        timed_invoke(fgs, name, body)
        times = sorted(timed_invoke(fgs, name, body) for _ in range(samples))
        r = {"scenario": f"warm {name} (sequential)", "conns": 1, "samples": samples,
             "p50_ms": statistics.median(times),
             "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
             "min_ms": times[0], "rps": None, "cpu_us": None, "rss_mb": None}
        res.append(r)
        print(f"  {r['scenario']}: p50 {r['p50_ms']:.2f} ms", file=sys.stderr)


JAVA_BENCH = b"""package bench;

import com.huawei.services.runtime.Context;

public class Echo {
    public String handler(String event, Context context) {
        return event;
    }
}
"""


def language_functions(tmp):
    """PHP, Java and Go echo functions `(name, runtime, handler, files)`, each built with its
    toolchain when the host has it (issue 21); a missing toolchain skips its language."""
    out = []
    if shutil.which("php"):
        out.append(("cold-php", "PHP8.3", "index.handler",
                    [("index.php", b"<?php\nfunction handler($event, $context) {\n"
                      b"    return $event;\n}\n", 0o644)]))
    if shutil.which("javac") and shutil.which("jar"):
        src = os.path.join(tmp, "java-src")
        os.makedirs(os.path.join(src, "bench"), exist_ok=True)
        with open(os.path.join(src, "bench", "Echo.java"), "wb") as f:
            f.write(JAVA_BENCH)
        classes, jar = os.path.join(tmp, "java-classes"), os.path.join(tmp, "echo.jar")
        subprocess.run(["javac", "--release", "8", "-Xlint:-options", "-implicit:none",
                        "-sourcepath", os.path.join(ROOT, "runtimes", "java"), "-d", classes,
                        os.path.join(src, "bench", "Echo.java")], check=True)
        subprocess.run(["jar", "cf", jar, "-C", classes, "."], check=True)
        out.append(("cold-java", "Java17", "bench.Echo.handler",
                    [("lib/echo.jar", open(jar, "rb").read(), 0o644)]))
    if shutil.which("go"):
        binary = os.path.join(tmp, "go-handler")
        subprocess.run(["go", "build", "-o", binary,
                        os.path.join(ROOT, "tests", "e2e", "fixtures", "go", "main.go")],
                       check=True, env={**os.environ, "CGO_ENABLED": "0", "GO111MODULE": "off"})
        out.append(("cold-go", "Go1.x", "handler", [("handler", open(binary, "rb").read(), 0o755)]))
    for name, _, _, _ in out:
        print(f"  built {name}", file=sys.stderr)
    return out


def submit_async(fgs, name, n):
    """Submits n async invocations from 8 keep-alive connections (threads); the statuses that
    were not 202."""
    errors = []

    def submit(k):
        c = http.client.HTTPConnection("127.0.0.1", fgs.port, timeout=60)
        for i in range(k, n, 8):
            c.request("POST", f"/v2/{PROJECT}/fgs/functions/{name}/invocations-async",
                      body=b'{"n":%d}' % i,
                      headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 202:
                errors.append(r.status)

    ts = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def async_count(fgs, name, status):
    return fgs.api("GET", f"/functions/{name}/async-invocations?status={status}&limit=1")["count"]


def wait_async(fgs, name, target, timeout=120):
    """Waits until `target` events of `name` have succeeded; how many have."""
    deadline = time.time() + timeout
    done = 0
    while time.time() < deadline:
        done = async_count(fgs, name, "SUCCESS")
        if done >= target:
            break
        time.sleep(0.02)
    return done


def async_throughput(res, fgs, name, n):
    """A warm-up of n/5 events (the function scales out to its instances, as the 1 s warm-up
    does before each wrk run), then n async invocations from 8 keep-alive connections, timed
    until all n have succeeded."""
    warmup = max(n // 5, 8)
    submit_async(fgs, name, warmup)
    base = wait_async(fgs, name, warmup)
    reset_peak(fgs.pid)
    cpu0 = cpu_seconds(fgs.pid)
    t0 = time.perf_counter()
    errors = submit_async(fgs, name, n)
    submitted = time.perf_counter() - t0
    done = wait_async(fgs, name, base + n) - base
    total = time.perf_counter() - t0
    failed = async_count(fgs, name, "FAIL") + async_count(fgs, name, "DISCARD")
    r = {"scenario": "async no-op end to end", "conns": 8, "events": n, "succeeded": done,
         "failed": failed, "submit_errors": len(errors), "submit_s": submitted,
         "p50_ms": None, "p99_ms": None, "rps": done / total,
         "cpu_us": (cpu_seconds(fgs.pid) - cpu0) / n * 1e6,
         "rss_mb": status_kb(fgs.pid, "VmHWM") / 1024,
         "errors": len(errors) + failed + (n - done)}
    res.append(r)
    print(f"  async: {done}/{n} SUCCESS in {total:.2f} s ({r['rps']:.0f}/s), "
          f"{failed} failed", file=sys.stderr)


def kernel_kb():
    """The kernel's own memory (slab, kernel stacks, page tables), from /proc/meminfo: what an
    instance's namespaces, veth pair and cgroups cost, which no process's PSS shows."""
    v = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, rest = line.split(":", 1)
            v[k] = int(rest.split()[0])
    return v.get("Slab", 0) + v.get("KernelStack", 0) + v.get("PageTables", 0)


def memory(res, fgs, n):
    """fgs's RSS, the new processes' PSS and the kernel's memory before and after `n` reserved
    instances of the echo are up and idle."""
    time.sleep(1)
    before = processes()
    fgs_before = status_kb(fgs.pid, "VmRSS")
    kernel_before = kernel_kb()
    if n > 400:
        # Beyond the default max_instance_num (400), which reserved instances count against.
        fgs.api("PUT", "/functions/echo/config-max-instance", {"max_instance_num": n})
    t0 = time.time()
    fgs.api("PUT", "/functions/echo/reservedinstances", {"count": n, "idle_mode": False})
    deadline = time.time() + 120 + n * 0.5
    while time.time() < deadline:
        now = processes()
        new = {p: v for p, v in now.items() if p not in before}
        if sum(1 for c, _ in new.values() if c == "bootstrap") >= n:
            break
        time.sleep(0.2)
    up_s = time.time() - t0
    time.sleep(2)  # let the last starts settle
    now = processes()
    kernel_after = kernel_kb()
    # Processes that started meanwhile and are of the instances (not a compiler of a neighbour).
    new = {p: v for p, v in now.items() if p not in before and v[0] in INSTANCE_COMMS}
    fgs_after = status_kb(fgs.pid, "VmRSS")
    by_comm = {}
    for comm, rss in new.values():
        by_comm.setdefault(comm, [0, 0])
        by_comm[comm][0] += 1
        by_comm[comm][1] += rss
    runtimes = sum(1 for c, _ in new.values() if c == "bootstrap")
    per = max(runtimes, 1)
    r = {"scenario": f"memory, {runtimes} idle reserved instances", "instances": runtimes,
         "fgs_rss_before_mb": fgs_before / 1024, "fgs_rss_after_mb": fgs_after / 1024,
         "fgs_kb_per_instance": (fgs_after - fgs_before) / per,
         "new_processes": {c: {"count": v[0], "pss_kb_each": round(v[1] / v[0] / 1024)}
                           for c, v in by_comm.items()},
         "other_processes_kb_per_instance":
             sum(v[1] for c, v in by_comm.items() if c != "bootstrap") / per / 1024,
         # Other work on the machine moves this too: indicative, not exact.
         "kernel_kb_per_instance": (kernel_after - kernel_before) / per,
         "up_s": up_s,
         "egress": fgs.egress(),
         "p50_ms": None, "p99_ms": None, "rps": None, "cpu_us": None,
         "rss_mb": fgs_after / 1024}
    res.append(r)
    print(f"  memory: fgs {fgs_before/1024:.1f} -> {fgs_after/1024:.1f} MB with {runtimes} "
          f"instances ({r['fgs_kb_per_instance']:.0f} KB each, up in {up_s:.0f} s); new "
          f"processes {by_comm}; kernel {r['kernel_kb_per_instance']:.0f} KB each",
          file=sys.stderr)


# ---------------------------------------------------------------- main


GROUPS = ("peers", "warm", "extensions", "tracing", "async", "cold", "memory", "cluster", "queue",
          "image")


class Done(Exception):
    """The groups asked for have run."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fgs", required=True)
    ap.add_argument("--echo", required=True)
    ap.add_argument("--peers", help="dir with node_modules/@google-cloud/functions-framework")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--postgres", help="PostgreSQL server URL for the cluster group (a "
                    "database is made per cluster size)")
    ap.add_argument("--nats", help="NATS server URL (JetStream on) for the cluster group")
    ap.add_argument("--queue-bench", help="the queue measurement's binary (crates/nats/"
                    "examples/queue_bench.rs) for the queue group")
    ap.add_argument("--relay", help="the relay floor's binary (crates/pool/examples/"
                    "relay_floor.rs) for the warm group's `relay floor (protocol only)` row")
    ap.add_argument("--store", help="--store of the single fgs of every group but cluster: "
                    "an empty PostgreSQL database (postgres://USER@HOST:PORT/DB) to measure "
                    "fgs on PostgreSQL; default SQLite in the data dir")
    ap.add_argument("--memory-instances", type=int,
                    help="idle reserved instances of the memory group (default 100, 5 with "
                    "--quick; at most 1000, the reservation limit)")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help="comma-separated groups to run, of: " + ", ".join(GROUPS))
    a = ap.parse_args()
    if a.store and not a.nats:
        ap.error("--store (PostgreSQL) needs --nats: fgs refuses a PostgreSQL store without NATS")
    only = set(a.only.split(","))
    if not only <= set(GROUPS):
        ap.error(f"--only takes {', '.join(GROUPS)}")
    quick = a.quick
    secs = 1 if quick else 5
    conns = [1, 64] if quick else [1, 8, 64]
    samples = 3 if quick else 50
    tmp = tempfile.mkdtemp(prefix="fgs-bench-")
    echo = open(a.echo, "rb").read()
    res, started = [], []
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": quick, "nproc": os.cpu_count(),
            "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                  capture_output=True, text=True).stdout.strip(),
            "kernel": os.uname().release,
            "store": "postgres" if a.store else "sqlite"}
    try:
        # The floor and the peer.
        floor = subprocess.Popen([a.echo, "floor", "0"], stdout=subprocess.PIPE, text=True)
        started.append(floor)
        fport = int(floor.stdout.readline().rsplit(":", 1)[1])
        if "peers" in only:
            print("floor (minimal keep-alive echo server)", file=sys.stderr)
            peer(res, "floor", floor.pid, f"http://127.0.0.1:{fport}/", conns, secs, tmp)
        if a.peers and "peers" in only:
            ffport = fport + 1 if fport < 65000 else fport - 1
            ff = subprocess.Popen(
                ["node", os.path.join(a.peers, "node_modules/.bin/functions-framework"),
                 "--target=echo", f"--port={ffport}", f"--source={a.peers}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append(ff)
            wait_port(ffport)
            print("Functions Framework for Node.js", file=sys.stderr)
            peer(res, "functions-framework", ff.pid, f"http://127.0.0.1:{ffport}/", conns,
                 secs, tmp)
            ff.terminate()
            ff.wait()

        if "cluster" in only:
            import cluster
            cluster.run(res, a, tmp, echo, secs, quick)
        if "queue" in only:
            import queues
            print("queue primitives: PostgreSQL against JetStream", file=sys.stderr)
            queues.run(res, a, 500 if quick else 5000)
        if "image" in only:
            import images
            images.run(res, a, tmp, samples, quick)
        if only <= {"cluster", "queue", "image"}:
            raise Done

        # fgs with the default pre-warmed sandboxes.
        # A PostgreSQL store needs NATS (fgs refuses it alone).
        store = ["--store", a.store, "--nats", a.nats] if a.store else []
        fgs = Fgs(a.fgs, tmp, "prewarm", 2, extra=store)
        time.sleep(1)
        res.append({"scenario": "fgs idle RSS (started, no functions)",
                    "rss_mb": status_kb(fgs.pid, "VmRSS") / 1024, "p50_ms": None,
                    "p99_ms": None, "rps": None, "cpu_us": None})
        boot = [("bootstrap", echo, 0o755)]
        fgs.create("echo", "Custom", "bootstrap", boot)
        fgs.create("noop", "Custom", "bootstrap", boot)
        fgs.create("apig", "Custom", "bootstrap", boot, {"BENCH_MODE": "apig"})
        trig = fgs.api("POST", "/triggers/apig", {
            "trigger_type_code": "APIG", "trigger_status": "ACTIVE",
            "event_data": {"path": "/echo", "req_method": "ANY", "auth": "NONE"}})
        for n in (1, 10):
            files = list(boot)
            for i in range(n):
                script = f"extension{i:02d}.sh"
                files.append((f"extension/{script}",
                              f"exec ../bootstrap ext {script} {8081 + i}\n".encode(), 0o755))
            fgs.create(f"ext{n}", "Custom", "bootstrap", files)

        inv = f"{fgs.base}/v2/{PROJECT}/fgs/functions/echo/invocations"
        token = {"X-Auth-Token": TOKEN, "Content-Type": "application/json"}
        settle()
        if "warm" in only:
            print("fgs warm sync invoke", file=sys.stderr)
            warm(res, "fgs sync, token", fgs, inv, conns, secs, token, tmp, runtimes=True)
            if a.relay:
                settle()
                print("relay floor (protocol only)", file=sys.stderr)
                relay = Relay(a.relay, a.echo)
                try:
                    warm(res, "relay floor (protocol only)", relay,
                         f"{relay.base}/v2/{PROJECT}/fgs/functions/echo/invocations", conns,
                         secs, token, tmp, runtimes=True)
                finally:
                    relay.stop()
                settle()
            signed = sdk_sign("POST", inv, {"Content-Type": "application/json",
                                            "X-Project-Id": PROJECT}, EVENT)
            warm(res, "fgs sync, AK/SK signed", fgs, inv, conns, secs, signed, tmp)
            warm(res, "fgs APIG trigger (auth NONE)", fgs, trig["event_data"]["invoke_url"],
                 conns, secs, {"Content-Type": "application/json"}, tmp)
        if "extensions" in only:
            settle()
            extension_cost(res, fgs, secs, token, tmp, 1 if quick else 3)
        if "tracing" in only:
            import tracing
            tracing.run(res, a, tmp, echo, secs, 1 if quick else 5, store)
        if "async" in only:
            settle()
            print("fgs async", file=sys.stderr)
            async_throughput(res, fgs, "noop", 200 if quick else 5000)

        print("fgs cold starts", file=sys.stderr)
        py = [("index.py", b"def handler(event, context):\n    return event\n", 0o644)]
        js = [("index.js", b"exports.handler = async (event, context) => event;\n", 0o644)]
        fgs.create("cold-custom", "Custom", "bootstrap", boot)
        fgs.create("cold-python", "Python3.10", "index.handler", py)
        fgs.create("cold-node", "Node.js20.15", "index.handler", js)
        fgs.create("cold-http", "http", "bootstrap", boot, {"BENCH_MODE": "http"})
        apig_event = json.dumps({"httpMethod": "POST", "path": "/", "headers": {
            "content-type": "application/json"}, "queryStringParameters": {},
            "body": base64.b64encode(EVENT).decode(), "isBase64Encoded": True}).encode()
        cold_fns = [("cold-custom", {}, EVENT), ("cold-python", {}, EVENT),
                    ("cold-node", {}, EVENT), ("cold-http", {"BENCH_MODE": "http"}, apig_event)]
        langs = language_functions(tmp) if "cold" in only else []
        for name, rt, handler, files in langs:
            fgs.create(name, rt, handler, files)
            cold_fns.append((name, {}, EVENT))
        if "cold" in only:
            settle()
            cold_starts(res, fgs, "pre-warmed sandboxes", cold_fns, samples)
            warm_latency(res, fgs, [f for f in cold_fns if f[0] != "cold-http"],
                         20 if quick else 200)
        fgs.stop()
        if not only & {"cold", "memory"}:
            raise Done

        if "cold" in only:
            # Pre-warmed sandboxes without pre-started interpreters (before issue 19), in the
            # same run, for the side-by-side.
            fgs = Fgs(a.fgs, tmp, "noprestart", 2, ["--prestart", "python=0,nodejs=0"])
            fgs.create("cold-python", "Python3.10", "index.handler", py)
            fgs.create("cold-node", "Node.js20.15", "index.handler", js)
            settle()
            cold_starts(res, fgs, "pre-warmed sandboxes, no pre-started interpreters",
                        [f for f in cold_fns if f[0] in ("cold-python", "cold-node")], samples)
            fgs.stop()

        # fgs without pre-warmed sandboxes (nor pre-started interpreters): cold starts, then
        # memory.
        fgs = Fgs(a.fgs, tmp, "noprewarm", 0, ["--prestart", "python=0,nodejs=0"])
        for name, rt, handler, files, ud in [
                ("cold-custom", "Custom", "bootstrap", boot, None),
                ("cold-python", "Python3.10", "index.handler", py, None),
                ("cold-node", "Node.js20.15", "index.handler", js, None),
                ("cold-http", "http", "bootstrap", boot, {"BENCH_MODE": "http"})] + [
                    (n, rt, h, f, None) for n, rt, h, f in langs]:
            fgs.create(name, rt, handler, files, ud)
        if "cold" in only:
            settle()
            cold_starts(res, fgs, "no pre-warm", cold_fns, samples)
        if "memory" in only:
            fgs.create("echo", "Custom", "bootstrap", boot)
            memory(res, fgs, a.memory_instances or (5 if quick else 100))
        fgs.stop()
    except Done:
        pass
    finally:
        for p in started:
            if p.poll() is None:
                p.terminate()
                p.wait()
        for f in [x for x in locals().values() if isinstance(x, Fgs)]:
            f.stop()
        if os.environ.get("FGS_BENCH_KEEP"):
            print(f"kept {tmp} (fgs logs in */fgs.log)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    report(res)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"meta": meta, "results": res}, f, indent=1)
    print(f"\nJSON: {a.out}")


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def report(res):
    def find(name, c):
        return next((r for r in res if r["scenario"] == name and r.get("conns") == c), None)

    # cpu us/call: the server's own (fgs, the relay, the peer); rt: its runtime processes';
    # busy: the whole machine's, wrk and the kernel's softirq included.
    print(f"\n{'scenario':<44}{'conns':>6}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}"
          f"{'cpu us/call':>12}{'rt us/call':>11}{'busy us/call':>13}{'peak RSS MB':>12}"
          f"{'p50 xfloor':>11}{'req/s xfloor':>13}{'req/s xFF':>10}")
    for r in res:
        if r["scenario"] in ("extension cost", "tracing cost"):
            continue
        fl = find("floor", r.get("conns"))
        ff = find("functions-framework", r.get("conns"))
        ratios = ["", "", ""]
        if r.get("rps") and r.get("p50_ms") and not r["scenario"].startswith(("floor", "cold")):
            if fl:
                ratios[0] = f"{r['p50_ms'] / fl['p50_ms']:.1f}x"
                ratios[1] = f"{r['rps'] / fl['rps']:.2f}x"
            if ff:
                ratios[2] = f"{r['rps'] / ff['rps']:.2f}x"
        print(f"{r['scenario'][:44]:<44}{fmt(r.get('conns'), 'd'):>6}"
              f"{fmt(r.get('p50_ms'), '.3f'):>9}{fmt(r.get('p99_ms'), '.3f'):>9}"
              f"{fmt(r.get('rps'), '.0f'):>9}{fmt(r.get('cpu_us'), '.1f'):>12}"
              f"{fmt(r.get('runtimes_cpu_us'), '.1f'):>11}"
              f"{fmt(r.get('machine_busy_us'), '.1f'):>13}"
              f"{fmt(r.get('rss_mb'), '.1f'):>12}{ratios[0]:>11}{ratios[1]:>13}{ratios[2]:>10}")
    for r in res:
        if r["scenario"] == "extension cost":
            for n, us in r["per_extension_us"].items():
                print(f"each of {n} extension(s) adds {us:.0f} us p50 (median of "
                      f"{r['rounds']} paired rounds)")
    for r in res:
        if r["scenario"] == "tracing cost":
            print(f"tracing adds {r['p50_us']:.0f} us p50 and {r['cpu_us']:.1f} us of fgs cpu per "
                  f"warm call (median of {r['rounds']} paired rounds); the sink got "
                  f"{r['spans_received']} invocation spans ({r['traced_calls_measured']} traced "
                  f"calls measured, warm-ups besides)")
    for r in res:
        if r["scenario"].startswith("memory"):
            beyond = (r["fgs_kb_per_instance"] + r["other_processes_kb_per_instance"]
                      + r["kernel_kb_per_instance"])
            print(f"memory: fgs {r['fgs_rss_before_mb']:.1f} MB -> {r['fgs_rss_after_mb']:.1f} MB"
                  f" with {r['instances']} idle instances (egress {r['egress']}, up in "
                  f"{r['up_s']:.0f} s) = {r['fgs_kb_per_instance']:.0f} KB of"
                  f" fgs per instance; other new processes "
                  f"{r['other_processes_kb_per_instance']:.0f} KB per instance "
                  f"{json.dumps(r['new_processes'])}; kernel "
                  f"{r['kernel_kb_per_instance']:.0f} KB per instance; beyond the runtime "
                  f"{beyond:.0f} KB per instance")
        if r["scenario"] == "cluster forwarding":
            print(f"cluster forwarding (1 conn, max_instance_num 1, its instance on node 0): p50 "
                  f"{r['local_p50_ms']:.3f} ms on node 0, {r['forwarded_p50_ms']:.3f} ms through "
                  f"node 1 (+{r['added_p50_ms']:.3f} ms, median of {r['rounds']} paired rounds); "
                  f"p99 {r['local_p99_ms']:.3f} / {r['forwarded_p99_ms']:.3f} ms; node 1's cpu "
                  f"{r['forwarding_node_cpu_us_per_call']:.1f} us per forwarded call; node 0 ran "
                  f"{r['ran_on_node0']:.0f} calls, node 1 {r['ran_on_node1']:.0f}")
        elif r["scenario"].startswith("cluster"):
            print(f"{r['scenario']}: async {r['async_succeeded']}/{r['async_events']} SUCCESS "
                  f"({r['async_per_s']:.0f}/s, {r['async_failed']} failed, "
                  f"{r['async_refused']} refused); a code update answered on the last node, "
                  f"new code answering on node 0 {r['update_followed_ms']:.0f} ms later "
                  f"(median)")
        if r["scenario"].startswith("async"):
            print(f"async: {r['succeeded']}/{r['events']} SUCCESS, {r['failed']} failed, "
                  f"{r['submit_errors']} refused; submitted in {r['submit_s']:.2f} s")
    bad = [r["scenario"] for r in res if r.get("errors")]
    if bad:
        print(f"ERRORS in: {', '.join(bad)}")


if __name__ == "__main__":
    main()
