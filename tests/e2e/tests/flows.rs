//! Versions, aliases and durable async invocation (SPEC.md 2, 3) through the real binary.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use fgs_e2e::{json, unique, wait_until, Server, ServerOpts, Value};

fn server() -> Server {
    Server::start(ServerOpts::default().flag("--async-retry-base", "100ms"))
}

/// The fixture's `env` output as a map.
fn env_of(s: &Server, urn: &str, headers: &[(&str, &str)]) -> HashMap<String, String> {
    let r = s.invoke_with(urn, &json!({"op": "env"}), headers);
    r.expect(200);
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set_var(s: &Server, name: &str, mark: &str, v: &str) {
    s.put(
        &format!("/functions/{name}/config"),
        &json!({"user_data": fgs_e2e::fixture::user_data(&[("FX_MARK", mark), ("GEN", v)])}),
    )
    .expect(200);
}

#[test]
fn versions_are_immutable_snapshots() {
    let s = server();
    let mark = unique("ver");
    s.create_fixture("versioned", &mark, &[("GEN", "1")], json!({}));
    let v1 = s.post(
        "/functions/versioned/versions",
        &json!({"version": "v1", "description": "first"}),
    );
    v1.expect(200);
    let v1 = v1.json();
    assert!(
        v1["func_urn"].as_str().unwrap().ends_with(":versioned:v1"),
        "{v1}"
    );
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["version_description"], "first");

    // Nothing changed since v1.
    s.post("/functions/versioned/versions", &json!({"version": "v1b"}))
        .expect_fss(400, "FSS.1016");
    // The same name twice, after a change.
    set_var(&s, "versioned", &mark, "2");
    s.post("/functions/versioned/versions", &json!({"version": "v1"}))
        .expect_fss(409, "FSS.0409");
    s.post(
        "/functions/versioned/versions",
        &json!({"version": "latest"}),
    )
    .expect_fss(400, "FSS.0400");
    s.post("/functions/versioned/versions", &json!({"version": "v2"}))
        .expect(200);
    set_var(&s, "versioned", &mark, "3");

    let e1 = env_of(
        &s,
        &format!("{}:default:versioned:v1", s.cred.project_id),
        &[],
    );
    assert_eq!(e1.get("GEN").map(String::as_str), Some("1"), "{e1:?}");
    assert_eq!(
        e1.get("RUNTIME_FUNC_VERSION").map(String::as_str),
        Some("v1")
    );
    let project = s.cred.project_id.clone();
    let e2 = env_of(&s, &format!("{project}:default:versioned:v2"), &[]);
    assert_eq!(e2.get("GEN").map(String::as_str), Some("2"));
    let el = env_of(&s, "versioned", &[]);
    assert_eq!(el.get("GEN").map(String::as_str), Some("3"));
    assert_eq!(
        el.get("RUNTIME_FUNC_VERSION").map(String::as_str),
        Some("latest")
    );

    // A code update leaves the published versions as they were.
    let zip = fgs_e2e::fixture::bootstrap_zip(
        &fgs_e2e::fixture::RUNTIME.replace("fx exiting", "fx exiting (new code)"),
    );
    let digest_v1 = s
        .get(&format!(
            "/functions/{}:default:versioned:v1/config",
            s.cred.project_id
        ))
        .json()["digest"]
        .clone();
    s.put(
        "/functions/versioned/code",
        &json!({"code_type": "zip", "code_filename": "code.zip", "func_code": {"file": fgs_e2e::b64(&zip)}}),
    )
    .expect(200);
    assert_eq!(
        s.get(&format!(
            "/functions/{}:default:versioned:v1/config",
            s.cred.project_id
        ))
        .json()["digest"],
        digest_v1
    );
    assert_ne!(
        s.get("/functions/versioned/config").json()["digest"],
        digest_v1
    );

    let list = s.get("/functions/versioned/versions").json();
    assert_eq!(list["count"], 3, "{list}");
    let names: Vec<&str> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latest", "v1", "v2"]);

    s.get(&format!(
        "/functions/{}:default:versioned:v9/config",
        s.cred.project_id
    ))
    .expect_fss(404, "FSS.1052");
    s.invoke(
        &format!("{}:default:versioned:v9", s.cred.project_id),
        &json!({}),
    )
    .expect_fss(404, "FSS.1052");

    // A version an alias points to cannot go.
    s.post(
        "/functions/versioned/aliases",
        &json!({"name": "stable", "version": "v1"}),
    )
    .expect(200);
    s.delete(&format!(
        "/functions/{}:default:versioned:v1",
        s.cred.project_id
    ))
    .expect_fss(400, "FSS.1066");
    // A trigger on the alias goes with it.
    let alias_urn = format!("{}:default:versioned:!stable", s.cred.project_id);
    let timer = json!({
        "trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
        "event_data": {"name": "t1", "schedule_type": "Rate", "schedule": "1h", "user_event": "x"},
    });
    s.post(&format!("/triggers/{alias_urn}"), &timer)
        .expect(201);
    assert_eq!(
        s.get(&format!("/triggers/{alias_urn}"))
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    s.delete("/functions/versioned/aliases/stable").expect(204);
    // An alias made again under the same name starts without the old one's triggers.
    s.post(
        "/functions/versioned/aliases",
        &json!({"name": "stable", "version": "v1"}),
    )
    .expect(200);
    let left = s.get(&format!("/triggers/{alias_urn}")).json();
    assert_eq!(left.as_array().map(Vec::len), Some(0), "{left}");
    s.delete("/functions/versioned/aliases/stable").expect(204);
    s.delete(&format!(
        "/functions/{}:default:versioned:v1",
        s.cred.project_id
    ))
    .expect(204);
    s.invoke(
        &format!("{}:default:versioned:v1", s.cred.project_id),
        &json!({}),
    )
    .expect_fss(404, "FSS.1052");
    assert_eq!(s.get("/functions/versioned/versions").json()["count"], 2);
}

#[test]
fn aliases_route_by_weight_and_by_rule() {
    let s = server();
    let mark = unique("als");
    s.create_fixture("routed", &mark, &[("GEN", "1")], json!({}));
    s.post("/functions/routed/versions", &json!({"version": "v1"}))
        .expect(200);
    set_var(&s, "routed", &mark, "2");
    s.post("/functions/routed/versions", &json!({"version": "v2"}))
        .expect(200);

    s.post(
        "/functions/routed/aliases",
        &json!({"name": "9bad", "version": "v1"}),
    )
    .expect_fss(400, "FSS.0400");
    s.post(
        "/functions/routed/aliases",
        &json!({"name": "gone", "version": "v7"}),
    )
    .expect_fss(404, "FSS.1052");
    let a = s.post(
        "/functions/routed/aliases",
        &json!({"name": "prod", "version": "v1", "additional_version_weights": {"v2": 30}}),
    );
    a.expect(200);
    assert!(a.json()["alias_urn"]
        .as_str()
        .unwrap()
        .ends_with(":routed:!prod"));
    s.post(
        "/functions/routed/aliases",
        &json!({"name": "prod", "version": "v1"}),
    )
    .expect_fss(409, "FSS.0409");

    let prod = format!("{}:default:routed:!prod", s.cred.project_id);
    let mut to_v2 = 0;
    for _ in 0..100 {
        let e = env_of(&s, &prod, &[]);
        match e.get("GEN").map(String::as_str) {
            Some("2") => to_v2 += 1,
            Some("1") => {}
            other => panic!("unexpected GEN {other:?}"),
        }
    }
    // 30 % of 100: a binomial with sd 4.6; these bounds fail about once in a million runs.
    assert!((8..=55).contains(&to_v2), "{to_v2} of 100 went to v2");

    // Rules on a header and a cookie route before any weight.
    s.put(
        "/functions/routed/aliases/prod",
        &json!({
            "version": "v1",
            "additional_version_weights": {},
            "additional_version_strategy": {"v2": {"combine_type": "and", "rules": [
                {"rule_type": "Header", "param": "x-beta", "op": "=", "value": "yes"},
                {"rule_type": "Cookie", "param": "tier", "op": "in", "value": "gold,silver"}
            ]}}
        }),
    )
    .expect(200);
    for _ in 0..5 {
        let e = env_of(
            &s,
            &prod,
            &[("x-beta", "yes"), ("Cookie", "a=1; tier=gold")],
        );
        assert_eq!(e.get("GEN").map(String::as_str), Some("2"));
        let e = env_of(&s, &prod, &[("x-beta", "yes"), ("Cookie", "tier=bronze")]);
        assert_eq!(e.get("GEN").map(String::as_str), Some("1"));
        let e = env_of(&s, &prod, &[]);
        assert_eq!(e.get("GEN").map(String::as_str), Some("1"));
    }
    let list = s.get("/functions/routed/aliases").json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let one = s.get("/functions/routed/aliases/prod").json();
    assert_eq!(one["version"], "v1");
    s.get("/functions/routed/aliases/nope")
        .expect_fss(404, "FSS.1053");
    s.invoke(
        &format!("{}:default:routed:!nope", s.cred.project_id),
        &json!({}),
    )
    .expect_fss(404, "FSS.1053");
}

fn async_list(s: &Server, name: &str, query: &str) -> Value {
    let r = s.get(&format!(
        "/functions/{name}/async-invocations?limit=500{query}"
    ));
    r.expect(200);
    r.json()
}

fn statuses(s: &Server, name: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for inv in async_list(s, name, "")["invocations"].as_array().unwrap() {
        *out.entry(inv["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

#[test]
fn thirty_async_events_all_succeed() {
    let s = server();
    s.create_fixture("worker", &unique("asy"), &[], json!({}));
    let mut ids = Vec::new();
    for i in 0..30 {
        let r = s.post("/functions/worker/invocations-async", &json!({"n": i}));
        r.expect(202);
        ids.push(r.json()["request_id"].as_str().unwrap().to_string());
    }
    let done = wait_until(Duration::from_secs(60), || {
        statuses(&s, "worker").get("SUCCESS") == Some(&30)
    });
    assert!(done, "not all succeeded: {:?}", statuses(&s, "worker"));
    let one = async_list(&s, "worker", &format!("&request_id={}", ids[3]));
    assert_eq!(one["count"], 1);
    assert_eq!(one["invocations"][0]["status"], "SUCCESS");
    let ok = async_list(&s, "worker", "&status=SUCCESS&limit=10");
    assert_eq!(ok["count"], 30);
    assert_eq!(ok["invocations"].as_array().unwrap().len(), 10);
    assert_eq!(ok["next_marker"], 10);

    s.post("/functions/nosuch/invocations-async", &json!({}))
        .expect_fss(404, "FSS.1051");
    s.req("POST", &s.api("/functions/worker/invocations-async"))
        .raw("{not json")
        .send()
        .expect_fss(400, "FSS.0406");
    let big = json!({"pad": "x".repeat(300 * 1024)});
    s.post("/functions/worker/invocations-async", &big)
        .expect_fss(413, "FSS.0413");
}

fn webhook() -> (String, mpsc::Receiver<Value>) {
    fgs_e2e::http_sink(8)
}

#[test]
fn retries_then_fail_then_destinations() {
    let s = server();
    s.create_fixture("flaky", &unique("rty"), &[], json!({}));
    s.create_fixture("sink", &unique("snk"), &[], json!({}));
    let (url, hook) = webhook();
    s.put(
        "/functions/flaky/async-invoke-config",
        &json!({"max_async_retry_attempts": 4}),
    )
    .expect_fss(400, "FSS.0400");
    let sink_urn = s.urn("sink");
    let cfg = s.put(
        "/functions/flaky/async-invoke-config",
        &json!({
            "max_async_retry_attempts": 2,
            "max_async_event_age_in_seconds": 600,
            "destination_config": {
                "on_failure": {"destination": "FunctionGraph", "param": json!({"func_urn": sink_urn}).to_string()},
                "on_success": {"destination": "HTTP", "param": json!({"url": url}).to_string()}
            }
        }),
    );
    cfg.expect(200);
    assert_eq!(
        s.get("/functions/flaky/async-invoke-config").json()["max_async_retry_attempts"],
        2
    );

    let failing = s.post(
        "/functions/flaky/invocations-async",
        &json!({"op": "error"}),
    );
    failing.expect(202);
    let id = failing.json()["request_id"].as_str().unwrap().to_string();
    let failed = wait_until(Duration::from_secs(30), || {
        async_list(&s, "flaky", &format!("&request_id={id}"))["invocations"][0]["status"] == "FAIL"
    });
    let rec = async_list(&s, "flaky", &format!("&request_id={id}"))["invocations"][0].clone();
    assert!(failed, "{rec}");
    assert_eq!(rec["attempts"], 3, "one try and two retries: {rec}");
    assert_eq!(rec["error_code"], 4002, "{rec}");
    assert!(
        rec["error_message"]
            .as_str()
            .unwrap()
            .contains("fixture raised"),
        "{rec}"
    );
    // The failure went on to the sink function as an async event of its own (which fails in
    // turn: the record carries the failing event, whose `op` the fixture obeys).
    let delivered = wait_until(Duration::from_secs(30), || {
        async_list(&s, "sink", "")["count"] == 1
    });
    assert!(delivered, "sink: {:?}", statuses(&s, "sink"));

    let ok = s.post(
        "/functions/flaky/invocations-async",
        &json!({"hello": "hook"}),
    );
    ok.expect(202);
    let ok_id = ok.json()["request_id"].as_str().unwrap().to_string();
    let record = hook
        .recv_timeout(Duration::from_secs(30))
        .expect("the webhook got the success record");
    assert_eq!(record["request_id"], ok_id.as_str(), "{record}");
    assert_eq!(record["condition"], "Success");
    assert_eq!(record["request_payload"]["hello"], "hook");
    assert_eq!(record["response_payload"]["hello"], "hook");

    s.delete("/functions/flaky/async-invoke-config").expect(204);
    s.get("/functions/flaky/async-invoke-config")
        .expect_fss(404, "FSS.0404");
}

#[test]
fn waiting_events_can_be_cancelled() {
    let s = server();
    s.create_fixture("paused", &unique("cnl"), &[], json!({}));
    // Disabled: events wait in the queue until they are cancelled or age out.
    s.put(
        "/functions/paused/config-max-instance",
        &json!({"max_instance_num": 0}),
    )
    .expect(200);
    let r = s.post("/functions/paused/invocations-async", &json!({}));
    r.expect(202);
    let id = r.json()["request_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    s.post("/functions/paused/cancel", &json!({"request_id": id}))
        .expect(200);
    let rec = async_list(&s, "paused", &format!("&request_id={id}"))["invocations"][0].clone();
    assert_eq!(rec["status"], "DISCARD", "{rec}");
    s.post("/functions/paused/cancel", &json!({"request_id": id}))
        .expect_fss(400, "FSS.0400");
    s.post("/functions/paused/cancel", &json!({"request_id": "nope"}))
        .expect_fss(404, "FSS.0404");
}

#[test]
fn accepted_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = || {
        ServerOpts::default()
            .data_dir(&data)
            .flag("--async-retry-base", "100ms")
    };
    let n = 20;
    {
        let s = Server::start(opts());
        s.create_fixture("slow", &unique("k9"), &[], json!({}));
        s.put(
            "/functions/slow/config-max-instance",
            &json!({"max_instance_num": 1}),
        )
        .expect(200);
        for _ in 0..n {
            s.post(
                "/functions/slow/invocations-async",
                &json!({"op": "sleep", "secs": "0.2"}),
            )
            .expect(202);
        }
        // Some run, most wait: then the platform dies mid-queue.
        std::thread::sleep(Duration::from_millis(500));
        s.kill9();
    }
    let s = Server::start(opts());
    let done = wait_until(Duration::from_secs(60), || {
        statuses(&s, "slow").get("SUCCESS") == Some(&n)
    });
    assert!(done, "after restart: {:?}", statuses(&s, "slow"));
}
