"""The `tracing` group of the bench (bench/README.md): what tracing costs a warm call. One fgs
started with `--otlp-endpoint` naming a local OTLP/HTTP sink that this process runs; two
functions with the same code (bench/echo), `echo` with tracing off and `traced` with tracing
on; at 1 connection, one after the other, in paired rounds (the machine's speed drifts more
between scenario groups than within a round). The cost is the median over the rounds of the p50
and of fgs's CPU time per call, traced less untraced. The sink answers every POST at once and
counts the invocation spans it got (each carries one `faas.invocation_id` key), so the row also
says whether export kept up with the calls.
"""

import http.server
import statistics
import sys
import threading

# The running bench.py (its token, project and helpers), not a second copy of it.
import __main__ as bench


class Sink:
    """A local OTLP/HTTP collector: 200 to every POST, counting bodies, bytes and spans."""

    def __init__(self):
        lock = threading.Lock()
        counts = {"posts": 0, "bytes": 0, "spans": 0}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    counts["posts"] += 1
                    counts["bytes"] += len(body)
                    counts["spans"] += body.count(b"faas.invocation_id")
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.counts = counts
        self.lock = lock
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def run(res, a, tmp, echo, secs, rounds, store):
    sink = Sink()
    fgs = bench.Fgs(a.fgs, tmp, "tracing", 2, extra=[*store, "--otlp-endpoint", sink.url])
    try:
        boot = [("bootstrap", echo, 0o755)]
        for name in ("echo", "traced"):
            fgs.create(name, "Custom", "bootstrap", boot)
        fgs.api("PUT", "/functions/traced/tracing", {"tracing_ak": "AK", "tracing_sk": "SK"})
        token = {"X-Auth-Token": bench.TOKEN, "Content-Type": "application/json"}
        bench.settle()
        print("fgs tracing", file=sys.stderr)
        runs = {"echo": [], "traced": []}
        for _ in range(rounds):
            for fn in runs:
                r = bench.wrk(f"{fgs.base}/v2/{bench.PROJECT}/fgs/functions/{fn}/invocations", 1,
                              secs, token, [fgs.pid], tmp=tmp)
                r["cpu_us"] = r["cpu_us_per_call"][str(fgs.pid)]
                r["rss_mb"] = r["peak_rss_mb"][str(fgs.pid)]
                runs[fn].append(r)
        # Every traced call so far, warm-ups included (wrk counts only the measured ones), went
        # out by the time fgs stops: its shutdown sends the last batch.
        fgs.stop()
        calls = sum(r["requests"] for r in runs["traced"])
        got = sink.snapshot()
    finally:
        fgs.stop()
        sink.stop()
    p50 = [(t["p50_ms"] - e["p50_ms"]) * 1000 for e, t in zip(runs["echo"], runs["traced"])]
    cpu = [t["cpu_us"] - e["cpu_us"] for e, t in zip(runs["echo"], runs["traced"])]
    for fn, label in (("echo", "fgs sync, tracing off"),
                      ("traced", "fgs sync, tracing on (OTLP, local sink)")):
        mid = sorted(runs[fn], key=lambda r: r["p50_ms"])[len(runs[fn]) // 2]
        mid["scenario"] = label
        res.append(mid)
    cost = {"scenario": "tracing cost", "rounds": rounds,
            "p50_us": statistics.median(p50), "cpu_us": statistics.median(cpu),
            "p50_us_rounds": p50, "cpu_us_rounds": cpu,
            "p50_ms_runs": {fn: [r["p50_ms"] for r in rs] for fn, rs in runs.items()},
            "traced_calls_measured": calls, "spans_received": got["spans"],
            "posts": got["posts"], "bytes": got["bytes"],
            "p50_ms": None, "p99_ms": None, "rps": None, "rss_mb": None}
    res.append(cost)
    print(f"  tracing adds {cost['p50_us']:.0f} us p50 and {cost['cpu_us']:.1f} us of fgs cpu "
          f"per call (rounds: {', '.join(f'{d:.0f}' for d in p50)} us); the sink got "
          f"{got['spans']} invocation spans in {got['posts']} posts "
          f"({calls} traced calls measured, warm-ups not counted)", file=sys.stderr)
