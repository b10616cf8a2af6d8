//! Versions, aliases and the async invocation queue on SQLite.

use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{db, function_row as function_id, int, Sqlite};
use crate::{AsyncFilter, AsyncRow, StoreError};

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("flow records always serialise")
}

fn parse<T: serde::de::DeserializeOwned>(s: &str, op: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend {
        op,
        source: e.into(),
    })
}

fn aliases_of(tx: &Connection, fid: i64) -> Result<Vec<AliasRecord>, StoreError> {
    let mut stmt = tx
        .prepare("SELECT record FROM aliases WHERE function_id = ?1 ORDER BY created_ms, id")
        .map_err(db("prepare list aliases"))?;
    let rows = stmt
        .query_map(params![fid], |r| r.get::<_, String>(0))
        .map_err(db("list aliases"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("read alias"))?;
    rows.iter().map(|r| parse(r, "decode alias")).collect()
}

fn version_exists(tx: &Transaction<'_>, fid: i64, version: &str) -> Result<bool, StoreError> {
    if version == "latest" {
        return Ok(true);
    }
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM versions WHERE function_id = ?1 AND version = ?2)",
        params![fid, version],
        |r| r.get(0),
    )
    .map_err(db("check version exists"))
}

const ASYNC_COLUMNS: &str = "a.request_id, f.project, f.package, f.name, a.qualifier, a.status, \
     a.attempts, a.created_ms, a.next_attempt_ms, a.started_ms, a.ended_ms, a.error_code, \
     a.error_message, a.body, a.extra";

fn async_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AsyncRow> {
    let status: String = r.get(5)?;
    Ok(AsyncRow {
        request_id: r.get(0)?,
        project: r.get(1)?,
        package: r.get(2)?,
        name: r.get(3)?,
        qualifier: r.get(4)?,
        status: AsyncStatus::parse(&status).unwrap_or(AsyncStatus::Fail),
        attempts: r.get::<_, i64>(6)? as u32,
        created_ms: r.get(7)?,
        next_attempt_ms: r.get(8)?,
        started_ms: r.get(9)?,
        ended_ms: r.get(10)?,
        error_code: r.get::<_, Option<i64>>(11)?.map(|c| c as u32),
        error_message: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
        body: r.get(13)?,
        extra: r.get(14)?,
    })
}

