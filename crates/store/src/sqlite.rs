//! The SQLite backend: the default for a single node, implementing every storage trait
//! (`impls`). Everything here is blocking and runs on
//! tokio's blocking pool; [`Sqlite`] hands each call its own `spawn_blocking` task.

mod dependencies;
mod flows;
mod impls;
pub(crate) mod logs;
mod migrations;
mod nodes;
mod queue;
mod slots;
mod test_events;
mod triggers;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_core::FunctionRecord;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{FunctionPage, StoreError};

/// How long a statement waits for another process's write lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection behind a mutex: SQLite serialises writers anyway, and a single node's metadata
/// traffic is small because the invocation hot path never reads the database (ARCHITECTURE.md
/// "Invariants"). A reader pool can come when a measurement asks for it.
#[derive(Debug)]
pub(crate) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        op,
        source: e.into(),
    }
}

/// SQLite integers are signed; counts and offsets beyond `i64::MAX` cannot occur in practice,
/// so saturating keeps `LIMIT`/`OFFSET` meaning "all" instead of wrapping negative.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn encode(rec: &FunctionRecord) -> Result<String, StoreError> {
    serde_json::to_string(rec).map_err(|source| StoreError::Encode {
        project: rec.project.clone(),
        package: rec.package.clone(),
        name: rec.name.clone(),
        source,
    })
}

/// A `(project, package, name, record)` row decoded; the key columns give a corrupt record's
/// error its context.
fn decode(row: KeyRow) -> Result<FunctionRecord, StoreError> {
    let (project, package, name, record) = row;
    serde_json::from_str(&record).map_err(|source| StoreError::Corrupt {
        project,
        package,
        name,
        source,
    })
}

type KeyRow = (String, String, String, String);

/// Runs a listing query whose rows are [`key_row`]s.
fn page(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<KeyRow>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(db("prepare list functions"))?;
    let rows = stmt
        .query_map(params, key_row)
        .map_err(db("list functions"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("read listed function"));
    rows
}

fn key_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// The row id of a function, or `FunctionNotFound`.
pub(crate) fn function_row(
    conn: &Connection,
    project: &str,
    package: &str,
    name: &str,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "SELECT id FROM functions WHERE project = ?1 AND package = ?2 AND name = ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![project, package, name], |row| row.get(0))
            .optional()
    })
    .map_err(db("find function"))?
    .ok_or_else(|| StoreError::FunctionNotFound {
        project: project.to_string(),
        package: package.to_string(),
        name: name.to_string(),
    })
}

