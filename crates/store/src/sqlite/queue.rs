//! The async invocation queue on SQLite ([`crate::AsyncQueue`]). Every claim, extension and
//! outcome is one `IMMEDIATE` transaction, so two processes on one database file see leases as
//! two nodes would: a lease is held until its `leased_until`, and only its owner with the same
//! `lease_seq` may extend it or record the outcome.

use fgs_core::flows::AsyncStatus;
use fgs_core::Qualifier;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{db, function_row as function_id, int, Sqlite};
use crate::{AsyncFilter, AsyncRow, Lease, StoreError};

const ASYNC_COLUMNS: &str = "a.request_id, f.project, f.package, f.name, a.qualifier, a.status, \
     a.attempts, a.created_ms, a.next_attempt_ms, a.started_ms, a.ended_ms, a.error_code, \
     a.error_message, a.body, a.extra, a.lease_owner, a.leased_until, a.lease_seq";

/// A row as read, before its typed columns are checked.
struct RawRow {
    row: AsyncRow,
    qualifier: String,
    status: String,
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    let owner: Option<String> = r.get(15)?;
    let until: Option<i64> = r.get(16)?;
    Ok(RawRow {
        qualifier: r.get(4)?,
        status: r.get(5)?,
        row: AsyncRow {
            request_id: r.get(0)?,
            project: r.get(1)?,
            package: r.get(2)?,
            name: r.get(3)?,
            qualifier: Qualifier::Latest,
            status: AsyncStatus::Wait,
            attempts: r.get::<_, i64>(6)? as u32,
            created_ms: r.get(7)?,
            next_attempt_ms: r.get(8)?,
            started_ms: r.get(9)?,
            ended_ms: r.get(10)?,
            error_code: r.get::<_, Option<i64>>(11)?.map(|c| c as u32),
            error_message: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
            body: r.get(13)?,
            extra: r.get(14)?,
            lease: owner.map(|owner| Lease {
                owner,
                until_ms: until.unwrap_or(0),
                seq: 0,
            }),
        },
    })
    .and_then(|mut raw| {
        if let Some(lease) = &mut raw.row.lease {
            lease.seq = r.get(17)?;
        }
        Ok(raw)
    })
}

/// Checks the typed columns: a corrupt stored value is an error, never a guess (a guessed
/// qualifier would run another version of the function).
fn decode(raw: RawRow) -> Result<AsyncRow, StoreError> {
    let RawRow {
        mut row,
        qualifier,
        status,
    } = raw;
    let corrupt = |field: &'static str, value: String| StoreError::CorruptAsync {
        request_id: row.request_id.clone(),
        field,
        value,
    };
    row.qualifier = Qualifier::parse(&qualifier).map_err(|_| corrupt("qualifier", qualifier))?;
    row.status = AsyncStatus::parse(&status).ok_or_else(|| corrupt("status", status))?;
    Ok(row)
}

fn select(
    conn: &Connection,
    where_: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<AsyncRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {ASYNC_COLUMNS} FROM async_invocations a JOIN functions f ON f.id = a.function_id
             WHERE {where_}"
        ))
        .map_err(db("prepare read async"))?;
    let raws = stmt
        .query_map(params, raw_row)
        .map_err(db("read async"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("read async row"))?;
    raws.into_iter().map(decode).collect()
}

impl Sqlite {
    /// Stores accepted async events in one transaction: the caller answers 202 only after this
    /// returns, so an accepted event is on disk (ARCHITECTURE.md "Invariants"). Batching lets
    /// concurrent submitters share one fsync.
    pub(crate) async fn accept_async(
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
                          next_attempt_ms, started_ms, body, extra, lease_owner, leased_until,
                          lease_seq)
                         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            r.request_id,
                            fid,
                            r.qualifier.to_string(),
                            r.status.as_str(),
                            r.created_ms,
                            r.next_attempt_ms,
                            r.started_ms,
                            r.body,
                            r.extra,
                            r.lease.as_ref().map(|l| l.owner.as_str()),
                            r.lease.as_ref().map(|l| l.until_ms),
                            r.lease.as_ref().map_or(0, |l| l.seq),
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

