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

/// `index.*` with a handler, an initializer that takes 200 ms and one that throws.
const INIT_CODE: &[(&str, &str, &str)] = &[
    (
        "Python3.10",
        "index.py",
        "import time\ndef init(context):\n    time.sleep(0.2)\ndef boom(context):\n    raise ValueError('init fails')\ndef handler(event, context):\n    return 'ok'\n",
    ),
    (
        "Node.js20.15",
        "index.js",
        "exports.init = async () => new Promise((r) => setTimeout(r, 200));\nexports.boom = async () => { throw new Error('init fails'); };\nexports.handler = async () => 'ok';\n",
    ),
    (
        "PHP8.3",
        "index.php",
        "<?php\nfunction init($context) { usleep(200000); }\nfunction boom($context) { throw new Exception('init fails'); }\nfunction handler($event, $context) { return 'ok'; }\n",
    ),
];

#[test]
fn the_initializer_is_a_span_inside_the_cold_start_and_its_failure_an_error() {
    let collector = Collector::start();
    let s = traced_server(&collector, 100);
    for (runtime, file, code) in INIT_CODE {
        if *runtime == "PHP8.3" && !php_installed() {
            eprintln!("skipped PHP: `php` is not installed on this host");
            continue;
        }
        let zip = zip_files(&[(file, code.as_bytes(), 0o644)]);
        for (init, expect_ok) in [("index.init", true), ("index.boom", false)] {
            let name = format!("init{}{}", &runtime[..2].to_lowercase(), expect_ok as u8);
            s.post(
                "/functions",
                &json!({
                    "func_name": name, "package": "default", "runtime": runtime,
                    "handler": "index.handler", "memory_size": 128, "timeout": 10,
                    "initializer_handler": init, "initializer_timeout": 10,
                    "code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(&zip)},
                }),
            )
            .expect(200);
            trace_on(&s, &name);
            let r = s.invoke(&name, &json!({}));
            if expect_ok {
                r.expect_ok();
            } else {
                r.expect(200);
                assert_eq!(r.header("x-func-err-code").as_deref(), Some("4201"), "{runtime}");
            }
            wait_for(&collector, |s| s.name == name);
            let spans = collector.spans();
            let main = spans.iter().find(|s| s.name == name).expect("its span");
            let cold = children(&spans, main)
                .into_iter()
                .find(|s| s.name == "cold start")
                .unwrap_or_else(|| panic!("{runtime}: no cold start span: {spans:?}"));
            let span = children(&spans, cold)
                .into_iter()
                .find(|s| s.name == "initializer")
                .unwrap_or_else(|| panic!("{runtime}: no initializer span: {spans:?}"));
            assert!(span.start_time_unix_nano >= cold.start_time_unix_nano);
            assert!(span.end_time_unix_nano <= cold.end_time_unix_nano);
            if expect_ok {
                let took = Duration::from_nanos(span.end_time_unix_nano - span.start_time_unix_nano);
                assert!(took >= Duration::from_millis(200), "{runtime}: {took:?}");
                assert_eq!(attr(span, "fgs.outcome"), text("success"));
            } else {
                assert_eq!(attr(span, "fgs.outcome"), text("error"));
                assert_eq!(attr(span, "error.type"), text("4201"));
                let status = span.status.as_ref().expect("a status");
                assert_eq!(status.code, OtlpStatus::Error as i32);
                assert!(status.message.contains("init fails"), "{runtime}: {status:?}");
            }
        }
    }
}

fn php_installed() -> bool {
    std::process::Command::new("php")
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
