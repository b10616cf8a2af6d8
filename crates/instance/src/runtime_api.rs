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
use http::{HeaderMap, HeaderValue, Method, Request as HttpRequest, Response, StatusCode};
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
    /// The request id, shared by the event's header, the output's attribution and the
    /// in-flight slot ([`Request::request_id`] is left empty; a driver that needs it as a
    /// string sets it back).
    pub id: Bytes,
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
    pub inflight: Mutex<Inflight>,
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
            .take(id.as_bytes())
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

type ReplyTx = oneshot::Sender<RuntimeReply>;

/// The events a runtime has taken and not yet answered. An instance of concurrency 1 (the
/// default, and every Custom and Python runtime's) has at most one: it takes the slot, and an
/// answer is one comparison of ids. A concurrent runtime's (Node.js's or Java's with
/// `concurrent_num` above 1: several long polls at once) others are kept by id.
#[derive(Default)]
pub(crate) struct Inflight {
    one: Option<(Bytes, ReplyTx)>,
    more: HashMap<Bytes, ReplyTx>,
}

impl Inflight {
    fn insert(&mut self, id: Bytes, tx: ReplyTx) {
        if self.one.is_none() {
            self.one = Some((id, tx));
        } else {
            self.more.insert(id, tx);
        }
    }

    /// Where `id`'s answer goes, if the event is in flight; it is in flight no more.
    fn take(&mut self, id: &[u8]) -> Option<ReplyTx> {
        if self.one.as_ref().is_some_and(|(held, _)| held == id) {
            return self.one.take().map(|(_, tx)| tx);
        }
        self.more.remove(id)
    }

