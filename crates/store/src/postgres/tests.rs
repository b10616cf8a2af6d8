//! The PostgreSQL backend against a real server: the conformance suite unchanged, concurrent
//! migrations, and what a wrong URL says. Each test gets a database of its own
//! (`fgs_t_<random>`, dropped after), so they run in parallel. They need
//! `FGS_TEST_POSTGRES_URL` (scripts/test starts a throwaway server); without it they say why and
//! pass, unless `FGS_TEST_REQUIRE_ENGINES=1`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio_postgres::{Config, NoTls};

use super::{parse_url, Postgres};
use crate::{Store, StoreError};

/// A database made for one test, dropped (with its connections) when this goes.
pub(crate) struct TestDb {
    admin: Config,
    pub(crate) name: String,
    pub(crate) config: Config,
}

/// The server the tests use, or `None` (after saying why) when none is configured.
pub(crate) fn server() -> Option<Config> {
    match std::env::var("FGS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(parse_url(&url).expect("FGS_TEST_POSTGRES_URL parses")),
        _ => {
            assert!(
                std::env::var("FGS_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
                "FGS_TEST_REQUIRE_ENGINES=1 but FGS_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: FGS_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL)");
            None
        }
    }
}

async fn admin_exec(admin: &Config, sql: &str) {
    let (client, conn) = admin
        .connect(NoTls)
        .await
        .expect("connect to the test server");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = task.await;
}

impl TestDb {
    pub(crate) async fn create() -> Option<TestDb> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin = server()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "fgs_t_{}_{}_{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin_exec(&admin, &format!("CREATE DATABASE {name}")).await;
        let mut config = admin.clone();
        config.dbname(&name);
        Some(TestDb {
            admin,
            name,
            config,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: a thread of its own.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            rt.block_on(admin_exec(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        })
        .join();
    }
}

/// A fresh store over a database of its own, for the conformance suite.
async fn fresh_postgres() -> Option<(TestDb, Store)> {
    let db = TestDb::create().await?;
    let pg = Postgres::open_config(db.config.clone(), &db.name)
        .await
        .expect("open the test database");
    Some((db, Store::from_backend(Arc::new(pg))))
}

mod conformance {
    use super::fresh_postgres;
    crate::conformance_suite!(optional fresh_postgres());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_nodes_opening_a_fresh_database_at_once_migrate_it_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let opens = (0..8).map(|_| {
        let config = db.config.clone();
        tokio::spawn(async move { Postgres::open_config(config, "test").await })
    });
    for open in opens.collect::<Vec<_>>() {
        open.await
            .expect("task")
            .expect("every node opens the store");
    }
    let store = Postgres::open_config(db.config.clone(), "test")
        .await
        .expect("open");
    let client = store.client("inspect").await.expect("client");
    let versions: Vec<i64> = client
        .query("SELECT version FROM fgs_schema", &[])
        .await
        .expect("schema table")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [super::migrations::MIGRATIONS.len() as i64]);
    let tables: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'functions'",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = Postgres::open_config(db.config.clone(), "test")
        .await
        .expect("open");
    let client = store.client("bump").await.expect("client");
    client
        .execute("UPDATE fgs_schema SET version = 999", &[])
        .await
        .expect("bump version");
    drop(client);
    let err = Postgres::open_config(db.config.clone(), "test")
        .await
        .expect_err("a newer schema");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 999, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    // A port nothing listens on: connection refused at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let url = format!("postgres://fgs:s3cret@127.0.0.1:{port}/fgs");
    let err = Postgres::open(&url).await.expect_err("nothing listens");
    let msg = crate::error_chain(&err);
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("postgres://fgs@127.0.0.1:{port}/fgs")),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[test]
fn tls_and_urls_without_a_database_are_refused() {
    let err = parse_url("postgres://u:pw@h:5432/db?sslmode=require").expect_err("tls");
    let msg = crate::error_chain(&err);
    assert!(
        msg.contains("sslmode=require") && msg.contains("without TLS"),
        "{msg}"
    );
    assert!(!msg.contains("pw"), "{msg}");
    let err = parse_url("postgres://u@h:5432").expect_err("no db");
    assert!(crate::error_chain(&err).contains("no database"), "{err:?}");
    assert!(parse_url("postgres://u@h:5432/db?sslmode=disable").is_ok());
}

fn series(name: &str) -> fgs_core::stats::SeriesKey {
    fgs_core::stats::SeriesKey {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
        version: "latest".into(),
    }
}

fn minute(name: &str, start_ms: i64, count: u64) -> crate::StatMinute {
    crate::StatMinute {
        key: series(name),
        minute: fgs_core::stats::Minute {
            start_ms,
            count,
            function_errors: 1,
            system_errors: 0,
            rejected: 2,
            duration_sum_ms: 1.5 * count as f64,
            duration_max_ms: 3.0,
            duration_min_ms: 0.5,
            mb_ms: 128 * count,
        },
    }
}

/// Each run's rows replace its earlier rows of the same minute; a reader gets every other
/// run's rows of its project and window; old minutes are purged, months stay.
#[tokio::test]
async fn statistics_of_runs_are_replaced_read_by_others_and_purged() {
    let Some((_db, store)) = fresh_postgres().await else {
        return;
    };
    let stats = store.stats();
    let month = |run_count| crate::StatMonth {
        key: series("f"),
        month: 24_311,
        count: run_count,
        mb_ms: 1000,
    };
    stats
        .put_stats("a@1", vec![minute("f", 60_000, 3)], vec![month(3)])
        .await
        .expect("put a");
    // The same minute again, grown: replaced, not added.
    stats
        .put_stats("a@1", vec![minute("f", 60_000, 5)], vec![month(5)])
        .await
        .expect("put a again");
    let mut other = minute("f", 120_000, 7);
    other.key.project = "q".into();
    stats
        .put_stats(
            "b@1",
            vec![minute("f", 60_000, 2), minute("g", 120_000, 4), other],
            vec![month(2)],
        )
        .await
        .expect("put b");

    let seen_by_b = stats
        .other_minutes("b@1", "p", 0, 180_000)
        .await
        .expect("read");
    assert_eq!(seen_by_b, vec![minute("f", 60_000, 5)]);
    let mut seen_by_c = stats
        .other_minutes("c@1", "p", 60_000, 120_000)
        .await
        .expect("read");
    seen_by_c.sort_by_key(|m| m.minute.count);
    assert_eq!(
        seen_by_c,
        vec![minute("f", 60_000, 2), minute("f", 60_000, 5)],
        "the window's end is exclusive and another project is not read"
    );
    let months = stats
        .other_months("c@1", "p", 24_311, 24_311)
        .await
        .expect("months");
    assert_eq!(months.iter().map(|m| m.count).sum::<u64>(), 7);

    assert_eq!(stats.purge_stats(120_000).await.expect("purge"), 2);
    let left = stats
        .other_minutes("c@1", "p", 0, 180_000)
        .await
        .expect("read");
    assert_eq!(left, vec![minute("g", 120_000, 4)]);
    assert_eq!(
        stats
            .other_months("c@1", "p", 0, i64::MAX)
            .await
            .expect("months")
            .len(),
        2
    );
}

/// `store copy --force` skips only what is already there: a taken unique key (SQLSTATE 23505)
/// is told apart from any other failure, and a request id queued twice is `AsyncExists`.
#[tokio::test]
async fn a_taken_unique_key_is_told_apart_from_other_failures() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let pg = Postgres::open_config(db.config.clone(), "test")
        .await
        .expect("open");
    let client = pg.client("test").await.expect("client");
    let insert = "INSERT INTO nodes (node_id, advertise_url, started_ms, last_seen_ms)
                  VALUES ('n1', 'http://a', 1, 1)";
    client.execute(insert, &[]).await.expect("first insert");
    let dup = client
        .execute(insert, &[])
        .await
        .map_err(super::pg("insert node"))
        .expect_err("the key is taken");
    assert!(dup.is_unique_violation(), "{dup:?}");
    let other = client
        .execute("INSERT INTO nodes (node_id) VALUES ('n2')", &[])
        .await
        .map_err(super::pg("insert node"))
        .expect_err("a NOT NULL column is missing");
    assert!(!other.is_unique_violation(), "{other:?}");
    assert!(!StoreError::FunctionNotFound {
        project: "p".into(),
        package: "default".into(),
        name: "f".into(),
    }
    .is_unique_violation());
    drop(client);

    let store = Store::from_backend(Arc::new(pg));
    let rec = crate::conformance::record("p", "default", "f", 1);
    store
        .create_function(rec.clone(), 10)
        .await
        .expect("create");
    let row = crate::conformance::async_row("r1", &rec, 5);
    let first = store
        .queue()
        .accept(vec![row.clone()])
        .await
        .expect("accept");
    assert!(first[0].is_ok());
    let again = store.queue().accept(vec![row]).await.expect("accept");
    assert!(
        matches!(&again[0], Err(StoreError::AsyncExists { request_id }) if request_id == "r1"),
        "{again:?}"
    );
}
