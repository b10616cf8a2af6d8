//! The conformance suite for functions, versions, aliases, settings, dependency packages and
//! invocation logs.

use super::{alias, names, record, version};
use crate::*;

pub async fn create_then_get_returns_the_same_record(store: &Store) {
    let rec = record("p1", "default", "hello", 1000);
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let got = store
        .get_function("p1", "default", "hello")
        .await
        .expect("get");
    assert_eq!(got, Some(rec));
    let missing = store
        .get_function("p1", "other", "hello")
        .await
        .expect("get missing");
    assert_eq!(missing, None);
}

pub async fn list_pages_in_creation_order_with_marker_and_count(store: &Store) {
    // Inserted out of creation order, and two in the same millisecond: the listing must follow
    // created_ms, then insertion.
    for (name, pkg, ms) in [
        ("c", "default", 3),
        ("a", "default", 1),
        ("b", "tools", 2),
        ("d", "tools", 3),
        ("e", "default", 5),
    ] {
        store
            .create_function(record("p1", pkg, name, ms), 100)
            .await
            .expect("create");
    }
    store
        .create_function(record("p2", "default", "other", 1), 100)
        .await
        .expect("create in another project");

    let first = store
        .list_functions("p1", None, 0, 2)
        .await
        .expect("page 1");
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!((first.next_marker, first.count), (2, 5));

    let second = store
        .list_functions("p1", None, first.next_marker, 2)
        .await
        .expect("page 2");
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!((second.next_marker, second.count), (4, 5));

    let last = store
        .list_functions("p1", None, 4, 2)
        .await
        .expect("page 3");
    assert_eq!(names(&last), ["e"]);
    assert_eq!((last.next_marker, last.count), (5, 5));

    let beyond = store
        .list_functions("p1", None, 9, 2)
        .await
        .expect("past the end");
    assert!(beyond.functions.is_empty());
    assert_eq!((beyond.next_marker, beyond.count), (9, 5));

    let tools = store
        .list_functions("p1", Some("tools"), 0, 10)
        .await
        .expect("package filter");
    assert_eq!(names(&tools), ["b", "d"]);
    assert_eq!((tools.next_marker, tools.count), (2, 2));

    let huge = store
        .list_functions("p1", None, 0, u64::MAX)
        .await
        .expect("max_items beyond i64 is clamped, not negative");
    assert_eq!(huge.functions.len(), 5);
}

pub async fn create_refuses_an_existing_name(store: &Store) {
    store
        .create_function(record("p1", "default", "f", 1), 10)
        .await
        .expect("create");
    let err = store
        .create_function(record("p1", "default", "f", 2), 10)
        .await
        .expect_err("same name must be refused");
    assert!(
        matches!(&err, StoreError::FunctionExists { name, .. } if name == "f"),
        "{err:?}"
    );
    // The same name in another package or project is a different function.
    store
        .create_function(record("p1", "pkg2", "f", 3), 10)
        .await
        .expect("other package");
    store
        .create_function(record("p2", "default", "f", 4), 10)
        .await
        .expect("other project");
}

pub async fn create_refuses_beyond_the_project_quota(store: &Store) {
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        store
            .create_function(record("p1", "default", name, i as i64), 2)
            .await
            .expect("under quota");
    }
    let err = store
        .create_function(record("p1", "other", "c", 9), 2)
        .await
        .expect_err("third function must be refused");
    assert!(
        matches!(&err, StoreError::QuotaExceeded { project, limit: 2 } if project == "p1"),
        "{err:?}"
    );
    assert_eq!(
        store
            .list_functions("p1", None, 0, 10)
            .await
            .expect("list")
            .count,
        2
    );
    // The quota is per project.
    store
        .create_function(record("p2", "default", "c", 9), 2)
        .await
        .expect("other project has room");
}

