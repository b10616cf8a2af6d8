//! Tracing (issue 20, docs/api.md): `GET/PUT /functions/{urn}/tracing` turns a function's
//! tracing on and off, and `fgs serve --otlp-endpoint` exports a span per traced invocation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fgs_e2e::{json, Server, ServerOpts};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn tracing_is_turned_on_and_off_and_the_secret_is_not_shown() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("traced", "traced", &[], json!({}));
    let off = json!({"tracing_ak": "", "tracing_sk": ""});
    assert_eq!(s.get("/functions/traced/tracing").json(), off);

    s.put(
        "/functions/traced/tracing",
        &json!({"tracing_ak": "AK1", "tracing_sk": "secret"}),
    )
    .expect(200);
    let shown = s.get("/functions/traced/tracing").json();
    assert_eq!(shown["tracing_ak"], json!("AK1"));
    assert_ne!(shown["tracing_sk"], json!("secret"), "{shown}");

    s.put("/functions/traced/tracing", &json!({"tracing_sk": "x"}))
        .expect_fss(400, "FSS.0400");
    assert_eq!(s.get("/functions/traced/tracing").json()["tracing_ak"], json!("AK1"));
    s.put("/functions/traced/tracing", &off).expect(200);
    assert_eq!(s.get("/functions/traced/tracing").json(), off);
    s.get("/functions/nope/tracing").expect_fss(404, "FSS.1051");
    s.put("/functions/nope/tracing", &off).expect_fss(404, "FSS.1051");
}

