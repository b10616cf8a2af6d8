//! The pool registry under changes, and what is recorded of an invocation.

use super::*;

#[tokio::test(start_paused = true)]
async fn the_pool_registry_retires_gone_and_changed_versions_and_keeps_limit_changes() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.source.put(
        key("f"),
        Qualifier::Version("v1".into()),
        resolved(record("f", 128), "v1"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Version("v1".into())).await;
    assert_eq!(s.versions_with_pools(), ["latest", "v1"]);
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 2);

    // v1 deleted: its pool goes, and its instance is stopped.
    s.source.remove(key("f"), Qualifier::Version("v1".into()));
    s.change("f", ChangeKind::Version).await;
    assert_eq!(s.versions_with_pools(), ["latest"]);
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 1);

    // Only a limit changed: the instance stays.
    let mut rec = record("f", 128);
    rec.spec.max_instance_num = 5;
    s.source
        .put(key("f"), Qualifier::Latest, resolved(rec, "latest"));
    s.change("f", ChangeKind::Function).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 1);

    // The memory changed: instances would start differently, so the pool is replaced.
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 256), "latest"),
    );
    s.change("f", ChangeKind::Function).await;
    let o = s.call("f", Qualifier::Latest).await;
    assert!(o.cold, "a new instance of the new configuration");
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 3);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 2);
}

/// Keeps what it is told.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, String, bool, usize)>>);

impl InvocationObserver for Seen {
    fn finished(&self, f: &Finished<'_>) {
        self.0.lock().unwrap().push((
            f.key.name.clone(),
            f.outcome.request_id.clone(),
            f.outcome.cold,
            f.outcome.log.len(),
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn the_outcome_is_recorded_with_its_log_billing_and_observers() {
    let s = setup();
    let seen = Arc::new(Seen::default());
    s.invoker
        .add_observer(Arc::clone(&seen) as Arc<dyn InvocationObserver>);
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    let first = s.call("f", Qualifier::Latest).await;
    let second = s.call("f", Qualifier::Latest).await;
    assert!(first.cold && !second.cold);
    assert_eq!(first.result.as_deref().ok(), Some(&b"{}"[..]));
    assert_eq!(second.duration, Duration::from_millis(5));
    assert_eq!(second.billed_ms, 5);
    assert_eq!(second.memory_used_mb, 3.0);
    assert_eq!(second.version, "latest");
    let log = String::from_utf8_lossy(&second.log);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].ends_with(&format!(
            "Start invoke request '{}', version: latest",
            second.request_id
        )),
        "{log}"
    );
    assert_eq!(lines[1], "ran in /code/latest");
    assert!(lines[2].contains(&second.request_id), "{log}");
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1],
        (
            "f".into(),
            second.request_id.clone(),
            false,
            second.log.len()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_that_fails_as_the_functions_fault_is_an_outcome() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    *s.counters.fail_start.lock().unwrap() = Some(FunctionError {
        code: 200,
        message: "bootstrap is missing".into(),
        error_type: "InitError".into(),
        stack_trace: Vec::new(),
    });
    let o = s.call("f", Qualifier::Latest).await;
    assert_eq!(o.result.as_ref().map_err(|e| e.code), Err(200));
    assert!(o.cold);
    assert_eq!(o.billed_ms, 0);
    let log = String::from_utf8_lossy(&o.log);
    assert!(log.contains("Start invoke request"), "{log}");
    assert!(log.trim_end().ends_with("bootstrap is missing"), "{log}");
}
