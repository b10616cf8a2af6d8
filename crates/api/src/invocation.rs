//! Sync invocation (SPEC.md 3): `POST /functions/{urn}/invocations`.

use crate::extract::Path;
use axum::extract::{OriginalUri, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use fgs_core::limits::{LOG_TAIL_BYTES, SYNC_PAYLOAD_MAX};
use fgs_core::urn::qualified_urn;
use fgs_invoke::{FunctionKey, InvokeError, InvokeOptions, Outcome};
use serde_json::json;

use crate::authn::{read_body_within, verify};
use crate::error::{ApiError, ApiResult};
use crate::request::function_ref;
use crate::state::SharedState;

fn header_is(headers: &HeaderMap, name: &HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

/// The last `LOG_TAIL_BYTES` of the log, cut at a line start when one is near.
fn tail(log: &[u8]) -> &[u8] {
    if log.len() <= LOG_TAIL_BYTES {
        return log;
    }
    let cut = &log[log.len() - LOG_TAIL_BYTES..];
    match cut.iter().position(|&b| b == b'\n') {
        Some(i) if i + 1 < cut.len() => &cut[i + 1..],
        _ => cut,
    }
}

/// The event is JSON (SPEC.md 3); an empty body is the empty event.
pub fn event_body(body: Bytes) -> ApiResult<Bytes> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(&body).map_err(|e| ApiError::bad_json(&e))?;
    Ok(body)
}

pub async fn invoke(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    call(&state, &project, &urn, &uri, &headers, body).await
}

/// `POST /v2/{project}/fgs/functions/{urn}/invocations` as fgs's server sends it, outside axum's
/// router ([`crate::Api`]): what the router's authentication layer and [`invoke`] do, in one
/// step. `project` and `urn` are the path's, percent-decoded.
pub(crate) async fn direct<B>(
    state: &SharedState,
    project: &str,
    urn: &str,
    parts: &http::request::Parts,
    body: B,
    body_timeout: std::time::Duration,
) -> Response
where
    B: axum::body::HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let answer = async {
        let body =
            read_body_within(body_timeout, body, SYNC_PAYLOAD_MAX, "the request payload").await?;
        verify(state, &parts.method, &parts.uri, &parts.headers, &body)?;
        call(state, project, urn, &parts.uri, &parts.headers, body).await
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

async fn call(
    state: &SharedState,
    project: &str,
    urn: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let r = function_ref(project, urn)?;
    // The body arrives within the sync limit: `direct` and the router's layer bound it.
    let raw = body.clone();
    let body = event_body(body)?;
    let want_tail = header_is(headers, &X_CFF_LOG_TYPE, "tail");
    let v1 = header_is(headers, &X_CFF_REQUEST_VERSION, "v1");
    let qualifier = r.qualifier.unwrap_or(fgs_core::Qualifier::Latest);
    let opts = InvokeOptions {
        invoked_urn: qualified_urn(&state.region, project, &r.package, &r.name, &qualifier),
        // Only an alias's rules route on headers (SPEC.md 2): other calls skip copying them.
        headers: if matches!(qualifier, fgs_core::Qualifier::Alias(_)) {
            headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect()
        } else {
            Vec::new()
        },
        traceparent: headers
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        // In a cluster, a call not forwarded yet may be (crate::forward).
        forwardable: state.node.is_some() && !headers.contains_key(crate::forward::FORWARDED_BY),
        ..InvokeOptions::default()
    };
    // The reference's names move into the key: this call's last use of them.
    let key = FunctionKey {
        project: project.to_owned(),
        package: r.package,
        name: r.name,
    };
    // Only a call that can be forwarded may run here again after all: it alone keeps a copy.
    let again = opts.forwardable.then(|| opts.clone());
    let outcome = match state
        .invoker
        .invoke(&key, &qualifier, body.clone(), opts)
        .await
    {
        Err(InvokeError::Elsewhere(_, nodes)) => {
            tracing::debug!(?nodes, "forwarding");
            let node = state.node.as_deref().unwrap_or_default();
            let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            // The node holding the most places first: the likeliest to have a free one.
            // Boxed: the HTTP client's future is large, and kept inline it would make every
            // call's future as large, copied whole as hyper takes it.
            match Box::pin(crate::forward::forward(&nodes[0], node, path, headers, raw)).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::warn!(error = %fgs_invoke::error_chain(&e), "serving here instead");
                    let opts = InvokeOptions {
                        forwardable: false,
                        ..again.expect("only a forwardable call is sent elsewhere")
                    };
                    state.invoker.invoke(&key, &qualifier, body, opts).await?
                }
            }
        }
        other => other?,
    };
    Ok(respond(outcome, want_tail, v1))
}

