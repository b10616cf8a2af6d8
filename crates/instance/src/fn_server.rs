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
/// How often the start polls for the server; a Node.js or Python server binds within ~50-150 ms.
const POLL: Duration = Duration::from_millis(10);

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
    loop {
        let pending = api.queue.lock().await.recv().await;
        let Some(Pending { request, reply, .. }) = pending else {
            return;
        };
        api.output.begin(&request.request_id);
        let result = step.call(&process, &mut conn, &request).await;
        let _ = reply.send(match result {
            Ok(b) => RuntimeReply::Response(b),
            Err(e) => RuntimeReply::Error(e),
        });
    }
}

/// The first connection to the server, once it accepts.
async fn listening(process: &ProcessHandle) -> Conn {
    loop {
        match connect(process).await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

pub(crate) async fn connect(process: &ProcessHandle) -> std::io::Result<Conn> {
    let p = process.clone();
    // The sandbox makes the socket inside the instance's network namespace, which blocks.
    let std_stream = tokio::task::spawn_blocking(move || p.connect(PORT, CONNECT_TIMEOUT))
        .await
        .map_err(std::io::Error::other)??;
    std_stream.set_nonblocking(true)?;
    let _ = std_stream.set_nodelay(true);
    let stream = tokio::net::TcpStream::from_std(std_stream)?;
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
