use std::sync::{Arc, Mutex};

use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::*;

/// Keeps the spans a tracer exports, each as it ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kept(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Kept {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("kept spans lock").extend(batch);
        Ok(())
    }
}

/// A tracer that keeps what it exports, for tests.
pub(crate) fn kept_tracer() -> (Tracer, Kept) {
    let kept = Kept::default();
    let tracer =
        Tracer::with_provider(SdkTracerProvider::builder().with_simple_exporter(kept.clone()));
    (tracer, kept)
}

impl Kept {
    pub(crate) fn all(&self) -> Vec<SpanData> {
        self.0.lock().expect("kept spans lock").clone()
    }

    pub(crate) fn named(&self, name: &str) -> SpanData {
        let spans = self.0.lock().expect("kept spans lock");
        spans
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
    }
}

pub(crate) fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[test]
fn the_traces_path_is_added_once() {
    assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
    assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
    assert_eq!(
        traces_url("http://c:4318/v1/traces"),
        "http://c:4318/v1/traces"
    );
}

#[test]
fn a_traceparent_names_the_remote_parent_and_a_bad_one_is_ignored() {
    let cx = parent_context(Some(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ));
    let sc = cx.span().span_context().clone();
    assert!(sc.is_remote());
    assert_eq!(
        sc.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
    let bad = parent_context(Some("00-nothex-00f067aa0ba902b7-01"));
    assert!(!bad.span().span_context().is_valid());
    assert!(!parent_context(None).span().span_context().is_valid());
}

#[test]
fn a_valid_traceparent_passes_through_and_a_malformed_one_is_dropped() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(pass_through(Some(tp)).as_deref(), Some(tp));
    assert_eq!(pass_through(Some("00-zz-00f067aa0ba902b7-01")), None);
    assert_eq!(pass_through(None), None);
}

#[test]
fn an_invocation_is_a_server_span_with_its_parts_as_children() {
    let (tracer, kept) = kept_tracer();
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let planned = tracer.plan(Some(tp));
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    tracer.record(
        &Traced {
            name: "f",
            urn: "urn:fss:local:p:function:default:f:latest",
            version: "latest",
            request_id: "r1",
            planned: &planned,
            started: t0,
            cold_start: Some((Duration::ZERO, Duration::from_millis(40))),
            initializer: Some((
                InitializerRun {
                    start: t0 + Duration::from_millis(30),
                    end: t0 + Duration::from_millis(39),
                },
                true,
            )),
            run: Some((Duration::from_millis(40), Duration::from_millis(50))),
            total: Duration::from_millis(51),
            error: Some((4201, "initializer failed")),
        },
        None,
    );
    let main = kept.named("f");
    assert_eq!(main.span_kind, SpanKind::Server);
    assert_eq!(
        main.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(main.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        planned.traceparent(),
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            main.span_context.span_id()
        )
    );
    assert_eq!(attr(&main, "error.type").as_deref(), Some("4201"));
    assert_eq!(main.status, Status::error("initializer failed"));
    assert_eq!(main.end_time, t0 + Duration::from_millis(51));
    for (name, from, to) in [("cold start", 0, 40), ("run", 40, 50)] {
        let c = kept.named(name);
        assert_eq!(c.parent_span_id, main.span_context.span_id(), "{name}");
        assert_eq!(c.start_time, t0 + Duration::from_millis(from), "{name}");
        assert_eq!(c.end_time, t0 + Duration::from_millis(to), "{name}");
    }
    // The initializer that failed the start: inside the cold start, an error span.
    let init = kept.named("initializer");
    let cold = kept.named("cold start");
    assert_eq!(init.parent_span_id, cold.span_context.span_id());
    assert_eq!(init.start_time, t0 + Duration::from_millis(30));
    assert_eq!(init.end_time, t0 + Duration::from_millis(39));
    assert_eq!(attr(&init, "fgs.outcome").as_deref(), Some("error"));
    assert_eq!(attr(&init, "error.type").as_deref(), Some("4201"));
    assert_eq!(init.status, Status::error("initializer failed"));
}

#[test]
fn each_extension_delivery_is_a_child_named_after_the_extension() {
    let (tracer, kept) = kept_tracer();
    let parent = tracer.tracer.start("invocation");
    let parent_id = parent.span_context().span_id();
    let cx = Context::new().with_span(parent);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000);
    extension_spans(
        &tracer.tracer,
        &cx,
        &[
            ExtensionSpan {
                name: "extensionA.sh".into(),
                start: t0,
                end: t0 + Duration::from_millis(300),
                error: None,
            },
            ExtensionSpan {
                name: "extensionB.sh".into(),
                start: t0,
                end: t0 + Duration::from_millis(2),
                error: Some("answered 500 Internal Server Error".into()),
            },
        ],
    );
    let a = kept.named("extensionA.sh");
    assert_eq!(a.parent_span_id, parent_id);
    assert_eq!(a.end_time, t0 + Duration::from_millis(300));
    assert_eq!(
        attr(&a, "fgs.extension.name").as_deref(),
        Some("extensionA.sh")
    );
    assert_eq!(attr(&a, "fgs.outcome").as_deref(), Some("success"));
    assert_eq!(a.status, Status::Unset);
    let b = kept.named("extensionB.sh");
    assert_eq!(b.parent_span_id, parent_id);
    assert_eq!(attr(&b, "fgs.outcome").as_deref(), Some("error"));
    assert_eq!(
        b.status,
        Status::error("answered 500 Internal Server Error")
    );
}

#[test]
fn an_initializer_that_ran_is_a_successful_span() {
    let (tracer, kept) = kept_tracer();
    let planned = tracer.plan(None);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(3_000_000);
    tracer.record(
        &Traced {
            name: "f",
            urn: "urn",
            version: "latest",
            request_id: "r2",
            planned: &planned,
            started: t0,
            cold_start: Some((Duration::ZERO, Duration::from_millis(40))),
            initializer: Some((
                InitializerRun {
                    start: t0 + Duration::from_millis(10),
                    end: t0 + Duration::from_millis(35),
                },
                false,
            )),
            run: Some((Duration::from_millis(40), Duration::from_millis(50))),
            total: Duration::from_millis(50),
            error: None,
        },
        None,
    );
    let init = kept.named("initializer");
    assert_eq!(attr(&init, "fgs.outcome").as_deref(), Some("success"));
    assert_eq!(attr(&init, "error.type"), None);
    assert_eq!(init.status, Status::Unset);
    assert_eq!(
        init.parent_span_id,
        kept.named("cold start").span_context.span_id()
    );
    // A new trace: no parent.
    assert_eq!(kept.named("f").parent_span_id, SpanId::INVALID);
}