pub async fn update_is_optimistic(store: &Store) {
    let mut rec = record("p1", "default", "f", 1);
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");

    rec.spec.memory_size = 256;
    rec.revision = 2;
    rec.modified_ms = 50;
    store.update_function(&rec, 1).await.expect("update");
    let got = store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(got, rec);

    // A second writer that read revision 1 loses.
    let mut stale = record("p1", "default", "f", 1);
    stale.revision = 2;
    stale.spec.memory_size = 512;
    let err = store
        .update_function(&stale, 1)
        .await
        .expect_err("stale revision must conflict");
    assert!(
        matches!(err, StoreError::Conflict { expected: 1, .. }),
        "{err:?}"
    );
    let got = store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(got.spec.memory_size, 256, "the loser must not overwrite");

    let ghost = record("p1", "default", "ghost", 1);
    let err = store
        .update_function(&ghost, 1)
        .await
        .expect_err("missing function");
    assert!(
        matches!(err, StoreError::FunctionNotFound { .. }),
        "{err:?}"
    );
}

pub async fn delete_returns_the_record_once(store: &Store) {
    let rec = record("p1", "default", "f", 1);
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let deleted = store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete");
    assert_eq!(deleted, Some(rec));
    assert_eq!(
        store.get_function("p1", "default", "f").await.expect("get"),
        None
    );
    let again = store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete again");
    assert_eq!(again, None);
    // The name is free again.
    store
        .create_function(record("p1", "default", "f", 2), 10)
        .await
        .expect("re-create");
}

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

pub async fn settings_are_replaced(store: &Store) {
    assert_eq!(store.get_setting("k").await.expect("get"), None);
    store.put_setting("k", "v1").await.expect("put");
    store.put_setting("k", "v2").await.expect("put again");
    assert_eq!(
        store.get_setting("k").await.expect("get"),
        Some("v2".to_owned())
    );
}

pub async fn concurrent_creates_respect_the_quota(store: &Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_function(record("p1", "default", &format!("f{i}"), i), 3)
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task joins") {
            Ok(()) => ok += 1,
            Err(StoreError::QuotaExceeded { .. }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 3);
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

pub async fn versions_publish_limit_and_alias_guard(store: &Store) {
    let rec = record("p", "default", "f", 1);
    store.create_function(rec.clone(), 10).await.unwrap();
    store
        .publish_version(version(&rec, "v1", 2), 2)
        .await
        .unwrap();
    assert!(matches!(
        store.publish_version(version(&rec, "v1", 3), 2).await,
        Err(StoreError::VersionExists { .. })
    ));
    store
        .publish_version(version(&rec, "v2", 3), 2)
        .await
        .unwrap();
    assert!(matches!(
        store.publish_version(version(&rec, "v3", 4), 2).await,
        Err(StoreError::TooManyVersions { .. })
    ));
    let names: Vec<_> = store
        .list_versions("p", "default", "f")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(names, ["v1", "v2"]);

    // An alias may route only to versions that exist; a version it routes to stays.
    assert!(matches!(
        store
            .put_alias("p", "default", "f", alias("a", "v9", None), true, 10)
            .await,
        Err(StoreError::VersionNotFound { .. })
    ));
    store
        .put_alias("p", "default", "f", alias("a", "v1", Some("v2")), true, 10)
        .await
        .unwrap();
    assert!(matches!(
        store.delete_version("p", "default", "f", "v2").await,
        Err(StoreError::VersionInUse { .. })
    ));
    store
        .put_alias("p", "default", "f", alias("a", "latest", None), false, 10)
        .await
        .unwrap();
    store
        .delete_version("p", "default", "f", "v2")
        .await
        .unwrap();
    assert!(store
        .get_version("p", "default", "f", "v2")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store
            .put_alias("p", "default", "f", alias("a", "v1", None), true, 10)
            .await,
        Err(StoreError::AliasExists { .. })
    ));

    // Deleting the function takes its versions and aliases with it.
    store.delete_function("p", "default", "f").await.unwrap();
    store.create_function(rec.clone(), 10).await.unwrap();
    assert!(store
        .list_versions("p", "default", "f")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_aliases("p", "default", "f")
        .await
        .unwrap()
        .is_empty());
}

fn log(function: &str, rid: &str, started_ms: i64) -> InvocationLog {
    InvocationLog {
        id: 0,
        project: "p".into(),
        package: "default".into(),
        function: function.into(),
        version: "latest".into(),
        request_id: rid.into(),
        invoke_type: "sync".into(),
        started_ms,
        duration_ms: 1.5,
        error_code: 0,
        log: format!("line of {rid}\n"),
        truncated: false,
    }
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
