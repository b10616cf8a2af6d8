//! The conformance suite for what uses code packages, settings and invocation logs.

use super::record;
use crate::*;

pub async fn package_reference_follows_the_records(store: &Store) {
    let rec = record("p1", "default", "f", 1);
    let sha = rec.code.sha256.clone();
    assert!(!store.package_referenced(&sha).await.expect("check"));
    store.create_function(rec, 10).await.expect("create");
    assert!(store.package_referenced(&sha).await.expect("check"));
    assert!(!store
        .package_referenced(&"f".repeat(64))
        .await
        .expect("check other"));
    store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete");
    assert!(!store.package_referenced(&sha).await.expect("check"));
}

pub async fn package_use_names_every_code_and_dependency_package_and_each_list(store: &Store) {
    use fgs_core::dependency::DependencyVersion;
    use fgs_core::flows::VersionRecord;
    let dep = |id: &str, sha: &str| DependencyVersion {
        id: id.into(),
        dep_id: format!("dep-{id}"),
        project: "p1".into(),
        name: format!("lib{id}"),
        runtime: "Python3.9".into(),
        description: String::new(),
        version: 0,
        file_name: "d.zip".into(),
        sha256: sha.into(),
        size: 1,
        created_ms: 1,
    };
    let (d1, d2) = ("d".repeat(64), "e".repeat(64));
    store
        .create_dependency_version(dep("one", &d1))
        .await
        .expect("dep one");
    store
        .create_dependency_version(dep("two", &d2))
        .await
        .expect("dep two");
    let mut f = record("p1", "default", "f", 1);
    f.spec.depend_version_list = vec!["two".into(), "one".into()];
    let old_code = f.code.sha256.clone();
    store.create_function(f.clone(), 10).await.expect("create");
    store
        .publish_version(
            VersionRecord {
                version: "v1".into(),
                description: String::new(),
                created_ms: 2,
                function: f.clone(),
            },
            5,
        )
        .await
        .expect("publish");
    // The latest code moves on and drops one dependency; the version keeps both.
    let mut g = store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("some");
    g.code.sha256 = "a".repeat(64);
    g.spec.depend_version_list = vec!["one".into()];
    let expected = g.revision;
    g.revision += 1;
    store.update_function(&g, expected).await.expect("update");

    let used = store.package_use().await.expect("package use");
    let want: std::collections::HashSet<String> =
        [old_code, "a".repeat(64), d1.clone(), d2.clone()].into();
    assert_eq!(used.packages, want);
    let mut lists = used.dependency_lists.clone();
    lists.sort();
    assert_eq!(lists, vec![vec![d1.clone()], vec![d2.clone(), d1.clone()]]);
    assert!(store
        .package_referenced(&d2)
        .await
        .expect("dependency package"));
}

pub async fn settings_are_replaced(store: &Store) {
    assert_eq!(store.get_setting("k").await.expect("get"), None);
    store.put_setting("k", "v1").await.expect("put");
    store.put_setting("k", "v2").await.expect("put again");
    assert_eq!(
        store.get_setting("k").await.expect("get"),
        Some("v2".to_owned())
    );
}

fn log(function: &str, rid: &str, started_ms: i64) -> NewInvocationLog {
    NewInvocationLog::new(
        "p",
        "default",
        function,
        "latest",
        rid,
        &["line of ", rid, "\n"],
        LogMeta {
            invoke_type: "sync",
            started_ms,
            duration_ms: 1.5,
            error_code: 0,
            truncated: false,
        },
    )
}

fn query(function: &str) -> LogQuery {
    LogQuery {
        project: "p".into(),
        package: "default".into(),
        function: function.into(),
        limit: 100,
        ..LogQuery::default()
    }
}

pub async fn logs_insert_query_page_and_purge(store: &Store) {
    store
        .insert_logs(vec![
            log("f", "r1", 1000),
            log("g", "r2", 2000),
            log("f", "r3", 3000),
            log("f", "r4", 4000),
        ])
        .await
        .expect("insert");
    let all = store.query_logs(query("f")).await.expect("query");
    let rids: Vec<_> = all.iter().map(|l| l.request_id.as_str()).collect();
    assert_eq!(rids, ["r1", "r3", "r4"]);
    assert_eq!(all[0].log, "line of r1\n");

    let page = store
        .query_logs(LogQuery {
            limit: 1,
            marker: all[0].id,
            ..query("f")
        })
        .await
        .expect("page");
    assert_eq!(page[0].request_id, "r3");
    let newest = store
        .query_logs(LogQuery {
            limit: 2,
            newest_first: true,
            ..query("f")
        })
        .await
        .expect("newest");
    assert_eq!(newest[0].request_id, "r4");
    let by_rid = store
        .query_logs(LogQuery {
            request_id: Some("r3".into()),
            ..query("f")
        })
        .await
        .expect("by rid");
    assert_eq!(by_rid.len(), 1);
    let window = store
        .query_logs(LogQuery {
            since_ms: Some(2000),
            until_ms: Some(4000),
            ..query("f")
        })
        .await
        .expect("window");
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].request_id, "r3");

    assert_eq!(store.purge_logs(3500).await.expect("purge"), 3);
    let left = store.query_logs(query("f")).await.expect("query");
    assert_eq!(left.len(), 1);
}

