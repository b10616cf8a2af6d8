//! The bench's relay floor (bench/README.md, "The protocol's floor"): what the invocation
//! protocol itself costs on this machine, with none of fgs's own work around it.
//!
//! `relay_floor --runtime BIN [--runtimes 64] [--threads 0] [--poll-window-us 50]
//!  [--listen 127.0.0.1:0] [--no-batch]`
//!
//! A client's `POST` (any path) on `--listen` is relayed to an idle runtime as its next event,
//! the runtime's `POST /v1/runtime/invocation/response/{id}` is answered `202`, and the client
//! gets `200` with the runtime's body: the three HTTP/1.1 exchanges over loopback TCP of a warm
//! fgs invocation, and nothing else (no authentication, routing, function lookup, log, memory
//! peak, sandbox or metrics). `--runtimes` processes of `BIN` (bench/echo, its Custom-runtime
//! mode) are started with `RUNTIME_API_ADDR` naming a listener of their own, each taking one
//! event at a time (fgs's concurrency 1), under `SCHED_BATCH` as fgs's sandbox puts its
//! runtimes (`chrt -b 0`; `--no-batch`: the default policy).
//!
//! It is served as `fgs serve` serves, on fgs's own shards (`fgs_pool::shard`) and as
//! crates/fgs/src/listen.rs serves connections: one current-thread tokio runtime per shard (`--threads`, 0: one per cpu), connections
//! accepted on shard 0 and spread over the shards in turn, runtime `i`'s Runtime API served on
//! shard `i % threads`, a caller given an idle runtime of its own shard first, and each shard
//! polling for `--poll-window-us` after its work before it sleeps. Prints
//! `listening on http://ADDR` once it serves; stops its runtimes on SIGTERM or SIGINT.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fgs_pool::shard;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, Semaphore};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Body = Full<Bytes>;

struct Args {
    runtime: String,
    runtimes: usize,
    threads: usize,
    poll_window: Duration,
    listen: SocketAddr,
    batch: bool,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        runtime: String::new(),
        runtimes: 64,
        threads: 0,
        poll_window: Duration::from_micros(50),
        listen: "127.0.0.1:0".parse()?,
        batch: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-batch" {
            a.batch = false;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runtime" => a.runtime = value,
            "--runtimes" => a.runtimes = value.parse()?,
            "--threads" => a.threads = value.parse()?,
            "--poll-window-us" => a.poll_window = Duration::from_micros(value.parse()?),
            "--listen" => a.listen = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if a.runtime.is_empty() || a.runtimes == 0 {
        return Err("--runtime BIN is required and --runtimes at least 1".into());
    }
    if !a.listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".into());
    }
    if a.threads == 0 {
        a.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    Ok(a)
}

fn main() {
    if let Err(e) = args().and_then(run) {
        eprintln!("relay_floor: {e}");
        std::process::exit(1);
    }
}

/// Serves the relay on fgs's own shards ([`shard::run`]), with `--threads` and the poll window.
fn run(a: Args) -> Result<(), Error> {
    shard::run(a.threads, a.poll_window, relay(&a))?
}

// ---------------------------------------------------------------- runtimes

/// An event for a runtime and where its answer goes.
struct Pending {
    body: Bytes,
    reply: oneshot::Sender<Bytes>,
}

/// One runtime process: its event queue, served on `shard`.
struct Instance {
    shard: usize,
    events: mpsc::Sender<Pending>,
}

/// One runtime's Runtime API: the queue it takes events from and the event it holds.
struct Api {
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    inflight: Mutex<Option<(String, oneshot::Sender<Bytes>)>>,
}

/// The idle runtimes, per shard; `free` counts them.
struct Pool {
    idle: Vec<Mutex<Vec<Arc<Instance>>>>,
    free: Semaphore,
}

impl Pool {
    /// An idle runtime, one of the caller's shard first.
    async fn acquire(self: &Arc<Self>) -> Lease {
        self.free
            .acquire()
            .await
            .expect("the pool's semaphore is never closed")
            .forget();
        let here = shard::current();
        let n = self.idle.len();
        let instance = (0..n)
            .find_map(|k| lock(&self.idle[(here + k) % n]).pop())
            .expect("a permit stands for an idle runtime");
        Lease {
            pool: Arc::clone(self),
            instance: Some(instance),
        }
    }
}

