//! `GET /metrics` and the statistics endpoints after known traffic on a fresh server (counts
//! are exact), the code-files endpoint and the embedded console (docs/metrics.md,
//! docs/console.md).

use std::time::Duration;

use fgs_e2e::fixture::{custom_zip_body, zip_files, RUNTIME};
use fgs_e2e::{json, unique, wait_until, Auth, Server, ServerOpts};
use serde_json::Value;

/// The value of the one sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> f64 {
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        lines.len(),
        1,
        "want one line starting {prefix:?} in\n{text}"
    );
    lines[0]
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a sample value")
}

fn sum(points: &Value) -> f64 {
    points
        .as_array()
        .expect("a list of points")
        .iter()
        .map(|p| p["value"].as_f64().expect("a value"))
        .sum()
}

#[test]
fn metrics_and_statistics_count_known_traffic_exactly() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("counted", &unique("counted"), &[], json!({}));
    for _ in 0..3 {
        s.invoke("counted", &json!({"op": "pid"})).expect(200);
    }
    let mut code = String::new();
    for _ in 0..2 {
        let r = s.invoke("counted", &json!({"op": "error"}));
        r.expect(200);
        code = r.header("x-func-err-code").expect("an error code");
    }
    s.put(
        "/functions/counted/config-max-instance",
        &json!({"max_instance_num": 0}),
    )
    .expect(200);
    s.invoke("counted", &json!({})).expect_fss(429, "FSS.0429");

    let r = s.req("GET", "/metrics").send();
    r.expect(200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = r.text();
    let l = format!(
        r#"project="{}",package="default",function="counted",version="latest""#,
        s.cred.project_id
    );
    let inv = |outcome: &str, code: &str| {
        sample(
            &text,
            &format!(r#"fgs_invocations_total{{{l},outcome="{outcome}",error_code="{code}"}}"#),
        )
    };
    assert_eq!(inv("success", ""), 3.0);
    assert_eq!(inv("error", &code), 2.0);
    assert_eq!(inv("throttled", ""), 1.0);
    assert_eq!(inv("system_error", ""), 0.0);
    let count = |name: &str| sample(&text, &format!("{name}_count{{{l}}}"));
    assert_eq!(count("fgs_invocation_duration_seconds"), 5.0);
    assert_eq!(count("fgs_cold_start_duration_seconds"), 1.0);
    assert_eq!(
        sample(
            &text,
            &format!(r#"fgs_invocation_duration_seconds_bucket{{{l},le="+Inf"}}"#)
        ),
        5.0
    );
    let instances: f64 = ["starting", "busy", "idle"]
        .iter()
        .map(|st| sample(&text, &format!(r#"fgs_instances{{{l},state="{st}"}}"#)))
        .sum();
    assert_eq!(instances, 1.0, "{text}");
    for name in [
        "fgs_async_queue_depth ",
        "fgs_async_queue_oldest_age_seconds ",
        "fgs_extension_invoke_failures_total ",
        "fgs_telemetry_dropped_events_total ",
        "fgs_sandbox_prewarmed ",
    ] {
        sample(&text, name);
    }
    assert_eq!(sample(&text, "fgs_async_queue_depth "), 0.0);

    // The statistics endpoints answer from the same counts.
    let st = s.get("/functions/counted/statistics/5");
    st.expect(200);
    let st = st.json();
    assert_eq!(sum(&st["count"]), 5.0, "{st}");
    assert_eq!(sum(&st["function_error_count"]), 2.0);
    assert_eq!(sum(&st["fail_count"]), 2.0);
    assert_eq!(sum(&st["reject_count"]), 1.0);
    assert_eq!(sum(&st["system_error_count"]), 0.0);
    assert_eq!(
        st["count"].as_array().map(Vec::len),
        Some(5),
        "one point a minute"
    );
    assert!(st["max_duration"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["value"].as_f64() > Some(0.0)));
    let all = s.get("/functions/statistics?filter=monitor_data&period=5");
    all.expect(200);
    assert_eq!(sum(&all.json()["statistics"]["count"]), 5.0);
    let month = s.get("/functions/statistics?filter=monthly_report&option=0");
    month.expect(200);
    assert_eq!(sum(&month.json()["count"]), 5.0);
    assert!(sum(&month.json()["gbs"]) > 0.0);
    s.get("/functions/counted/statistics/0")
        .expect_fss(400, "FSS.0400");
    s.get("/functions/nosuch/statistics/60")
        .expect_fss(404, "FSS.1051");
}

/// An extension that registers an address nothing listens on: every invoke event fails with a
/// refused connection (SPEC.md 5), the invocation still succeeds, and the failure is counted.
const DEAF_EXTENSION: &str = r#"#!/bin/bash
curl -sS -X POST -H 'FunctionGraph-Extension-Name: extensionDeaf.sh' \
  -H 'FunctionGraph-Extension-Address: 127.0.0.1:8089' \
  "http://$EXTENSION_API_ADDR/extension/register" -d '{}' >/dev/null
exec sleep 600
"#;

#[test]
fn extension_invoke_failures_are_counted() {
    let s = Server::start(ServerOpts::default());
    let zip = zip_files(&[
        ("bootstrap", RUNTIME.as_bytes(), 0o755),
        (
            "extension/extensionDeaf.sh",
            DEAF_EXTENSION.as_bytes(),
            0o755,
        ),
    ]);
    s.post("/functions", &custom_zip_body("deaf", &zip))
        .expect(200);
    for _ in 0..2 {
        let r = s.invoke("deaf", &json!({}));
        r.expect_ok();
    }
    let failures = || {
        let text = s.req("GET", "/metrics").send().text();
        sample(&text, "fgs_extension_invoke_failures_total ")
    };
    // Invoke events are delivered beside the invocation, not before its answer.
    assert!(
        wait_until(Duration::from_secs(10), || failures() >= 2.0),
        "failures: {}",
        failures()
    );
    assert_eq!(failures(), 2.0);
    // The console's code view lists the extension the function starts.
    let files = s.get("/functions/deaf/code/files");
    files.expect(200);
    assert_eq!(
        files.json()["extensions"],
        json!([{"name": "extensionDeaf.sh", "source": "code"}])
    );
}

#[test]
fn metrics_need_a_credential_unless_public() {
    let s = Server::start(
        ServerOpts::default()
            .arg("--auth-token")
            .arg("scrape-token"),
    );
    s.req("GET", "/metrics")
        .auth(Auth::None)
        .send()
        .expect_fss(401, "FSS.0401");
    s.req("GET", "/metrics")
        .auth(Auth::Token("scrape-token".into()))
        .send()
        .expect(200);
    let open = Server::start(ServerOpts::default().arg("--metrics-public"));
    open.req("GET", "/metrics")
        .auth(Auth::None)
        .send()
        .expect(200);
}

#[test]
fn code_files_are_listed_and_read() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("files", &unique("files"), &[], json!({}));
    let r = s.get("/functions/files/code/files");
    r.expect(200);
    let v = r.json();
    assert_eq!(v["files"][0]["name"], "bootstrap", "{v}");
    assert_eq!(v["extensions"], json!([]));
    let f = s.get("/functions/files/code/files/content?path=bootstrap");
    f.expect(200);
    assert_eq!(f.json()["encoding"], "utf-8");
    assert!(f.json()["content"]
        .as_str()
        .unwrap()
        .contains("fgs e2e fixture"));
    s.get("/functions/files/code/files/content?path=nope")
        .expect_fss(404, "FSS.0404");
    s.req("GET", &s.api("/functions/files/code/files"))
        .auth(Auth::None)
        .send()
        .expect_fss(401, "FSS.0401");
}

#[test]
fn the_console_is_served_from_the_binary() {
    let s = Server::start(ServerOpts::default());
    let index = s.req("GET", "/console/").auth(Auth::None).send();
    index.expect(200);
    assert!(index.text().contains("app.js"));
    for f in ["app.js", "sign.js", "app.css"] {
        s.req("GET", &format!("/console/{f}"))
            .auth(Auth::None)
            .send()
            .expect(200);
    }
    s.req("GET", "/console/nope.js")
        .auth(Auth::None)
        .send()
        .expect(404);
    // `/console` redirects to `/console/` (the client follows it).
    let redirect = s.req("GET", "/console").auth(Auth::None).send();
    redirect.expect(200);
    assert!(redirect.text().contains("app.js"));
}