    /// Leases due events to `owner`: expired leases first (they are older), then WAIT events in
    /// due order. Two queries rather than one with `OR`, so each walks its own index in order
    /// and stops at `limit`.
    pub(crate) async fn claim_async(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncRow>, StoreError> {
        let owner = owner.to_owned();
        self.run_relaxed("claim async invocations", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin claim async"))?;
            let mut rows = select(
                &tx,
                "a.status = 'RUNNING' AND a.leased_until <= ?1 ORDER BY a.leased_until LIMIT ?2",
                params![now_ms, int(limit as u64)],
            )?;
            let left = limit.saturating_sub(rows.len());
            if left > 0 {
                rows.extend(select(
                    &tx,
                    "a.status = 'WAIT' AND a.next_attempt_ms <= ?1
                     ORDER BY a.next_attempt_ms LIMIT ?2",
                    params![now_ms, int(left as u64)],
                )?);
            }
            {
                let mut mark = tx
                    .prepare_cached(
                        "UPDATE async_invocations SET status = 'RUNNING', started_ms = ?2,
                         lease_owner = ?3, leased_until = ?4, lease_seq = lease_seq + 1
                         WHERE request_id = ?1 RETURNING lease_seq",
                    )
                    .map_err(db("prepare lease async"))?;
                for r in &mut rows {
                    let seq: i64 = mark
                        .query_row(params![r.request_id, now_ms, owner, until_ms], |x| x.get(0))
                        .map_err(db("lease async"))?;
                    r.status = AsyncStatus::Running;
                    r.started_ms = Some(now_ms);
                    r.lease = Some(Lease {
                        owner: owner.clone(),
                        until_ms,
                        seq,
                    });
                }
            }
            tx.commit().map_err(db("commit claim async"))?;
            Ok(rows)
        })
        .await
    }

    pub(crate) async fn extend_async(
        &self,
        owner: &str,
        leases: Vec<(String, i64)>,
        until_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let owner = owner.to_owned();
        self.run_relaxed("extend async leases", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin extend async"))?;
            let mut held = Vec::with_capacity(leases.len());
            {
                let mut extend = tx
                    .prepare_cached(
                        "UPDATE async_invocations SET leased_until = ?4
                         WHERE request_id = ?1 AND status = 'RUNNING' AND lease_owner = ?2
                           AND lease_seq = ?3",
                    )
                    .map_err(db("prepare extend async"))?;
                for (id, seq) in &leases {
                    let n = extend
                        .execute(params![id, owner, seq, until_ms])
                        .map_err(db("extend async lease"))?;
                    held.push(n == 1);
                }
            }
            tx.commit().map_err(db("commit extend async"))?;
            Ok(held)
        })
        .await
    }

    /// Records outcomes, each only if its lease is still the row's.
    pub(crate) async fn settle_async(&self, rows: Vec<AsyncRow>) -> Result<Vec<bool>, StoreError> {
        self.run_relaxed("update async invocations", move |conn| {
            // One transaction, so one fsync, for every outcome the dispatcher has ready.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin update async"))?;
            let mut written = Vec::with_capacity(rows.len());
            {
                let mut update = tx
                    .prepare_cached(
                        "UPDATE async_invocations SET status = ?2, attempts = ?3,
                         next_attempt_ms = ?4, started_ms = ?5, ended_ms = ?6, error_code = ?7,
                         error_message = ?8, lease_owner = NULL, leased_until = NULL
                         WHERE request_id = ?1 AND status = 'RUNNING' AND lease_owner = ?9
                           AND lease_seq = ?10",
                    )
                    .map_err(db("prepare update async invocation"))?;
                for row in rows {
                    let Some(lease) = &row.lease else {
                        written.push(false);
                        continue;
                    };
                    let n = update
                        .execute(params![
                            row.request_id,
                            row.status.as_str(),
                            i64::from(row.attempts),
                            row.next_attempt_ms,
                            row.started_ms,
                            row.ended_ms,
                            row.error_code.map(i64::from),
                            row.error_message,
                            lease.owner,
                            lease.seq,
                        ])
                        .map_err(db("update async invocation"))?;
                    written.push(n == 1);
                }
            }
            tx.commit().map_err(db("commit update async"))?;
            Ok(written)
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

    /// The earliest time a WAIT event is due or a lease ends, if any.
    pub(crate) async fn next_due_async(&self) -> Result<Option<i64>, StoreError> {
        self.run("next due async", |conn| {
            conn.query_row(
                "SELECT MIN(t) FROM (
                   SELECT MIN(next_attempt_ms) AS t FROM async_invocations WHERE status = 'WAIT'
                   UNION ALL
                   SELECT MIN(leased_until) FROM async_invocations WHERE status = 'RUNNING')",
                [],
                |r| r.get(0),
            )
            .map_err(db("next due async"))
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
            let raws = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), raw_row)
                .map_err(db("list async"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read async"))?;
            let rows = raws.into_iter().map(decode).collect::<Result<Vec<_>, _>>()?;
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
            let Some(status) = status else {
                return Err(StoreError::AsyncNotFound { request_id: k.3.clone() });
            };
            let status = AsyncStatus::parse(&status).ok_or_else(|| StoreError::CorruptAsync {
                request_id: k.3.clone(),
                field: "status",
                value: status,
            })?;
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