/// A runtime taken from the pool; it goes back when the call ends, also when the client's
/// connection closed in the middle of it (the runtime's answer is then dropped).
struct Lease {
    pool: Arc<Pool>,
    instance: Option<Arc<Instance>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(i) = self.instance.take() {
            lock(&self.pool.idle[i.shard]).push(i);
            self.pool.free.add_permits(1);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts runtime `i`: its Runtime API listener on its shard, then the process.
fn start_runtime(a: &Args, i: usize) -> Result<(Arc<Instance>, Child), Error> {
    let shard = i % a.threads;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(1);
    let api = Arc::new(Api {
        queue: tokio::sync::Mutex::new(rx),
        inflight: Mutex::new(None),
    });
    shard::spawn_on(shard, serve_api(listener, api));
    let mut cmd = if a.batch {
        let mut c = Command::new("chrt");
        c.args(["-b", "0", &a.runtime]);
        c
    } else {
        Command::new(&a.runtime)
    };
    let child = cmd
        .env("RUNTIME_API_ADDR", addr.to_string())
        .env("RUNTIME_API", addr.to_string())
        .spawn()?;
    Ok((Arc::new(Instance { shard, events: tx }), child))
}

async fn serve_api(listener: std::net::TcpListener, api: Arc<Api>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let svc = service_fn(move |req| runtime_api(Arc::clone(&api), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const ACCEPTED_BODY: &[u8] = br#"{"status":"OK"}"#;
// The event's headers as fgs sends them (crates/instance/src/runtime_api.rs), so that the
// bytes on the wire are the same.
const X_CFF_REQUEST_ID: HeaderName = HeaderName::from_static("x-cff-request-id");
const X_CFF_INVOKE_TYPE: HeaderName = HeaderName::from_static("x-cff-invoke-type");
const X_CFF_TIMEOUT_MS: HeaderName = HeaderName::from_static("x-cff-timeout-ms");
const X_CFF_FUNCTION_URN: HeaderName = HeaderName::from_static("x-cff-function-urn");
const X_CFF_ALIAS: HeaderName = HeaderName::from_static("x-cff-alias");
const URN: HeaderValue = HeaderValue::from_static(
    "urn:fss:local:bench0000000000000000000000000000:function:default:echo:latest",
);

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, JSON);
    r
}

async fn runtime_api(api: Arc<Api>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if req.method() == Method::GET && path == "/v1/runtime/invocation/request" {
        let Some(p) = api.queue.lock().await.recv().await else {
            return Ok(reply(StatusCode::GONE, Bytes::new()));
        };
        // A version 7 UUID's shape: 36 characters, as fgs's request ids.
        let id = format!(
            "00000000-0000-7000-8000-{:012x}",
            REQUEST_IDS.fetch_add(1, Ordering::Relaxed)
        );
        let mut r = reply(StatusCode::OK, p.body);
        let h = r.headers_mut();
        h.insert(
            X_CFF_REQUEST_ID,
            HeaderValue::from_str(&id).expect("a request id is a valid header value"),
        );
        h.insert(X_CFF_INVOKE_TYPE, HeaderValue::from_static("sync"));
        h.insert(X_CFF_TIMEOUT_MS, HeaderValue::from_static("30000"));
        h.insert(X_CFF_FUNCTION_URN, URN);
        h.insert(X_CFF_ALIAS, HeaderValue::from_static(""));
        *lock(&api.inflight) = Some((id, p.reply));
        return Ok(r);
    }
    if req.method() == Method::POST {
        if let Some(id) = path.strip_prefix("/v1/runtime/invocation/response/") {
            let id = id.to_string();
            let Ok(body) = req.into_body().collect().await else {
                return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
            };
            let held = lock(&api.inflight).take_if(|(held, _)| *held == id);
            return Ok(match held {
                Some((_, tx)) => {
                    let _ = tx.send(body.to_bytes());
                    reply(StatusCode::ACCEPTED, ACCEPTED_BODY)
                }
                None => reply(StatusCode::NOT_FOUND, Bytes::new()),
            });
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, Bytes::new()))
}

// ---------------------------------------------------------------- the client side

async fn invoke(pool: Arc<Pool>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let Ok(body) = req.into_body().collect().await else {
        return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
    };
    let lease = pool.acquire().await;
    let (tx, rx) = oneshot::channel();
    let sent = lease
        .instance
        .as_ref()
        .expect("a lease holds its runtime until dropped")
        .events
        .send(Pending {
            body: body.to_bytes(),
            reply: tx,
        })
        .await;
    let answer = match sent {
        Ok(()) => rx.await.ok(),
        Err(_) => None,
    };
    drop(lease);
    Ok(match answer {
        Some(b) => reply(StatusCode::OK, b),
        None => reply(StatusCode::BAD_GATEWAY, Bytes::new()),
    })
}

async fn relay(a: &Args) -> Result<(), Error> {
    let mut idle: Vec<Vec<Arc<Instance>>> = (0..a.threads).map(|_| Vec::new()).collect();
    let mut children = Vec::new();
    for i in 0..a.runtimes {
        let (inst, child) = start_runtime(a, i)?;
        idle[inst.shard].push(inst);
        children.push(child);
    }
    let pool = Arc::new(Pool {
        idle: idle.into_iter().map(Mutex::new).collect(),
        free: Semaphore::new(a.runtimes),
    });
    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let served = async {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            let pool = Arc::clone(&pool);
            // The connection moves to the next shard's runtime, where it stays.
            shard::spawn(async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    return;
                };
                let svc = service_fn(move |req| invoke(Arc::clone(&pool), req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
    tokio::select! {
        _ = served => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}
