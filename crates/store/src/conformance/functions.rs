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

/// Tags and the other settings of `meta` are part of the record: created, updated and read
/// back whole.
pub async fn a_function_keeps_its_meta_through_create_and_update(store: &Store) {
    let mut rec = record("p1", "default", "tagged", 1000);
    rec.meta.tags.insert("team".into(), "blue".into());
    rec.meta.tags.insert("env".into(), String::new());
    rec.meta.pinned = true;
    rec.meta
        .reserved_crons
        .push(fgs_core::function::ReservedCron {
            name: "morning".into(),
            cron: "0 0 8 * * *".into(),
            count: 3,
            start_time: 1_700_000_000,
            expired_time: 1_900_000_000,
        });
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let got = store.get_function("p1", "default", "tagged").await;
    assert_eq!(got.expect("get"), Some(rec.clone()));

    let expected = rec.revision;
    rec.revision += 1;
    rec.meta.tags.remove("env");
    rec.meta.tags.insert("team".into(), "red".into());
    store.update_function(&rec, expected).await.expect("update");
    let got = store.get_function("p1", "default", "tagged").await;
    assert_eq!(got.expect("get"), Some(rec));
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
