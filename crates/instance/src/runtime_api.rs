//! The instance's own Runtime API (SPEC.md 4), served on a listener only that instance reaches:
//! the runtime long-polls `GET /v1/runtime/invocation/request` for its next event and posts the
//! result to `.../response/{id}` or `.../error/{id}`; `POST /v1/runtime/init/error` reports a
//! failed start.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::FunctionError;
use http::{HeaderValue, Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Request;
use crate::event_headers::EventHeaders;
use crate::extensions::{ExtensionSpan, Extensions, Gate};
use crate::instance::InitializerRun;
use crate::output::Output;
use crate::telemetry::{BadSubscription, Telemetry};

/// An event waiting for the runtime to ask for it.
pub(crate) struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<RuntimeReply>,
    /// Where the extension deliveries' times go, for a traced invocation of an instance with
    /// extensions.
    pub extension_spans: Option<oneshot::Sender<Vec<ExtensionSpan>>>,
}

pub(crate) enum RuntimeReply {
    Response(Bytes),
    Error(FunctionError),
}

/// How far the runtime got in starting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StartState {
    Starting,
    /// The runtime asked for its first event.
    Ready,
    /// The runtime reported `POST /v1/runtime/init/error`.
    InitFailed(FunctionError),
}

pub(crate) struct ApiState {
    pub queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// Events the runtime has taken and not yet answered, by request id.
    pub inflight: Mutex<HashMap<String, oneshot::Sender<RuntimeReply>>>,
    pub start: watch::Sender<StartState>,
    pub output: Arc<Output>,
    pub extensions: Arc<Extensions>,
    pub telemetry: Arc<Telemetry>,
    /// The invoke events of the last event handed out, still being delivered to extensions:
    /// the next event waits for them (SPEC.md 5).
    pub deliveries: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// When the runtime marked its initializer's start (`POST /fgs/v1/initializer/start`).
    pub initializer_started: Mutex<Option<SystemTime>>,
    /// Set when an extension died after start: the instance is replaced.
    pub unhealthy: std::sync::atomic::AtomicBool,
    /// Set once the runtime's main process has exited (and its events were abandoned): what
    /// `Instance::is_healthy` reads, with plain loads, for every instance a pool scans.
    pub exited: std::sync::atomic::AtomicBool,
    pub event_headers: EventHeaders,
}

impl ApiState {
    /// The initializer's run until now, if the runtime marked its start.
    pub(crate) fn initializer_run(&self) -> Option<InitializerRun> {
        let start = (*self
            .initializer_started
            .lock()
            .expect("initializer lock is never poisoned"))?;
        Some(InitializerRun {
            start,
            end: SystemTime::now(),
        })
    }

    fn take_inflight(&self, id: &str) -> Option<oneshot::Sender<RuntimeReply>> {
        self.inflight
            .lock()
            .expect("inflight lock is never poisoned")
            .remove(id)
    }

    /// Drops every waiting and in-flight event: their invokers see the runtime gone.
    pub(crate) async fn abandon_all(&self) {
        self.inflight
            .lock()
            .expect("inflight lock is never poisoned")
            .clear();
        let mut q = self.queue.lock().await;
        q.close();
        while q.try_recv().is_ok() {}
    }
}

type Body = Full<Bytes>;

const OK_BODY: &[u8] = br#"{"status":"OK"}"#;

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, JSON)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    json(
        status,
        serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string(),
    )
}

