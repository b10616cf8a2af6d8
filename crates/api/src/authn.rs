//! The authentication layer: every `/v2/...` request is verified (SPEC.md 2) before a handler
//! sees it, and scoped to the project its credential belongs to.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fgs_core::limits::{ASYNC_PAYLOAD_MAX, SYNC_PAYLOAD_MAX, ZIP_CODE_MAX};

use crate::error::ApiError;
use crate::state::SharedState;

/// How long a request's body may take to arrive once its head is read; the server loop puts it
/// in the request's extensions, and requests without it (tests) wait [`BODY_READ_TIMEOUT`].
/// Bounding it here, where every `/v2` body is read whole, keeps a client that trickles its
/// body a byte a second from holding a connection forever (docs/security.md).
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// The default of `--body-read-timeout`.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The largest body a route takes: a 50 MB zip, base64-encoded, in JSON.
const MAX_BODY: usize = ZIP_CODE_MAX / 3 * 4 + 64 * 1024;

fn body_limit(path: &str) -> (usize, &'static str) {
    if path.ends_with("/invocations") {
        (SYNC_PAYLOAD_MAX, "the request payload")
    } else if path.ends_with("/invocations-async") {
        (ASYNC_PAYLOAD_MAX, "the async request payload")
    } else {
        (MAX_BODY, "the request body")
    }
}

/// Reads a whole body of at most `limit` bytes (413 `FSS.0413` past it) within the request's
/// [`BodyReadTimeout`] (408 `FSS.0408` past it).
pub(crate) async fn read_body(
    extensions: &axum::http::Extensions,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<bytes::Bytes, ApiError> {
    let timeout = extensions
        .get::<BodyReadTimeout>()
        .map_or(BODY_READ_TIMEOUT, |t| t.0);
    read_body_within(timeout, body, limit, what).await
}

/// [`read_body`] with the time it may take given, of any body (the sync invocation's is
/// hyper's, not boxed into axum's).
pub(crate) async fn read_body_within<B>(
    timeout: std::time::Duration,
    body: B,
    limit: usize,
    what: &str,
) -> Result<bytes::Bytes, ApiError>
where
    B: axum::body::HttpBody<Data = bytes::Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let read = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit));
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(_)) => Err(ApiError::too_large(what, limit)),
        Err(_) => Err(ApiError::request_timeout(format!(
            "the request body did not arrive within {timeout:?}"
        ))),
    }
}

/// Verifies a `/v2/{project_id}/...` request's credential (SPEC.md 2) over its whole `uri`
/// and `body`, and that it belongs to the path's project.
pub(crate) fn verify(
    state: &SharedState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let path = uri.path();
    let principal = state.keyring.verify(
        method.as_str(),
        path,
        uri.query(),
        headers,
        body,
        time::OffsetDateTime::now_utc(),
    )?;
    // `/v2/{project_id}/fgs/...`: the credential must belong to that project.
    let project = path.split('/').nth(2).unwrap_or("");
    if !principal.may_access(project) {
        return Err(ApiError::forbidden(format!(
            "the credential does not grant access to project {project}"
        )));
    }
    Ok(())
}

pub async fn authenticate(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    // Nesting strips `/v2/{project}/fgs` from the URI; the signature covers the whole path.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    let (limit, what) = body_limit(uri.path());
    let bytes = match read_body(&parts.extensions, body, limit, what).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = verify(&state, &parts.method, &uri, &parts.headers, &bytes) {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
