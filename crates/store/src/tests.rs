//! Behaviour of [`Store`] through its public methods, on a real database file.

use std::path::PathBuf;

use fgs_core::function::Reserved;
use fgs_core::{CodeInfo, CodeType, FunctionRecord, FunctionSpec};
use tempfile::TempDir;

use super::*;

fn record(project: &str, package: &str, name: &str, created_ms: i64) -> FunctionRecord {
    FunctionRecord {
        project: project.to_owned(),
        package: package.to_owned(),
        name: name.to_owned(),
        func_id: format!("id-{project}-{package}-{name}"),
        spec: FunctionSpec {
            runtime: "Python3.9".to_owned(),
            handler: "index.handler".to_owned(),
            timeout: 30,
            ..FunctionSpec::default()
        },
        code: CodeInfo {
            code_type: CodeType::Zip,
            code_filename: "code.zip".to_owned(),
            sha256: format!("{:064x}", created_ms),
            digest: "00".repeat(64),
            size: 123,
        },
        reserved: Reserved::default(),
        created_ms,
        modified_ms: created_ms,
        revision: 1,
        async_config: None,
    }
}

struct Db {
    _dir: TempDir,
    path: PathBuf,
    store: Store,
}

fn db() -> Db {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("fgs.db");
    let store = Store::open(&path).expect("open fresh db");
    Db {
        _dir: dir,
        path,
        store,
    }
}

fn names(page: &FunctionPage) -> Vec<&str> {
    page.functions.iter().map(|f| f.name.as_str()).collect()
}

#[tokio::test]
async fn create_then_get_returns_the_same_record() {
    let db = db();
    let rec = record("p1", "default", "hello", 1000);
    db.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let got = db
        .store
        .get_function("p1", "default", "hello")
        .await
        .expect("get");
    assert_eq!(got, Some(rec));
    let missing = db
        .store
        .get_function("p1", "other", "hello")
        .await
        .expect("get missing");
    assert_eq!(missing, None);
}

#[tokio::test]
async fn list_pages_in_creation_order_with_marker_and_count() {
    let db = db();
    // Inserted out of creation order, and two in the same millisecond: the listing must follow
    // created_ms, then insertion.
    for (name, pkg, ms) in [
        ("c", "default", 3),
        ("a", "default", 1),
        ("b", "tools", 2),
        ("d", "tools", 3),
        ("e", "default", 5),
    ] {
        db.store
            .create_function(record("p1", pkg, name, ms), 100)
            .await
            .expect("create");
    }
    db.store
        .create_function(record("p2", "default", "other", 1), 100)
        .await
        .expect("create in another project");

    let first = db
        .store
        .list_functions("p1", None, 0, 2)
        .await
        .expect("page 1");
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!((first.next_marker, first.count), (2, 5));

    let second = db
        .store
        .list_functions("p1", None, first.next_marker, 2)
        .await
        .expect("page 2");
    assert_eq!(names(&second), ["c", "d"]);
    assert_eq!((second.next_marker, second.count), (4, 5));

    let last = db
        .store
        .list_functions("p1", None, 4, 2)
        .await
        .expect("page 3");
    assert_eq!(names(&last), ["e"]);
    assert_eq!((last.next_marker, last.count), (5, 5));

    let beyond = db
        .store
        .list_functions("p1", None, 9, 2)
        .await
        .expect("past the end");
    assert!(beyond.functions.is_empty());
    assert_eq!((beyond.next_marker, beyond.count), (9, 5));

    let tools = db
        .store
        .list_functions("p1", Some("tools"), 0, 10)
        .await
        .expect("package filter");
    assert_eq!(names(&tools), ["b", "d"]);
    assert_eq!((tools.next_marker, tools.count), (2, 2));

    let huge = db
        .store
        .list_functions("p1", None, 0, u64::MAX)
        .await
        .expect("max_items beyond i64 is clamped, not negative");
    assert_eq!(huge.functions.len(), 5);
}

#[tokio::test]
async fn create_refuses_an_existing_name() {
    let db = db();
    db.store
        .create_function(record("p1", "default", "f", 1), 10)
        .await
        .expect("create");
    let err = db
        .store
        .create_function(record("p1", "default", "f", 2), 10)
        .await
        .expect_err("same name must be refused");
    assert!(
        matches!(&err, StoreError::FunctionExists { name, .. } if name == "f"),
        "{err:?}"
    );
    // The same name in another package or project is a different function.
    db.store
        .create_function(record("p1", "pkg2", "f", 3), 10)
        .await
        .expect("other package");
    db.store
        .create_function(record("p2", "default", "f", 4), 10)
        .await
        .expect("other project");
}

