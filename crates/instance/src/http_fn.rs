//! HTTP functions (`runtime: "http"`, SPEC.md 4): the function's `bootstrap` starts a web server
//! on 127.0.0.1:8000 inside the instance, and fgs itself plays the runtime
//! ([`crate::fn_server`]). Once the server accepts, the instance is ready; each event becomes one
//! HTTP request (an APIG event as the request it describes, with the `X-CFF-*` headers) and the
//! response becomes the function's result `{"statusCode","headers","body","isBase64Encoded"}`.
//! `concurrent_num` requests run at once, each on its own kept-alive connection.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::FunctionError;
use fgs_sandbox::ProcessHandle;
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

use crate::config::Request;
use crate::fn_server::{self, exchange, gone, Conn, Outgoing, Step, PORT};
use crate::runtime_api::ApiState;

/// Which `X-CFF-*` headers every request carries, and from which variable of the function's
/// environment (SPEC.md 4).
const CFF_HEADERS: &[(&str, &str)] = &[
    ("X-CFF-Memory", "RUNTIME_MEMORY"),
    ("X-CFF-Timeout", "RUNTIME_TIMEOUT"),
    ("X-CFF-Func-Version", "RUNTIME_FUNC_VERSION"),
    ("X-CFF-Func-Name", "RUNTIME_FUNC_NAME"),
    ("X-CFF-Project-Id", "RUNTIME_PROJECT_ID"),
    ("X-CFF-Package", "RUNTIME_PACKAGE"),
];

/// The `X-CFF-*` headers every request of the instance carries, from its environment.
pub(crate) fn cff_headers(env: &[(String, String)]) -> Vec<(String, String)> {
    CFF_HEADERS
        .iter()
        .filter_map(|(h, var)| {
            env.iter()
                .find(|(k, _)| k == var)
                .map(|(_, v)| (h.to_string(), v.clone()))
        })
        .collect()
}

/// Serves the instance's events until its queue closes: each is forwarded to the server as
/// the request it describes.
pub(crate) async fn drive(
    api: Arc<ApiState>,
    process: ProcessHandle,
    concurrency: usize,
    env: Vec<(String, String)>,
) {
    let forward = Forward {
        fixed: cff_headers(&env),
    };
    fn_server::run(api, process, concurrency, forward).await;
}

/// An HTTP function's step: the event as an HTTP request, the response as the result.
struct Forward {
    /// The `X-CFF-*` headers of every request.
    fixed: Vec<(String, String)>,
}

impl Step for Forward {
    async fn call(
        &self,
        process: &ProcessHandle,
        conn: &mut Option<Conn>,
        request: &Request,
    ) -> Result<Bytes, FunctionError> {
        let req = to_http(request, &self.fixed)
            .map_err(|e| FunctionError::new(codes::FUNCTION_RAISED, "InvalidEvent", e))?;
        from_http(exchange(process, conn, req).await?).await
    }
}

/// The request an event describes: an APIG event (SPEC.md 4) as itself, anything else as
/// `POST /` with the event as a JSON body.
fn to_http(request: &Request, fixed: &[(String, String)]) -> Result<Outgoing, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let event: Option<Map<String, Value>> = serde_json::from_slice(&request.body).ok();
    let (method, uri, body) = match event.filter(|e| e.contains_key("httpMethod")) {
        Some(e) => {
            let method = e["httpMethod"].as_str().unwrap_or("GET");
            let method = http::Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("httpMethod {method:?} is not a method"))?;
            let mut uri = e
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            if !uri.starts_with('/') {
                uri.insert(0, '/');
            }
            if let Some(q) = e.get("queryStringParameters").and_then(Value::as_object) {
                let query = encode_query(q);
                if !query.is_empty() {
                    uri.push('?');
                    uri.push_str(&query);
                }
            }
            if let Some(h) = e.get("headers").and_then(Value::as_object) {
                for (k, v) in h {
                    let vals: Vec<String> = match v {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(a) => a.iter().map(value_text).collect(),
                        other => vec![value_text(other)],
                    };
                    for v in vals {
                        headers.push((k.clone(), v));
                    }
                }
            }
            let raw = match e.get("body") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => s.clone().into_bytes(),
                Some(other) => other.to_string().into_bytes(),
            };
            let body = if e.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
                base64::engine::general_purpose::STANDARD
                    .decode(&raw)
                    .map_err(|err| format!("body is not base64: {err}"))?
            } else {
                raw
            };
            (method, uri, Bytes::from(body))
        }
        None => {
            headers.push(("Content-Type".into(), "application/json".into()));
            (http::Method::POST, "/".to_string(), request.body.clone())
        }
    };
    // The platform's headers win over the event's own (and Host/length are hyper's to set).
    headers.retain(|(k, _)| {
        let k = k.to_ascii_lowercase();
        !k.starts_with("x-cff-") && k != "host" && k != "content-length" && k != "transfer-encoding"
    });
    headers.push(("Host".into(), format!("127.0.0.1:{PORT}")));
    headers.push(("X-CFF-Request-Id".into(), request.request_id.clone()));
    if let Some(tp) = &request.traceparent {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("traceparent"));
        headers.push(("traceparent".into(), tp.clone()));
    }
    headers.extend(fixed.iter().cloned());
    if let Some(region) = request
        .invoked_urn
        .split(':')
        .nth(2)
        .filter(|r| !r.is_empty())
    {
        headers.push(("X-CFF-Region".into(), region.to_string()));
    }
    headers.retain(|(k, v)| {
        http::HeaderName::from_bytes(k.as_bytes()).is_ok() && http::HeaderValue::from_str(v).is_ok()
    });
    http::Uri::try_from(uri.as_str()).map_err(|e| format!("path {uri:?} is invalid: {e}"))?;
    Ok(Outgoing {
        method,
        uri,
        headers,
        body,
    })
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode_query(q: &Map<String, Value>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let mut parts = Vec::new();
    for (k, v) in q {
        let vals: Vec<String> = match v {
            Value::Array(a) => a.iter().map(value_text).collect(),
            other => vec![value_text(other)],
        };
        for v in vals {
            parts.push(format!("{}={}", enc(k), enc(&v)));
        }
    }
    parts.join("&")
}

