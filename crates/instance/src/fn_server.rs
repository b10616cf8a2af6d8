//! A function whose own process serves HTTP on 127.0.0.1:8000 inside the instance: an HTTP
//! function ([`crate::http_fn`], SPEC.md 4) or an image function ([`crate::image_fn`]). fgs is
//! that server's client: it waits until the port accepts (the instance is then ready), and feeds
//! it the instance's events, `concurrent_num` at once, each worker on its own kept-alive
//! connection. What one event becomes on the wire is the function kind's [`Step`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::FunctionError;
use fgs_sandbox::ProcessHandle;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::config::Request;
use crate::runtime_api::{ApiState, Pending, RuntimeReply, StartState};

/// SPEC.md 4: the port the function's server listens on.
pub(crate) const PORT: u16 = 8000;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// The wait after the first refused connection. A small native server listens within a few
/// milliseconds of its exec, often before the first attempt; a short first wait catches it
/// soon after, where a fixed 10 ms poll cost a cold start up to 11 ms (bench/README.md).
const FIRST_RETRY: Duration = Duration::from_micros(500);
/// The longest wait between attempts: a Node.js or Python server binds within ~50-150 ms, and
/// each attempt costs a thread hop into the instance's network namespace (~0.2 ms), so the
/// waits grow to this and stay there.
const MAX_RETRY: Duration = Duration::from_millis(4);

pub(crate) type Conn = SendRequest<Full<Bytes>>;

/// What a function kind does with its server: an optional step before the instance is ready,
/// and the exchange that turns one event into its result.
pub(crate) trait Step: Send + Sync + 'static {
    /// Runs once the server accepts and before the instance is ready, on the first connection
    /// (an image's initializer); an error fails the start with it.
    fn prepare(
        &self,
        _process: &ProcessHandle,
        _conn: &mut Option<Conn>,
    ) -> impl Future<Output = Result<(), FunctionError>> + Send {
        async { Ok(()) }
    }

    /// One event's exchange with the server, on the worker's connection (a new one when it is
    /// `None` or was closed).
    fn call(
        &self,
        process: &ProcessHandle,
        conn: &mut Option<Conn>,
        request: &Request,
    ) -> impl Future<Output = Result<Bytes, FunctionError>> + Send;
}

/// Serves the instance's events until its queue closes: waits for the server, runs the step's
/// `prepare`, marks the instance ready and starts the workers. `Instance::start` owns the
/// deadline and aborts this when it passes or the process exits.
pub(crate) async fn run<S: Step>(
    api: Arc<ApiState>,
    process: ProcessHandle,
    concurrency: usize,
    step: S,
) {
    let mut first = Some(listening(&process).await);
    if let Err(e) = step.prepare(&process, &mut first).await {
        api.start.send_replace(StartState::InitFailed(e));
        return;
    }
    api.start.send_if_modified(|s| {
        if *s == StartState::Starting {
            *s = StartState::Ready;
            true
        } else {
            false
        }
    });
    let step = Arc::new(step);
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        workers.push(tokio::spawn(worker(
            Arc::clone(&api),
            process.clone(),
            first.take(),
            Arc::clone(&step),
        )));
    }
    for w in workers {
        let _ = w.await;
    }
}

async fn worker<S: Step>(
    api: Arc<ApiState>,
    process: ProcessHandle,
    mut conn: Option<Conn>,
    step: Arc<S>,
) {
    while let Some((request, reply)) = next_request(&api).await {
        let result = step.call(&process, &mut conn, &request).await;
        let _ = reply.send(match result {
            Ok(b) => RuntimeReply::Response(b),
            Err(e) => RuntimeReply::Error(e),
        });
    }
}

/// The next event for a driver that calls its runtime itself (HTTP, Go, image functions), with
/// the request id set back as the string its call carries and the output attributed to it;
/// `None` once the instance is ending.
pub(crate) async fn next_request(
    api: &ApiState,
) -> Option<(
    crate::config::Request,
    tokio::sync::oneshot::Sender<RuntimeReply>,
)> {
    let Pending {
        id,
        mut request,
        reply,
        ..
    } = api.queue.lock().await.recv().await?;
    request.request_id = String::from_utf8_lossy(&id).into_owned();
    api.output.begin(id);
    Some((request, reply))
}

/// The first connection to the server, once it accepts: tried at once, then again after each
/// wait of [`Backoff`] (a refused connection is answered at once, so a try costs no waiting).
async fn listening(process: &ProcessHandle) -> Conn {
    let started = tokio::time::Instant::now();
    let (conn, attempts) = retry(Backoff::default(), || connect(process)).await;
    tracing::debug!(
        attempts,
        waited_us = started.elapsed().as_micros() as u64,
        "the function's server accepts on port {PORT}"
    );
    conn
}