#[tokio::test]
async fn create_refuses_beyond_the_project_quota() {
    let db = db();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        db.store
            .create_function(record("p1", "default", name, i as i64), 2)
            .await
            .expect("under quota");
    }
    let err = db
        .store
        .create_function(record("p1", "other", "c", 9), 2)
        .await
        .expect_err("third function must be refused");
    assert!(
        matches!(&err, StoreError::QuotaExceeded { project, limit: 2 } if project == "p1"),
        "{err:?}"
    );
    assert_eq!(
        db.store
            .list_functions("p1", None, 0, 10)
            .await
            .expect("list")
            .count,
        2
    );
    // The quota is per project.
    db.store
        .create_function(record("p2", "default", "c", 9), 2)
        .await
        .expect("other project has room");
}

#[tokio::test]
async fn update_is_optimistic() {
    let db = db();
    let mut rec = record("p1", "default", "f", 1);
    db.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");

    rec.spec.memory_size = 256;
    rec.revision = 2;
    rec.modified_ms = 50;
    db.store.update_function(&rec, 1).await.expect("update");
    let got = db
        .store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(got, rec);

    // A second writer that read revision 1 loses.
    let mut stale = record("p1", "default", "f", 1);
    stale.revision = 2;
    stale.spec.memory_size = 512;
    let err = db
        .store
        .update_function(&stale, 1)
        .await
        .expect_err("stale revision must conflict");
    assert!(
        matches!(err, StoreError::Conflict { expected: 1, .. }),
        "{err:?}"
    );
    let got = db
        .store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(got.spec.memory_size, 256, "the loser must not overwrite");

    let ghost = record("p1", "default", "ghost", 1);
    let err = db
        .store
        .update_function(&ghost, 1)
        .await
        .expect_err("missing function");
    assert!(
        matches!(err, StoreError::FunctionNotFound { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn delete_returns_the_record_once() {
    let db = db();
    let rec = record("p1", "default", "f", 1);
    db.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let deleted = db
        .store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete");
    assert_eq!(deleted, Some(rec));
    assert_eq!(
        db.store
            .get_function("p1", "default", "f")
            .await
            .expect("get"),
        None
    );
    let again = db
        .store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete again");
    assert_eq!(again, None);
    // The name is free again.
    db.store
        .create_function(record("p1", "default", "f", 2), 10)
        .await
        .expect("re-create");
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let db = db();
    let rec = record("p1", "default", "f", 7);
    db.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    db.store
        .put_setting("admin_ak", "AK1")
        .await
        .expect("put setting");
    let path = db.path.clone();
    drop(db.store);

    let reopened = Store::open(&path).expect("reopen");
    assert_eq!(
        reopened
            .get_function("p1", "default", "f")
            .await
            .expect("get"),
        Some(rec.clone())
    );
    assert_eq!(
        reopened.all_functions().await.expect("all functions"),
        vec![rec]
    );
    assert_eq!(
        reopened.get_setting("admin_ak").await.expect("get setting"),
        Some("AK1".to_owned())
    );
}

#[tokio::test]
async fn open_configures_wal_and_full_sync() {
    let db = db();
    // Checked on a second connection to the same file: journal_mode is persistent in the file.
    let conn = rusqlite::Connection::open(&db.path).expect("raw open");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, sqlite::schema_version());
}

#[tokio::test]
async fn open_refuses_a_newer_schema() {
    let db = db();
    let path = db.path.clone();
    drop(db.store);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", sqlite::schema_version() + 1)
        .expect("bump user_version");
    drop(conn);
    let err = Store::open(&path).expect_err("newer schema must be refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == sqlite::schema_version() + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn package_reference_follows_the_records() {
    let db = db();
    let rec = record("p1", "default", "f", 1);
    let sha = rec.code.sha256.clone();
    assert!(!db.store.package_referenced(&sha).await.expect("check"));
    db.store.create_function(rec, 10).await.expect("create");
    assert!(db.store.package_referenced(&sha).await.expect("check"));
    assert!(!db
        .store
        .package_referenced(&"f".repeat(64))
        .await
        .expect("check other"));
    db.store
        .delete_function("p1", "default", "f")
        .await
        .expect("delete");
    assert!(!db.store.package_referenced(&sha).await.expect("check"));
}

#[tokio::test]
async fn settings_are_replaced() {
    let db = db();
    assert_eq!(db.store.get_setting("k").await.expect("get"), None);
    db.store.put_setting("k", "v1").await.expect("put");
    db.store.put_setting("k", "v2").await.expect("put again");
    assert_eq!(
        db.store.get_setting("k").await.expect("get"),
        Some("v2".to_owned())
    );
}

#[tokio::test]
async fn corrupt_record_is_a_typed_error() {
    let db = db();
    db.store
        .create_function(record("p1", "default", "f", 1), 10)
        .await
        .expect("create");
    let conn = rusqlite::Connection::open(&db.path).expect("raw open");
    conn.execute("UPDATE functions SET record = '{not json'", [])
        .expect("corrupt the record");
    let err = db
        .store
        .get_function("p1", "default", "f")
        .await
        .expect_err("corrupt record");
    assert!(
        matches!(&err, StoreError::Corrupt { name, .. } if name == "f"),
        "{err:?}"
    );
}

#[tokio::test]
async fn concurrent_creates_respect_the_quota() {
    let db = db();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
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

#[tokio::test]
async fn package_use_names_every_code_and_dependency_package_and_each_list() {
    use fgs_core::dependency::DependencyVersion;
    use fgs_core::flows::VersionRecord;
    let db = db();
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
    db.store
        .create_dependency_version(dep("one", &d1))
        .await
        .expect("dep one");
    db.store
        .create_dependency_version(dep("two", &d2))
        .await
        .expect("dep two");
    let mut f = record("p1", "default", "f", 1);
    f.spec.depend_version_list = vec!["two".into(), "one".into()];
    let old_code = f.code.sha256.clone();
    db.store
        .create_function(f.clone(), 10)
        .await
        .expect("create");
    db.store
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
    let mut g = db
        .store
        .get_function("p1", "default", "f")
        .await
        .expect("get")
        .expect("some");
    g.code.sha256 = "a".repeat(64);
    g.spec.depend_version_list = vec!["one".into()];
    let expected = g.revision;
    g.revision += 1;
    db.store
        .update_function(&g, expected)
        .await
        .expect("update");

    let used = db.store.package_use().await.expect("package use");
    let want: std::collections::HashSet<String> =
        [old_code, "a".repeat(64), d1.clone(), d2.clone()].into();
    assert_eq!(used.packages, want);
    let mut lists = used.dependency_lists.clone();
    lists.sort();
    assert_eq!(lists, vec![vec![d1.clone()], vec![d2.clone(), d1.clone()]]);
    assert!(db
        .store
        .package_referenced(&d2)
        .await
        .expect("dependency package"));
}

mod flows {
    use std::collections::BTreeMap;

    use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};

    use super::*;

    fn version(rec: &FunctionRecord, v: &str, at: i64) -> VersionRecord {
        VersionRecord {
            version: v.to_owned(),
            description: String::new(),
            created_ms: at,
            function: rec.clone(),
        }
    }

    fn alias(name: &str, v: &str, extra: Option<&str>) -> AliasRecord {
        AliasRecord {
            name: name.to_owned(),
            version: v.to_owned(),
            description: String::new(),
            additional_version_weights: extra
                .map(|e| BTreeMap::from([(e.to_owned(), 10)]))
                .unwrap_or_default(),
            additional_version_strategy: BTreeMap::new(),
            created_ms: 1,
            modified_ms: 1,
        }
    }

    fn row(id: &str, rec: &FunctionRecord, at: i64) -> AsyncRow {
        AsyncRow {
            request_id: id.to_owned(),
            project: rec.project.clone(),
            package: rec.package.clone(),
            name: rec.name.clone(),
            qualifier: "latest".to_owned(),
            status: AsyncStatus::Wait,
            attempts: 0,
            created_ms: at,
            next_attempt_ms: at,
            started_ms: None,
            ended_ms: None,
            error_code: None,
            error_message: String::new(),
            body: b"{}".to_vec(),
            extra: "{}".to_owned(),
        }
    }

    #[tokio::test]
    async fn versions_publish_limit_and_alias_guard() {
        let d = db();
        let rec = record("p", "default", "f", 1);
        d.store.create_function(rec.clone(), 10).await.unwrap();
        d.store
            .publish_version(version(&rec, "v1", 2), 2)
            .await
            .unwrap();
        assert!(matches!(
            d.store.publish_version(version(&rec, "v1", 3), 2).await,
            Err(StoreError::VersionExists { .. })
        ));
        d.store
            .publish_version(version(&rec, "v2", 3), 2)
            .await
            .unwrap();
        assert!(matches!(
            d.store.publish_version(version(&rec, "v3", 4), 2).await,
            Err(StoreError::TooManyVersions { .. })
        ));
        let names: Vec<_> = d
            .store
            .list_versions("p", "default", "f")
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(names, ["v1", "v2"]);

        // An alias may route only to versions that exist; a version it routes to stays.
        assert!(matches!(
            d.store
                .put_alias("p", "default", "f", alias("a", "v9", None), true, 10)
                .await,
            Err(StoreError::VersionNotFound { .. })
        ));
        d.store
            .put_alias("p", "default", "f", alias("a", "v1", Some("v2")), true, 10)
            .await
            .unwrap();
        assert!(matches!(
            d.store.delete_version("p", "default", "f", "v2").await,
            Err(StoreError::VersionInUse { .. })
        ));
        d.store
            .put_alias("p", "default", "f", alias("a", "latest", None), false, 10)
            .await
            .unwrap();
        d.store
            .delete_version("p", "default", "f", "v2")
            .await
            .unwrap();
        assert!(d
            .store
            .get_version("p", "default", "f", "v2")
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            d.store
                .put_alias("p", "default", "f", alias("a", "v1", None), true, 10)
                .await,
            Err(StoreError::AliasExists { .. })
        ));

        // Deleting the function takes its versions and aliases with it.
        d.store.delete_function("p", "default", "f").await.unwrap();
        d.store.create_function(rec.clone(), 10).await.unwrap();
        assert!(d
            .store
            .list_versions("p", "default", "f")
            .await
            .unwrap()
            .is_empty());
        assert!(d
            .store
            .list_aliases("p", "default", "f")
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn async_queue_claims_due_events_once_and_requeues_after_a_crash() {
        let d = db();
        let rec = record("p", "default", "f", 1);
        d.store.create_function(rec.clone(), 10).await.unwrap();
        let res = d
            .store
            .insert_async(vec![
                row("a", &rec, 10),
                row("b", &rec, 20),
                row("c", &rec, 30),
            ])
            .await
            .unwrap();
        assert!(res.iter().all(Result::is_ok));
        let mut ghost = row("g", &rec, 5);
        ghost.name = "nosuch".into();
        let res = d.store.insert_async(vec![ghost]).await.unwrap();
        assert!(matches!(res[0], Err(StoreError::FunctionNotFound { .. })));

        let claimed = d.store.claim_due_async(25, 10).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(
            d.store.claim_due_async(25, 10).await.unwrap().is_empty(),
            "claimed once"
        );
        assert_eq!(d.store.next_due_async().await.unwrap(), Some(30));

        let mut done = claimed[0].clone();
        done.status = AsyncStatus::Success;
        done.attempts = 1;
        done.ended_ms = Some(40);
        d.store.update_async(vec![done]).await.unwrap();

        // Reopen as after kill -9: `b` was RUNNING and runs again.
        let reopened = Store::open(&d.path).unwrap();
        assert_eq!(reopened.requeue_running_async().await.unwrap(), 1);
        let again = reopened.claim_due_async(100, 10).await.unwrap();
        let ids: Vec<_> = again.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);

        let (list, count) = reopened
            .list_async(AsyncFilter {
                project: "p".into(),
                package: "default".into(),
                name: "f".into(),
                status: Some(AsyncStatus::Success),
                limit: 10,
                ..AsyncFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (count, list[0].request_id.as_str(), list[0].attempts),
            (1, "a", 1)
        );

        assert_eq!(
            reopened
                .cancel_async("p", "default", "f", "a", 50)
                .await
                .unwrap(),
            AsyncStatus::Success
        );
        assert!(matches!(
            reopened.cancel_async("p", "default", "f", "zz", 50).await,
            Err(StoreError::AsyncNotFound { .. })
        ));
    }
}
