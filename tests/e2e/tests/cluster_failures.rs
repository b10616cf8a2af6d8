//! Cluster mode when things fail (docs/cluster.md): a timer fires once per period for the
//! whole cluster and goes on when its node dies; async events survive a node's `kill -9`; a
//! NATS outage refuses writes, keeps invocations going and heals by itself.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use fgs_e2e::cluster::{Cluster, Nats};
use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body, user_data};
use fgs_e2e::{b64, json, unique, wait_until, Server, Value};

/// Appends each event's request id to `$RUNS` (one line per run), then answers.
const COUNTING: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o /dev/null "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\r\n')
  echo "$id" >> "$RUNS"
  sleep "${PAUSE:-0.05}"
  curl -sS -o /dev/null -X POST -d '"ok"' "$API/response/$id" || exit 1
done
"#;

fn runs_in(file: &std::path::Path) -> HashMap<String, usize> {
    let mut runs = HashMap::new();
    for id in std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
    {
        *runs.entry(id.to_string()).or_default() += 1;
    }
    runs
}

fn counting(s: &Server, name: &str, runs: &std::path::Path, pause: &str) {
    let mut body = custom_zip_body(name, &bootstrap_zip(COUNTING));
    body["user_data"] = json!(user_data(&[
        ("RUNS", runs.to_str().expect("utf-8 path")),
        ("PAUSE", pause)
    ]));
    s.post("/functions", &body).expect(200);
}

/// The async invocations of a function in the cluster (a timer firing is one).
fn listed(s: &Server, name: &str) -> Value {
    let r = s.get(&format!("/functions/{name}/async-invocations?limit=500"));
    r.expect(200);
    r.json()
}

/// Which node's scheduler fired the timer last (`timer fired` at debug level).
fn last_firer(c: &Cluster, alive: &[usize]) -> Option<usize> {
    alive
        .iter()
        .copied()
        .filter_map(|i| {
            let err = c.node(i).stderr();
            err.rfind("timer fired").map(|at| (i, at, err.len()))
        })
        // The node whose last firing line is nearest the end of its log.
        .min_by_key(|(_, at, len)| len - at)
        .map(|(i, _, _)| i)
}

/// `@every 2s` for 10 s fires 4 to 6 times in the whole cluster (not 3 times that), and goes
/// on firing once the node that fired it is killed.
#[test]
fn a_timer_fires_once_per_period_in_the_cluster_and_survives_its_node() {
    let Some(url) = fgs_e2e::cluster::nats_url() else { return };
    let Some(mut c) = Cluster::start_on(3, &url, |o| o.env("FGS_LOG", "info,fgs_triggers=debug"))
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    let name = unique("tick");
    counting(c.node(0), &name, &runs, "0.05");
    let urn = c.node(0).urn(&name);
    c.node(0)
        .post(
            &format!("/triggers/{urn}"),
            &json!({"trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
                    "event_data": {"name": "every2s", "schedule_type": "Cron",
                                   "schedule": "@every 2s", "user_event": "tick"}}),
        )
        .expect(201);
    std::thread::sleep(Duration::from_secs(10));
    let fired = listed(c.node(1), &name)["count"].as_u64().unwrap_or(0);
    println!("@every 2s over 10 s on 3 nodes: {fired} firings");
    assert!((4..=6).contains(&fired), "{fired} firings in 10 s");

    let victim = last_firer(&c, &[0, 1, 2]).expect("a node logged a firing");
    c.kill9(victim);
    let alive: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let before = listed(c.node(alive[0]), &name)["count"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(10));
    let after = listed(c.node(alive[0]), &name)["count"].as_u64().unwrap_or(0);
    println!("after node {victim} (the last to fire) was killed: {} firings in 10 s", after - before);
    assert!(
        (3..=6).contains(&(after - before)),
        "{} firings in the 10 s after the kill",
        after - before
    );
    let ran = wait_until(Duration::from_secs(30), || {
        runs_in(&runs).len() as u64 >= after.min(fired + 3)
    });
    assert!(ran, "the firings ran: {:?}", runs_in(&runs).len());
}

