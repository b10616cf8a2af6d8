//! Which invocations are traced: only those of functions whose tracing is on, and only when
//! a tracer is set; an untraced one asks its instance to time nothing.

use fgs_core::function::Tracing;

use super::*;
use crate::trace::tests::{attr, kept_tracer};

fn traced_record(name: &str) -> FunctionRecord {
    let mut rec = record(name, 128);
    rec.meta.tracing = Some(Tracing {
        tracing_ak: "AK".into(),
        tracing_sk: "SK".into(),
    });
    rec
}

#[tokio::test(start_paused = true)]
async fn only_functions_with_tracing_on_are_traced_and_timed() {
    let s = setup();
    s.source.put(
        key("on"),
        Qualifier::Latest,
        resolved(traced_record("on"), "latest"),
    );
    s.source.put(
        key("off"),
        Qualifier::Latest,
        resolved(record("off", 128), "latest"),
    );
    // No tracer yet: nothing is traced, whatever the function's switch.
    s.call("on", Qualifier::Latest).await;
    let (tracer, kept) = kept_tracer();
    s.invoker.set_tracer(tracer);
    s.call("on", Qualifier::Latest).await;
    s.call("off", Qualifier::Latest).await;
    assert_eq!(*s.counters.traced.lock().unwrap(), [false, true, false]);
    let invocations: Vec<String> = kept
        .all()
        .iter()
        .filter(|s| attr(s, "faas.name").is_some())
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(invocations, ["on"]);
    let run = kept.named("run");
    assert_eq!(run.parent_span_id, kept.named("on").span_context.span_id());
}

#[tokio::test(start_paused = true)]
async fn a_start_failed_by_the_initializer_has_an_error_initializer_span() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(traced_record("f"), "latest"),
    );
    let (tracer, kept) = kept_tracer();
    s.invoker.set_tracer(tracer);
    *s.counters.fail_start.lock().unwrap() =
        Some(FunctionError::new(4201, "ValueError", "init fails"));
    let out = s.call("f", Qualifier::Latest).await;
    assert_eq!(out.result.unwrap_err().code, 4201);
    let main = kept.named("f");
    assert_eq!(attr(&main, "error.type").as_deref(), Some("4201"));
    let cold = kept.named("cold start");
    assert_eq!(cold.parent_span_id, main.span_context.span_id());
    let init = kept.named("initializer");
    assert_eq!(init.parent_span_id, cold.span_context.span_id());
    assert_eq!(attr(&init, "error.type").as_deref(), Some("4201"));
    assert_eq!(
        init.start_time,
        SystemTime::UNIX_EPOCH + Duration::from_secs(10)
    );
}