fn respond(o: Outcome, want_tail: bool, v1: bool) -> Response {
    let log_b64 = if want_tail {
        base64::engine::general_purpose::STANDARD.encode(tail(&o.log))
    } else {
        String::new()
    };
    let (payload, err_code) = match &o.result {
        Ok(b) => (b.clone(), 0),
        Err(e) => (
            Bytes::from(serde_json::to_vec(e).expect("a function error serialises")),
            e.code,
        ),
    };
    let duration_ms = o.duration.as_secs_f64() * 1000.0;
    let summary = serde_json::to_string(&Summary {
        duration: (duration_ms * 1000.0).round() / 1000.0,
        billing_duration: o.billed_ms,
        memory_size: o.memory_size_mb,
        memory_used: (o.memory_used_mb * 1000.0).round() / 1000.0,
    })
    .expect("numbers serialise");
    let body = if v1 {
        Bytes::from(
            json!({
                "request_id": o.request_id,
                "result": String::from_utf8_lossy(&payload),
                "log": log_b64,
                "status": 200,
            })
            .to_string(),
        )
    } else {
        payload
    };
    // The headers are built in a map sized for them, so that it does not grow; values known in
    // advance are static, numbers are formatted straight into their value and the summary's
    // string becomes its value without a copy.
    let mut h = HeaderMap::with_capacity(RESPONSE_HEADERS);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // The request id's string becomes its value: its last use.
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(o.request_id)) {
        h.insert(X_CFF_REQUEST_ID, v);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(summary)) {
        h.insert(X_CFF_INVOKE_SUMMARY, v);
    }
    h.insert(X_CFF_BILLING_DURATION, HeaderValue::from(o.billed_ms));
    h.insert(
        X_FUNC_ERR_CODE,
        match err_code {
            0 => HeaderValue::from_static("0"),
            c => HeaderValue::from(c),
        },
    );
    h.insert(
        X_IS_FUNC_ERR,
        HeaderValue::from_static(if o.result.is_err() { "true" } else { "false" }),
    );
    if want_tail {
        if let Ok(v) = HeaderValue::from_str(&log_b64) {
            h.insert(X_CFF_FUNCTION_LOG, v);
        }
    }
    let mut resp = Response::new(axum::body::Body::from(body));
    *resp.headers_mut() = h;
    resp
}

/// The response's headers but the log's tail, asked for only when debugging, which grows the
/// map. Not one more: `HeaderMap` keeps a quarter of its slots free, so 7 would round up to 12
/// entries of about 100 bytes, and glibc serves a request over 1,008 bytes from its large bins,
/// consolidating all its small free chunks first: on every call (bench/README.md "fgs's own work,
/// by part"). hyper writes `content-length` itself from the body's exact size.
const RESPONSE_HEADERS: usize = 6;

// Header names built once, not parsed on each request and response.
const X_CFF_LOG_TYPE: HeaderName = HeaderName::from_static("x-cff-log-type");
const X_CFF_REQUEST_VERSION: HeaderName = HeaderName::from_static("x-cff-request-version");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_CFF_REQUEST_ID: HeaderName = HeaderName::from_static("x-cff-request-id");
const X_CFF_INVOKE_SUMMARY: HeaderName = HeaderName::from_static("x-cff-invoke-summary");
const X_CFF_BILLING_DURATION: HeaderName = HeaderName::from_static("x-cff-billing-duration");
const X_FUNC_ERR_CODE: HeaderName = HeaderName::from_static("x-func-err-code");
const X_IS_FUNC_ERR: HeaderName = HeaderName::from_static("x-is-func-err");
const X_CFF_FUNCTION_LOG: HeaderName = HeaderName::from_static("x-cff-function-log");

/// The `X-Cff-Invoke-Summary` header's JSON.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    duration: f64,
    billing_duration: u64,
    memory_size: u32,
    memory_used: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(result: Result<Bytes, fgs_core::FunctionError>) -> Outcome {
        Outcome {
            request_id: "01a24149-46f6-77bb-8ddf-a9a12d58353b".into(),
            result,
            log: b"START\nEND\n".to_vec(),
            duration: std::time::Duration::from_micros(3_931),
            billed_ms: 4,
            memory_size_mb: 128,
            memory_used_mb: 0.7384,
            cold: false,
            version: "latest".into(),
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> &'a str {
        r.headers()[name].to_str().unwrap()
    }

    #[test]
    fn a_result_answers_with_its_body_and_the_summary_headers() {
        let r = respond(outcome(Ok(Bytes::from_static(b"{\"a\":1}"))), false, false);
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().len(), 6, "{:?}", r.headers());
        assert_eq!(header(&r, "content-type"), "application/json");
        assert_eq!(
            header(&r, "x-cff-request-id"),
            "01a24149-46f6-77bb-8ddf-a9a12d58353b"
        );
        assert_eq!(
            header(&r, "x-cff-invoke-summary"),
            r#"{"duration":3.931,"billingDuration":4,"memorySize":128,"memoryUsed":0.738}"#
        );
        assert_eq!(header(&r, "x-cff-billing-duration"), "4");
        assert_eq!(header(&r, "x-func-err-code"), "0");
        assert_eq!(header(&r, "x-is-func-err"), "false");
        // Built without growing the map.
        assert_eq!(r.headers().capacity(), RESPONSE_HEADERS);
    }

    #[test]
    fn a_function_error_answers_200_with_its_code_and_the_log_tail_on_request() {
        let e = fgs_core::FunctionError::timeout(3);
        let code = e.code;
        let r = respond(outcome(Err(e)), true, false);
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-func-err-code"), code.to_string());
        assert_eq!(header(&r, "x-is-func-err"), "true");
        let tail = base64::engine::general_purpose::STANDARD.encode(b"START\nEND\n");
        assert_eq!(header(&r, "x-cff-function-log"), tail);
    }

    #[test]
    fn tail_cuts_at_a_line() {
        let mut log = Vec::new();
        for i in 0..1000 {
            log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let t = tail(&log);
        assert!(t.len() <= LOG_TAIL_BYTES);
        assert!(t.starts_with(b"line "));
        assert!(t.ends_with(b"line 999\n"));
        assert_eq!(tail(b"short\n"), b"short\n");
    }
}
