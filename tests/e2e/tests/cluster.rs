//! Cluster mode (docs/cluster.md): what a node refuses at start, and three nodes on one
//! PostgreSQL and one NATS serving the same functions (fgs_e2e::cluster).

use std::time::{Duration, Instant};

use fgs_e2e::cluster::Cluster;
use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body};
use fgs_e2e::{b64, json, unique, wait_until, Auth, Server, ServerOpts, Value};

/// A start refused before anything is created: exit 1 with a message containing `says`.
fn refused(opts: ServerOpts, says: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let err = Server::try_start(opts.data_dir(&data))
        .err()
        .expect("the start was accepted");
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains(says), "{err}");
    assert!(!err.contains("secret"), "no password shown: {err}");
    assert!(!data.exists(), "nothing is created for a refused start");
}

/// `--nats` joins a cluster, whose nodes share a PostgreSQL store: with SQLite it is refused.
#[test]
fn nats_with_the_sqlite_store_is_refused_at_start() {
    refused(
        ServerOpts::default().flag("--nats", "nats://127.0.0.1:4222"),
        "--store postgres://",
    );
}

/// A PostgreSQL store is a cluster's, whose nodes follow each other over NATS: without
/// `--nats` it is refused, before the store is reached (this PostgreSQL does not exist).
#[test]
fn postgres_without_nats_is_refused_at_start() {
    refused(
        ServerOpts::default().flag("--store", "postgres://fgs:secret@127.0.0.1:1/fgs"),
        "give --nats nats://HOST:PORT",
    );
}

/// An unreachable NATS: a clear message within the connect timeout, exit 1, before the
/// store is opened (this PostgreSQL does not exist either).
#[test]
fn an_unreachable_nats_is_refused_at_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let start = Instant::now();
    refused(
        ServerOpts::default()
            .flag("--store", "postgres://fgs:secret@127.0.0.1:1/fgs")
            .flag("--nats", format!("nats://fgs:secret@127.0.0.1:{port}"))
            .flag("--nats-connect-timeout", "2s"),
        &format!("cannot connect to NATS at nats://127.0.0.1:{port}"),
    );
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
}

/// A Custom function whose every response is `response` (JSON, no single quote) and whose
/// log says `answering <tag> to <request id>`.
pub fn responding(tag: &str, response: &str) -> Vec<u8> {
    bootstrap_zip(&format!(
        r#"#!/bin/sh
API="http://${{RUNTIME_API_ADDR}}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o /dev/null "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\r\n')
  echo "answering {tag} to $id"
  curl -sS -o /dev/null -X POST -d '{response}' "$API/response/$id" || exit 1
done
"#
    ))
}

/// A Custom function answering `"<word>"`.
pub fn answering(word: &str) -> Vec<u8> {
    responding(word, &format!("\"{word}\""))
}

/// What node `s` answers for function `name` (a sync invocation).
fn answer(s: &Server, name: &str) -> Value {
    let r = s.post(&format!("/functions/{name}/invocations"), &json!({}));
    r.expect(200);
    r.json()
}

/// Created on A, invocable on B and C at once; an update of code on B is what A runs within
/// a second, though A had the old code warm.
#[test]
fn created_on_one_node_invoked_on_all_and_an_update_on_b_answers_on_a_within_a_second() {
    let Some(c) = Cluster::start(3) else { return };
    let name = unique("clu");
    c.node(0)
        .post("/functions", &custom_zip_body(&name, &answering("one")))
        .expect(200);
    for i in 0..3 {
        assert_eq!(answer(c.node(i), &name), json!("one"), "node {i}");
    }
    let mut worst = Duration::ZERO;
    for (round, word) in ["two", "three", "four"].into_iter().enumerate() {
        let start = Instant::now();
        c.node(1)
            .put(
                &format!("/functions/{name}/code"),
                &json!({"code_type": "zip", "code_filename": "code.zip",
                        "func_code": {"file": b64(&answering(word))}}),
            )
            .expect(200);
        let written = start.elapsed();
        let seen = wait_until(Duration::from_secs(5), || answer(c.node(0), &name) == json!(word));
        let took = start.elapsed() - written;
        assert!(seen, "round {round}: node 0 never answered {word}");
        println!("round {round}: update on node 1 took {written:?}; node 0 answered the new code {took:?} after it");
        worst = worst.max(took);
        assert_eq!(answer(c.node(2), &name), json!(word), "node 2 follows too");
    }
    assert!(worst < Duration::from_secs(1), "slowest {worst:?}");
}

