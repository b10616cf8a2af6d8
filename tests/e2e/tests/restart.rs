//! Durability and shutdown: data survives `kill -9`; SIGTERM and SIGINT stop cleanly.

use std::time::Duration;

use fgs_e2e::{alive, instances, json, unique, wait_until, Server, ServerOpts};

#[test]
fn functions_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mark = unique("rst");
    let (config, code) = {
        let s = Server::start(ServerOpts::default().data_dir(&data));
        s.create_fixture(
            "durable",
            &mark,
            &[("KEPT", "yes")],
            json!({"memory_size": 256}),
        );
        s.put(
            "/functions/durable/config-max-instance",
            &json!({"max_instance_num": 3}),
        )
        .expect(200);
        s.invoke_pid("durable");
        let config = s.get("/functions/durable/config").json();
        let code = s.get("/functions/durable/code").json();
        s.kill9();
        (config, code)
    };

    let s = Server::start(ServerOpts::default().data_dir(&data));
    let list = s.get("/functions").json();
    assert_eq!(list["count"], 1, "{list}");
    let again = s.get("/functions/durable/config").json();
    for k in [
        "func_urn",
        "func_id",
        "memory_size",
        "user_data",
        "digest",
        "code_size",
        "last_modified",
    ] {
        assert_eq!(again[k], config[k], "{k} changed across the restart");
    }
    assert_eq!(
        s.get("/functions/durable/code").json()["digest"],
        code["digest"]
    );
    let env = s.invoke("durable", &json!({"op": "env"}));
    env.expect(200);
    assert!(env.text().contains("KEPT=yes"), "{}", env.text());
    assert!(env.text().contains("RUNTIME_MEMORY=256"), "{}", env.text());
}

fn stops_cleanly_on(signal: &str) {
    let s = Server::start(ServerOpts::default());
    let mark = unique("stop");
    s.create_fixture("stopper", &mark, &[], json!({}));
    let busy = s.invoke_pid("stopper");
    std::thread::scope(|sc| {
        // One instance in the middle of an invocation, whether it is drained or cut off, must
        // not keep fgs from exiting; a second one idle.
        sc.spawn(|| {
            s.req("POST", &s.api("/functions/stopper/invocations"))
                .json(&json!({"op": "sleep", "secs": "5"}))
                .try_send()
        });
        std::thread::sleep(Duration::from_millis(500));
        let idle = s.invoke_pid("stopper");
        assert_ne!(idle, busy);
        assert_eq!(instances(&mark).len(), 2);
        s.signal(signal);
        let status = s
            .wait_exit(Duration::from_secs(30))
            .expect("fgs did not exit within 30 s");
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after SIG{signal}: {status}"
        );
        assert!(!alive(idle));
    });
    assert!(!alive(busy));
    assert!(
        wait_until(Duration::from_secs(2), || instances(&mark).is_empty()),
        "bootstraps left behind after SIG{signal}: {:?}",
        instances(&mark)
    );
}

#[test]
fn sigterm_exits_0_and_stops_every_instance() {
    stops_cleanly_on("TERM");
}

#[test]
fn sigint_exits_0_and_stops_every_instance() {
    stops_cleanly_on("INT");
}

