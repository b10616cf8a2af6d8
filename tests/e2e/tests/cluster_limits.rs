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
