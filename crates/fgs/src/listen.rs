//! The HTTP server loop: the API router served over hyper's HTTP/1 with the connection limits
//! that keep slow or idle clients from starving everyone else (docs/security.md).
//!
//! `axum::serve` sets no header read timeout and accepts without bound, so one client holding
//! a few thousand silent sockets could exhaust the server's file descriptors. Here every
//! connection holds a permit of a semaphore (past `max_connections` new ones wait in the
//! kernel's backlog), and hyper closes a connection that takes longer than
//! `header_read_timeout` to send a request head, including an idle keep-alive connection
//! waiting for its next request. The body's read time is bounded by the API's authentication
//! layer, which reads every body whole ([`BodyReadTimeout`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use fgs_api::BodyReadTimeout;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

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

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    app: Router,
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
        let app = app.clone();
        let body_timeout = BodyReadTimeout(limits.body_read_timeout);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut req = req.map(Body::new);
            // APIG events report the peer as `requestContext.sourceIp`.
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(body_timeout);
            let mut app = app.clone();
            async move { Ok::<_, Infallible>(app.call(req).await.unwrap_or_else(|e| match e {})) }
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
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_headers(limits.max_headers)
                .max_header_size(limits.max_header_bytes);
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
