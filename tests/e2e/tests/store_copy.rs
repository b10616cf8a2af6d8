//! `fgs store copy`: a single SQLite node's data moved into a PostgreSQL store, then served from
//! there by a node with a fresh data dir, and by a cluster of three: functions (Custom, Python,
//! Node.js, HTTP), versions and aliases, an APIG trigger, a dependency, a test event, timers (an
//! active one fires there, once per period for the cluster) and a pending async event (it runs
//! there, once).

use std::process::Command;
use std::time::Duration;

use fgs_e2e::cluster::{nats_url, Cluster};
use fgs_e2e::fixture::{b64, zip_files};
use fgs_e2e::postgres::TestDatabase;
use fgs_e2e::*;

fn copy(from: &std::path::Path, to: &str, force: bool) -> std::process::Output {
    let mut cmd = Command::new(fgs_bin());
    cmd.args(["store", "copy", "--from"]).arg(from).args(["--to", to]);
    if force {
        cmd.arg("--force");
    }
    cmd.output().expect("fgs store copy runs")
}

/// What the single node held, for the checks on the stores it is copied into.
struct Source {
    /// Its data dir, stopped (`kill -9`) with an async event running.
    data: std::path::PathBuf,
    /// The fixture function, with version v1 and alias `live`, a test event and an hourly
    /// timer (disabled); its pending event.
    name: String,
    urn: String,
    pending: String,
    alias_before: Value,
    /// Python (with an active `@every 3s` timer), Node.js and HTTP functions.
    py: String,
    node: String,
    web: String,
    dep_id: String,
    /// An APIG route to the HTTP function, and its answer on the source.
    route: String,
    route_before: (u16, Option<String>, Value),
}

/// An APIG call without credentials: status, `x-answer` and what the HTTP function saw.
fn apig(s: &Server, route: &str) -> (u16, Option<String>, Value) {
    let r = s.req("GET", route).auth(Auth::None).send();
    let seen = serde_json::from_str::<Value>(&r.text()).unwrap_or(Value::Null);
    (
        r.status,
        r.header("x-answer"),
        json!({"method": seen["method"], "query": seen["query"], "body": seen["body"]}),
    )
}