/// The waits between connection attempts: [`FIRST_RETRY`], doubling up to [`MAX_RETRY`].
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST_RETRY }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (wait * 2).min(MAX_RETRY);
        Some(wait)
    }
}

/// Runs `attempt` until it succeeds, sleeping the next of `waits` after each failure; returns
/// the success and how many attempts it took.
pub(crate) async fn retry<T, E, F, Fut>(mut waits: Backoff, mut attempt: F) -> (T, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempts = 1;
    loop {
        if let Ok(t) = attempt().await {
            return (t, attempts);
        }
        let wait = waits.next().unwrap_or(MAX_RETRY);
        tokio::time::sleep(wait).await;
        attempts += 1;
    }
}

/// A connection to `port` of the instance's 127.0.0.1, for tokio: how fgs reaches a server the
/// function runs (an HTTP function's, an image's, a Go function's RPC server).
pub(crate) async fn connect_tcp(
    process: &ProcessHandle,
    port: u16,
) -> std::io::Result<tokio::net::TcpStream> {
    let p = process.clone();
    // The sandbox makes the socket inside the instance's network namespace, which blocks.
    let std_stream = tokio::task::spawn_blocking(move || p.connect(port, CONNECT_TIMEOUT))
        .await
        .map_err(std::io::Error::other)??;
    std_stream.set_nonblocking(true)?;
    let _ = std_stream.set_nodelay(true);
    tokio::net::TcpStream::from_std(std_stream)
}

pub(crate) async fn connect(process: &ProcessHandle) -> std::io::Result<Conn> {
    let stream = connect_tcp(process, PORT).await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

pub(crate) fn gone(why: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(
        codes::RUNTIME_EXITED,
        "RuntimeExited",
        format!("the function's HTTP server on 127.0.0.1:{PORT} failed: {why}"),
    )
}

/// Sends `req` on the kept connection (or a new one) and returns the response's head.
pub(crate) async fn exchange(
    process: &ProcessHandle,
    conn: &mut Option<Conn>,
    req: Outgoing,
) -> Result<http::Response<hyper::body::Incoming>, FunctionError> {
    // A kept-alive connection the server closed is retried once on a fresh one; a request
    // that failed on a fresh connection is the server's failure.
    let mut req = Some(req);
    loop {
        let (mut c, reused) = match conn.take() {
            Some(c) => (c, true),
            None => (connect(process).await.map_err(gone)?, false),
        };
        if c.ready().await.is_err() {
            if reused {
                continue;
            }
            return Err(gone("the connection closed"));
        }
        let r = req.take().expect("a request is sent once");
        let retry = r.clone_for_retry();
        match c.send_request(r.into_request()).await {
            Ok(resp) => {
                *conn = Some(c);
                return Ok(resp);
            }
            Err(e) if reused && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) => {
                req = Some(retry);
            }
            Err(e) => return Err(gone(e)),
        }
    }
}

/// An HTTP request that can be built again for a retry.
pub(crate) struct Outgoing {
    pub method: http::Method,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Outgoing {
    fn clone_for_retry(&self) -> Outgoing {
        Outgoing {
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }

    fn into_request(self) -> http::Request<Full<Bytes>> {
        let mut b = http::Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body))
            .expect("names and values were checked when they were collected")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1000.0)
    }

    #[test]
    fn the_waits_double_from_half_a_millisecond_up_to_four() {
        let waits: Vec<Duration> = Backoff::default().take(7).collect();
        assert_eq!(
            waits,
            [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0].map(ms).to_vec(),
            "{waits:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refused_attempts_are_retried_after_each_wait() {
        let start = tokio::time::Instant::now();
        let at = RefCell::new(Vec::new());
        let (value, attempts) = retry(Backoff::default(), || {
            at.borrow_mut().push(start.elapsed());
            let n = at.borrow().len();
            async move {
                if n < 7 {
                    Err("refused")
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!((value, attempts), (7, 7));
        // Each attempt comes one wait after the one before: 0.5, 1, 2, 4, 4, 4 ms. Tokio's
        // timer fires on millisecond ticks, so a wait may end up to 1 ms late, never early.
        let at = at.into_inner();
        let expected = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5].map(ms);
        for (got, want) in at.iter().zip(expected) {
            assert!(
                *got >= want && *got <= want + ms(1.0),
                "attempts at {at:?}, expected about {expected:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_already_listening_costs_no_wait() {
        let start = tokio::time::Instant::now();
        let (_, attempts) = retry(Backoff::default(), || async { Ok::<_, ()>(()) }).await;
        assert_eq!(attempts, 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
