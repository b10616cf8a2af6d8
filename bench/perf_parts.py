#!/usr/bin/env python3
"""bench/README.md "fgs's own work, by part": attribute `perf script -F comm,tid,ip,sym,dso --no-inline` samples (dwarf call graphs) to
parts of fgs / the relay; prints JSON of counts.   usage: bench/perf_parts.py SCRIPT.txt > counts.json

A sample goes to the first whole-stack part that has a frame anywhere in its stack (malloc
first: malloc under any part counts as malloc, its caller part kept apart), else to the part of
its innermost frame that names one (generic code, std/core/alloc/http/bytes/serde..., names
none and so counts for its caller)."""
import collections, json, re, sys

MALLOC = re.compile(r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free|_int_realloc|"
                    r"malloc_consolidate|sysmalloc|unlink_chunk|tcache_\w+|__libc_(malloc|free|"
                    r"calloc|realloc|memalign)|__GI___libc_\w+|_mid_memalign|_int_memalign|"
                    r"aligned_alloc|posix_memalign|arena_get2|__malloc_\w+|cfree@\S+)(\.\S+)?$")
WHOLE = [
    ("memory peak read", r"memory_peak|__x64_sys_pread64|ProcessHandle::usage|ProcessHandle::remember"),
    ("runtime's output capture (fgs_instance::output)", r"fgs_instance::output"),
    ("invocation log (observer, SQLite writer)", r"log_store|sqlite3|rusqlite|fgs_store::sqlite|logline|__x64_sys_pwrite64|__x64_sys_fsync|__x64_sys_fdatasync"),
    ("tracing spans/events", r"^tracing(_core|_subscriber)?::|tracing_core"),
    ("metrics and statistics", r"fgs_metrics|statistic|fgs_invoke::observe|fgs_store::stats|fgs_core::stats"),
]
INNER = [
    ("kernel: send (writev, loopback delivery, wake-up)", r"^(__x64_sys_writev|__x64_sys_sendto|__x64_sys_sendmsg|__x64_sys_write|do_writev|__GI___writev|__writev|writev|__libc_write|__libc_send|__send|sendto|sendmsg|__libc_sendmsg)$"),
    ("kernel: recv", r"^(__x64_sys_recvfrom|__x64_sys_read|__x64_sys_readv|__x64_sys_recvmsg|__libc_recv|__recv|recv|recvfrom|__libc_recvfrom|__libc_read|__read|read|readv|__libc_recvmsg)$"),
    ("kernel: epoll_wait/ctl", r"^__x64_sys_epoll_|^epoll_(wait|ctl|pwait)$"),
    ("kernel: sched_yield", r"^__x64_sys_sched_yield$|^_*sched_yield$"),
    ("kernel: futex", r"^__x64_sys_futex$|^syscall$|futex"),
    ("kernel: other syscalls", r"^__x64_sys_"),
    ("auth", r"fgs_api::auth|fgs_api::authn|^hmac|^sha2::"),
    ("Runtime API handlers (fgs_instance::runtime_api)", r"fgs_instance::runtime_api"),
    ("relay's handlers (relay_floor)", r"relay_floor::"),
    ("pool", r"fgs_pool::"),
    ("invoker / resolution", r"fgs_invoke::"),
    ("instance, sandbox (other)", r"fgs_instance::|fgs_sandbox::"),
    ("invocation handler, response building", r"fgs_api::invocation|fgs_api::wire|fgs_api::request|fgs_api::error"),
    ("axum routing and middleware, fgs_api other", r"^axum|^tower|fgs_api::|^matchit"),
    ("hyper (HTTP/1 parse, encode, dispatch)", r"^hyper|^httparse"),
    ("fgs: poll window, shards, listen", r"^fgs::"),
    ("tokio runtime, mio", r"^tokio::runtime::(scheduler|task|io::driver|time|park|context|runtime|blocking)|^mio::"),
]
WHOLE = [(b, re.compile(r)) for b, r in WHOLE]
INNER = [(b, re.compile(r)) for b, r in INNER]
OWN = re.compile(r"^(fgs\w*|relay_floor|axum|hyper|tower)")

def samples(f):
    comm, frames = None, []
    for line in f:
        line = line.rstrip("\n")
        if not line:
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
        elif not line.startswith((" ", "\t")):
            comm = line.split()[0]
        else:
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                m = re.match(r"(.*) \(([^()]*)\)$", parts[1])
                sym, dso = (m.group(1), m.group(2)) if m else (parts[1], "")
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", sym), dso))
    if comm is not None:
        yield comm, frames

def strip(sym):
    sym = re.sub(r"::h[0-9a-f]{16}$", "", sym)
    sym = re.sub(r"\{\{closure\}\}|::\{\{closure\}\}", "", sym)
    sym = re.sub(r"^<(.*) as [^<>]*(<[^<>]*>)?[^<>]*>", r"\1", sym)   # <X as Trait>::f -> X::f
    sym = re.sub(r"^<(.*)>", r"\1", sym)
    sym = re.sub(r"^&(mut )?", "", sym)
    return sym

def classify(syms, frames):
    for b, rx in WHOLE:
        if any(rx.search(s) for s in syms):
            return b
    for s in syms:
        for b, rx in INNER:
            if rx.search(s):
                return b
    return "other kernel (irq, page faults, scheduler)" if frames and "kernel" in frames[0][1] \
        else "other user (std, libc, generic)"

counts, kernel = collections.Counter(), collections.Counter()
paths = collections.defaultdict(collections.Counter)
malloc_by, threads = collections.Counter(), collections.Counter()
total = 0
for comm, frames in samples(open(sys.argv[1], errors="replace")):
    total += 1
    threads[comm] += 1
    syms = [strip(s) for s, _ in frames]
    if any(MALLOC.match(s) for s, _ in frames):
        bucket = "malloc/free (libc)"
        rest = [t for (s, _), t in zip(frames, syms) if not MALLOC.match(s)]
        malloc_by[classify(rest, [])] += 1
    else:
        bucket = classify(syms, frames)
    counts[bucket] += 1
    if frames and "kernel" in frames[0][1]:
        kernel[bucket] += 1
    own = [s for s in syms if OWN.match(s)][:3]
    paths[bucket][" <- ".join([syms[0][:50] if syms else "?"] + [x[:80] for x in own])] += 1
json.dump({"total": total, "counts": counts, "kernel": kernel, "malloc_by": malloc_by,
           "threads": threads,
           "paths": {b: p.most_common(5) for b, p in paths.items()}}, sys.stdout, indent=1)