impl Sqlite {
    pub(crate) fn open(path: &Path) -> Result<Sqlite, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            source: e.into(),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                source: format!("journal_mode stayed {mode:?}, WAL is required").into(),
            });
        }
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and an
        // accepted request must be on disk before it is answered (ARCHITECTURE.md "Invariants").
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // Room for every statement of the hot paths (async queue, logs, lookups).
        conn.set_prepared_statement_cache_capacity(64);
        migrations::apply(&mut conn, path)?;
        Ok(Sqlite {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// [`Sqlite::run`] for writes that may wait for the next fsync: the commit reaches the WAL
    /// (the OS has it, so it survives a crash of fgs) without an fsync of its own, and becomes
    /// durable with the next `FULL` commit or checkpoint. Only for records whose loss on power
    /// failure is harmless: state changes of async events (a lost one runs the event again, which
    /// at-least-once allows) and invocation logs. Never for accepting a request.
    async fn run_relaxed<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(op, move |conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(db("relax synchronous"))?;
            let out = f(conn);
            // Back before the lock is released: every other write stays FULL.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(db("restore synchronous"))?;
            out
        })
        .await
    }

    /// Runs `f` on the connection in the blocking pool.
    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held unwound through rusqlite's `Transaction`, whose
            // drop rolled back; the connection is consistent, so poisoning is not fatal.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|source| StoreError::Task { op, source })?
    }

    pub(crate) async fn create_function(
        &self,
        rec: FunctionRecord,
        max_per_project: u64,
    ) -> Result<(), StoreError> {
        let record = encode(&rec)?;
        self.run("create function", move |conn| {
            // IMMEDIATE: the count and the insert must see the same table even with another
            // process writing, or two creates could both pass the quota check.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin create function"))?;
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM functions
                     WHERE project = ?1 AND package = ?2 AND name = ?3)",
                    params![rec.project, rec.package, rec.name],
                    |row| row.get(0),
                )
                .map_err(db("check function exists"))?;
            if exists {
                return Err(StoreError::FunctionExists {
                    project: rec.project,
                    package: rec.package,
                    name: rec.name,
                });
            }
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM functions WHERE project = ?1",
                    params![rec.project],
                    |row| row.get(0),
                )
                .map_err(db("count functions of project"))?;
            if count >= int(max_per_project) {
                return Err(StoreError::QuotaExceeded {
                    project: rec.project,
                    limit: max_per_project,
                });
            }
            tx.execute(
                "INSERT INTO functions
                 (project, package, name, func_id, revision, created_ms, modified_ms, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    rec.project,
                    rec.package,
                    rec.name,
                    rec.func_id,
                    int(rec.revision),
                    rec.created_ms,
                    rec.modified_ms,
                    record
                ],
            )
            .map_err(db("insert function"))?;
            tx.commit().map_err(db("commit create function"))
        })
        .await
    }

    pub(crate) async fn get_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("get function", move |conn| {
            let row = conn
                .query_row(
                    "SELECT project, package, name, record FROM functions
                     WHERE project = ?1 AND package = ?2 AND name = ?3",
                    params![key.0, key.1, key.2],
                    key_row,
                )
                .optional()
                .map_err(db("select function"))?;
            row.map(decode).transpose()
        })
        .await
    }

    pub(crate) async fn list_functions(
        &self,
        project: &str,
        package: Option<&str>,
        marker: u64,
        max_items: u64,
    ) -> Result<FunctionPage, StoreError> {
        let project = project.to_owned();
        let package = package.map(str::to_owned);
        self.run("list functions", move |conn| {
            let (limit, offset) = (int(max_items), int(marker));
            // One read transaction, so `count` and the page agree even if a create lands
            // between the two statements. Two statement shapes rather than
            // `?2 IS NULL OR package = ?2`, which would keep SQLite from using the package index.
            let tx = conn.transaction().map_err(db("begin list functions"))?;
            let (count, rows): (i64, _) = match &package {
                Some(package) => (
                    tx.query_row(
                        "SELECT COUNT(*) FROM functions WHERE project = ?1 AND package = ?2",
                        params![project, package],
                        |row| row.get(0),
                    )
                    .map_err(db("count functions"))?,
                    page(
                        &tx,
                        "SELECT project, package, name, record FROM functions
                         WHERE project = ?1 AND package = ?2
                         ORDER BY created_ms, id LIMIT ?3 OFFSET ?4",
                        params![project, package, limit, offset],
                    )?,
                ),
                None => (
                    tx.query_row(
                        "SELECT COUNT(*) FROM functions WHERE project = ?1",
                        params![project],
                        |row| row.get(0),
                    )
                    .map_err(db("count functions"))?,
                    page(
                        &tx,
                        "SELECT project, package, name, record FROM functions
                         WHERE project = ?1
                         ORDER BY created_ms, id LIMIT ?2 OFFSET ?3",
                        params![project, limit, offset],
                    )?,
                ),
            };
            tx.finish().map_err(db("end list functions"))?;
            let functions = rows
                .into_iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(FunctionPage {
                next_marker: marker.saturating_add(functions.len() as u64),
                count: u64::try_from(count).unwrap_or(0),
                functions,
            })
        })
        .await
    }

    pub(crate) async fn update_function(
        &self,
        rec: &FunctionRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let record = encode(rec)?;
        let key = (rec.project.clone(), rec.package.clone(), rec.name.clone());
        let (func_id, revision, modified_ms) = (rec.func_id.clone(), rec.revision, rec.modified_ms);
        self.run("update function", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin update function"))?;
            let changed = tx
                .execute(
                    "UPDATE functions SET func_id = ?4, revision = ?5, modified_ms = ?6,
                     record = ?7
                     WHERE project = ?1 AND package = ?2 AND name = ?3 AND revision = ?8",
                    params![
                        key.0,
                        key.1,
                        key.2,
                        func_id,
                        int(revision),
                        modified_ms,
                        record,
                        int(expected_revision)
                    ],
                )
                .map_err(db("update function"))?;
            if changed == 0 {
                // Nothing matched: tell a lost race from a deleted function, inside the same
                // transaction so the answer cannot be stale.
                let exists: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM functions
                         WHERE project = ?1 AND package = ?2 AND name = ?3)",
                        params![key.0, key.1, key.2],
                        |row| row.get(0),
                    )
                    .map_err(db("check function exists"))?;
                let (project, package, name) = key;
                return Err(if exists {
                    StoreError::Conflict {
                        project,
                        package,
                        name,
                        expected: expected_revision,
                    }
                } else {
                    StoreError::FunctionNotFound {
                        project,
                        package,
                        name,
                    }
                });
            }
            tx.commit().map_err(db("commit update function"))
        })
        .await
    }

    pub(crate) async fn delete_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("delete function", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin delete function"))?;
            let row = tx
                .query_row(
                    "DELETE FROM functions WHERE project = ?1 AND package = ?2 AND name = ?3
                     RETURNING project, package, name, record",
                    params![key.0, key.1, key.2],
                    key_row,
                )
                .optional()
                .map_err(db("delete function"))?;
            tx.commit().map_err(db("commit delete function"))?;
            // Decoded after the commit: a corrupt record is still deleted, which is what the
            // caller asked for, and the error tells it the record could not be returned.
            row.map(decode).transpose()
        })
        .await
    }

    pub(crate) async fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        self.run("read all functions", |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT project, package, name, record FROM functions
                     ORDER BY project, created_ms, id",
                )
                .map_err(db("prepare read all functions"))?;
            let rows = stmt
                .query_map([], key_row)
                .map_err(db("read all functions"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read function row"))?;
            rows.into_iter().map(decode).collect()
        })
        .await
    }

    pub(crate) async fn package_use(&self) -> Result<crate::PackageUse, StoreError> {
        self.run("read package use", |conn| {
            let unreadable = |what: String| StoreError::Backend {
                op: "read package use",
                source: what.into(),
            };
            let mut used = crate::PackageUse::default();
            // Every dependency version's package, by (project, id) for the lists below.
            let mut deps = std::collections::HashMap::new();
            let mut stmt = conn
                .prepare("SELECT project, id, json_extract(record, '$.sha256') FROM dependency_versions")
                .map_err(db("prepare read dependency packages"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .map_err(db("read dependency packages"))?;
            for row in rows {
                let (project, id, sha) = row.map_err(db("read dependency package row"))?;
                let sha = sha.ok_or_else(|| unreadable(format!("dependency version {id} names no package")))?;
                used.packages.insert(sha.clone());
                deps.insert((project, id), sha);
            }
            // Every function's and version's code, and the dependency list each names.
            let mut stmt = conn
                .prepare(
                    "SELECT project, json_extract(record, '$.code.sha256'),
                            json_extract(record, '$.spec.depend_version_list') FROM functions
                     UNION ALL
                     SELECT json_extract(record, '$.function.project'),
                            json_extract(record, '$.function.code.sha256'),
                            json_extract(record, '$.function.spec.depend_version_list') FROM versions",
                )
                .map_err(db("prepare read code packages"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .map_err(db("read code packages"))?;
            for row in rows {
                let (project, sha, list) = row.map_err(db("read code package row"))?;
                let sha = sha.ok_or_else(|| unreadable("a function record names no code package".into()))?;
                used.packages.insert(sha);
                let ids: Vec<String> = match list {
                    Some(text) => serde_json::from_str(&text)
                        .map_err(|e| unreadable(format!("depend_version_list: {e}")))?,
                    None => Vec::new(),
                };
                // A list naming a dependency version that is gone has no merged tree to keep.
                let shas: Option<Vec<String>> = ids
                    .into_iter()
                    .map(|id| deps.get(&(project.clone(), id)).cloned())
                    .collect();
                if let Some(shas) = shas.filter(|s| !s.is_empty()) {
                    used.dependency_lists.push(shas);
                }
            }
            Ok(used)
        })
        .await
    }

    pub(crate) async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run("get setting", move |conn| {
            conn.query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .optional()
            .map_err(db("get setting"))
        })
        .await
    }

    pub(crate) async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run("put setting", move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(drop)
            .map_err(db("put setting"))
        })
        .await
    }
}

