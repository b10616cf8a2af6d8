//! Behaviour of [`Store`] through its public methods, on a real database file.

use std::path::PathBuf;
use std::sync::Arc;

use tempfile::TempDir;

use super::*;
use crate::conformance::record;

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

/// Events an fgs before leases left RUNNING have no lease: the migration hands them to the
/// next claim at once, as that fgs would have requeued them at start.
#[tokio::test]
async fn running_events_of_an_older_schema_are_taken_back() {
    let d = db();
    let rec = record("p", "default", "f", 1);
    d.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let q = d.store.queue();
    q.accept(vec![crate::conformance::async_row("a", &rec, 10)])
        .await
        .expect("accept");
    let conn = rusqlite::Connection::open(&d.path).expect("raw open");
    // Back to schema 5: no lease columns' meaning, the row RUNNING as an old fgs left it.
    conn.execute_batch(
        "UPDATE async_invocations SET status = 'RUNNING', lease_owner = NULL,
         leased_until = NULL, lease_seq = 0;
         DROP INDEX async_leases;
         ALTER TABLE async_invocations DROP COLUMN lease_owner;
         ALTER TABLE async_invocations DROP COLUMN leased_until;
         ALTER TABLE async_invocations DROP COLUMN lease_seq;
         PRAGMA user_version = 5;",
    )
    .expect("downgrade");
    drop(conn);
    let reopened = Store::open(&d.path).expect("migrate");
    let claimed = reopened
        .queue()
        .claim("n1", 11, 100, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease.as_ref().map(|l| l.seq), Some(1));
}

#[tokio::test]
async fn corrupt_async_columns_are_typed_errors() {
    let d = db();
    let rec = record("p", "default", "f", 1);
    d.store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    d.store
        .queue()
        .accept(vec![crate::conformance::async_row("a", &rec, 10)])
        .await
        .expect("accept");
    let conn = rusqlite::Connection::open(&d.path).expect("raw open");
    let filter = AsyncFilter {
        project: "p".into(),
        package: "default".into(),
        name: "f".into(),
        limit: 10,
        ..AsyncFilter::default()
    };
    for (column, value) in [("qualifier", "!"), ("status", "PAUSED")] {
        conn.execute(
            &format!("UPDATE async_invocations SET {column} = ?1"),
            [value],
        )
        .expect("corrupt");
        let err = d
            .store
            .list_async(filter.clone())
            .await
            .expect_err("corrupt row");
        assert!(
            matches!(&err, StoreError::CorruptAsync { field, value: v, .. } if *field == column && v == value),
            "{err:?}"
        );
        conn.execute(
            "UPDATE async_invocations SET qualifier = '!blue', status = 'WAIT'",
            [],
        )
        .expect("repair");
    }
    let err = d.store.queue().claim("n1", 10, 100, 1).await;
    assert!(err.is_ok(), "a repaired row is claimable: {err:?}");
}

/// A fresh SQLite store in a temporary directory, for the conformance suite.
async fn fresh_sqlite() -> (TempDir, Store) {
    let d = db();
    (d._dir, d.store)
}

mod conformance {
    use super::fresh_sqlite;

    crate::conformance_suite!(fresh_sqlite());
}

/// A feed that cannot carry changes, as a node cut off from NATS.
struct CutOff(Arc<LocalFeed>);

impl ChangeFeed for CutOff {
    fn publish(&self, key: FunctionKey, kind: ChangeKind) -> feed::BoxFuture<'_, u64> {
        self.0.publish(key, kind)
    }
    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
    fn settled(&self, revision: u64, limit: std::time::Duration) -> feed::BoxFuture<'_, ()> {
        self.0.settled(revision, limit)
    }
    fn unavailable(&self) -> Option<String> {
        Some("NATS at nats://n:4222 is unreachable".into())
    }
}

#[tokio::test]
async fn the_catalog_refuses_a_write_its_feed_cannot_carry_before_committing() {
    let db = db();
    let local = LocalFeed::new();
    let mut sub = local.subscribe();
    let catalog = Catalog::new(db.store.clone(), Arc::new(CutOff(Arc::clone(&local))));
    let err = catalog
        .create_function(record("p1", "default", "f", 7), 10)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::FeedUnavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("NATS"), "{err}");
    let stored = db.store.get_function("p1", "default", "f").await;
    assert!(matches!(stored, Ok(None)), "nothing committed: {stored:?}");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), sub.recv())
            .await
            .is_err(),
        "nothing published"
    );
    // The same write through a feed that can carry it goes through.
    drop(sub);
    Catalog::new(db.store.clone(), local)
        .create_function(record("p1", "default", "f", 7), 10)
        .await
        .expect("created");
}
