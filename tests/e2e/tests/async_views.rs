//! Views of async invocation and the log switches (issue 20, docs/api.md): the active events
//! of the queue, the async configs of every qualifier, and what the LTS and async-status log
//! switches map to.

use std::time::Duration;

use fgs_e2e::{json, wait_until, Server, ServerOpts, Value};

fn active(s: &Server, query: &str) -> Value {
    let r = s.get(&format!("/functions/held/active-async-invocations?{query}"));
    r.expect(200);
    r.json()
}

#[test]
fn active_invocations_are_the_waiting_and_running_ones() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("held", "held", &[], json!({}));
    // Disabled: its events wait in the queue.
    s.put("/functions/held/config-max-instance", &json!({"max_instance_num": 0}))
        .expect(200);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let r = s.post("/functions/held/invocations-async", &json!({"n": i}));
            r.expect(202);
            r.json()["request_id"].as_str().expect("request_id").to_owned()
        })
        .collect();
    assert!(wait_until(Duration::from_secs(10), || {
        active(&s, "status=WAIT")["count"] == json!(3)
    }));
    let all = active(&s, "");
    assert_eq!(all["count"], json!(3), "{all}");
    let page = active(&s, "limit=2");
    assert_eq!(page["invocations"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["next_marker"], json!(2));

    s.post("/functions/held/cancel", &json!({"request_id": ids[0]}))
        .expect(200);
    let left = active(&s, "");
    assert_eq!(left["count"], json!(2), "{left}");
    let listed: Vec<&str> = left["invocations"]
        .as_array()
        .expect("invocations")
        .iter()
        .filter_map(|i| i["request_id"].as_str())
        .collect();
    assert!(!listed.contains(&ids[0].as_str()), "{left}");

    s.get("/functions/held/active-async-invocations?status=SUCCESS")
        .expect_fss(400, "FSS.0400");
    s.get("/functions/nope/active-async-invocations")
        .expect_fss(404, "FSS.1051");
}

#[test]
fn async_configs_cover_every_qualifier_and_log_switches_name_the_stores() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("cfg", "cfg", &[], json!({}));
    let none = s.get("/functions/cfg/async-invoke-configs");
    none.expect(200);
    assert_eq!(none.json()["count"], json!(0));

    s.put("/functions/cfg/async-invoke-config", &json!({"max_async_retry_attempts": 1}))
        .expect(200);
    s.post("/functions/cfg/versions", &json!({"version": "v1"}))
        .expect(200);
    s.put("/functions/cfg/async-invoke-config", &json!({"max_async_retry_attempts": 2}))
        .expect(200);
    let all = s.get("/functions/cfg/async-invoke-configs");
    all.expect(200);
    let all = all.json();
    assert_eq!(all["count"], json!(2), "{all}");
    let by_urn: Vec<(String, Value)> = all["async_invoke_configs"]
        .as_array()
        .expect("configs")
        .iter()
        .map(|c| {
            let urn = c["func_urn"].as_str().unwrap_or_default();
            (urn.rsplit(':').next().unwrap_or_default().to_owned(), c["max_async_retry_attempts"].clone())
        })
        .collect();
    assert_eq!(
        by_urn,
        [("latest".to_owned(), json!(2)), ("v1".to_owned(), json!(1))]
    );

    s.post("/functions/enable-lts-logs", &json!({})).expect(200);
    let lts = s.get("/functions/cfg/lts-log-detail");
    lts.expect(200);
    assert_eq!(lts.json()["group_name"], json!("fgs-invocation-logs"));
    s.get("/functions/nope/lts-log-detail").expect_fss(404, "FSS.1051");
    s.post("/functions/enable-async-status-logs", &json!({})).expect(200);
    let status = s.get("/functions/async-status-log-detail");
    status.expect(200);
    assert_eq!(status.json()["stream_name"], json!(s.cred.project_id));
}
