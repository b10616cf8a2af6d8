use std::time::Duration;

use crate::outcome::Outcome;
use crate::{encode, Gauges, Registry};

#[test]
fn counts_outcomes_and_histograms_in_text_format() {
    let reg = Registry::default();
    let s = reg.series("p", "default", "f", "latest");
    s.ran(
        Outcome::Success,
        Duration::from_millis(3),
        Some(Duration::from_millis(40)),
        3,
        128,
    );
    s.ran(Outcome::Error(4002), Duration::from_millis(7), None, 7, 128);
    s.refused(Outcome::Throttled);
    // The same labels give the same series.
    assert!(std::sync::Arc::ptr_eq(
        &s,
        &reg.series("p", "default", "f", "latest")
    ));
    let text = encode(&reg, &Gauges::default(), &|_| true);
    let l = r#"project="p",package="default",function="f",version="latest""#;
    for line in [
        format!(r#"fgs_invocations_total{{{l},outcome="success",error_code=""}} 1"#),
        format!(r#"fgs_invocations_total{{{l},outcome="error",error_code="4002"}} 1"#),
        format!(r#"fgs_invocations_total{{{l},outcome="throttled",error_code=""}} 1"#),
        format!(r#"fgs_invocation_duration_seconds_bucket{{{l},le="0.005"}} 1"#),
        format!(r#"fgs_invocation_duration_seconds_bucket{{{l},le="+Inf"}} 2"#),
        format!(r#"fgs_invocation_duration_seconds_count{{{l}}} 2"#),
        format!(r#"fgs_cold_start_duration_seconds_bucket{{{l},le="0.025"}} 0"#),
        format!(r#"fgs_cold_start_duration_seconds_bucket{{{l},le="0.05"}} 1"#),
        "fgs_async_queue_depth 0".to_string(),
    ] {
        assert!(text.lines().any(|x| x == line), "missing {line} in\n{text}");
    }
    let mins = s.minutes(0, i64::MAX);
    assert_eq!(mins.len(), 1);
    assert_eq!(
        (mins[0].count, mins[0].function_errors, mins[0].rejected),
        (2, 1, 1)
    );
    assert_eq!(mins[0].duration_max_ms, 7.0);
    assert_eq!(mins[0].duration_min_ms, 3.0);
}

#[test]
fn label_values_are_escaped() {
    let reg = Registry::default();
    reg.series("p", "a\"b", "f", "1")
        .refused(Outcome::SystemError);
    let text = encode(&reg, &Gauges::default(), &|_| true);
    assert!(text.contains(r#"package="a\"b""#), "{text}");
}

#[test]
fn invisible_projects_are_left_out() {
    let reg = Registry::default();
    reg.series("mine", "default", "f", "latest")
        .refused(Outcome::Throttled);
    reg.series("theirs", "default", "g", "latest")
        .refused(Outcome::Throttled);
    let text = encode(&reg, &Gauges::default(), &|k| k.project == "mine");
    assert!(text.contains(r#"project="mine""#), "{text}");
    assert!(!text.contains("theirs"), "{text}");
}

/// What one invocation costs the hot path: the series lookup and the recording. Run with
/// `cargo test -p fgs-metrics --release -- --ignored --nocapture recording_cost`.
#[test]
#[ignore]
fn recording_cost() {
    let reg = Registry::default();
    for i in 0..100 {
        reg.series("p", "default", &format!("f{i}"), "latest");
    }
    let n = 1_000_000;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        reg.series("p", "default", "f42", "latest").ran(
            Outcome::Success,
            Duration::from_micros(700),
            None,
            1,
            128,
        );
    }
    let per = t0.elapsed() / n;
    println!("series lookup + record: {per:?} per invocation");
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(reg.series("p", "default", "f42", "latest"));
    }
    println!("series lookup alone: {:?}", t0.elapsed() / n);
    assert!(per < Duration::from_micros(5), "{per:?}");
}

#[test]
fn a_cluster_node_labels_every_series_with_its_id() {
    let reg = Registry::default();
    reg.series("p", "default", "f", "latest")
        .refused(Outcome::Throttled);
    let g = Gauges {
        node: Some("node-\"a\"".into()),
        ..Gauges::default()
    };
    let text = encode(&reg, &g, &|_| true);
    let node = r#"node="node-\"a\"""#;
    for line in [
        format!(
            r#"fgs_invocations_total{{project="p",package="default",function="f",version="latest",{node},outcome="throttled",error_code=""}} 1"#
        ),
        format!(r#"fgs_async_queue_depth{{{node}}} 0"#),
    ] {
        assert!(text.lines().any(|x| x == line), "missing {line} in\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains(node), "unlabelled: {line}");
    }
}