/// A SQLite node with functions of every kind and the rest, killed (`kill -9`) while an async
/// event runs, its data in `dir`.
fn single_node(dir: &std::path::Path) -> Source {
    let data = dir.join("data");
    // The SQLite node, whatever FGS_TEST_STORE says: it is what is being moved.
    let s = Server::start(ServerOpts::default().data_dir(&data).flag("--store", "sqlite"));
    let name = unique("moved");
    s.create_fixture(&name, &name, &[], json!({}));
    s.post(&format!("/functions/{name}/versions"), &json!({"version": "v1"}))
        .expect(200);
    s.post(
        &format!("/functions/{name}/aliases"),
        &json!({"name": "live", "version": "v1"}),
    )
    .expect(200);
    let dep = zip_files(&[("bin/dep-hello", b"#!/bin/sh\necho dep\n", 0o755)]);
    let r = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&dep), "depend_type": "zip", "runtime": "Custom", "name": "greeter"}),
    );
    r.expect(200);
    let dep_id = r.json()["dep_id"].as_str().expect("dep_id").to_owned();
    let urn = s.urn(&name);
    s.post(
        &format!("/functions/{urn}/events"),
        &json!({"name": "ev", "content": b64(b"{\"saved\":1}")}),
    )
    .expect(200);
    s.post(
        &format!("/triggers/{urn}"),
        &json!({"trigger_type_code": "TIMER", "trigger_status": "DISABLED",
                "event_data": {"name": "hourly", "schedule_type": "Rate", "schedule": "1h"}}),
    )
    .expect(201);
    // An event caught running when the node dies: pending, to be run by the next store.
    let r = s.post(
        &format!("/functions/{name}/invocations-async"),
        &json!({"op": "sleep", "secs": "3"}),
    );
    r.expect(202);
    let pending = r.json()["request_id"].as_str().expect("id").to_owned();
    let running = wait_until(Duration::from_secs(20), || {
        s.get(&format!("/functions/{name}/async-invocations?request_id={pending}"))
            .json()["invocations"][0]["status"]
            == "RUNNING"
    });
    assert!(running, "the event started");
    // Functions of the built-in runtimes come along too, code and all.
    let (py, node) = (unique("moved-py"), unique("moved-node"));
    for (fname, runtime, file, code) in [
        (&py, "Python3.10", "index.py", "def handler(event, context):\n    return {'lang': 'py', 'in': event}\n"),
        (&node, "Node.js20.15", "index.js", "exports.handler = async (event) => ({lang: 'node', in: event});\n"),
    ] {
        let zip = zip_files(&[(file, code.as_bytes(), 0o644)]);
        s.post(
            "/functions",
            &json!({"func_name": fname, "package": "default", "runtime": runtime,
                    "handler": "index.handler", "memory_size": 128, "timeout": 30,
                    "code_type": "zip", "code_filename": "code.zip",
                    "func_code": {"file": b64(&zip)}}),
        )
        .expect(200);
    }
    // And an HTTP function (the fixture server of runtimes::, answering 201 with x-answer).
    let web = unique("moved-web");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http_fn");
    let server_py = std::fs::read(fixture.join("server.py")).expect("the HTTP fixture");
    let zip = zip_files(&[
        ("bootstrap", b"exec /usr/bin/python3 -u server.py\n", 0o644),
        ("server.py", &server_py, 0o644),
    ]);
    s.post(
        "/functions",
        &json!({"func_name": web, "runtime": "http", "handler": "bootstrap",
                "memory_size": 128, "timeout": 10, "code_type": "zip",
                "code_filename": "web.zip", "func_code": {"file": b64(&zip)}}),
    )
    .expect(200);
    let alias_before = s.get(&format!("/functions/{name}/aliases/live")).json();
    // An APIG route to the HTTP function, and how it answers on the source.
    let route = format!("/apig/{}/{web}", s.cred.project_id);
    s.post(
        &format!("/triggers/{}", s.urn(&web)),
        &json!({"trigger_type_code": "APIG", "trigger_status": "ACTIVE",
                "event_data": {"name": "web_route", "path": format!("/{web}"), "req_method": "GET",
                    "match_mode": "NORMAL", "auth": "NONE", "type": 1, "protocol": "HTTPS",
                    "group_id": "g1", "env_name": "RELEASE",
                    "env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "func_info": {"timeout": 5000}}}),
    )
    .expect(201);
    let route_before = apig(&s, &route);
    assert_eq!(
        (route_before.0, route_before.1.as_deref()),
        (201, Some("42")),
        "the route reaches the HTTP function on the source: {route_before:?}"
    );
    assert_eq!(route_before.2["method"], "GET", "{route_before:?}");
    // A timer that fires there: created last, so that the node is killed long before its
    // first firing (3 s) and the copy carries its plan, not an event of it.
    let py_urn = s.urn(&py);
    s.post(
        &format!("/triggers/{py_urn}"),
        &json!({"trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
                "event_data": {"name": "every3s", "schedule_type": "Cron",
                               "schedule": "@every 3s", "user_event": "tick"}}),
    )
    .expect(201);
    s.kill9();
    Source {
        data,
        name,
        urn,
        py,
        node,
        web,
        dep_id,
        pending,
        alias_before,
        route,
        route_before,
    }
}

/// `p` serves what the single node served, as it did (the timer and the pending event aside).
fn answers_as_before(p: &Server, src: &Source) {
    let r = p.invoke(&src.urn, &json!({"after": "copy"}));
    r.expect(200);
    assert_eq!(r.json()["after"], "copy");
    for (fname, lang) in [(&src.py, "py"), (&src.node, "node")] {
        let r = p.invoke(&p.urn(fname), &json!({"after": "copy"}));
        r.expect(200);
        assert_eq!(r.json()["lang"], lang, "{}", r.text());
        assert_eq!(r.json()["in"]["after"], "copy", "{}", r.text());
    }
    let ev = json!({"httpMethod": "POST", "path": "/echo", "headers": {},
        "queryStringParameters": {}, "body": "{}", "isBase64Encoded": false,
        "pathParameters": {}, "requestContext": {}});
    let r = p.invoke(&p.urn(&src.web), &ev);
    r.expect_ok();
    assert_eq!(r.json()["statusCode"], 201, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-answer"], "42", "{}", r.text());
    let v1 = format!("{}:default:{}:v1", p.cred.project_id, src.name);
    p.invoke(&v1, &json!({})).expect(200);
    assert_eq!(
        p.get(&format!("/functions/{}/aliases/live", src.name)).json(),
        src.alias_before
    );
    let deps = p.get(&format!("/dependencies/{}/version", src.dep_id)).json();
    assert_eq!(deps["count"], 1, "{deps}");
    let events = p.get(&format!("/functions/{}/events", src.urn)).json();
    assert_eq!(events["count"], 1, "{events}");
    let triggers = p.get(&format!("/triggers/{}", src.urn)).json();
    assert_eq!(
        triggers.as_array().map(Vec::len),
        Some(1),
        "the timer came along: {triggers}"
    );
    assert_eq!(apig(p, &src.route), src.route_before, "the APIG route answers as before");
}

#[test]
fn a_single_node_moves_into_postgres_and_answers_as_before() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = single_node(dir.path());

    let out = copy(&src.data, &db.url, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("functions: 4"), "{said}");
    assert!(said.contains("pending async events: 1"), "{said}");
    // Once there is data, a second copy is refused unless forced.
    let again = copy(&src.data, &db.url, false);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let forced = copy(&src.data, &db.url, true);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(String::from_utf8_lossy(&forced.stdout).contains("kept as they were"));
    assert_eq!(db.query("SELECT COUNT(*) FROM functions"), "4");

    // A node on PostgreSQL with an empty data dir answers as the SQLite node did.
    let p = Server::start(ServerOpts::default().postgres(&db.url));
    answers_as_before(&p, &src);
    // The timer fires on the new store: its events run the Python function.
    let ticked = wait_until(Duration::from_secs(20), || {
        let l = p.get(&format!("/functions/{}/async-invocations?status=SUCCESS", src.py));
        l.status == 200 && l.json()["count"].as_u64().unwrap_or(0) >= 1
    });
    assert!(
        ticked,
        "the copied timer fired on PostgreSQL: {}",
        p.get(&format!("/functions/{}/async-invocations", src.py)).text()
    );
    // The pending event runs on the new store (its 3 s sleep included).
    let ran = wait_until(Duration::from_secs(40), || {
        p.get(&format!(
            "/functions/{}/async-invocations?request_id={}",
            src.name, src.pending
        ))
        .json()["invocations"][0]["status"]
            == "SUCCESS"
    });
    assert!(
        ran,
        "the pending async event ran after the copy: {}",
        p.get(&format!(
            "/functions/{}/async-invocations?request_id={}",
            src.name, src.pending
        ))
        .text()
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The single node copied into an empty cluster of three (issue 16's "moving up"): every node
/// answers as the source did, the pending event runs once in the cluster, and the copied
/// `@every 3s` timer fires once per period for the cluster, not once per node.
#[test]
fn a_single_node_moves_into_a_three_node_cluster_and_answers_on_every_node() {
    let Some(nats) = nats_url() else { return };
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let src = single_node(dir.path());
    let out = copy(&src.data, &db.url, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("functions: 4"), "{said}");
    assert!(said.contains("pending async events: 1"), "{said}");

    let c = Cluster::start_with(db, 3, &nats, |o| o);
    for i in 0..c.len() {
        answers_as_before(c.node(i), &src);
    }

    // The pending event runs once in the cluster: one invocation log of it, whichever node
    // took it (every run that finishes writes one).
    let runs = || {
        c.db.query(&format!(
            "SELECT COUNT(*) FROM invocation_logs WHERE request_id = '{}'",
            src.pending
        ))
    };
    let status = |i: usize| {
        c.node(i)
            .get(&format!(
                "/functions/{}/async-invocations?request_id={}",
                src.name, src.pending
            ))
            .json()["invocations"][0]["status"]
            .clone()
    };
    let ran = wait_until(Duration::from_secs(40), || {
        status(1) == "SUCCESS" && runs() != "0"
    });
    assert!(ran, "the pending event ran in the cluster: {}", status(1));
    // Longer than a run of it (3 s): a second run would have logged by now.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(runs(), "1", "the pending event ran exactly once");
    for i in 0..c.len() {
        assert_eq!(status(i), "SUCCESS", "node {i}");
    }

    // The timer: its firings are async events of the Python function, stamped when fired.
    let fired = |from: i64, to: i64| {
        c.db.query(&format!(
            "SELECT COUNT(*) FROM async_invocations a JOIN functions f ON f.id = a.function_id
             WHERE f.name = '{}' AND a.created_ms >= {from} AND a.created_ms < {to}",
            src.py
        ))
        .parse::<u32>()
        .expect("a count")
    };
    let started = wait_until(Duration::from_secs(20), || fired(0, i64::MAX) >= 1);
    assert!(started, "the copied timer fired in the cluster");
    let t0 = now_ms();
    std::thread::sleep(Duration::from_secs(12));
    let n = fired(t0, now_ms());
    println!("the copied @every 3s timer fired {n} times in 12 s on 3 nodes");
    assert!(
        (3..=5).contains(&n),
        "once per period for the cluster (4 instants in 12 s; once per node would be 12): {n}"
    );
    let ok = c
        .node(2)
        .get(&format!("/functions/{}/async-invocations?status=SUCCESS", src.py));
    assert!(ok.json()["count"].as_u64().unwrap_or(0) >= 3, "{}", ok.text());
}