/// A batch larger than one multi-row statement (SQLite inserts 32 rows a statement, then the
/// rest one by one): every row comes back as given, in the batch's order.
pub async fn logs_batch_is_stored_exactly(store: &Store) {
    let rows: Vec<NewInvocationLog> = (0..75i64)
        .map(|i| {
            let rid = format!("req-{i:03}");
            let log = match i % 3 {
                0 => String::new(),
                1 => format!("Start {rid}\nausgabe: \u{e4}\u{f6}\u{fc} \u{1f600}\n"),
                _ => "x".repeat(i as usize * 13),
            };
            NewInvocationLog::new(
                "p",
                "default",
                "f",
                if i % 2 == 0 { "latest" } else { "v2" },
                &rid,
                &[&log, if i % 5 == 0 { "\n[cut]" } else { "" }],
                LogMeta {
                    invoke_type: if i % 4 == 0 { "async" } else { "sync" },
                    started_ms: 1_000_000 + i * 7,
                    duration_ms: i as f64 * 0.25 + 0.125,
                    error_code: if i % 6 == 0 { 4002 } else { 0 },
                    truncated: i % 5 == 0,
                },
            )
        })
        .collect();
    store.insert_logs(rows.clone()).await.expect("insert");
    let got = store.query_logs(query("f")).await.expect("query");
    assert_eq!(got.len(), rows.len());
    for (g, r) in got.iter().zip(&rows) {
        let want = InvocationLog {
            id: g.id,
            project: r.project().into(),
            package: r.package().into(),
            function: r.function().into(),
            version: r.version().into(),
            request_id: r.request_id().into(),
            invoke_type: r.meta.invoke_type.into(),
            started_ms: r.meta.started_ms,
            duration_ms: r.meta.duration_ms,
            error_code: r.meta.error_code,
            log: r.log().into(),
            truncated: r.meta.truncated,
        };
        assert_eq!(g, &want);
    }
    assert!(
        got.windows(2).all(|w| w[0].id < w[1].id),
        "ids grow with the batch's order"
    );
}

pub async fn nodes_heartbeat_live_and_forgotten(store: &Store) {
    let nodes = store.nodes();
    nodes
        .heartbeat("a", "http://a:1", 1_000)
        .await
        .expect("beat");
    nodes
        .heartbeat("b", "http://b:1", 1_000)
        .await
        .expect("beat");
    nodes
        .heartbeat("a", "http://a:2", 5_000)
        .await
        .expect("beat");
    // A late heartbeat never moves a node back in time.
    nodes
        .heartbeat("a", "http://a:2", 4_000)
        .await
        .expect("beat");
    let live = nodes.live_nodes(12_000, 10_000).await.expect("live");
    assert_eq!(
        live,
        [crate::NodeRecord {
            node_id: "a".into(),
            advertise_url: "http://a:2".into(),
            started_ms: 1_000,
            last_seen_ms: 5_000,
        }],
        "b is silent for 11 s, past the 10 s limit"
    );
    let ids = |v: Vec<crate::NodeRecord>| v.into_iter().map(|n| n.node_id).collect::<Vec<_>>();
    assert_eq!(
        ids(nodes.live_nodes(11_000, 10_000).await.expect("live")),
        ["a", "b"]
    );
    assert_eq!(nodes.forget_dead(12_000, 10_000).await.expect("forget"), 1);
    assert_eq!(nodes.forget_dead(12_000, 10_000).await.expect("forget"), 0);
    // A forgotten node that comes back starts anew.
    nodes
        .heartbeat("b", "http://b:1", 13_000)
        .await
        .expect("beat");
    let b = nodes.live_nodes(13_000, 10_000).await.expect("live");
    assert_eq!((b[1].node_id.as_str(), b[1].started_ms), ("b", 13_000));
}