impl Sqlite {
    pub(crate) async fn publish_version(
        &self,
        v: VersionRecord,
        max_published: usize,
    ) -> Result<(), StoreError> {
        let record = json(&v);
        self.run("publish version", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin publish version"))?;
            let f = &v.function;
            let fid = function_id(&tx, &f.project, &f.package, &f.name)?;
            if version_exists(&tx, fid, &v.version)? {
                return Err(StoreError::VersionExists {
                    name: f.name.clone(),
                    version: v.version.clone(),
                });
            }
            let count: i64 = tx
                .query_row("SELECT COUNT(*) FROM versions WHERE function_id = ?1", params![fid], |r| r.get(0))
                .map_err(db("count versions"))?;
            if count as usize >= max_published {
                return Err(StoreError::TooManyVersions {
                    name: f.name.clone(),
                    limit: max_published + 1,
                });
            }
            tx.execute(
                "INSERT INTO versions (function_id, version, created_ms, record) VALUES (?1, ?2, ?3, ?4)",
                params![fid, v.version, v.created_ms, record],
            )
            .map_err(db("insert version"))?;
            tx.commit().map_err(db("commit publish version"))
        })
        .await
    }

    pub(crate) async fn get_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let k = (
            project.to_owned(),
            package.to_owned(),
            name.to_owned(),
            version.to_owned(),
        );
        self.run("get version", move |conn| {
            let rec: Option<String> = conn
                .query_row(
                    "SELECT v.record FROM versions v JOIN functions f ON f.id = v.function_id
                     WHERE f.project = ?1 AND f.package = ?2 AND f.name = ?3 AND v.version = ?4",
                    params![k.0, k.1, k.2, k.3],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db("get version"))?;
            rec.map(|r| parse(&r, "decode version")).transpose()
        })
        .await
    }

    /// Published versions, oldest first.
    pub(crate) async fn list_versions(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let k = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("list versions", move |conn| {
            let fid = function_id(conn, &k.0, &k.1, &k.2)?;
            let mut stmt = conn
                .prepare(
                    "SELECT record FROM versions WHERE function_id = ?1 ORDER BY created_ms, id",
                )
                .map_err(db("prepare list versions"))?;
            let rows = stmt
                .query_map(params![fid], |r| r.get::<_, String>(0))
                .map_err(db("list versions"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read version"))?;
            rows.iter().map(|r| parse(r, "decode version")).collect()
        })
        .await
    }

    /// Deletes a published version unless an alias routes to it.
    pub(crate) async fn delete_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        let k = (
            project.to_owned(),
            package.to_owned(),
            name.to_owned(),
            version.to_owned(),
        );
        self.run("delete version", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin delete version"))?;
            let fid = function_id(&tx, &k.0, &k.1, &k.2)?;
            if let Some(a) = aliases_of(&tx, fid)?
                .into_iter()
                .find(|a| a.versions().any(|v| v == k.3))
            {
                return Err(StoreError::VersionInUse {
                    name: k.2.clone(),
                    version: k.3.clone(),
                    alias: a.name,
                });
            }
            let n = tx
                .execute(
                    "DELETE FROM versions WHERE function_id = ?1 AND version = ?2",
                    params![fid, k.3],
                )
                .map_err(db("delete version"))?;
            if n == 0 {
                return Err(StoreError::VersionNotFound {
                    name: k.2.clone(),
                    version: k.3.clone(),
                });
            }
            tx.commit().map_err(db("commit delete version"))
        })
        .await
    }

    /// Creates (`create`) or replaces an alias; every version it routes to must exist.
    pub(crate) async fn put_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> Result<(), StoreError> {
        let k = (project.to_owned(), package.to_owned(), name.to_owned());
        let record = json(&alias);
        self.run("put alias", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin put alias"))?;
            let fid = function_id(&tx, &k.0, &k.1, &k.2)?;
            for v in alias.versions() {
                if !version_exists(&tx, fid, v)? {
                    return Err(StoreError::VersionNotFound { name: k.2.clone(), version: v.to_string() });
                }
            }
            let existing = aliases_of(&tx, fid)?;
            let exists = existing.iter().any(|a| a.name == alias.name);
            if create {
                if exists {
                    return Err(StoreError::AliasExists { name: k.2.clone(), alias: alias.name.clone() });
                }
                if existing.len() >= max {
                    return Err(StoreError::TooManyAliases { name: k.2.clone(), limit: max });
                }
                tx.execute(
                    "INSERT INTO aliases (function_id, alias, created_ms, record) VALUES (?1, ?2, ?3, ?4)",
                    params![fid, alias.name, alias.created_ms, record],
                )
                .map_err(db("insert alias"))?;
            } else {
                if !exists {
                    return Err(StoreError::AliasNotFound { name: k.2.clone(), alias: alias.name.clone() });
                }
                tx.execute(
                    "UPDATE aliases SET record = ?3 WHERE function_id = ?1 AND alias = ?2",
                    params![fid, alias.name, record],
                )
                .map_err(db("update alias"))?;
            }
            tx.commit().map_err(db("commit put alias"))
        })
        .await
    }

    pub(crate) async fn list_aliases(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let k = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("list aliases", move |conn| {
            let fid = function_id(conn, &k.0, &k.1, &k.2)?;
            aliases_of(conn, fid)
        })
        .await
    }

    pub(crate) async fn delete_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), StoreError> {
        let k = (
            project.to_owned(),
            package.to_owned(),
            name.to_owned(),
            alias.to_owned(),
        );
        self.run("delete alias", move |conn| {
            let fid = function_id(conn, &k.0, &k.1, &k.2)?;
            let n = conn
                .execute(
                    "DELETE FROM aliases WHERE function_id = ?1 AND alias = ?2",
                    params![fid, k.3],
                )
                .map_err(db("delete alias"))?;
            if n == 0 {
                return Err(StoreError::AliasNotFound {
                    name: k.2.clone(),
                    alias: k.3.clone(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Stores accepted async events in one transaction: the caller answers 202 only after this
    /// returns, so an accepted event is on disk (ARCHITECTURE.md "Invariants"). Batching lets
    /// concurrent submitters share one fsync.
    pub(crate) async fn insert_async(
        &self,
        rows: Vec<AsyncRow>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.run("insert async invocations", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin insert async"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let res = function_id(&tx, &r.project, &r.package, &r.name).and_then(|fid| {
                    tx.prepare_cached(
                        "INSERT INTO async_invocations
                         (request_id, function_id, qualifier, status, attempts, created_ms,
                          next_attempt_ms, body, extra)
                         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?6, ?7)",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            r.request_id,
                            fid,
                            r.qualifier,
                            r.status.as_str(),
                            r.created_ms,
                            r.body,
                            r.extra
                        ])
                    })
                    .map(|_| ())
                    .map_err(db("insert async invocation"))
                });
                out.push(res);
            }
            tx.commit().map_err(db("commit insert async"))?;
            Ok(out)
        })
        .await
    }

    /// Marks up to `limit` due WAIT events RUNNING and returns them, oldest due first.
    pub(crate) async fn claim_due_async(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncRow>, StoreError> {
        self.run_relaxed("claim async invocations", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin claim async"))?;
            let rows = {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "SELECT {ASYNC_COLUMNS} FROM async_invocations a JOIN functions f ON f.id = a.function_id
                         WHERE a.status = 'WAIT' AND a.next_attempt_ms <= ?1
                         ORDER BY a.next_attempt_ms LIMIT ?2"
                    ))
                    .map_err(db("prepare claim async"))?;
                let rows = stmt
                    .query_map(params![now_ms, int(limit as u64)], async_row)
                    .map_err(db("claim async"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db("read claimed async"))?;
                rows
            };
            {
                let mut mark = tx
                    .prepare_cached(
                        "UPDATE async_invocations SET status = 'RUNNING', started_ms = ?2 WHERE request_id = ?1",
                    )
                    .map_err(db("prepare mark async running"))?;
                for r in &rows {
                    mark.execute(params![r.request_id, now_ms])
                        .map_err(db("mark async running"))?;
                }
            }
            tx.commit().map_err(db("commit claim async"))?;
            Ok(rows
                .into_iter()
                .map(|mut r| {
                    r.status = AsyncStatus::Running;
                    r.started_ms = Some(now_ms);
                    r
                })
                .collect())
        })
        .await
    }

    /// The number of WAIT events and the oldest one's creation time.
    pub(crate) async fn async_queue_stats(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.run("async queue stats", |conn| {
            conn.query_row(
                "SELECT COUNT(*), MIN(created_ms) FROM async_invocations WHERE status = 'WAIT'",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(db("async queue stats"))
        })
        .await
    }

    /// The earliest time a WAIT event is due, if any.
    pub(crate) async fn next_due_async(&self) -> Result<Option<i64>, StoreError> {
        self.run("next due async", |conn| {
            conn.query_row(
                "SELECT MIN(next_attempt_ms) FROM async_invocations WHERE status = 'WAIT'",
                [],
                |r| r.get(0),
            )
            .map_err(db("next due async"))
        })
        .await
    }

    /// Records the state an event moved to after an attempt.
    pub(crate) async fn update_async(&self, rows: Vec<AsyncRow>) -> Result<(), StoreError> {
        self.run_relaxed("update async invocations", move |conn| {
            // One transaction, so one fsync, for every state change the dispatcher has ready.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin update async"))?;
            {
                let mut update = tx
                .prepare_cached(
                    "UPDATE async_invocations SET status = ?2, attempts = ?3, next_attempt_ms = ?4,
                     started_ms = ?5, ended_ms = ?6, error_code = ?7, error_message = ?8
                     WHERE request_id = ?1",
                )
                .map_err(db("prepare update async invocation"))?;
                for row in rows {
                    update
                        .execute(params![
                            row.request_id,
                            row.status.as_str(),
                            i64::from(row.attempts),
                            row.next_attempt_ms,
                            row.started_ms,
                            row.ended_ms,
                            row.error_code.map(i64::from),
                            row.error_message
                        ])
                        .map_err(db("update async invocation"))?;
                }
            }
            tx.commit().map_err(db("commit update async"))
        })
        .await
    }

    /// Events a stopped fgs left RUNNING go back to WAIT: at-least-once delivery.
    pub(crate) async fn requeue_running_async(&self) -> Result<usize, StoreError> {
        self.run("requeue async", |conn| {
            conn.execute(
                "UPDATE async_invocations SET status = 'WAIT' WHERE status = 'RUNNING'",
                [],
            )
            .map_err(db("requeue async"))
        })
        .await
    }

    pub(crate) async fn list_async(
        &self,
        f: AsyncFilter,
    ) -> Result<(Vec<AsyncRow>, u64), StoreError> {
        self.run("list async invocations", move |conn| {
            let fid = function_id(conn, &f.project, &f.package, &f.name)?;
            let mut cond = String::from("a.function_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![fid.into()];
            if let Some(id) = &f.request_id {
                args.push(id.clone().into());
                cond.push_str(&format!(" AND a.request_id = ?{}", args.len()));
            }
            if let Some(st) = f.status {
                args.push(st.as_str().to_string().into());
                cond.push_str(&format!(" AND a.status = ?{}", args.len()));
            }
            if let Some(t) = f.begin_ms {
                args.push(t.into());
                cond.push_str(&format!(" AND a.created_ms >= ?{}", args.len()));
            }
            if let Some(t) = f.end_ms {
                args.push(t.into());
                cond.push_str(&format!(" AND a.created_ms <= ?{}", args.len()));
            }
            let count: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM async_invocations a WHERE {cond}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )
                .map_err(db("count async"))?;
            args.push(int(f.limit).into());
            args.push(int(f.marker).into());
            let sql = format!(
                "SELECT {ASYNC_COLUMNS} FROM async_invocations a JOIN functions f ON f.id = a.function_id
                 WHERE {cond} ORDER BY a.created_ms DESC, a.rowid DESC LIMIT ?{} OFFSET ?{}",
                args.len() - 1,
                args.len()
            );
            let mut stmt = conn.prepare(&sql).map_err(db("prepare list async"))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), async_row)
                .map_err(db("list async"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read async"))?;
            Ok((rows, count as u64))
        })
        .await
    }

    /// Cancels a WAIT event (it becomes DISCARD). Returns the status it had.
    pub(crate) async fn cancel_async(
        &self,
        project: &str,
        package: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<AsyncStatus, StoreError> {
        let k = (
            project.to_owned(),
            package.to_owned(),
            name.to_owned(),
            request_id.to_owned(),
        );
        self.run("cancel async invocation", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin cancel async"))?;
            let fid = function_id(&tx, &k.0, &k.1, &k.2)?;
            let status: Option<String> = tx
                .query_row(
                    "SELECT status FROM async_invocations WHERE function_id = ?1 AND request_id = ?2",
                    params![fid, k.3],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db("find async invocation"))?;
            let Some(status) = status.and_then(|s| AsyncStatus::parse(&s)) else {
                return Err(StoreError::AsyncNotFound { request_id: k.3.clone() });
            };
            if status == AsyncStatus::Wait {
                tx.execute(
                    "UPDATE async_invocations SET status = 'DISCARD', ended_ms = ?3,
                     error_message = 'cancelled' WHERE function_id = ?1 AND request_id = ?2",
                    params![fid, k.3, now_ms],
                )
                .map_err(db("cancel async invocation"))?;
            }
            tx.commit().map_err(db("commit cancel async"))?;
            Ok(status)
        })
        .await
    }
}
