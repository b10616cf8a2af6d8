//! The HTTP server loop: the API served over hyper's HTTP/1 with the connection limits
//! that keep slow or idle clients from starving everyone else (docs/security.md).
//!
//! `axum::serve` sets no header read timeout and accepts without bound, so one client holding
//! a few thousand silent sockets could exhaust the server's file descriptors. Here every
//! connection holds a permit of a semaphore (past `max_connections` new ones wait in the
//! kernel's backlog), and hyper closes a connection that takes longer than
//! `header_read_timeout` to send a request head, including an idle keep-alive connection
//! waiting for its next request. The body's read time is bounded by the API's authentication
//! layer (and the sync invocation's own path), which reads every body whole
//! ([`fgs_api::BodyReadTimeout`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fgs_api::Api;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Limits of the API's HTTP server; `fgs serve` flags.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ConnLimits {
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "FGS_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Time a client has to send a request's head (request line and headers), and the longest
    /// a keep-alive connection may stay idle between requests.
    #[arg(long, env = "FGS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body once its head is read.
    #[arg(long, env = "FGS_BODY_READ_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,
    /// Headers one request may carry; more is answered 431.
    #[arg(long, env = "FGS_MAX_HEADERS", default_value_t = 64)]
    pub max_headers: usize,
    /// Bytes of a request's head (request line and headers); more is answered 431.
    #[arg(long, env = "FGS_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
}

/// hyper parses up to 100 headers in a buffer on the stack and allocates one per request for
/// more (about 5% of its throughput, its documentation says): fgs's limit is checked above it
/// without that cost, unless `--max-headers` is set higher still.
const HYPER_INLINE_HEADERS: usize = 100;
/// hyper buffers a head up to this many times `--max-header-bytes` before it refuses it itself.
const HEAD_BYTES_FACTOR: usize = 2;

fn hyper_max_headers(limits: &ConnLimits) -> usize {
    limits
        .max_headers
        .saturating_add(1)
        .max(HYPER_INLINE_HEADERS)
}

/// The FSS answer to a request whose head is over `--max-headers` or `--max-header-bytes`
/// (431 `FSS.0431`), or `None` when it is within both.
fn head_refusal<B>(
    req: &hyper::Request<B>,
    limits: &ConnLimits,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let headers = req.headers();
    // As on the wire: `METHOD URI HTTP/1.1\r\n`, `name: value\r\n` each, `\r\n`.
    let bytes = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + 11
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 2;
    let message = if headers.len() > limits.max_headers {
        format!(
            "the request has {} headers, over the limit of {}",
            headers.len(),
            limits.max_headers
        )
    } else if bytes > limits.max_header_bytes {
        format!(
            "the request head is {bytes} bytes, over the limit of {}",
            limits.max_header_bytes
        )
    } else {
        return None;
    };
    let mut resp = fgs_api::error::ApiError::new(
        hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        fgs_api::error::code::HEAD_TOO_LARGE,
        message,
    )
    .into_response();
    // What follows such a head on the connection cannot be trusted to be a request.
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    Some(resp)
}

/// Serves `api` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    api: Api,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropping `stop_tx` tells connections to finish; each connection holds a `done_rx`.
    let (stop_tx, _) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => p.expect("connection semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let refusal = head_refusal(&req, &limits);
            let api = api.clone();
            async move {
                if let Some(refusal) = refusal {
                    return Ok::<_, Infallible>(refusal);
                }
                Ok::<_, Infallible>(api.serve(req, peer, limits.body_read_timeout).await)
            }
        });
        let mut stop = stop_tx.subscribe();
        let done = done_rx.clone();
        // The connection moves to the next shard's runtime, where it stays (shard.rs).
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection lost before it was served");
                continue;
            }
        };
        fgs_pool::shard::spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "registering a connection failed");
                    return;
                }
            };
            let mut builder = http1::Builder::new();
            // hyper's own bounds sit above fgs's, so that a head over fgs's limits reaches
            // `head_refusal` and gets FunctionGraph's error shape; beyond hyper's, hyper answers
            // a bare 431 (docs/security.md).
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_headers(hyper_max_headers(&limits))
                .max_header_size(limits.max_header_bytes.saturating_mul(HEAD_BYTES_FACTOR));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop((permit, done));
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            max_headers: 64,
            max_header_bytes: 32 * 1024,
        }
    }

    fn request(headers: usize, value_len: usize) -> hyper::Request<()> {
        let mut b = hyper::Request::get("/v2/p/fgs/functions");
        for i in 0..headers {
            b = b.header(format!("x-h-{i}"), "v".repeat(value_len));
        }
        b.body(()).unwrap()
    }

    #[test]
    fn heads_over_the_limits_get_an_fss_431() {
        let l = limits();
        assert!(head_refusal(&request(64, 1), &l).is_none());
        assert!(head_refusal(&request(10, 3000), &l).is_none());
        for req in [request(65, 1), request(2, 20 * 1024)] {
            let r = head_refusal(&req, &l).expect("refused");
            assert_eq!(
                r.status(),
                hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            );
            assert_eq!(r.headers()["connection"], "close");
        }
        // hyper itself stops only above fgs's limits, with its parse buffer on the stack.
        assert_eq!(hyper_max_headers(&l), 100);
    }
}