/// The schema version this binary knows.
#[cfg(test)]
pub(crate) fn schema_version() -> i64 {
    migrations::latest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_is_configured_for_durability() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Sqlite::open(&dir.path().join("fgs.db")).expect("open");
        let conn = db.conn.lock().expect("not poisoned");
        let pragma = |name: &str| -> i64 {
            conn.pragma_query_value(None, name, |row| row.get(0))
                .expect("pragma is readable")
        };
        // 2 is FULL; synchronous is per connection, so it is checked on the store's own.
        assert_eq!(pragma("synchronous"), 2);
        assert_eq!(pragma("foreign_keys"), 1);
        assert_eq!(pragma("busy_timeout"), BUSY_TIMEOUT.as_millis() as i64);
    }

    /// The connection's `synchronous` level as seen by a relaxed or by a plain write.
    async fn synchronous(store: &Sqlite, relaxed: bool) -> i64 {
        let read = |conn: &mut Connection| {
            conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))
                .map_err(db("read synchronous"))
        };
        if relaxed {
            store.run_relaxed("probe", read).await.expect("runs")
        } else {
            store.run("probe", read).await.expect("runs")
        }
    }

    #[tokio::test]
    async fn relaxed_writes_leave_the_connection_full() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("fgs.db")).expect("open");
        assert_eq!(synchronous(&store, true).await, 1, "NORMAL inside");
        // A failing relaxed write restores FULL too.
        let failed = store
            .run_relaxed("fail", |conn| {
                conn.execute("INSERT INTO no_such_table VALUES (1)", [])
                    .map_err(db("insert"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(synchronous(&store, false).await, 2, "FULL again after");
    }
}