/// Accepts connections from the instance until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(Arc::clone(&state), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    state: Arc<ApiState>,
    req: HttpRequest<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // A clone of the parsed uri shares its bytes: the path is borrowed from it, not copied.
    let uri = req.uri().clone();
    let path = uri.path();
    let method = req.method().clone();
    let resp = match (&method, path) {
        (&Method::GET, "/v1/runtime/invocation/request") => next_event(&state).await,
        (&Method::POST, "/extension/register") => register(&state, &req),
        (&Method::POST, "/telemetry") => {
            let name = header(&req, "functiongraph-extension-name");
            let body = read_body(req, 64 * 1024).await.unwrap_or_default();
            match state
                .telemetry
                .subscribe(&state.extensions, name.as_deref(), &body)
            {
                Ok(()) => json(StatusCode::OK, OK_BODY),
                Err(BadSubscription(m)) => {
                    api_error(StatusCode::BAD_REQUEST, "InvalidSubscription", &m)
                }
            }
        }
        (&Method::GET, "/fgs/v1/extensions/ready") => {
            let mut gate = state.extensions.gate.subscribe();
            let g = gate
                .wait_for(|g| *g != Gate::Waiting)
                .await
                .map(|g| g.clone())
                .unwrap_or(Gate::Failed(crate::extensions::exec_failed(
                    "the instance ended".into(),
                )));
            match g {
                Gate::Open => json(StatusCode::OK, OK_BODY),
                _ => api_error(
                    StatusCode::CONFLICT,
                    "ExtensionsFailed",
                    "extensions failed to start",
                ),
            }
        }
        (&Method::POST, "/fgs/v1/extensions/exited") => {
            let q = req.uri().query().unwrap_or("").to_string();
            let field = |k: &str| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            };
            let code = field("code").parse().unwrap_or(-1);
            if state.extensions.exited(&field("name"), code) {
                state
                    .unhealthy
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            json(StatusCode::OK, OK_BODY)
        }
        (&Method::POST, "/fgs/v1/initializer/start") => {
            *state
                .initializer_started
                .lock()
                .expect("initializer lock is never poisoned") = Some(SystemTime::now());
            json(StatusCode::OK, OK_BODY)
        }
        (&Method::POST, "/v1/runtime/init/error") => {
            let body = read_body(req, 64 * 1024).await.unwrap_or_default();
            let err = parse_error(codes::INIT_FAILED, &body, &[codes::INIT_TIMEOUT]);
            state.start.send_replace(StartState::InitFailed(err));
            json(StatusCode::ACCEPTED, OK_BODY)
        }
        (&Method::POST, p) => {
            if let Some(id) = p.strip_prefix("/v1/runtime/invocation/response/") {
                respond(&state, id, req).await
            } else if let Some(id) = p.strip_prefix("/v1/runtime/invocation/error/") {
                let body = read_body(req, SYNC_PAYLOAD_MAX).await.unwrap_or_default();
                match state.take_inflight(id) {
                    Some(tx) => {
                        let _ = tx.send(RuntimeReply::Error(parse_error(
                            codes::FUNCTION_RAISED,
                            &body,
                            &[codes::HANDLER_NOT_FOUND, codes::MEMORY_LIMIT],
                        )));
                        json(StatusCode::ACCEPTED, OK_BODY)
                    }
                    None => unknown_request(id),
                }
            } else {
                not_found(path)
            }
        }
        _ => not_found(path),
    };
    Ok(resp)
}

fn not_found(path: &str) -> Response<Body> {
    api_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("no such runtime API path: {path}"),
    )
}

fn unknown_request(id: &str) -> Response<Body> {
    api_error(
        StatusCode::NOT_FOUND,
        "InvalidRequestID",
        &format!("request id {id:?} is not in flight in this instance"),
    )
}

