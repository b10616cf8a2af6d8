//! Sync invocation (SPEC.md 3): `POST /functions/{urn}/invocations`.

use axum::extract::{OriginalUri, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use fgs_core::limits::{LOG_TAIL_BYTES, SYNC_PAYLOAD_MAX};
use fgs_core::urn::qualified_urn;
use fgs_invoke::{InvokeError, InvokeOptions, Outcome};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::request::{function_ref, key_of};
use crate::state::SharedState;

fn header_is(headers: &HeaderMap, name: &str, value: &str) -> bool {
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
    let r = function_ref(&project, &urn)?;
    let raw = body.clone();
    if body.len() > SYNC_PAYLOAD_MAX {
        return Err(ApiError::too_large("the request payload", SYNC_PAYLOAD_MAX));
    }
    // The event is JSON (SPEC.md 3); an empty body is the empty event.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .map_err(|e| ApiError::bad_json(&e))?;
        body
    };
    let want_tail = header_is(&headers, "x-cff-log-type", "tail");
    let v1 = header_is(&headers, "x-cff-request-version", "v1");
    let qualifier = r.qualifier_or_latest();
    let opts = InvokeOptions {
        invoked_urn: qualified_urn(&state.region, &project, &r.package, &r.name, &qualifier),
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
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        // In a cluster, a call not forwarded yet may be (crate::forward).
        forwardable: state.node.is_some() && !headers.contains_key(crate::forward::FORWARDED_BY),
        ..InvokeOptions::default()
    };
    let key = key_of(&project, &r);
    let outcome = match state
        .invoker
        .invoke(&key, &qualifier, body.clone(), opts.clone())
        .await
    {
        Err(InvokeError::Elsewhere(_, nodes)) => {
            tracing::debug!(?nodes, "forwarding");
            let node = state.node.as_deref().unwrap_or_default();
            let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            // The node holding the most places first: the likeliest to have a free one.
            match crate::forward::forward(&nodes[0], node, path, &headers, raw).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    tracing::warn!(error = %fgs_invoke::error_chain(&e), "serving here instead");
                    let opts = InvokeOptions {
                        forwardable: false,
                        ..opts
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
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(CONTENT_TYPE, "application/json");
    set(X_CFF_REQUEST_ID, &o.request_id);
    set(X_CFF_INVOKE_SUMMARY, &summary);
    set(X_CFF_BILLING_DURATION, &o.billed_ms.to_string());
    set(X_FUNC_ERR_CODE, &err_code.to_string());
    set(
        X_IS_FUNC_ERR,
        if o.result.is_err() { "true" } else { "false" },
    );
    if want_tail {
        set(X_CFF_FUNCTION_LOG, &log_b64);
    }
    resp
}

// Header names built once, not parsed on each response.
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