/// Whether a body of this content type is text a JSON string can carry as it is.
fn is_textual(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || [
            "json",
            "xml",
            "javascript",
            "x-www-form-urlencoded",
            "yaml",
            "html",
        ]
        .iter()
        .any(|t| ct.contains(t))
}

async fn from_http(resp: http::Response<hyper::body::Incoming>) -> Result<Bytes, FunctionError> {
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            // APIG's response headers are one string per name.
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_string(), Value::String(v));
            }
        }
    }
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match Limited::new(resp.into_body(), SYNC_PAYLOAD_MAX)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(FunctionError::new(
                codes::RESPONSE_TOO_LARGE,
                "ResponseTooLarge",
                format!("response body exceeds the limit of {SYNC_PAYLOAD_MAX} bytes"),
            ))
        }
        Err(e) => return Err(gone(e)),
    };
    let (body, b64) = match std::str::from_utf8(&body) {
        Ok(text) if is_textual(&content_type) => (text.to_string(), false),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(&body),
            true,
        ),
    };
    let out = serde_json::json!({
        "statusCode": status,
        "headers": headers,
        "body": body,
        "isBase64Encoded": b64,
    });
    Ok(Bytes::from(out.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InvokeType;
    use std::time::Duration;

    fn req(body: &str) -> Request {
        Request {
            request_id: "rid-1".into(),
            body: Bytes::from(body.to_string()),
            invoke_type: InvokeType::Sync,
            invoked_urn: "urn:fss:local:p1:function:default:f:latest".into(),
            alias: String::new(),
            traceparent: None,
            traced: false,
            timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn apig_event_becomes_its_request() {
        let ev = serde_json::json!({
            "httpMethod": "PUT", "path": "/items/7",
            "headers": {"content-type": "application/octet-stream", "x-cff-request-id": "forged", "x-multi": ["a", "b"]},
            "queryStringParameters": {"q": "a b", "n": ["1", "2"]},
            "body": base64::engine::general_purpose::STANDARD.encode([0u8, 255, 1]),
            "isBase64Encoded": true,
        });
        let fixed = vec![("X-CFF-Memory".to_string(), "128".to_string())];
        let o = to_http(&req(&ev.to_string()), &fixed).unwrap();
        assert_eq!(o.method, http::Method::PUT);
        assert!(o.uri.starts_with("/items/7?"), "{}", o.uri);
        assert!(
            o.uri.contains("q=a%20b") && o.uri.contains("n=1&n=2"),
            "{}",
            o.uri
        );
        assert_eq!(&o.body[..], &[0u8, 255, 1]);
        let h = |n: &str| -> Vec<&str> {
            o.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(
            h("x-cff-request-id"),
            vec!["rid-1"],
            "the platform's id wins"
        );
        assert_eq!(h("x-multi"), vec!["a", "b"]);
        assert_eq!(h("x-cff-memory"), vec!["128"]);
        assert_eq!(h("x-cff-region"), vec!["local"]);
    }

    #[test]
    fn other_events_are_posted_as_json() {
        let o = to_http(&req(r#"{"a":1}"#), &[]).unwrap();
        assert_eq!((o.method.as_str(), o.uri.as_str()), ("POST", "/"));
        assert_eq!(&o.body[..], br#"{"a":1}"#);
    }

    #[test]
    fn the_platforms_traceparent_replaces_the_events() {
        let ev = serde_json::json!({"httpMethod": "GET", "path": "/", "headers": {"traceparent": "00-old"}});
        let mut r = req(&ev.to_string());
        r.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let o = to_http(&r, &[]).unwrap();
        let tps: Vec<&str> = o
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            tps,
            vec!["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
        );
    }

    #[test]
    fn textual_types() {
        assert!(is_textual("application/json; charset=utf-8"));
        assert!(is_textual("text/plain"));
        assert!(!is_textual("application/octet-stream"));
        assert!(!is_textual("image/png"));
    }
}