/// An APIG route created on A answers on C; the log of a call run on A is read through B.
#[test]
fn an_apig_route_from_a_answers_on_c_and_a_log_from_a_reads_on_b() {
    let Some(c) = Cluster::start(3) else { return };
    let name = unique("route");
    c.node(0)
        .post(
            "/functions",
            &custom_zip_body(
                &name,
                &responding("routed", r#"{"statusCode":200,"body":"routed"}"#),
            ),
        )
        .expect(200);
    let urn = c.node(0).urn(&name);
    let path = format!("/{name}");
    let t = c.node(0).post(
        &format!("/triggers/{urn}"),
        &json!({
            "trigger_type_code": "APIG",
            "trigger_status": "ACTIVE",
            "event_data": {
                "name": "api_cluster", "path": path, "req_method": "GET", "match_mode": "NORMAL",
                "auth": "NONE", "type": 1, "protocol": "HTTPS", "group_id": "g1",
                "env_name": "RELEASE", "env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID",
                "func_info": {"timeout": 5000},
            },
        }),
    );
    t.expect(201);
    // Node 2 follows the trigger's change asynchronously: within a second, not at once.
    let c2 = c.node(2);
    let route = format!("/apig/{}{path}", c2.cred.project_id);
    let created = Instant::now();
    let answered = wait_until(Duration::from_secs(1), || {
        c2.req("GET", &route).auth(Auth::None).send().status == 200
    });
    let r = c2.req("GET", &route).auth(Auth::None).send();
    assert!(answered, "the route never answered on node 2: {}", r.text());
    println!("the route created on node 0 answered on node 2 {:?} after the 201", created.elapsed());
    assert_eq!(r.text(), "routed");

    let r = c.node(0).post(&format!("/functions/{name}/invocations"), &json!({}));
    r.expect(200);
    let rid = r.header("x-cff-request-id").expect("a request id");
    let b = c.node(1);
    let found = wait_until(Duration::from_secs(10), || {
        let l = b.get(&format!("/functions/{name}/logs?request_id={rid}"));
        l.status == 200 && l.json()["logs"].as_array().is_some_and(|a| a.len() == 1)
    });
    let logs = b.get(&format!("/functions/{name}/logs?request_id={rid}")).json();
    assert!(found, "the log of node 0's call is not on node 1: {logs}");
    let log = logs["logs"][0]["log"].as_str().unwrap_or_default();
    assert!(log.contains(&format!("answering routed to {rid}")), "{logs}");
}

/// The sum of a statistics list's values.
fn total(points: &Value) -> f64 {
    points
        .as_array()
        .map_or(0.0, |a| a.iter().filter_map(|p| p["value"].as_f64()).sum())
}

/// The statistics API of any node counts the whole cluster: calls made on A, B and C (2, 3
/// and 4) are counted by each node's statistics of the function, of the project and of the
/// month, and by the report of top functions, once the nodes have written their counts
/// (every 2 s); `/metrics` stays the node's own.
#[test]
fn statistics_read_on_any_node_count_the_calls_of_every_node() {
    let Some(c) = Cluster::start(3) else { return };
    let name = unique("stats");
    c.node(0)
        .post("/functions", &custom_zip_body(&name, &answering("counted")))
        .expect(200);
    for (i, calls) in [2, 3, 4].into_iter().enumerate() {
        for _ in 0..calls {
            assert_eq!(answer(c.node(i), &name), json!("counted"), "node {i}");
        }
    }
    for i in 0..3 {
        let s = c.node(i);
        let counted = wait_until(Duration::from_secs(15), || {
            total(&s.get(&format!("/functions/{name}/statistics/5")).json()["count"]) == 9.0
        });
        let st = s.get(&format!("/functions/{name}/statistics/5")).json();
        assert!(counted, "node {i} counts 9 calls: {st}");
        assert_eq!(total(&st["fail_count"]), 0.0, "{st}");
        let project = s
            .get("/functions/statistics?filter=monitor_data&period=5")
            .json();
        assert!(total(&project["statistics"]["count"]) >= 9.0, "{project}");
        let month = s
            .get("/functions/statistics?filter=monthly_report&option=0")
            .json();
        assert!(total(&month["count"]) >= 9.0, "{month}");
        let top = s.get("/function/report?type=count&limit=400").json();
        let ours = top["values"]
            .as_array()
            .and_then(|v| {
                v.iter()
                    .find(|e| e["key"].as_str().is_some_and(|k| k.ends_with(&format!(":{name}:latest"))))
            })
            .map(|e| e["value"].clone());
        assert_eq!(ours, Some(json!(9)), "{top}");
    }
    // /metrics is each node's own: node 2 ran 4 of the 9.
    let m = c.node(2).req("GET", "/metrics").send();
    m.expect(200);
    let line = m
        .text()
        .lines()
        .find(|l| {
            l.starts_with("fgs_invocations_total{")
                && l.contains(&name)
                && l.contains("outcome=\"success\"")
        })
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(line.ends_with(" 4"), "node 2's own count: {line:?}");
}