/// 500 async events accepted on all three nodes, one node `kill -9`ed half-way: all 500 end
/// SUCCESS, none whose completion was recorded runs again; the events the dead node held
/// run elsewhere once their lease (30 s) ends.
#[test]
fn async_events_spread_over_the_nodes_complete_once_across_a_kill_9() {
    let Some(mut c) = Cluster::start(3) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let runs_file = dir.path().join("runs");
    let name = unique("many");
    counting(c.node(0), &name, &runs_file, "0.3");
    c.node(0)
        .put(
            &format!("/functions/{name}/config-max-instance"),
            // Slow enough that the kill comes half-way: three instances in the cluster (the
            // limit counts every node's), 0.3 s a run.
            &json!({"max_instance_num": 3}),
        )
        .expect(200);
    let n = 500;
    let start = Instant::now();
    // One client per node, at once.
    let accepted: BTreeSet<String> = std::thread::scope(|sc| {
        let per_node: Vec<_> = (0..3)
            .map(|k| {
                let (node, name) = (c.node(k), &name);
                sc.spawn(move || {
                    (0..n)
                        .filter(|i| i % 3 == k)
                        .map(|i| {
                            let r = node.post(
                                &format!("/functions/{name}/invocations-async"),
                                &json!({"n": i}),
                            );
                            r.expect(202);
                            r.json()["request_id"].as_str().expect("request_id").to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        per_node
            .into_iter()
            .flat_map(|h| h.join().expect("accepting"))
            .collect()
    });
    assert_eq!(accepted.len(), n);
    println!("{n} accepted over 3 nodes in {:?}", start.elapsed());
    let half = wait_until(Duration::from_secs(120), || runs_in(&runs_file).len() >= n / 2);
    assert!(half, "events did not run: {}", runs_in(&runs_file).len());
    c.kill9(0);
    let finished: BTreeSet<String> = c
        .db
        .query("SELECT request_id FROM async_invocations WHERE status = 'SUCCESS'")
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(finished.len() < n, "the kill came after every event had finished");

    let b = c.node(1);
    let all_done = wait_until(Duration::from_secs(240), || {
        listed(b, &name)["invocations"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|i| i["status"] == "SUCCESS").count() == n)
    });
    let list = listed(b, &name);
    assert!(all_done, "not all SUCCESS: {}", list["count"]);
    println!("all 500 SUCCESS {:?} after the first was accepted", start.elapsed());
    assert_eq!(list["count"], n, "one row per accepted event");
    let runs = runs_in(&runs_file);
    let missing: Vec<_> = accepted.iter().filter(|id| !runs.contains_key(*id)).collect();
    assert!(missing.is_empty(), "never ran: {missing:?}");
    let again: Vec<_> = finished.iter().filter(|id| runs.get(*id) != Some(&1)).collect();
    assert!(again.is_empty(), "completed events ran again: {again:?}");
    let reruns: usize = runs.values().map(|c| c - 1).sum();
    println!(
        "kill -9 of node 0 with {} of {n} recorded finished; re-runs of unfinished events: {reruns}",
        finished.len()
    );
}

fn put_code(s: &Server, name: &str, word: &str) -> fgs_e2e::Resp {
    s.put(
        &format!("/functions/{name}/code"),
        &json!({"code_type": "zip", "code_filename": "code.zip",
                "func_code": {"file": b64(&super::cluster::answering(word))}}),
    )
}

fn answer(s: &Server, name: &str) -> Value {
    let r = s.post(&format!("/functions/{name}/invocations"), &json!({}));
    r.expect(200);
    r.json()
}

/// NATS stopped for a few seconds: writes answer 503 FSS.0503 naming NATS (nothing changes),
/// warm invocations go on; once it is back the nodes resync by themselves and an update on
/// one node answers on another within a second again.
#[test]
fn a_nats_outage_refuses_writes_keeps_invocations_and_heals_by_itself() {
    let Some(mut nats) = Nats::start() else { return };
    let Some(c) = Cluster::start_on(3, &nats.url(), |o| o) else { return };
    let name = unique("outage");
    c.node(0)
        .post("/functions", &custom_zip_body(&name, &super::cluster::answering("before")))
        .expect(200);
    for i in 0..3 {
        assert_eq!(answer(c.node(i), &name), json!("before"));
    }
    nats.stop();
    let refused = wait_until(Duration::from_secs(10), || {
        put_code(c.node(1), &name, "meanwhile").status == 503
    });
    assert!(refused, "writes are refused while NATS is down");
    let r = put_code(c.node(1), &name, "meanwhile");
    r.expect_fss(503, "FSS.0503");
    assert!(r.text().contains("NATS"), "{}", r.text());
    for i in 0..3 {
        assert_eq!(answer(c.node(i), &name), json!("before"), "warm call on node {i}");
    }
    std::thread::sleep(Duration::from_secs(3));
    nats.restart();
    let back = Instant::now();
    let mut last = String::new();
    let healed = wait_until(Duration::from_secs(20), || {
        let r = put_code(c.node(1), &name, "after");
        last = format!("{} {}", r.status, r.text());
        r.status == 200
    });
    assert!(healed, "writes are taken again once NATS is back: {last}");
    println!("writes taken again {:?} after NATS was back", back.elapsed());
    let written = Instant::now();
    let seen = wait_until(Duration::from_secs(5), || answer(c.node(0), &name) == json!("after"));
    assert!(seen, "node 0 follows again");
    println!("node 0 answered the update {:?} after it", written.elapsed());
    assert!(written.elapsed() < Duration::from_secs(1), "{:?}", written.elapsed());
    assert_eq!(answer(c.node(2), &name), json!("after"));
    for i in 0..3 {
        let err = c.node(i).stderr();
        assert!(err.contains("lost the connection to NATS"), "node {i}: {err}");
    }
}