/// A Custom runtime answering every event with `"<tag>"`; each tag makes a different zip.
fn tagged_zip(tag: &str) -> Vec<u8> {
    fgs_e2e::fixture::bootstrap_zip(&format!(
        r#"#!/bin/sh
API="http://${{RUNTIME_API_ADDR}}/v1/runtime"
while :; do
  ID=$(curl -sS -D - -o /dev/null "$API/invocation/request" | sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]: *//p' | tr -d '\r')
  curl -sS -X POST -d '"{tag}"' "$API/invocation/response/$ID" >/dev/null || exit 1
done
"#
    ))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn names_in(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// [FGS] Code packages nothing uses any more (replaced code, deleted functions and dependency
/// versions) are removed at the next start; what functions, versions and dependencies use
/// stays, unpacked trees and merged dependency trees included.
#[test]
fn unused_code_packages_are_removed_at_the_next_start() {
    use fgs_e2e::fixture::{b64, custom_zip_body, zip_files};
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // Each code: the tag its function answers with, and its zip.
    let [k1, k2, k3, g] = ["k1", "k2", "k3", "g"].map(|t| {
        let tag = unique(t);
        let zip = tagged_zip(&tag);
        (tag, zip)
    });
    let dep_zip = |text: &str| zip_files(&[("lib/dep.txt", text.as_bytes(), 0o644)]);
    let (d1, d2) = (dep_zip(&unique("d1")), dep_zip(&unique("d2")));
    let answer = |s: &Server, urn: &str| s.invoke(urn, &json!({})).json();
    let code_body = |zip: &[u8], deps: serde_json::Value| json!({"code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(zip)}, "depend_version_list": deps});
    {
        let s = Server::start(ServerOpts::default().data_dir(&data));
        let dep = |zip: &[u8], name: &str| {
            let r = s.post(
                "/dependencies/version",
                &json!({"depend_file": b64(zip), "depend_type": "zip", "runtime": "Custom", "name": name}),
            );
            r.expect(200);
            r.json()
        };
        let (dv1, dv2) = (dep(&d1, "gclib"), dep(&d2, "gcold"));
        let mut body = custom_zip_body("kept", &k1.1);
        body["depend_version_list"] = json!([dv1["id"]]);
        s.post("/functions", &body).expect(200);
        assert_eq!(answer(&s, "kept"), json!(k1.0));
        s.post("/functions/kept/versions", &json!({"version": "v1"}))
            .expect(200);
        s.put("/functions/kept/code", &code_body(&k2.1, json!([])))
            .expect(200);
        assert_eq!(answer(&s, "kept"), json!(k2.0));
        s.put("/functions/kept/code", &code_body(&k3.1, json!([])))
            .expect(200);
        s.post("/functions", &custom_zip_body("gone", &g.1))
            .expect(200);
        assert_eq!(answer(&s, "gone"), json!(g.0));
        s.delete("/functions/gone").expect(204);
        let dep_id = dv2["dep_id"].as_str().expect("dep_id");
        s.delete(&format!("/dependencies/{dep_id}/version/1"))
            .expect(204);
        // Nothing is removed while fgs runs: an instance may still read its tree.
        assert_eq!(names_in(&data.join("packages")).len(), 6);
    }

    let s = Server::start(ServerOpts::default().data_dir(&data));
    let zips = |zs: &[&Vec<u8>]| {
        zs.iter()
            .map(|z| format!("{}.zip", sha256_hex(z)))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(names_in(&data.join("packages")), zips(&[&k1.1, &k3.1, &d1]));
    let unpacked = names_in(&data.join("unpacked"));
    for z in [&k2.1, &g.1] {
        assert!(!unpacked.contains(&sha256_hex(z)), "{unpacked:?}");
    }
    for z in [&k1.1, &d1] {
        assert!(unpacked.contains(&sha256_hex(z)), "{unpacked:?}");
    }
    assert_eq!(
        unpacked.iter().filter(|n| n.starts_with("merged-")).count(),
        1,
        "version v1's dependency tree stays: {unpacked:?}"
    );
    assert!(
        s.stderr().contains("removed unused code packages"),
        "{}",
        s.stderr()
    );
    assert_eq!(answer(&s, "kept"), json!(k3.0));
    let v1 = s.urn("kept").replace(":latest", ":v1");
    assert_eq!(answer(&s, &v1), json!(k1.0));
}

/// Appends each event's request id to the file `$RUNS` (one line per run), then answers.
const COUNTING_BOOTSTRAP: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o /dev/null "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\r\n')
  echo "$id" >> "$RUNS"
  sleep 0.05
  curl -sS -o /dev/null -X POST -d '"ok"' "$API/response/$id" || exit 1
done
"#;

fn runs_in(file: &std::path::Path) -> std::collections::HashMap<String, usize> {
    let mut runs = std::collections::HashMap::new();
    for id in std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
    {
        *runs.entry(id.to_string()).or_default() += 1;
    }
    runs
}

/// Issue 15's "done when": fgs killed with `kill -9` while 200 async events run, then restarted
/// on the same data dir. Every event ends SUCCESS exactly once, none is lost, and none whose
/// completion was recorded before the kill runs again; events cut off mid-run run again once
/// their lease (30 s) ends, which at-least-once allows. The sandbox is off so that the
/// function can count its runs in a file of the test's.
#[test]
fn async_events_complete_once_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let runs_file = dir.path().join("runs");
    let opts = || {
        ServerOpts::default()
            .data_dir(&data)
            .flag("--sandbox", "off")
    };
    let n = 200;
    let mut accepted = std::collections::BTreeSet::new();
    {
        let s = Server::start(opts());
        let mut body = fgs_e2e::fixture::custom_zip_body(
            "counted",
            &fgs_e2e::fixture::bootstrap_zip(COUNTING_BOOTSTRAP),
        );
        body["user_data"] = json!(fgs_e2e::fixture::user_data(&[(
            "RUNS",
            runs_file.to_str().expect("utf-8 path")
        )]));
        s.post("/functions", &body).expect(200);
        s.put(
            "/functions/counted/config-max-instance",
            &json!({"max_instance_num": 8}),
        )
        .expect(200);
        for i in 0..n {
            let r = s.post("/functions/counted/invocations-async", &json!({"n": i}));
            r.expect(202);
            let id = r.json()["request_id"]
                .as_str()
                .expect("request_id")
                .to_string();
            accepted.insert(id);
        }
        assert_eq!(accepted.len(), n);
        let started = wait_until(Duration::from_secs(120), || runs_in(&runs_file).len() >= 40);
        assert!(
            started,
            "events did not start: {:?}",
            runs_in(&runs_file).len()
        );
        s.kill9();
    }
    // What the killed fgs had recorded as finished: these must never run again.
    let finished: std::collections::BTreeSet<String> = {
        let db = rusqlite::Connection::open(data.join("fgs.db")).expect("open the database");
        let mut stmt = db
            .prepare("SELECT request_id FROM async_invocations WHERE status = 'SUCCESS'")
            .expect("prepare");
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("read");
        ids
    };
    assert!(
        finished.len() < n,
        "the kill came after every event had finished"
    );

    let s = Server::start(opts());
    let list = || {
        let r = s.get("/functions/counted/async-invocations?limit=500");
        r.expect(200);
        r.json()
    };
    let all_done = wait_until(Duration::from_secs(240), || {
        list()["invocations"]
            .as_array()
            .is_some_and(|a| a.iter().filter(|i| i["status"] == "SUCCESS").count() == n)
    });
    let listed = list();
    assert!(all_done, "not all SUCCESS after the restart: {listed}");
    assert_eq!(listed["count"], n, "one row per accepted event");
    let listed_ids: std::collections::BTreeSet<String> = listed["invocations"]
        .as_array()
        .expect("invocations")
        .iter()
        .map(|i| i["request_id"].as_str().expect("request_id").to_string())
        .collect();
    assert_eq!(
        listed_ids, accepted,
        "the listing is the accepted events, once each"
    );

    let runs = runs_in(&runs_file);
    let missing: Vec<_> = accepted
        .iter()
        .filter(|id| !runs.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "never ran: {missing:?}");
    let strangers: Vec<_> = runs.keys().filter(|id| !accepted.contains(*id)).collect();
    assert!(strangers.is_empty(), "runs of unknown ids: {strangers:?}");
    let again: Vec<_> = finished.iter().filter(|id| runs[*id] != 1).collect();
    assert!(
        again.is_empty(),
        "events whose completion was recorded ran again: {again:?}"
    );
    let reruns: usize = runs.values().map(|c| c - 1).sum();
    eprintln!(
        "kill -9 with {} of {n} events recorded finished; re-runs of unfinished events: {reruns}",
        finished.len()
    );
}

/// `--store` names the backend; what this fgs cannot open is refused before anything starts.
#[test]
fn an_unknown_store_is_refused_at_start() {
    for (value, says) in [
        ("postgres://fgs:pw@127.0.0.1:5432/fgs?sslmode=require", "without TLS"),
        ("postgres://fgs:pw@127.0.0.1:notaport/fgs", "not a PostgreSQL URL"),
        ("mysql", "\"sqlite\""),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let err = Server::try_start(ServerOpts::default().data_dir(&data).flag("--store", value))
            .err()
            .unwrap_or_else(|| panic!("--store {value} was accepted"));
        assert!(err.contains("exit status: 1"), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("pw@"), "the password is not shown: {err}");
        assert!(!data.exists(), "nothing is created for a refused store");
    }
}
