//! `fgs store copy`: a single SQLite node's data moved into a PostgreSQL store, then served from
//! there by a node with a fresh data dir: functions (Custom, Python, Node.js, HTTP), versions and
//! aliases, a dependency, a test event, timers (an active one fires there) and a pending async
//! event (it runs there).

use std::process::Command;
use std::time::Duration;

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

#[test]
fn a_single_node_moves_into_postgres_and_answers_as_before() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
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

    let out = copy(&data, &db.url, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("functions: 4"), "{said}");
    assert!(said.contains("pending async events: 1"), "{said}");
    // Once there is data, a second copy is refused unless forced.
    let again = copy(&data, &db.url, false);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let forced = copy(&data, &db.url, true);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(String::from_utf8_lossy(&forced.stdout).contains("kept as they were"));
    assert_eq!(db.query("SELECT COUNT(*) FROM functions"), "4");

    // A node on PostgreSQL with an empty data dir answers as the SQLite node did.
    let p = Server::start(ServerOpts::default().postgres(&db.url));
    let r = p.invoke(&urn, &json!({"after": "copy"}));
    r.expect(200);
    assert_eq!(r.json()["after"], "copy");
    for (fname, lang) in [(&py, "py"), (&node, "node")] {
        let r = p.invoke(&p.urn(fname), &json!({"after": "copy"}));
        r.expect(200);
        assert_eq!(r.json()["lang"], lang, "{}", r.text());
        assert_eq!(r.json()["in"]["after"], "copy", "{}", r.text());
    }
    let ev = json!({"httpMethod": "POST", "path": "/echo", "headers": {},
        "queryStringParameters": {}, "body": "{}", "isBase64Encoded": false,
        "pathParameters": {}, "requestContext": {}});
    let r = p.invoke(&p.urn(&web), &ev);
    r.expect_ok();
    assert_eq!(r.json()["statusCode"], 201, "{}", r.text());
    assert_eq!(r.json()["headers"]["x-answer"], "42", "{}", r.text());
    let v1 = format!("{}:default:{name}:v1", p.cred.project_id);
    p.invoke(&v1, &json!({})).expect(200);
    assert_eq!(
        p.get(&format!("/functions/{name}/aliases/live")).json(),
        alias_before
    );
    let deps = p.get(&format!("/dependencies/{dep_id}/version")).json();
    assert_eq!(deps["count"], 1, "{deps}");
    let events = p.get(&format!("/functions/{urn}/events")).json();
    assert_eq!(events["count"], 1, "{events}");
    let triggers = p.get(&format!("/triggers/{urn}")).json();
    assert_eq!(
        triggers.as_array().map(Vec::len),
        Some(1),
        "the timer came along: {triggers}"
    );
    // The timer fires on the new store: its events run the Python function.
    let ticked = wait_until(Duration::from_secs(20), || {
        let l = p.get(&format!("/functions/{py}/async-invocations?status=SUCCESS"));
        l.status == 200 && l.json()["count"].as_u64().unwrap_or(0) >= 1
    });
    assert!(
        ticked,
        "the copied timer fired on PostgreSQL: {}",
        p.get(&format!("/functions/{py}/async-invocations")).text()
    );
    // The pending event runs on the new store (its 3 s sleep included).
    let ran = wait_until(Duration::from_secs(40), || {
        p.get(&format!("/functions/{name}/async-invocations?request_id={pending}"))
            .json()["invocations"][0]["status"]
            == "SUCCESS"
    });
    assert!(
        ran,
        "the pending async event ran after the copy: {}",
        p.get(&format!("/functions/{name}/async-invocations?request_id={pending}"))
            .text()
    );
}