/// A tiny OTLP/HTTP collector: records the body of each POST to `/v1/traces`.
pub(crate) struct Collector {
    addr: std::net::SocketAddr,
    posts: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collector {
    pub(crate) fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        let addr = listener.local_addr().expect("collector address");
        let posts = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&posts);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || serve(conn, &kept));
            }
        });
        Collector { addr, posts }
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<OtlpSpan> {
        let posts = self.posts.lock().expect("collector lock");
        posts
            .iter()
            .flat_map(|body| {
                ExportTraceServiceRequest::decode(body.as_slice())
                    .expect("an OTLP protobuf body")
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

/// Answers each request of one connection, keeping the bodies of `POST /v1/traces`.
fn serve(conn: TcpStream, posts: &Mutex<Vec<Vec<u8>>>) {
    let mut out = conn.try_clone().expect("clone the connection");
    let mut r = BufReader::new(conn);
    loop {
        let mut start = String::new();
        if r.read_line(&mut start).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().expect("a content length");
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if start.starts_with("POST /v1/traces ") {
            posts.lock().expect("collector lock").push(body);
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

pub(crate) fn attr(span: &OtlpSpan, key: &str) -> Option<any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

/// The `traceparent` among the event headers a fixture echoed (`op: headers`).
fn event_traceparent(echoed: &str) -> Option<String> {
    echoed.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("traceparent")
            .then(|| v.trim().to_string())
    })
}

pub(crate) fn text(s: &str) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(s.to_string()))
}

#[test]
fn a_traced_invocation_exports_a_span_continuing_the_callers_trace() {
    let collector = Collector::start();
    let s = Server::start(
        ServerOpts::default()
            .flag("--otlp-endpoint", format!("http://{}", collector.addr))
            // Export batches quickly rather than every 5 s.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100"),
    );
    s.create_fixture("traced", "traced", &[], json!({}));
    s.create_fixture("plain", "plain", &[], json!({}));
    s.put(
        "/functions/traced/tracing",
        &json!({"tracing_ak": "AK", "tracing_sk": "SK"}),
    )
    .expect(200);

    // Untraced, the function gets the caller's traceparent as it came.
    let plain = s.invoke_with("plain", &json!({"op": "headers"}), &[("traceparent", TRACEPARENT)]);
    plain.expect(200);
    assert_eq!(event_traceparent(&plain.text()), Some(TRACEPARENT.to_string()));
    let r = s.invoke_with("traced", &json!({"op": "headers"}), &[("traceparent", TRACEPARENT)]);
    r.expect(200);
    let request_id = r.header("x-cff-request-id").expect("a request id");
    let handed = event_traceparent(&r.text()).expect("the traced function gets a traceparent");

    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = collector.spans();
        if spans.iter().any(|s| s.name == "traced") {
            // Anything exported with it has arrived by the next batch.
            std::thread::sleep(Duration::from_millis(500));
            break collector.spans();
        }
        assert!(Instant::now() < deadline, "no span arrived: {spans:?}");
        std::thread::sleep(Duration::from_millis(100));
    };

    let main: Vec<&OtlpSpan> = spans.iter().filter(|s| s.name == "traced").collect();
    assert_eq!(main.len(), 1, "one span per invocation: {spans:?}");
    let main = main[0];
    assert_eq!(hex::encode(&main.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&main.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(attr(main, "faas.invocation_id"), text(&request_id));
    assert_eq!(attr(main, "faas.name"), text("traced"));
    assert_eq!(attr(main, "faas.version"), text("latest"));
    assert_eq!(attr(main, "faas.coldstart"), Some(any_value::Value::BoolValue(true)));
    assert_eq!(attr(main, "fgs.outcome"), text("success"));
    assert!(main.end_time_unix_nano >= main.start_time_unix_nano);
    // Traced, it gets fgs's span as its parent.
    assert_eq!(
        handed,
        format!("00-{TRACE_ID}-{}-01", hex::encode(&main.span_id))
    );

    let children: Vec<&str> = spans
        .iter()
        .filter(|c| c.parent_span_id == main.span_id)
        .map(|c| c.name.as_str())
        .collect();
    assert!(children.contains(&"run"), "{children:?}");
    assert!(children.contains(&"cold start"), "{children:?}");
    for c in spans.iter().filter(|c| c.parent_span_id == main.span_id) {
        assert_eq!(c.trace_id, main.trace_id);
    }
    assert!(
        !spans.iter().any(|s| attr(s, "faas.name") == text("plain")),
        "a function with tracing off exported a span: {spans:?}"
    );

    // A published version follows the function's switch, on and then off.
    s.post("/functions/traced/versions", &json!({"version": "v1"}))
        .expect(200);
    let v1 = s.urn("traced").replace(":latest", ":v1");
    s.invoke(&v1, &json!({})).expect(200);
    wait_for(&collector, |s| attr(s, "faas.version") == text("v1"));
    s.put(
        "/functions/traced/tracing",
        &json!({"tracing_ak": "", "tracing_sk": ""}),
    )
    .expect(200);
    s.invoke(&v1, &json!({})).expect(200);
    s.invoke("traced", &json!({})).expect(200);
    std::thread::sleep(Duration::from_millis(800));
    let n = collector.spans().iter().filter(|s| s.name == "traced").count();
    assert_eq!(n, 2, "spans after tracing was turned off");
}

/// Waits until a span matching `f` arrives.
pub(crate) fn wait_for(collector: &Collector, f: impl Fn(&OtlpSpan) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !collector.spans().iter().any(&f) {
        assert!(Instant::now() < deadline, "no such span: {:?}", collector.spans());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// fgs started with a collector, and a function `traced` with tracing on; batches are sent
/// after `delay_ms`.
pub(crate) fn traced_server(collector: &Collector, delay_ms: u32) -> Server {
    Server::start(
        ServerOpts::default()
            .flag("--otlp-endpoint", format!("http://{}", collector.addr))
            .env("OTEL_BSP_SCHEDULE_DELAY", delay_ms.to_string()),
    )
}

/// Turns `name`'s tracing on.
pub(crate) fn trace_on(s: &Server, name: &str) {
    s.put(
        &format!("/functions/{name}/tracing"),
        &json!({"tracing_ak": "AK", "tracing_sk": "SK"}),
    )
    .expect(200);
}

#[test]
fn the_last_spans_are_sent_when_fgs_stops() {
    let collector = Collector::start();
    // Batches would wait a minute: only the flush at shutdown can send this one in time.
    let s = traced_server(&collector, 60_000);
    s.create_fixture("traced", "traced", &[], json!({}));
    trace_on(&s, "traced");
    s.invoke("traced", &json!({})).expect(200);
    s.signal("TERM");
    let status = s.wait_exit(Duration::from_secs(30)).expect("fgs stops on SIGTERM");
    assert!(status.success(), "{status:?}: {}", s.stderr());
    let spans = collector.spans();
    assert!(spans.iter().any(|s| s.name == "traced"), "{spans:?}");
    assert!(spans.iter().any(|s| s.name == "run"), "{spans:?}");
}
