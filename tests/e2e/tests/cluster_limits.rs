//! Limits of the cluster (docs/cluster.md): `max_instance_num` counts the instances of every
//! node together.

use std::path::Path;
use std::time::{Duration, Instant};

use fgs_e2e::cluster::{nats_url, Cluster};
use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body, user_data};
use fgs_e2e::{json, unique};

/// An instance that, when it starts, notes in `$DIR/overlaps` every instance of the function
/// still running (their pids are in `$DIR/pids`; the sandbox is off, so they are host pids),
/// then adds its own pid; each invocation takes `$PAUSE` seconds.
const RECORDING: &str = r#"#!/bin/sh
for p in $(cat "$DIR/pids" 2>/dev/null); do
  kill -0 "$p" 2>/dev/null && echo "$$ started while $p runs" >> "$DIR/overlaps"
done
echo $$ >> "$DIR/pids"
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o /dev/null "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\r\n')
  sleep "$PAUSE"
  curl -sS -o /dev/null -X POST -d "\"$$\"" "$API/response/$id" || exit 1
done
"#;

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `max_instance_num` 1 and calls on all three nodes at once: never two instances of the
/// function at a time in the cluster, and every call is answered (by the one instance).
#[test]
fn max_instance_num_one_never_runs_two_instances_in_the_cluster() {
    let Some(nats) = nats_url() else { return };
    let Some(c) = Cluster::start_on(3, &nats, |o| o.idle_timeout("1s")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("one");
    let mut body = custom_zip_body(&name, &bootstrap_zip(RECORDING));
    body["user_data"] = json!(user_data(&[
        ("DIR", dir.path().to_str().expect("utf-8 path")),
        ("PAUSE", "0.1"),
    ]));
    c.node(0).post("/functions", &body).expect(200);
    c.node(1)
        .put(
            &format!("/functions/{name}/config-max-instance"),
            &json!({"max_instance_num": 1}),
        )
        .expect(200);
    let t0 = Instant::now();
    let answers: Vec<(usize, u16, String)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..9)
            .map(|i| {
                let (node, name) = (c.node(i % 3), &name);
                s.spawn(move || {
                    let r = node.post(&format!("/functions/{name}/invocations"), &json!({}));
                    (i % 3, r.status, r.text())
                })
            })
            .collect();
        calls.into_iter().map(|h| h.join().expect("call")).collect()
    });
    eprintln!("9 calls on 3 nodes answered in {:?}", t0.elapsed());
    for (node, status, text) in &answers {
        assert_eq!(*status, 200, "call on node {node}: {text}");
    }
    let pids = lines(&dir.path().join("pids"));
    assert!(!pids.is_empty(), "an instance ran");
    assert_eq!(
        lines(&dir.path().join("overlaps")),
        Vec::<String>::new(),
        "two instances at once (instances: {pids:?})"
    );
    // The nodes hold no place once their instances ended (idle timeout 1 s): another node can
    // start one.
    std::thread::sleep(Duration::from_secs(3));
    let r = c
        .node(2)
        .post(&format!("/functions/{name}/invocations"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        lines(&dir.path().join("overlaps")),
        Vec::<String>::new(),
        "two instances at once"
    );
}

/// p50 of `n` calls of `name` on node `s`, each answered by instance `pid`.
fn p50(s: &fgs_e2e::Server, name: &str, pid: &str, n: usize) -> Duration {
    let mut took: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = s.post(&format!("/functions/{name}/invocations"), &json!({}));
            let d = t.elapsed();
            r.expect(200);
            assert_eq!(r.json(), json!(pid));
            d
        })
        .collect();
    took.sort();
    took[n / 2]
}

/// `max_instance_num` 1 and the instance on node 0: calls on nodes 1 and 2 are forwarded
/// to node 0 and answered by that instance, with the headers and log tail a call on node 0
/// gets; none waits for the instance's idle timeout, and no second instance starts.
#[test]
fn a_call_where_the_limit_is_reached_is_served_by_the_node_holding_the_instance() {
    let Some(c) = Cluster::start(3) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("fwd");
    let mut body = custom_zip_body(&name, &bootstrap_zip(RECORDING));
    body["user_data"] = json!(user_data(&[
        ("DIR", dir.path().to_str().expect("utf-8 path")),
        ("PAUSE", "0"),
    ]));
    c.node(0).post("/functions", &body).expect(200);
    c.node(0)
        .put(
            &format!("/functions/{name}/config-max-instance"),
            &json!({"max_instance_num": 1}),
        )
        .expect(200);
    let first = c
        .node(0)
        .post(&format!("/functions/{name}/invocations"), &json!({}));
    first.expect(200);
    let pid = first.json().as_str().expect("the instance's pid").to_owned();
    for i in [1, 2] {
        let node = c.node(i);
        let r = node
            .req("POST", &node.api(&format!("/functions/{name}/invocations")))
            .json(&json!({}))
            .header("X-Cff-Log-Type", "tail")
            .send();
        r.expect(200);
        assert_eq!(r.json(), json!(pid), "node {i} answered by node 0's instance");
        for h in [
            "x-cff-request-id",
            "x-cff-invoke-summary",
            "x-cff-billing-duration",
            "x-cff-function-log",
            "x-is-func-err",
        ] {
            assert!(r.header(h).is_some(), "{h} missing on node {i}");
        }
    }
    let local = p50(c.node(0), &name, &pid, 30);
    let forwarded = p50(c.node(1), &name, &pid, 30);
    eprintln!("warm p50 (debug build): local {local:?}, forwarded {forwarded:?}");
    assert_eq!(lines(&dir.path().join("pids")), [pid], "one instance in all");
}