    fn clear(&mut self) {
        self.one = None;
        self.more.clear();
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
    mut req: HttpRequest<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // A clone of the parsed uri shares its bytes: the path is borrowed from it, not copied.
    let uri = req.uri().clone();
    let path = uri.path();
    let method = req.method().clone();
    let resp = match (&method, path) {
        (&Method::GET, "/v1/runtime/invocation/request") => {
            // The request's header map becomes the event's: hyper parsed the request into the
            // map of the response before it, so a warm call's maps are never allocated.
            next_event(&state, std::mem::take(req.headers_mut())).await
        }
        (&Method::POST, "/extension/register") => register(&state, &req),
        (&Method::POST, "/telemetry") => {
            let name = header(&req, "functiongraph-extension-name");
            let body = read_body(req.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
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
            let body = read_body(req.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            let err = parse_error(codes::INIT_FAILED, &body, &[codes::INIT_TIMEOUT]);
            state.start.send_replace(StartState::InitFailed(err));
            json(StatusCode::ACCEPTED, OK_BODY)
        }
        (&Method::POST, p) => {
            if let Some(id) = p.strip_prefix("/v1/runtime/invocation/response/") {
                respond(&state, id, req).await
            } else if let Some(id) = p.strip_prefix("/v1/runtime/invocation/error/") {
                let body = read_body(req.into_body(), SYNC_PAYLOAD_MAX)
                    .await
                    .unwrap_or_default();
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
    id: &str,
    request: &Request,
    spans: Option<oneshot::Sender<Vec<ExtensionSpan>>>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !state.extensions.any() {
        return None;
    }
    let extensions = Arc::clone(&state.extensions);
    let output = Arc::clone(&state.output);
    let id = id.to_string();
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

async fn next_event(state: &ApiState, headers: HeaderMap) -> Response<Body> {
    state.start.send_if_modified(|s| {
        if *s == StartState::Starting {
            *s = StartState::Ready;
            true
        } else {
            false
        }
    });
    // SPEC.md 5: the next event waits until every extension answered the last one (each
    // delivery is bounded by the function's timeout). Only an instance with extensions has
    // deliveries.
    if state.extensions.any() {
        if let Some(prev) = state.deliveries.lock().await.take() {
            let _ = prev.await;
        }
    }
    let pending = state.queue.lock().await.recv().await;
    let Some(Pending {
        id,
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
    state.output.begin(id.clone());
    // fgs's ids are its own strings (the invoker's UUIDs, or an async caller's checked id).
    let id_str = std::str::from_utf8(&id).unwrap_or_default();
    if state.telemetry.enabled() {
        state.telemetry.emit(
            "platform",
            "platform.start",
            serde_json::json!({
                "requestId": id_str,
                "traceId": id_str,
                "name": state.extensions.function().0,
                "version": state.extensions.function().1,
                "startTime": crate::telemetry::now_iso(),
            }),
        );
    }
    if let Some(d) = start_deliveries(state, id_str, &request, extension_spans) {
        *state.deliveries.lock().await = Some(d);
    }
    // fgs writes the request id and traceparent itself from parsed ids, and the API checked
    // the URN and alias, so they are always valid header values.
    let headers = state
        .event_headers
        .build(&id, &request, headers)
        .expect("request ids are valid header values");
    state
        .inflight
        .lock()
        .expect("inflight lock is never poisoned")
        .insert(id, reply);
    let mut event = Response::new(Full::new(request.body));
    *event.headers_mut() = headers;
    event
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The `202` a runtime's answer gets, in `headers` (emptied, its memory kept).
fn accepted(mut headers: HeaderMap) -> Response<Body> {
    headers.clear();
    headers.insert(http::header::CONTENT_TYPE, JSON);
    let mut r = Response::new(Full::new(Bytes::from_static(OK_BODY)));
    *r.status_mut() = StatusCode::ACCEPTED;
    *r.headers_mut() = headers;
    r
}

async fn respond(state: &ApiState, id: &str, req: HttpRequest<Incoming>) -> Response<Body> {
    // The request's header map becomes the answer's (as the event's, in `handle`).
    let (mut parts, body) = req.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let body = read_body(body, SYNC_PAYLOAD_MAX).await;
    let Some(tx) = state.take_inflight(id) else {
        return unknown_request(id);
    };
    match body {
        Ok(b) => {
            let _ = tx.send(RuntimeReply::Response(b));
            accepted(headers)
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

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
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
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::config::InvokeType;

    fn tx() -> (ReplyTx, oneshot::Receiver<RuntimeReply>) {
        oneshot::channel()
    }

    fn answered(rx: &mut oneshot::Receiver<RuntimeReply>) -> Option<Bytes> {
        match rx.try_recv() {
            Ok(RuntimeReply::Response(b)) => Some(b),
            _ => None,
        }
    }

    #[test]
    fn one_event_in_flight_and_a_stale_id() {
        let mut f = Inflight::default();
        let (a, mut a_rx) = tx();
        f.insert(Bytes::from_static(b"a"), a);
        assert!(f.take(b"b").is_none(), "an id never handed out");
        let a = f.take(b"a").expect("a is in flight");
        let _ = a.send(RuntimeReply::Response(Bytes::from_static(b"A")));
        assert_eq!(answered(&mut a_rx).as_deref(), Some(&b"A"[..]));
        assert!(f.take(b"a").is_none(), "answered once, a is stale");
        // A stale id answered after the next event was handed out finds nothing, and the
        // next event stays in flight.
        let (b, _b_rx) = tx();
        f.insert(Bytes::from_static(b"b"), b);
        assert!(f.take(b"a").is_none());
        assert!(f.take(b"b").is_some());
        assert!(f.take(b"b").is_none());
    }

    #[test]
    fn a_concurrent_runtime_answers_in_any_order() {
        let mut f = Inflight::default();
        let ids: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("id-{i}"))).collect();
        let mut rxs = Vec::new();
        for id in &ids {
            let (t, r) = tx();
            f.insert(id.clone(), t);
            rxs.push(r);
        }
        for i in [3, 0, 4] {
            let t = f.take(&ids[i]).expect("in flight");
            let _ = t.send(RuntimeReply::Response(ids[i].clone()));
            assert_eq!(answered(&mut rxs[i]).as_ref(), Some(&ids[i]));
            assert!(f.take(&ids[i]).is_none());
        }
        // The slot is free again; a new event may take it while 1 and 2 are still in flight.
        let (t, _r) = tx();
        f.insert(Bytes::from_static(b"id-5"), t);
        for id in [&ids[1], &ids[2], &Bytes::from_static(b"id-5")] {
            assert!(f.take(id).is_some(), "{id:?}");
        }
        let (t, mut r) = tx();
        f.insert(Bytes::from_static(b"x"), t);
        f.clear();
        assert!(f.take(b"x").is_none());
        assert!(
            r.try_recv().is_err(),
            "a cleared event's invoker sees it dropped"
        );
    }

    /// One HTTP/1.1 exchange on a kept-alive connection: the status and the body.
    async fn exchange(c: &mut TcpStream, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: api\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        c.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 4096];
            let n = c.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the API closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some((head, rest)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if rest.len() >= len {
                let status = head[9..12].parse().expect("a status");
                return (status, format!("{head}\r\n\r\n{rest}"));
            }
        }
    }

    fn state() -> (Arc<ApiState>, mpsc::Sender<Pending>, std::io::PipeWriter) {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        let extensions = Arc::new(Extensions::new(Vec::new(), "f".into(), "latest".into()));
        let telemetry = Arc::new(Telemetry::new(false));
        let output =
            Output::start(reader, Arc::clone(&extensions), Arc::clone(&telemetry)).expect("output");
        let (queue_tx, queue_rx) = mpsc::channel(1);
        let api = Arc::new(ApiState {
            queue: tokio::sync::Mutex::new(queue_rx),
            inflight: Mutex::new(Inflight::default()),
            start: watch::channel(StartState::Starting).0,
            output,
            extensions,
            telemetry,
            deliveries: tokio::sync::Mutex::new(None),
            initializer_started: Mutex::new(None),
            unhealthy: Default::default(),
            exited: Default::default(),
            event_headers: Default::default(),
        });
        (api, queue_tx, writer)
    }

    fn pending(id: &'static str, body: &'static str) -> (Pending, oneshot::Receiver<RuntimeReply>) {
        let (reply, rx) = oneshot::channel();
        let request = Request {
            request_id: String::new(),
            body: Bytes::from_static(body.as_bytes()),
            invoke_type: InvokeType::Sync,
            invoked_urn: "urn:f".into(),
            alias: String::new(),
            traceparent: None,
            traced: false,
            timeout: Duration::from_secs(3),
        };
        let p = Pending {
            id: Bytes::from_static(id.as_bytes()),
            request,
            reply,
            extension_spans: None,
        };
        (p, rx)
    }

    /// A runtime on one kept-alive connection (its header maps go round between requests and
    /// answers): an event's headers, its answer, then a stale and an unknown id, each answered
    /// as before.
    #[tokio::test]
    async fn the_runtime_api_hands_out_events_and_refuses_stale_ids() {
        let (api, queue, _writer) = state();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, Arc::clone(&api)));
        let mut c = TcpStream::connect(addr).await.expect("connect");
        const NEXT: &str = "/v1/runtime/invocation/request";
        const RESPONSE: &str = "/v1/runtime/invocation/response/";

        let (a, mut a_rx) = pending("req-a", "{\"n\":1}");
        queue.send(a).await.expect("queued");
        let (status, text) = exchange(&mut c, "GET", NEXT, "").await;
        assert_eq!(status, 200);
        let lower = text.to_ascii_lowercase();
        for h in [
            "x-cff-request-id: req-a",
            "x-cff-invoke-type: sync",
            "x-cff-timeout-ms: 3000",
            "x-cff-function-urn: urn:f",
            "content-type: application/json",
        ] {
            assert!(lower.contains(h), "{h} in {text}");
        }
        assert!(
            !lower.contains("\r\nhost:"),
            "the request's headers are not echoed: {text}"
        );
        assert!(text.ends_with("{\"n\":1}"), "{text}");

        let (status, text) = exchange(&mut c, "POST", &format!("{RESPONSE}req-x"), "x").await;
        assert_eq!(status, 404, "an id never handed out: {text}");
        assert!(text.contains("InvalidRequestID"), "{text}");
        let (status, text) = exchange(&mut c, "POST", &format!("{RESPONSE}req-a"), "ok-a").await;
        assert_eq!(status, 202, "{text}");
        assert!(text
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        assert!(text.ends_with(r#"{"status":"OK"}"#), "{text}");
        assert!(!text.to_ascii_lowercase().contains("\r\nhost:"), "{text}");
        assert_eq!(answered(&mut a_rx).as_deref(), Some(&b"ok-a"[..]));

        // The next event is handed out; the last one's id, answered again, is stale.
        let (b, mut b_rx) = pending("req-b", "{}");
        queue.send(b).await.expect("queued");
        let (status, text) = exchange(&mut c, "GET", NEXT, "").await;
        assert_eq!(status, 200);
        assert!(
            text.to_ascii_lowercase()
                .contains("x-cff-request-id: req-b"),
            "{text}"
        );
        let (status, text) = exchange(&mut c, "POST", &format!("{RESPONSE}req-a"), "again").await;
        assert_eq!(status, 404, "{text}");
        assert!(text.contains("InvalidRequestID"), "{text}");
        let (status, _) = exchange(&mut c, "POST", &format!("{RESPONSE}req-b"), "ok-b").await;
        assert_eq!(status, 202);
        assert_eq!(answered(&mut b_rx).as_deref(), Some(&b"ok-b"[..]));
        server.abort();
    }

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