fn header(req: &HttpRequest<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// `POST /extension/register` (SPEC.md 5): the same body for every answer, `errorInfo` filled
/// on a refusal.
fn register(state: &ApiState, req: &HttpRequest<Incoming>) -> Response<Body> {
    let r = state.extensions.register(
        header(req, "functiongraph-extension-name").as_deref(),
        header(req, "functiongraph-extension-address").as_deref(),
    );
    let (name, version) = state.extensions.function();
    json(
        r.status,
        serde_json::json!({
            "functionName": name,
            "functionVersion": version,
            "errorInfo": {"errorType": r.error_type, "errorMessage": r.message},
        })
        .to_string(),
    )
}

/// Tells every registered extension of the event, in the background: the caller's response
/// does not wait, the instance's next event does. `spans` gets each delivery's times.
fn start_deliveries(
    state: &ApiState,
    request: &Request,
    spans: Option<oneshot::Sender<Vec<ExtensionSpan>>>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.extensions.any() {
        return None;
    }
    let extensions = Arc::clone(&state.extensions);
    let output = Arc::clone(&state.output);
    let id = request.request_id.clone();
    let urn = request.invoked_urn.clone();
    let timeout = request.timeout;
    Some(tokio::spawn(async move {
        let done = extensions
            .deliver(&id, &urn, timeout, spans.is_some())
            .await;
        for (name, why) in done.failures {
            let line = format!(
                "{} {id} WARN platform: extension {name} did not take the invoke event: {why}\n",
                crate::telemetry::now_iso()
            );
            tracing::warn!(
                request_id = id,
                extension = name,
                reason = why,
                "extension invoke event failed"
            );
            output.note(&id, line.as_bytes());
        }
        if let Some(tx) = spans {
            let _ = tx.send(done.spans);
        }
    }))
}

async fn next_event(state: &ApiState) -> Response<Body> {
    state.start.send_if_modified(|s| {
        if *s == StartState::Starting {
            *s = StartState::Ready;
            true
        } else {
            false
        }
    });
    // SPEC.md 5: the next event waits until every extension answered the last one (each
    // delivery is bounded by the function's timeout).
    if let Some(prev) = state.deliveries.lock().await.take() {
        let _ = prev.await;
    }
    let pending = state.queue.lock().await.recv().await;
    let Some(Pending {
        request,
        reply,
        extension_spans,
    }) = pending
    else {
        return api_error(
            StatusCode::GONE,
            "InstanceStopping",
            "the instance is stopping",
        );
    };
    state.output.begin(&request.request_id);
    if state.telemetry.enabled() {
        state.telemetry.emit(
            "platform",
            "platform.start",
            serde_json::json!({
                "requestId": request.request_id,
                "traceId": request.request_id,
                "name": state.extensions.function().0,
                "version": state.extensions.function().1,
                "startTime": crate::telemetry::now_iso(),
            }),
        );
    }
    if let Some(d) = start_deliveries(state, &request, extension_spans) {
        *state.deliveries.lock().await = Some(d);
    }
    // fgs writes the request id and traceparent itself from parsed ids, and the API checked
    // the URN and alias, so they are always valid header values.
    let headers = state
        .event_headers
        .build(&request)
        .expect("request ids are valid header values");
    // The request id moves into the map: its last use.
    state
        .inflight
        .lock()
        .expect("inflight lock is never poisoned")
        .insert(request.request_id, reply);
    let mut event = Response::new(Full::new(request.body));
    *event.headers_mut() = headers;
    event
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

async fn respond(state: &ApiState, id: &str, req: HttpRequest<Incoming>) -> Response<Body> {
    let body = read_body(req, SYNC_PAYLOAD_MAX).await;
    let Some(tx) = state.take_inflight(id) else {
        return unknown_request(id);
    };
    match body {
        Ok(b) => {
            let _ = tx.send(RuntimeReply::Response(b));
            json(StatusCode::ACCEPTED, OK_BODY)
        }
        Err(BodyError::TooLarge) => {
            let msg = format!("response body exceeds the limit of {SYNC_PAYLOAD_MAX} bytes");
            let _ = tx.send(RuntimeReply::Error(FunctionError::new(
                codes::RESPONSE_TOO_LARGE,
                "ResponseTooLarge",
                &msg,
            )));
            api_error(StatusCode::PAYLOAD_TOO_LARGE, "ResponseTooLarge", &msg)
        }
        Err(BodyError::Read) => {
            let _ = tx.send(RuntimeReply::Error(FunctionError::new(
                codes::RUNTIME_EXITED,
                "RuntimeError",
                "the runtime's response could not be read",
            )));
            api_error(StatusCode::BAD_REQUEST, "BadBody", "body could not be read")
        }
    }
}

enum BodyError {
    TooLarge,
    Read,
}

async fn read_body(req: HttpRequest<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Read),
    }
}

/// A runtime's `{"errorType","errorMessage","stackTrace"}`; anything else is kept as the message.
/// [FGS] An `errorCode` among `allowed` replaces `code`: fgs's own shims report a missing handler
/// (4001), a Java heap that ran out (4205) and an initializer timeout (4211) this way.
fn parse_error(code: u32, body: &[u8], allowed: &[u32]) -> FunctionError {
    #[derive(serde::Deserialize)]
    struct Wire {
        #[serde(rename = "errorType", default)]
        error_type: Option<String>,
        #[serde(rename = "errorMessage", default)]
        error_message: Option<String>,
        #[serde(rename = "stackTrace", default)]
        stack_trace: Option<serde_json::Value>,
        #[serde(rename = "errorCode", default)]
        error_code: Option<u32>,
    }
    let mut err = FunctionError::new(code, "Error", String::new());
    match serde_json::from_slice::<Wire>(body) {
        Ok(w) => {
            if let Some(c) = w.error_code.filter(|c| allowed.contains(c)) {
                err.code = c;
            }
            err.error_type = w.error_type.unwrap_or_else(|| "Error".into());
            err.message = w.error_message.unwrap_or_default();
            err.stack_trace = match w.stack_trace {
                Some(serde_json::Value::Array(a)) => a
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                Some(serde_json::Value::String(s)) => s.lines().map(str::to_string).collect(),
                _ => Vec::new(),
            };
        }
        Err(_) => err.message = String::from_utf8_lossy(body).into_owned(),
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let e = parse_error(
            4002,
            br#"{"errorType":"ValueError","errorMessage":"bad","stackTrace":["a","b"]}"#,
            &[],
        );
        assert_eq!(
            (e.error_type.as_str(), e.message.as_str()),
            ("ValueError", "bad")
        );
        assert_eq!(e.stack_trace, vec!["a", "b"]);
        let e = parse_error(4002, b"plain text", &[]);
        assert_eq!(e.message, "plain text");
        assert_eq!(e.code, 4002);
        let body = br#"{"errorCode":4001,"errorType":"HandlerNotFound","errorMessage":"x"}"#;
        assert_eq!(parse_error(4002, body, &[4001]).code, 4001);
        assert_eq!(
            parse_error(4002, body, &[]).code,
            4002,
            "codes not allowed are ignored"
        );
    }
}
