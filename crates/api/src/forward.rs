//! Forwarding a sync invocation to the node that holds the function's instances
//! (docs/cluster.md): when the cluster's `max_instance_num` is reached and other nodes hold
//! the instances, the node the call arrived at sends the same request (method, path, query,
//! headers including the caller's credentials and `Host`, body) to one of them, at its
//! `--advertise-url`, and answers what that node answered (status, headers, body: the result,
//! the log tail, the request id and summary).
//!
//! Authentication is the caller's own: every node of a cluster has the same credentials, so
//! the node forwarded to checks the request as if it had been sent there (a signature over
//! `Host` still holds, as `Host` is kept). No secret of the cluster's own exists to leak or
//! rotate, and a forwarded call can do nothing its caller could not. `X-Fgs-Forwarded-By`
//! (the forwarding node's id) makes the receiving node serve the call itself, waiting for an
//! instance if need be, so a call is forwarded at most once; a caller setting it only gives
//! up being forwarded.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Method, Response, StatusCode};
use bytes::Bytes;

/// Set on a forwarded request: the node that forwarded it.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-fgs-forwarded-by");

/// Hop-by-hop headers, and the length the client sets itself: never copied.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

thread_local! {
    /// One client per serving thread: each shard is a runtime of its own, and a client's
    /// pooled connections are driven by the runtime that opened them.
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        // Nodes reach each other directly, never through a proxy of the environment.
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client with no TLS builds");
}

fn client() -> reqwest::Client {
    CLIENT.with(reqwest::Client::clone)
}

/// Why a forward did not answer: the call is then served here.
#[derive(Debug, thiserror::Error)]
#[error("forwarding to {url}")]
pub struct ForwardError {
    url: String,
    #[source]
    source: reqwest::Error,
}

/// Sends the request to `base` (a node's advertise URL) + `path_and_query`, marked as
/// forwarded by `node`, and returns the answer as it came.
pub async fn forward(
    base: &str,
    node: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ForwardError> {
    let url = format!("{}{path_and_query}", base.trim_end_matches('/'));
    let err = |source| ForwardError {
        url: url.clone(),
        source,
    };
    let mut out = HeaderMap::with_capacity(headers.len() + 1);
    for (k, v) in headers {
        if !hop_by_hop(k) {
            out.append(k.clone(), v.clone());
        }
    }
    if let Ok(v) = node.parse() {
        out.insert(FORWARDED_BY, v);
    }
    let answer = client()
        .request(Method::POST, &url)
        .headers(out)
        .body(body)
        .send()
        .await
        .map_err(err)?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = Response::builder().status(status);
    for (k, v) in answer.headers() {
        if !hop_by_hop(k) {
            resp = resp.header(k, v);
        }
    }
    let bytes = answer.bytes().await.map_err(err)?;
    Ok(resp
        .body(Body::from(bytes))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}
