//! Stored invocation logs (docs/logs.md): `GET /functions/{urn}/logs` after sync and async
//! invocations, its filters and paging, and the retention purge.

use std::time::Duration;

use fgs_e2e::{json, unique, wait_until, Server, ServerOpts, Value};

fn logs(s: &Server, name: &str, query: &str) -> Value {
    let r = s.get(&format!("/functions/{name}/logs?{query}"));
    r.expect(200);
    r.json()
}

fn count(s: &Server, name: &str, query: &str) -> usize {
    logs(s, name, query)["logs"].as_array().map_or(0, Vec::len)
}

#[test]
fn records_appear_with_filters_and_paging() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("logged", &unique("logs"), &[], json!({}));
    s.create_fixture("other", &unique("logs"), &[], json!({}));

    let mut rids = Vec::new();
    for i in 0..4 {
        let r = s.invoke("logged", &json!({"op": "log", "text": format!("line-{i}")}));
        r.expect(200);
        rids.push(r.header("x-cff-request-id").expect("request id"));
    }
    let failed = s.invoke("logged", &json!({"op": "error"}));
    let failed_rid = failed.header("x-cff-request-id").expect("request id");
    s.invoke("other", &json!({})).expect(200);
    // Async: accepted, run by the dispatcher, logged like the others.
    let a = s.post(
        "/functions/logged/invocations-async",
        &json!({"op": "log", "text": "async-line"}),
    );
    a.expect(202);
    let async_rid = a.json()["request_id"]
        .as_str()
        .expect("request id")
        .to_owned();

    assert!(
        wait_until(Duration::from_secs(20), || count(&s, "logged", "") == 6),
        "logs: {}",
        logs(&s, "logged", "")
    );
    let all = logs(&s, "logged", "");
    let first = &all["logs"][0];
    assert_eq!(first["request_id"], rids[0].as_str());
    assert_eq!(first["func_name"], "logged");
    assert_eq!(first["version"], "latest");
    assert_eq!(first["invoke_type"], "sync");
    assert_eq!(first["status"], "success");
    assert_eq!(first["error_code"], 0);
    assert!(
        first["duration"].as_f64().expect("duration") > 0.0,
        "{first}"
    );
    let text = first["log"].as_str().expect("log text");
    assert!(
        text.contains(&format!("Start invoke request '{}'", rids[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("fx-stdout {} line-0", rids[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("Finish invoke request '{}'", rids[0])),
        "{text}"
    );

    // By request id: the failed one carries its error code, the async one its type.
    let one = logs(&s, "logged", &format!("request_id={failed_rid}"));
    assert_eq!(one["logs"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["logs"][0]["status"], "error");
    assert_eq!(one["logs"][0]["error_code"], 4002);
    let one = logs(&s, "logged", &format!("request_id={async_rid}"));
    assert_eq!(one["logs"][0]["invoke_type"], "async", "{one}");
    assert!(one["logs"][0]["log"]
        .as_str()
        .unwrap_or("")
        .contains("async-line"));
    // Another function's logs stay its own.
    assert_eq!(count(&s, "other", ""), 1);

    // Paging: two at a time, oldest first, then newest first.
    let mut seen = Vec::new();
    let mut marker = String::new();
    loop {
        let page = logs(&s, "logged", &format!("limit=2&marker={marker}"));
        for l in page["logs"].as_array().expect("logs") {
            seen.push(l["request_id"].as_str().expect("rid").to_owned());
        }
        marker = page["next_marker"].as_str().expect("marker").to_owned();
        if marker.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(&seen[..4], &rids[..]);
    let newest = logs(&s, "logged", "order=desc&limit=1");
    assert_eq!(newest["logs"][0]["request_id"], seen[5].as_str());

    // Time range: nothing before the epoch's first second, nothing in the future.
    let later = all["logs"][5]["start_time_ms"].as_i64().expect("ms") + 60_000;
    assert_eq!(count(&s, "logged", &format!("since={later}")), 0);
    assert_eq!(count(&s, "logged", "until=1970-01-01T00:00:01Z"), 0);
    assert_eq!(count(&s, "logged", "since=2000-01-01T00:00:00Z"), 6);

    // Bad input and unknown functions.
    s.get("/functions/logged/logs?since=yesterday")
        .expect_fss(400, "FSS.0400");
    s.get("/functions/nosuch/logs").expect_fss(404, "FSS.1051");
}

#[test]
fn retention_purges_old_logs() {
    let s = Server::start(ServerOpts::default().flag("--log-retention", "2s"));
    s.create_fixture("brief", &unique("logs"), &[], json!({}));
    s.invoke("brief", &json!({})).expect(200);
    assert!(wait_until(Duration::from_secs(10), || count(
        &s, "brief", ""
    ) == 1));
    assert!(
        wait_until(Duration::from_secs(15), || count(&s, "brief", "") == 0),
        "the log outlived its retention"
    );
}

#[test]
fn long_logs_are_cut_to_the_limit() {
    let s = Server::start(ServerOpts::default().flag("--log-max-bytes-per-invocation", "1024"));
    s.create_fixture("chatty", &unique("logs"), &[], json!({}));
    let text = "x".repeat(3000);
    s.invoke("chatty", &json!({"op": "log", "text": text}))
        .expect(200);
    assert!(wait_until(Duration::from_secs(10), || count(
        &s, "chatty", ""
    ) == 1));
    let l = &logs(&s, "chatty", "")["logs"][0];
    assert_eq!(l["truncated"], true);
    let log = l["log"].as_str().expect("log");
    assert!(log.len() < 1200, "{} bytes", log.len());
    assert!(log.contains("bytes of log cut]"), "{log}");
    assert!(log.contains("Finish invoke request"), "{log}");
}

#[test]
fn server_log_as_json_lines() {
    let s = Server::start(ServerOpts::default().flag("--log-format", "json"));
    s.create_fixture("jsonlog", &unique("logs"), &[], json!({}));
    // The harness reads fgs's stderr on a thread of its own: the line can trail the answer.
    wait_until(Duration::from_secs(5), || {
        s.stderr().contains("function created")
    });
    let stderr = s.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.contains("function created")),
        "{stderr}"
    );
}

/// The last invocations before a graceful stop keep their logs, and logs survive a restart.
#[test]
fn logs_outlive_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let rids: Vec<String> = {
        let s = Server::start(ServerOpts::default().data_dir(&data));
        s.create_fixture("kept", &unique("logs"), &[], json!({}));
        let rids = (0..3)
            .map(|_| {
                let r = s.invoke("kept", &json!({}));
                r.expect(200);
                r.header("x-cff-request-id").expect("request id")
            })
            .collect();
        s.signal("TERM");
        assert!(
            s.wait_exit(Duration::from_secs(30)).is_some(),
            "fgs did not stop"
        );
        rids
    };
    let s = Server::start(ServerOpts::default().data_dir(&data));
    let got = logs(&s, "kept", "");
    let stored: Vec<&str> = got["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["request_id"].as_str())
        .collect();
    assert_eq!(stored, rids, "{got}");
}
