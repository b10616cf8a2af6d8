//! The parts of a traced invocation as child spans of its span (docs/api.md, "Tracing"): each
//! extension's delivery of the event, the initializer; and the `traceparent` each runtime's
//! context object hands the function.

use std::time::Duration;

use fgs_e2e::fixture::{user_data, zip_files};
use fgs_e2e::{b64, json};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatus;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;

use crate::extensions::{code, create, py_ext};
use crate::tracing::{attr, text, trace_on, traced_server, wait_for, Collector};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The spans whose parent is `parent`, by name.
fn children<'a>(spans: &'a [OtlpSpan], parent: &OtlpSpan) -> Vec<&'a OtlpSpan> {
    spans
        .iter()
        .filter(|c| c.parent_span_id == parent.span_id && c.trace_id == parent.trace_id)
        .collect()
}

#[test]
fn each_extensions_delivery_is_a_child_span_with_its_outcome() {
    let collector = Collector::start();
    let s = traced_server(&collector, 100);
    // extensionA.sh takes 300 ms to answer; extensionB.sh refuses the event.
    let answers = json!({"extensionA.sh": [300, 200], "extensionB.sh": [0, 500]}).to_string();
    create(
        &s,
        "watched",
        &code(&[py_ext("extensionA.sh", 8081), py_ext("extensionB.sh", 8082)]),
        json!({"user_data": user_data(&[("EXT_INVOKE_ANSWER", &answers)])}),
    );
    trace_on(&s, "watched");
    let r = s.invoke("watched", &json!({"n": 1}));
    r.expect(200);
    let request_id = r.header("x-cff-request-id").expect("a request id");

    wait_for(&collector, |s| s.name == "extensionA.sh");
    wait_for(&collector, |s| s.name == "extensionB.sh");
    let spans = collector.spans();
    let main = spans
        .iter()
        .find(|s| attr(s, "faas.invocation_id") == text(&request_id))
        .expect("the invocation's span");
    let kids = children(&spans, main);
    let a = kids
        .iter()
        .find(|s| s.name == "extensionA.sh")
        .expect("extensionA.sh is a child of the invocation");
    assert_eq!(attr(a, "fgs.extension.name"), text("extensionA.sh"));
    assert_eq!(attr(a, "fgs.outcome"), text("success"));
    let took = Duration::from_nanos(a.end_time_unix_nano - a.start_time_unix_nano);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let run = kids.iter().find(|s| s.name == "run").expect("a run span");
    assert!(a.start_time_unix_nano >= run.start_time_unix_nano);

    let b = kids
        .iter()
        .find(|s| s.name == "extensionB.sh")
        .expect("extensionB.sh is a child of the invocation");
    assert_eq!(attr(b, "fgs.outcome"), text("error"));
    let status = b.status.as_ref().expect("a status");
    assert_eq!(status.code, OtlpStatus::Error as i32);
    assert!(status.message.contains("500"), "{status:?}");
    assert_eq!(
        kids.iter().filter(|s| s.name.starts_with("extension")).count(),
        2,
        "one span per extension: {kids:?}"
    );
}

#[test]
fn a_traced_python_function_gets_its_span_from_the_context() {
    let collector = Collector::start();
    let s = traced_server(&collector, 100);
    let code = "def handler(event, context):\n    return {'traceparent': context.getTraceparent()}\n";
    let zip = zip_files(&[("index.py", code.as_bytes(), 0o644)]);
    s.post(
        "/functions",
        &json!({
            "func_name": "pytraced", "package": "default", "runtime": "Python3.10",
            "handler": "index.handler", "memory_size": 128, "timeout": 10,
            "code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(&zip)},
        }),
    )
    .expect(200);
    trace_on(&s, "pytraced");
    let r = s.invoke_with("pytraced", &json!({}), &[("traceparent", TRACEPARENT)]);
    r.expect(200);
    let handed = r.json()["traceparent"].as_str().unwrap_or_default().to_string();
    wait_for(&collector, |s| s.name == "pytraced");
    let spans = collector.spans();
    let main = spans
        .iter()
        .find(|s| s.name == "pytraced")
        .expect("the invocation's span");
    assert_eq!(
        handed,
        format!(
            "00-{}-{}-01",
            hex::encode(&main.trace_id),
            hex::encode(&main.span_id)
        )
    );
    assert_eq!(hex::encode(&main.trace_id), &TRACEPARENT[3..35]);
}