/// The parent and the state of process `pid` (`/proc/<pid>/stat`), if it exists.
fn parent_and_state(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((rest.next()?.parse().ok()?, state))
}

/// Whether `pid` runs (not a zombie) under process `ancestor`.
fn runs_under(pid: u32, ancestor: u32) -> bool {
    let Some((mut p, state)) = parent_and_state(pid) else {
        return false;
    };
    if state == 'Z' {
        return false;
    }
    for _ in 0..32 {
        if p == ancestor {
            return true;
        }
        match parent_and_state(p) {
            Some((pp, _)) if p > 1 => p = pp,
            _ => return false,
        }
    }
    false
}

/// How many instances (pids the function wrote to `pids`) run under each node's process.
fn instances_under(pids: &Path, nodes: &[u32]) -> Vec<usize> {
    let pids: Vec<u32> = lines(pids).iter().filter_map(|l| l.parse().ok()).collect();
    nodes
        .iter()
        .map(|&n| pids.iter().filter(|&&p| runs_under(p, n)).count())
        .collect()
}

/// Polls `f` every 100 ms until it holds; how long that took, or `None` past `limit`.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// What node `s` reports of the function's instances: started there now, and reserved.
fn reported(s: &fgs_e2e::Server, name: &str) -> (f64, f64) {
    let r = s.get(&format!("/functions/{name}/instancereports"));
    r.expect(200);
    let v = r.json();
    let value = |k: &str| v[k][0]["value"].as_f64().unwrap_or(-1.0);
    (value("instance_num"), value("reserved_instance_num"))
}

/// For 4 s (past the 3 s idle timeout: the instances are kept as reserved, not left over),
/// the nodes `nodes` run exactly `want` instances, at most one each, and say so in the API.
fn holds_steady(c: &Cluster, at: &[usize], nodes: &[u32], pids: &Path, name: &str, want: usize) {
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        let counts = instances_under(pids, nodes);
        assert_eq!(counts.iter().sum::<usize>(), want, "{counts:?}");
        assert!(counts.iter().all(|&n| n <= 1), "spread: {counts:?}");
    }
    let counts = instances_under(pids, nodes);
    for (&i, &n) in at.iter().zip(&counts) {
        let (started, reserved) = reported(c.node(i), name);
        assert_eq!(started, n as f64, "node {i} reports its own instances");
        assert_eq!(reserved, 2.0, "node {i} reports the cluster's reserved count");
    }
}

