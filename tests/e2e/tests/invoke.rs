//! Sync invocation (SPEC.md 3) of Custom runtimes (SPEC.md 4): result shapes v0 and v1, headers,
//! the log tail, the environment, and every function error the platform reports.

use std::time::{Duration, Instant};

use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body, zip_files};
use fgs_e2e::{alive, json, pgrep, unb64, unique, wait_until, Resp, Server, ServerOpts, Value};

fn server() -> Server {
    Server::start(ServerOpts::default())
}

#[track_caller]
fn assert_ok(r: &Resp) {
    r.expect_ok();
    assert_eq!(
        r.header("x-func-err-code").as_deref(),
        Some("0"),
        "{}",
        r.text()
    );
}

/// Asserts a function error with this code and returns the v0 error body.
#[track_caller]
fn assert_func_err(r: &Resp, code: u32) -> Value {
    assert_eq!(
        r.status,
        200,
        "function errors are HTTP 200; body: {}",
        r.text()
    );
    assert_eq!(
        r.header("x-is-func-err").as_deref(),
        Some("true"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.header("x-func-err-code"),
        Some(code.to_string()),
        "{}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["errorCode"], json!(code), "{body}");
    assert!(body["errorMessage"].is_string(), "{body}");
    assert!(body["errorType"].is_string(), "{body}");
    assert!(body["stackTrace"].is_array(), "{body}");
    body
}

fn log_tail(r: &Resp) -> String {
    let h = r
        .header("x-cff-function-log")
        .unwrap_or_else(|| panic!("no X-Cff-Function-Log header; headers {:?}", r.headers));
    String::from_utf8_lossy(&unb64(&h)).into_owned()
}

#[test]
fn v0_returns_the_result_with_the_summary_headers() {
    let s = server();
    s.create_fixture("echo", &unique("v0"), &[], json!({}));
    let event = json!({"hello": "world", "n": 1, "list": [1, 2, 3]});
    let r = s.invoke("echo", &event);
    assert_ok(&r);
    assert_eq!(r.json(), event);
    let rid = r.header("x-cff-request-id").expect("X-Cff-Request-Id");
    assert!(!rid.is_empty());
    let summary: Value = serde_json::from_str(
        &r.header("x-cff-invoke-summary")
            .expect("X-Cff-Invoke-Summary"),
    )
    .expect("the invoke summary is JSON");
    for k in ["duration", "billingDuration", "memorySize", "memoryUsed"] {
        assert!(summary[k].is_number(), "summary lacks {k}: {summary}");
    }
    assert_eq!(summary["memorySize"], 128, "{summary}");
    let billing = r
        .header("x-cff-billing-duration")
        .expect("X-Cff-Billing-Duration");
    assert!(
        billing.parse::<f64>().is_ok(),
        "billing duration {billing:?}"
    );
    assert!(
        r.header("x-cff-function-log").is_none(),
        "no log asked for, none sent"
    );

    // Each invocation has its own request id: [FGS] a UUID of version 7 (docs/logs.md), so a
    // later invocation's id sorts after an earlier one's.
    assert_eq!((rid.len(), rid.as_bytes()[14]), (36, b'7'), "{rid}");
    let r2 = s.invoke("echo", &event);
    assert_ok(&r2);
    let rid2 = r2.header("x-cff-request-id").expect("X-Cff-Request-Id");
    assert!(rid2 > rid, "{rid2} does not sort after {rid}");
}

#[test]
fn v1_wraps_the_result() {
    let s = server();
    s.create_fixture("echo1", &unique("v1"), &[], json!({}));
    let event = json!({"k": "v"});
    let r = s.invoke_with("echo1", &event, &[("X-CFF-Request-Version", "v1")]);
    assert_ok(&r);
    let body = r.json();
    assert_eq!(
        body["request_id"],
        json!(r.header("x-cff-request-id").expect("request id")),
        "{body}"
    );
    let result = body["result"]
        .as_str()
        .unwrap_or_else(|| panic!("v1 result is a string: {body}"));
    assert_eq!(
        serde_json::from_str::<Value>(result).expect("result is the JSON text"),
        event
    );
    assert!(body["status"].is_number(), "{body}");
    assert!(body.get("log").is_some(), "{body}");

    // With the log tail the v1 body carries it too.
    let r = s.invoke_with(
        "echo1",
        &json!({"op": "log", "text": "v1-log"}),
        &[("X-CFF-Request-Version", "v1"), ("X-Cff-Log-Type", "tail")],
    );
    assert_ok(&r);
    let log = String::from_utf8_lossy(&unb64(
        r.json()["log"].as_str().expect("log is base64 text"),
    ))
    .into_owned();
    assert!(log.contains("v1-log"), "{log}");

    // A function error in v1.
    let r = s.invoke_with(
        "echo1",
        &json!({"op": "error"}),
        &[("X-CFF-Request-Version", "v1")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-is-func-err").as_deref(), Some("true"));
    let body = r.json();
    assert!(
        body["result"]
            .as_str()
            .is_some_and(|t| t.contains("fixture raised")),
        "{body}"
    );
}

#[test]
fn log_tail_holds_this_requests_output() {
    let s = server();
    s.create_fixture("logfn", &unique("log"), &[], json!({}));
    // An earlier invocation whose lines must not be mistaken for this one's.
    s.invoke("logfn", &json!({"op": "log", "text": "first-call"}));
    let r = s.invoke_with(
        "logfn",
        &json!({"op": "log", "text": "second-call"}),
        &[("X-Cff-Log-Type", "tail")],
    );
    assert_ok(&r);
    let rid = r.header("x-cff-request-id").expect("request id");
    assert_eq!(
        r.json()["logged"],
        json!(rid),
        "the runtime saw the same request id"
    );
    let log = log_tail(&r);
    assert!(
        log.len() <= 4096,
        "the tail is at most 4 KB, got {}",
        log.len()
    );
    assert!(
        log.contains(&format!("fx-stdout {rid} second-call")),
        "stdout line missing:\n{log}"
    );
    assert!(
        log.contains(&format!("fx-stderr {rid}")),
        "stderr line missing:\n{log}"
    );
    assert!(log.contains(&rid), "{log}");

    // A tail is cut to its last 4 KB.
    let long = "x".repeat(1000);
    let mut last = None;
    for _ in 0..6 {
        last = Some(s.invoke_with(
            "logfn",
            &json!({"op": "log", "text": long}),
            &[("X-Cff-Log-Type", "tail")],
        ));
    }
    let tail = log_tail(&last.expect("invoked"));
    assert!(tail.len() <= 4096, "tail of {} bytes", tail.len());
}

#[test]
fn runtime_environment_and_user_data() {
    let s = server();
    let f = s.create_fixture(
        "envfn",
        &unique("env"),
        &[("GREETING", "hi there"), ("EMPTY", "")],
        json!({"timeout": 42}),
    );
    let r = s.invoke("envfn", &json!({"op": "env"}));
    assert_ok(&r);
    let env = r.text();
    let vars: std::collections::HashMap<&str, &str> =
        env.lines().filter_map(|l| l.split_once('=')).collect();
    let p = s.cred.project_id.as_str();
    let want = [
        ("GREETING", "hi there"),
        ("EMPTY", ""),
        ("RUNTIME_PROJECT_ID", p),
        ("RUNTIME_FUNC_NAME", "envfn"),
        ("RUNTIME_FUNC_VERSION", "latest"),
        ("RUNTIME_PACKAGE", "default"),
        ("RUNTIME_HANDLER", "bootstrap"),
        ("RUNTIME_TIMEOUT", "42"),
        ("RUNTIME_MEMORY", "128"),
        ("RUNTIME_CPU", "300"),
        ("RUNTIME_MAX_RESP_BODY_SIZE", "6291456"),
    ];
    for (k, v) in want {
        assert_eq!(vars.get(k).copied(), Some(v), "{k} in env:\n{env}");
    }
    for k in ["RUNTIME_CODE_ROOT", "RUNTIME_API_ADDR", "RUNTIME_USERDATA"] {
        assert!(
            vars.get(k).is_some_and(|v| !v.is_empty()),
            "{k} missing:\n{env}"
        );
    }
    let userdata: Value =
        serde_json::from_str(vars["RUNTIME_USERDATA"]).expect("RUNTIME_USERDATA is JSON");
    assert_eq!(userdata["GREETING"], "hi there", "{userdata}");
    assert_eq!(
        f["user_data"]
            .as_str()
            .map(|u| serde_json::from_str::<Value>(u).ok()),
        Some(Some(userdata))
    );

    // The bootstrap starts in the code root.
    let cwd = s.invoke("envfn", &json!({"op": "cwd"})).text();
    let root = vars["RUNTIME_CODE_ROOT"];
    let canon = |p: &str| {
        std::fs::canonicalize(p.trim())
            .map(|p| p.display().to_string())
            .unwrap_or(p.trim().to_owned())
    };
    assert_eq!(
        canon(&cwd),
        canon(root),
        "cwd {cwd:?} is not RUNTIME_CODE_ROOT {root:?}"
    );
}

#[test]
fn function_error_is_4002() {
    let s = server();
    s.create_fixture("errfn", &unique("err"), &[], json!({}));
    let r = s.invoke("errfn", &json!({"op": "error"}));
    let body = assert_func_err(&r, 4002);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("fixture raised"),
        "{body}"
    );
    assert_eq!(body["errorType"], "FixtureError", "{body}");
    assert!(r.header("x-cff-request-id").is_some());
    // The instance is still good.
    assert_ok(&s.invoke("errfn", &json!({"after": "error"})));
}

#[test]
fn timeout_is_4010_and_kills_the_whole_process_tree() {
    let s = server();
    let mark = unique("to");
    s.create_fixture("slow", &mark, &[], json!({"timeout": 3}));
    let pid = s.invoke_pid("slow");
    let child = unique("child");
    let started = Instant::now();
    let r = s.invoke("slow", &json!({"op": "hang", "marker": child}));
    let took = started.elapsed();
    let body = assert_func_err(&r, 4010);
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("timed out"),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(2900),
        "timed out after only {took:?}"
    );
    assert!(took < Duration::from_secs(15), "timeout took {took:?}");

    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "bootstrap {pid} outlived its timeout"
    );
    assert!(
        wait_until(Duration::from_secs(10), || pgrep(&format!(
            "fxchild-{child}"
        ))
        .is_empty()),
        "the bootstrap's child outlived the timeout: {:?}",
        pgrep(&format!("fxchild-{child}"))
    );
    let fresh = s.invoke_pid("slow");
    assert_ne!(fresh, pid, "served by the timed-out instance");
}

#[test]
fn runtime_exit_is_4204_and_the_instance_is_replaced() {
    let s = server();
    s.create_fixture("crash", &unique("crash"), &[], json!({}));
    let pid = s.invoke_pid("crash");
    let r = s.invoke("crash", &json!({"op": "exit"}));
    assert_func_err(&r, 4204);
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let fresh = s.invoke_pid("crash");
    assert_ne!(fresh, pid);
}

#[test]
fn missing_bootstrap_is_4202() {
    let s = server();
    let zip = zip_files(&[("README.txt", b"no bootstrap here", 0o644)]);
    s.post("/functions", &custom_zip_body("noboot", &zip))
        .expect(200);
    let r = s.invoke("noboot", &json!({}));
    assert_func_err(&r, 4202);
}

#[test]
fn payload_limits() {
    let s = server();
    s.create_fixture("big", &unique("big"), &[], json!({}));
    // 1 MB goes through the runtime and back.
    let text = "y".repeat(1024 * 1024);
    let r = s.invoke("big", &json!({"blob": text}));
    assert_ok(&r);
    assert_eq!(r.json()["blob"].as_str().map(str::len), Some(text.len()));

    // Over 6 MB in: refused before any instance sees it.
    let over = vec![b' '; 6 * 1024 * 1024 + 1];
    let r = s
        .req("POST", &s.api("/functions/big/invocations"))
        .raw(over)
        .send();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        ["FSS.0413", "FSS.1201"].contains(&r.error_code().as_str()),
        "{}",
        r.text()
    );

    // Over 6 MB out: SPEC.md 4 refuses the response with 4004.
    let r = s.invoke("big", &json!({"op": "big", "bytes": "6291457"}));
    assert_func_err(&r, 4004);
}

#[test]
fn unknown_function_is_404() {
    let s = server();
    s.invoke("nosuch", &json!({})).expect_fss(404, "FSS.1051");
}

#[test]
fn bootstrap_that_never_polls_times_out() {
    // A runtime that starts but never asks for an event must not hang the caller forever.
    let s = server();
    let zip = bootstrap_zip("#!/bin/sh\nsleep 600\n");
    let mut body = custom_zip_body("mute", &zip);
    body["timeout"] = json!(3);
    s.post("/functions", &body).expect(200);
    let started = Instant::now();
    let r = s.invoke("mute", &json!({}));
    assert_eq!(
        r.header("x-is-func-err").as_deref(),
        Some("true"),
        "{} {}",
        r.status,
        r.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Regression: with a relative `--data-dir` (the default is `./fgs-data`), fgs started the
/// bootstrap by a path relative to its own working directory after moving into the code root.
#[test]
fn relative_data_dir_runs_functions() {
    let s = Server::start(ServerOpts::default().relative_data_dir());
    s.create_fixture("rel", &unique("rel"), &[], json!({}));
    let r = s.invoke("rel", &json!({"relative": true}));
    assert_ok(&r);
    assert_eq!(r.json(), json!({"relative": true}));
}
