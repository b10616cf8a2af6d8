//! The two ends of the APIG contract (SPEC.md 4): an HTTP request becomes the event
//! `{"httpMethod","path","headers","queryStringParameters","pathParameters","body",
//! "isBase64Encoded","requestContext"}`, and the function's `{"statusCode","headers","body",
//! "isBase64Encoded"}` becomes the HTTP response.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::Match;

/// A request as the listener received it.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path below `/apig/<project_id>`, still percent-encoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Header names in lower case, in arrival order; repeated names are joined with `,`.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub source_ip: &'a str,
    pub request_id: &'a str,
}

fn decode_query_part(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The APIG event of a request. The body is always base64 with `isBase64Encoded: true`, as
/// FunctionGraph's APIG sends it, so binary bodies pass unchanged. A query key given more than
/// once keeps its first value.
pub fn event(m: &Match<'_>, req: &HttpRequest<'_>) -> Value {
    let mut headers = Map::new();
    for (k, v) in req.headers {
        match headers.get_mut(k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), json!(v));
            }
        }
    }
    let mut query = Map::new();
    for pair in req.query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode_query_part(k))
            .or_insert_with(|| json!(decode_query_part(v)));
    }
    let path_params: Map<String, Value> = m
        .path_params
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let path = percent_encoding::percent_decode_str(req.path)
        .decode_utf8_lossy()
        .into_owned();
    json!({
        "httpMethod": req.method,
        "path": if path.is_empty() { "/".to_string() } else { path },
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": path_params,
        "body": base64::engine::general_purpose::STANDARD.encode(req.body),
        "isBase64Encoded": true,
        "requestContext": {
            "apiId": m.route.trigger_id,
            "requestId": req.request_id,
            "stage": "RELEASE",
            "sourceIp": req.source_ip,
            "httpMethod": req.method,
            "path": m.route.path,
        },
    })
}

/// What the function answered, as an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApigResponse {
    pub status: u16,
    /// Names as the function gave them; a list value gives one header line per item.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a function's result is not an APIG response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadResponse {
    #[error("the function's result is not a JSON object")]
    NotAnObject,
    #[error("the function's result has no integer statusCode in 100-599")]
    Status,
    #[error("the function's result has a malformed header {0:?}")]
    Header(String),
    #[error("the function's result has a body that is not a string")]
    Body,
    #[error("the function's result says isBase64Encoded but its body is not base64")]
    Base64,
}

fn header_value(name: &str, v: &Value) -> Result<String, BadResponse> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(BadResponse::Header(name.to_string())),
    };
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(BadResponse::Header(name.to_string()));
    }
    Ok(s)
}

/// Reads `{"statusCode","headers","body","isBase64Encoded"}` from a function's result.
pub fn parse_response(result: &[u8]) -> Result<ApigResponse, BadResponse> {
    let v: Value = serde_json::from_slice(result).map_err(|_| BadResponse::NotAnObject)?;
    let o = v.as_object().ok_or(BadResponse::NotAnObject)?;
    let status = o
        .get("statusCode")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .ok_or(BadResponse::Status)? as u16;
    let mut headers = Vec::new();
    match o.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, v) in h {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
                if !valid {
                    return Err(BadResponse::Header(name.clone()));
                }
                match v {
                    Value::Array(items) => {
                        for item in items {
                            headers.push((name.clone(), header_value(name, item)?));
                        }
                    }
                    other => headers.push((name.clone(), header_value(name, other)?)),
                }
            }
        }
        Some(_) => return Err(BadResponse::Header("headers".into())),
    }
    let b64 = o
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match o.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if b64 => base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| BadResponse::Base64)?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => return Err(BadResponse::Body),
    };
    Ok(ApigResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apig::{ApigConfig, Route, RouteTable};
    use crate::{Target, TriggerType};

    #[test]
    fn request_becomes_the_apig_event() {
        let c = ApigConfig::parse(&json!({"path": "/users/{id}", "req_method": "POST"})).unwrap();
        let target = Target {
            project: "p".into(),
            package: "default".into(),
            function: "f".into(),
            qualifier: "latest".into(),
        };
        let t = RouteTable::new([Route::new("t1".into(), target, &c).unwrap()]);
        let m = t.lookup("p", "POST", "/users/42").unwrap();
        let headers = vec![
            ("content-type".to_string(), "text/plain".to_string()),
            ("x-multi".to_string(), "a".to_string()),
            ("x-multi".to_string(), "b".to_string()),
        ];
        let ev = event(
            &m,
            &HttpRequest {
                method: "POST",
                path: "/users/42",
                query: Some("q=hello+world&x=%2F&q=second&flag"),
                headers: &headers,
                body: b"raw body",
                source_ip: "127.0.0.1",
                request_id: "r-1",
            },
        );
        assert_eq!(ev["httpMethod"], "POST");
        assert_eq!(ev["path"], "/users/42");
        assert_eq!(ev["headers"]["x-multi"], "a,b");
        assert_eq!(
            ev["queryStringParameters"],
            json!({"q": "hello world", "x": "/", "flag": ""})
        );
        assert_eq!(ev["pathParameters"], json!({"id": "42"}));
        assert_eq!(ev["body"], "cmF3IGJvZHk=");
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["requestContext"]["apiId"], "t1");
        assert_eq!(ev["requestContext"]["requestId"], "r-1");
    }

    #[test]
    fn responses() {
        let r = parse_response(
            br#"{"statusCode":201,"headers":{"X-A":"1","Set-Cookie":["a=1","b=2"],"X-N":5},"body":"hi","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hi");
        assert_eq!(
            r.headers,
            vec![
                ("Set-Cookie".into(), "a=1".into()),
                ("Set-Cookie".into(), "b=2".into()),
                ("X-A".into(), "1".into()),
                ("X-N".into(), "5".into()),
            ]
        );
        let r =
            parse_response(br#"{"statusCode":200,"body":"AAEC","isBase64Encoded":true}"#).unwrap();
        assert_eq!(r.body, vec![0, 1, 2]);
        assert_eq!(parse_response(br#"{"statusCode":204}"#).unwrap().body, b"");
        for (bad, want) in [
            (&br#"[1]"#[..], BadResponse::NotAnObject),
            (b"not json", BadResponse::NotAnObject),
            (br#"{"body":"x"}"#, BadResponse::Status),
            (br#"{"statusCode":"200"}"#, BadResponse::Status),
            (br#"{"statusCode":700}"#, BadResponse::Status),
            (br#"{"statusCode":200,"body":{"a":1}}"#, BadResponse::Body),
            (
                br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#,
                BadResponse::Base64,
            ),
            (
                br#"{"statusCode":200,"headers":{"X":"a\nb"}}"#,
                BadResponse::Header("X".into()),
            ),
            (
                br#"{"statusCode":200,"headers":{"bad name":"v"}}"#,
                BadResponse::Header("bad name".into()),
            ),
        ] {
            assert_eq!(
                parse_response(bad),
                Err(want),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