/// Reserved count 2 on three nodes: two instances in the cluster, on two nodes; after a
/// `kill -9` of a node holding one, two again on the two others within the node timeout.
#[test]
fn reserved_instances_are_that_many_in_the_cluster_and_restart_elsewhere_when_a_node_dies() {
    let Some(nats) = nats_url() else { return };
    let Some(mut c) = Cluster::start_on(3, &nats, |o| {
        o.idle_timeout("3s")
            .flag("--heartbeat-interval", "500ms")
            .flag("--node-timeout", "5s")
    }) else {
        return;
    };
    // Nodes started at once see each other from their next heartbeat on.
    std::thread::sleep(Duration::from_secs(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let name = unique("rsv");
    let mut body = custom_zip_body(&name, &bootstrap_zip(RECORDING));
    body["user_data"] = json!(user_data(&[
        ("DIR", dir.path().to_str().expect("utf-8 path")),
        ("PAUSE", "0"),
    ]));
    c.node(0).post("/functions", &body).expect(200);
    c.node(1)
        .put(
            &format!("/functions/{name}/reservedinstances"),
            &json!({"count": 2}),
        )
        .expect(200);
    let nodes: Vec<u32> = (0..3).map(|i| c.node(i).pid()).collect();
    let took = wait_until(Duration::from_secs(30), || {
        instances_under(&pids, &nodes).iter().sum::<usize>() == 2
    })
    .unwrap_or_else(|| panic!("two instances: {:?}", instances_under(&pids, &nodes)));
    eprintln!("2 reserved instances in the cluster {took:?} after the count was set");
    holds_steady(&c, &[0, 1, 2], &nodes, &pids, &name, 2);

    let counts = instances_under(&pids, &nodes);
    let holder = counts.iter().position(|&n| n == 1).expect("a node holds one");
    c.kill9(holder);
    let at: Vec<usize> = (0..3).filter(|&i| i != holder).collect();
    let survivors: Vec<u32> = at.iter().map(|&i| nodes[i]).collect();
    let took = wait_until(Duration::from_secs(20), || {
        instances_under(&pids, &survivors).iter().sum::<usize>() == 2
    })
    .unwrap_or_else(|| panic!("two again: {:?}", instances_under(&pids, &survivors)));
    eprintln!("node {holder} killed: 2 reserved instances on the others {took:?} later (node timeout 5 s)");
    // The node timeout, a heartbeat to notice, and a cold start on a loaded machine.
    assert!(
        took < Duration::from_secs(10),
        "within the node timeout and a few heartbeats: {took:?}"
    );
    holds_steady(&c, &at, &survivors, &pids, &name, 2);
}

/// `max_instance_num` from -1 (unlimited) to 1 while an instance runs on each of three nodes:
/// the instances claim places, the two that get none stop (they are idle), and one instance
/// is left in the cluster, which then serves the calls of every node.
#[test]
fn a_limit_set_on_an_unlimited_function_counts_the_instances_already_running() {
    let Some(c) = Cluster::start(3) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let name = unique("unl");
    let mut body = custom_zip_body(&name, &bootstrap_zip(RECORDING));
    body["user_data"] = json!(user_data(&[
        ("DIR", dir.path().to_str().expect("utf-8 path")),
        ("PAUSE", "0"),
    ]));
    c.node(0).post("/functions", &body).expect(200);
    let max = |n: i64| {
        c.node(0)
            .put(
                &format!("/functions/{name}/config-max-instance"),
                &json!({"max_instance_num": n}),
            )
            .expect(200);
    };
    max(-1);
    for i in 0..3 {
        c.node(i)
            .post(&format!("/functions/{name}/invocations"), &json!({}))
            .expect(200);
    }
    let nodes: Vec<u32> = (0..3).map(|i| c.node(i).pid()).collect();
    assert_eq!(instances_under(&pids, &nodes), [1, 1, 1], "one per node");

    max(1);
    let took = wait_until(Duration::from_secs(10), || {
        instances_under(&pids, &nodes).iter().sum::<usize>() == 1
    })
    .unwrap_or_else(|| panic!("one left: {:?}", instances_under(&pids, &nodes)));
    eprintln!("limit 1 set on 3 running instances: 1 left {took:?} later");
    for i in 0..3 {
        let r = c
            .node(i)
            .post(&format!("/functions/{name}/invocations"), &json!({}));
        assert_eq!(r.status, 200, "call on node {i}: {}", r.text());
        assert_eq!(
            instances_under(&pids, &nodes).iter().sum::<usize>(),
            1,
            "no instance started past the limit"
        );
    }
}

/// `max_instance_num` lowered from 3 to 1 while an idle instance runs on each of three nodes:
/// the places past the first one are given back on every node, one instance is left in the
/// cluster, and it serves the calls of every node.
#[test]
fn a_lowered_limit_leaves_that_many_instances_in_the_cluster() {
    let Some(c) = Cluster::start(3) else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pids = dir.path().join("pids");
    let name = unique("low");
    let mut body = custom_zip_body(&name, &bootstrap_zip(RECORDING));
    body["user_data"] = json!(user_data(&[
        ("DIR", dir.path().to_str().expect("utf-8 path")),
        ("PAUSE", "0"),
    ]));
    c.node(0).post("/functions", &body).expect(200);
    let max = |n: i64| {
        c.node(0)
            .put(
                &format!("/functions/{name}/config-max-instance"),
                &json!({"max_instance_num": n}),
            )
            .expect(200);
    };
    max(3);
    let nodes: Vec<u32> = (0..3).map(|i| c.node(i).pid()).collect();
    for i in 0..3 {
        c.node(i)
            .post(&format!("/functions/{name}/invocations"), &json!({}))
            .expect(200);
    }
    assert_eq!(instances_under(&pids, &nodes), [1, 1, 1], "one per node");

    max(1);
    let took = wait_until(Duration::from_secs(10), || {
        instances_under(&pids, &nodes).iter().sum::<usize>() == 1
    })
    .unwrap_or_else(|| panic!("one left: {:?}", instances_under(&pids, &nodes)));
    eprintln!("limit lowered from 3 to 1: 1 instance left {took:?} later");
    for i in 0..3 {
        let r = c
            .node(i)
            .post(&format!("/functions/{name}/invocations"), &json!({}));
        assert_eq!(r.status, 200, "call on node {i}: {}", r.text());
        assert_eq!(
            instances_under(&pids, &nodes).iter().sum::<usize>(),
            1,
            "no instance started past the limit"
        );
    }
}
