"""The `image` group of the bench (bench/README.md, docs/images.md): image functions. A
throwaway docker-registry and an fgs allowed to speak plain HTTP to it; the test image of
tests/sdk/oci.py (a static C server) with a 5 MB incompressible layer. Measured: the first pull
and unpack of that image (the create call that pulls it), cold starts of an image function whose
image is unpacked already (pre-warmed sandboxes), and warm sequential calls of it next to the
same server run as a code HTTP function. Skipped, saying why, without root, gcc, skopeo or
docker-registry.
"""

import os
import sys
import time

# The running bench.py (its token, project and helpers), not a second copy of it.
import __main__ as bench

sys.path.insert(0, os.path.join(bench.ROOT, "tests", "sdk"))
import oci  # noqa: E402 - found through the path above


def run(res, a, tmp, samples, quick):
    why = oci.missing()
    if why:
        print(f"image group skipped: {why}", file=sys.stderr)
        return
    print("fgs image functions", file=sys.stderr)
    reg = oci.Registry()
    fgs = None
    try:
        srv = oci.server_binary(tmp)
        noise = os.urandom(5 << 20)
        layers = oci.base_layers(srv, "bench") + [oci.layer([("noise", noise, 0o644)])]
        image = oci.push(reg.addr, layers, "bench/image", "v1")
        fgs = bench.Fgs(a.fgs, tmp, "image", 2, extra=("--insecure-registry", reg.addr))
        body = {"func_name": "cold-image", "package": "default", "runtime": "Custom Image",
                "handler": "-", "memory_size": 128, "timeout": 30,
                "custom_image": {"enabled": True, "image": image}}
        t0 = time.perf_counter()
        fgs.api("POST", "/functions", body)
        pull_ms = (time.perf_counter() - t0) * 1000
        res.append({"scenario": "image: first pull and unpack of 6 MB (the create call)",
                    "conns": 1, "samples": 1, "p50_ms": pull_ms, "p99_ms": None,
                    "min_ms": pull_ms, "rps": None, "cpu_us": None, "rss_mb": None})
        print(f"  image first pull and unpack: {pull_ms:.1f} ms", file=sys.stderr)
        fgs.create("warm-http-srv", "http", "bootstrap", [("bootstrap", srv, 0o755)])
        bench.settle()
        bench.cold_starts(res, fgs, "pre-warmed sandboxes, image unpacked",
                          [("cold-image", {}, bench.EVENT)], samples)
        bench.warm_latency(res, fgs, [("cold-image", {}, bench.EVENT),
                                      ("warm-http-srv", {}, bench.EVENT)],
                           20 if quick else 200)
    finally:
        if fgs:
            fgs.stop()
        reg.stop()
