"""The `queue` group of the bench (bench/README.md, docs/cluster.md): the two engines' queue
primitives on this machine, without fgs's HTTP or instances around them. The measurement is
crates/nats/examples/queue_bench.rs (bench/run builds it): fgs's PostgreSQL async queue through
its store trait (accept, claim under a lease, settle) against a JetStream work-queue stream
(publish with ack, pull consumer, ack; ack wait and max deliveries set), the same events,
payload and concurrency, on the throwaway PostgreSQL and NATS of the cluster group. Rounds
alternate the engines' order; the row per engine is the median over rounds.
"""

import json
import os
import statistics
import subprocess
import sys

import cluster

ROUNDS = 3


def run(res, a, events):
    if not (a.postgres and a.nats and a.queue_bench):
        print("queue: skipped (no --postgres, --nats and --queue-bench)", file=sys.stderr)
        return
    got = {"postgres": [], "jetstream": []}
    for r in range(ROUNDS):
        db = f"fgs_bench_queue_{os.getpid()}_{r}"
        cluster.psql(a.postgres, f"DROP DATABASE IF EXISTS {db}")
        cluster.psql(a.postgres, f"CREATE DATABASE {db}")
        try:
            out = subprocess.run(
                [a.queue_bench, "--store", cluster.with_db(a.postgres, db), "--nats", a.nats,
                 "--events", str(events), "--producers", "64", "--consumers", "3",
                 "--batch", "64", "--payload", "64"],
                check=True, capture_output=True, text=True).stdout
        finally:
            cluster.psql(a.postgres, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        for line in out.splitlines():
            row = json.loads(line)
            got[row["engine"]].append(row)
    for engine, rows in got.items():
        acc = statistics.median(r["accepted_per_s"] for r in rows)
        done = statistics.median(r["completed_per_s"] for r in rows)
        print(f"  {engine}: {events} events, accepted {acc:.0f}/s, completed {done:.0f}/s "
              f"(median of {len(rows)})", file=sys.stderr)
        res.append({"scenario": f"queue {engine}", "conns": 64, "p50_ms": None,
                    "p99_ms": None, "rps": done, "cpu_us": None, "rss_mb": None,
                    "queue_events": events, "queue_accepted_per_s": acc,
                    "queue_completed_per_s": done, "queue_rounds": rows})
