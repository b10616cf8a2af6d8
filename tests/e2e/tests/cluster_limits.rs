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
