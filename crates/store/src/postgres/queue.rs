//! The async invocation queue on PostgreSQL ([`crate::AsyncQueue`]), shared by every node.
//! A claim picks due rows with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once each take
//! other rows instead of waiting for one another, and leases them in the same transaction;
//! extensions and outcomes are conditional updates that match only the current lease
//! (owner and `lease_seq`), so a late outcome of an expired lease is dropped.
//!
//! Accepting is a normal, synchronous commit (durable before the 202); claims, extensions and
//! outcomes commit with `synchronous_commit = off`, as SQLite's relaxed writes do: one lost on a
//! crash of PostgreSQL runs the event again, which at-least-once allows.

use deadpool_postgres::GenericClient;
use fgs_core::flows::AsyncStatus;
use fgs_core::Qualifier;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{int, pg, Postgres};
use crate::{AsyncFilter, AsyncRow, Lease, StoreError};

const COLUMNS: &str = "a.request_id, f.project, f.package, f.name, a.qualifier, a.status, \
     a.attempts, a.created_ms, a.next_attempt_ms, a.started_ms, a.ended_ms, a.error_code, \
     a.error_message, a.body, a.extra, a.lease_owner, a.leased_until, a.lease_seq";

/// A row decoded; a corrupt qualifier or status is an error, never a guess.
fn decode(r: &Row) -> Result<AsyncRow, StoreError> {
    let request_id: String = r.get(0);
    let corrupt = |field: &'static str, value: String| StoreError::CorruptAsync {
        request_id: request_id.clone(),
        field,
        value,
    };
    let (qualifier, status): (String, String) = (r.get(4), r.get(5));
    let owner: Option<String> = r.get(15);
    let until: Option<i64> = r.get(16);
    Ok(AsyncRow {
        qualifier: Qualifier::parse(&qualifier).map_err(|_| corrupt("qualifier", qualifier))?,
        status: AsyncStatus::parse(&status).ok_or_else(|| corrupt("status", status))?,
        project: r.get(1),
        package: r.get(2),
        name: r.get(3),
        attempts: u32::try_from(r.get::<_, i64>(6)).unwrap_or(u32::MAX),
        created_ms: r.get(7),
        next_attempt_ms: r.get(8),
        started_ms: r.get(9),
        ended_ms: r.get(10),
        error_code: r
            .get::<_, Option<i64>>(11)
            .map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
        error_message: r.get::<_, Option<String>>(12).unwrap_or_default(),
        body: r.get(13),
        extra: r.get(14),
        lease: owner.map(|owner| Lease {
            owner,
            until_ms: until.unwrap_or(0),
            seq: r.get(17),
        }),
        request_id,
    })
}

/// Commits of this transaction need not wait for the WAL flush.
async fn relaxed<C: GenericClient>(c: &C) -> Result<(), StoreError> {
    c.batch_execute("SET LOCAL synchronous_commit = off")
        .await
        .map_err(pg("relax commit"))
}

/// Locks the rows of `ids` in request id order before a batch updates them. An `UPDATE ...
/// FROM UNNEST` locks rows in whatever order its join yields them: two such batches of one
/// node (the lease extension and the outcomes of events that just finished) then wait for
/// each other's rows and PostgreSQL kills one as a deadlock, whose outcomes are lost until
/// the leases run out. Taken in one order, the second batch waits for the first instead.
async fn lock_in_order<C: GenericClient>(c: &C, ids: &[&str]) -> Result<(), StoreError> {
    let stmt = c
        .prepare_cached(
            "SELECT 1 FROM async_invocations WHERE request_id = ANY($1)
             ORDER BY request_id FOR NO KEY UPDATE",
        )
        .await
        .map_err(pg("prepare lock async rows"))?;
    c.query(&stmt, &[&ids])
        .await
        .map_err(pg("lock async rows"))?;
    Ok(())
}

impl Postgres {
    pub(crate) async fn accept_async(
        &self,
        rows: Vec<AsyncRow>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut client = self.client("insert async invocations").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin insert async"))?;
        // One statement for the batch: events of unknown functions join no row, and request
        // ids already queued are skipped; each row's result is told from what was inserted.
        let ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        let projects: Vec<&str> = rows.iter().map(|r| r.project.as_str()).collect();
        let packages: Vec<&str> = rows.iter().map(|r| r.package.as_str()).collect();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let qualifiers: Vec<String> = rows.iter().map(|r| r.qualifier.to_string()).collect();
        let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
        let created: Vec<i64> = rows.iter().map(|r| r.created_ms).collect();
        let next: Vec<i64> = rows.iter().map(|r| r.next_attempt_ms).collect();
        let started: Vec<Option<i64>> = rows.iter().map(|r| r.started_ms).collect();
        let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body.as_slice()).collect();
        let extra: Vec<&str> = rows.iter().map(|r| r.extra.as_str()).collect();
        let owner: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.lease.as_ref().map(|l| l.owner.as_str()))
            .collect();
        let until: Vec<Option<i64>> = rows
            .iter()
            .map(|r| r.lease.as_ref().map(|l| l.until_ms))
            .collect();
        let seq: Vec<i64> = rows
            .iter()
            .map(|r| r.lease.as_ref().map_or(0, |l| l.seq))
            .collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO async_invocations
                 (request_id, function_id, qualifier, status, attempts, created_ms,
                  next_attempt_ms, started_ms, body, extra, lease_owner, leased_until, lease_seq)
                 SELECT u.id, f.id, u.q, u.st, 0, u.c, u.n, u.s, u.b, u.e, u.o, u.lu, u.ls
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                   $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bytea[],
                   $11::text[], $12::text[], $13::bigint[], $14::bigint[])
                   WITH ORDINALITY AS u(id, p, pk, fn, q, st, c, n, s, b, e, o, lu, ls, ord)
                 JOIN functions f ON f.project = u.p AND f.package = u.pk AND f.name = u.fn
                 ORDER BY u.ord
                 ON CONFLICT (request_id) DO NOTHING
                 RETURNING request_id",
            )
            .await
            .map_err(pg("prepare insert async"))?;
        let mut inserted: std::collections::HashSet<String> = tx
            .query(
                &stmt,
                &[
                    &ids,
                    &projects,
                    &packages,
                    &names,
                    &qualifiers,
                    &status,
                    &created,
                    &next,
                    &started,
                    &bodies,
                    &extra,
                    &owner,
                    &until,
                    &seq,
                ],
            )
            .await
            .map_err(pg("insert async invocations"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let exists = tx
            .prepare_cached(
                "SELECT 1 FROM functions WHERE project = $1 AND package = $2 AND name = $3",
            )
            .await
            .map_err(pg("prepare find function"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // `remove`: a request id given twice in one batch is accepted once.
            if inserted.remove(&r.request_id) {
                out.push(Ok(()));
                continue;
            }
            // Nothing inserted: either no such function or the request id is taken.
            let function = tx
                .query_opt(&exists, &[&r.project, &r.package, &r.name])
                .await
                .map_err(pg("find function"))?;
            out.push(Err(match function {
                None => StoreError::FunctionNotFound {
                    project: r.project,
                    package: r.package,
                    name: r.name,
                },
                Some(_) => StoreError::AsyncExists {
                    request_id: r.request_id,
                },
            }));
        }
        tx.commit().await.map_err(pg("commit insert async"))?;
        Ok(out)
    }

    /// Leases due events to `owner`: expired leases first (they are older), then WAIT events
    /// in due order; rows another node is claiming right now are skipped, not waited for.
    pub(crate) async fn claim_async(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncRow>, StoreError> {
        let mut client = self.client("claim async invocations").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin claim async"))?;
        relaxed(&tx).await?;
        let limit = int(limit as u64);
        let expired = tx
            .prepare_cached(
                "SELECT request_id FROM async_invocations
                 WHERE status = 'RUNNING' AND leased_until <= $1
                 ORDER BY leased_until, seq LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .await
            .map_err(pg("prepare claim expired"))?;
        let mut ids: Vec<String> = tx
            .query(&expired, &[&now_ms, &limit])
            .await
            .map_err(pg("claim expired leases"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let left = limit - ids.len() as i64;
        if left > 0 {
            let waiting = tx
                .prepare_cached(
                    "SELECT request_id FROM async_invocations
                     WHERE status = 'WAIT' AND next_attempt_ms <= $1
                     ORDER BY next_attempt_ms, seq LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .await
                .map_err(pg("prepare claim waiting"))?;
            ids.extend(
                tx.query(&waiting, &[&now_ms, &left])
                    .await
                    .map_err(pg("claim waiting events"))?
                    .iter()
                    .map(|r| r.get::<_, String>(0)),
            );
        }
        if ids.is_empty() {
            tx.commit().await.map_err(pg("commit claim async"))?;
            return Ok(Vec::new());
        }
        let lease = tx
            .prepare_cached(&format!(
                "UPDATE async_invocations a SET status = 'RUNNING', started_ms = $2,
                 lease_owner = $3, leased_until = $4, lease_seq = a.lease_seq + 1
                 FROM functions f WHERE f.id = a.function_id AND a.request_id = ANY($1)
                 RETURNING {COLUMNS}"
            ))
            .await
            .map_err(pg("prepare lease async"))?;
        let rows = tx
            .query(&lease, &[&ids, &now_ms, &owner, &until_ms])
            .await
            .map_err(pg("lease async"))?;
        tx.commit().await.map_err(pg("commit claim async"))?;
        let mut rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        // RETURNING has no order: give the rows back in the order they were picked.
        rows.sort_by_key(|r| ids.iter().position(|id| *id == r.request_id));
        Ok(rows)
    }

    pub(crate) async fn extend_async(
        &self,
        owner: &str,
        leases: Vec<(String, i64)>,
        until_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut client = self.client("extend async leases").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin extend async"))?;
        relaxed(&tx).await?;
        let ids: Vec<&str> = leases.iter().map(|(id, _)| id.as_str()).collect();
        let seqs: Vec<i64> = leases.iter().map(|(_, seq)| *seq).collect();
        lock_in_order(&tx, &ids).await?;
        // One statement for the batch: a node may hold thousands of leases at once.
        let stmt = tx
            .prepare_cached(
                "UPDATE async_invocations a SET leased_until = $3
                 FROM UNNEST($1::text[], $2::bigint[]) AS u(id, seq)
                 WHERE a.request_id = u.id AND a.status = 'RUNNING' AND a.lease_owner = $4
                   AND a.lease_seq = u.seq
                 RETURNING a.request_id",
            )
            .await
            .map_err(pg("prepare extend async"))?;
        let extended: std::collections::HashSet<String> = tx
            .query(&stmt, &[&ids, &seqs, &until_ms, &owner])
            .await
            .map_err(pg("extend async leases"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        tx.commit().await.map_err(pg("commit extend async"))?;
        Ok(leases.iter().map(|(id, _)| extended.contains(id)).collect())
    }

    /// Records outcomes, each only if its lease is still the row's.
    pub(crate) async fn settle_async(&self, rows: Vec<AsyncRow>) -> Result<Vec<bool>, StoreError> {
        let mut client = self.client("update async invocations").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin update async"))?;
        relaxed(&tx).await?;
        // One statement for the batch, matching each row's lease.
        let leased: Vec<&AsyncRow> = rows.iter().filter(|r| r.lease.is_some()).collect();
        let ids: Vec<&str> = leased.iter().map(|r| r.request_id.as_str()).collect();
        lock_in_order(&tx, &ids).await?;
        let lease = |r: &AsyncRow| {
            r.lease.clone().unwrap_or(Lease {
                owner: String::new(),
                until_ms: 0,
                seq: -1,
            })
        };
        let status: Vec<&str> = leased.iter().map(|r| r.status.as_str()).collect();
        let attempts: Vec<i64> = leased.iter().map(|r| i64::from(r.attempts)).collect();
        let next: Vec<i64> = leased.iter().map(|r| r.next_attempt_ms).collect();
        let started: Vec<Option<i64>> = leased.iter().map(|r| r.started_ms).collect();
        let ended: Vec<Option<i64>> = leased.iter().map(|r| r.ended_ms).collect();
        let code: Vec<Option<i64>> = leased.iter().map(|r| r.error_code.map(i64::from)).collect();
        let message: Vec<&str> = leased.iter().map(|r| r.error_message.as_str()).collect();
        let owner: Vec<String> = leased.iter().map(|r| lease(r).owner).collect();
        let seq: Vec<i64> = leased.iter().map(|r| lease(r).seq).collect();
        let stmt = tx
            .prepare_cached(
                "UPDATE async_invocations a SET status = u.status, attempts = u.attempts,
                 next_attempt_ms = u.next, started_ms = u.started, ended_ms = u.ended,
                 error_code = u.code, error_message = u.message, lease_owner = NULL,
                 leased_until = NULL
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                   $6::bigint[], $7::bigint[], $8::text[], $9::text[], $10::bigint[])
                   AS u(id, status, attempts, next, started, ended, code, message, owner, seq)
                 WHERE a.request_id = u.id AND a.status = 'RUNNING' AND a.lease_owner = u.owner
                   AND a.lease_seq = u.seq
                 RETURNING a.request_id",
            )
            .await
            .map_err(pg("prepare update async invocations"))?;
        let done: std::collections::HashSet<String> = tx
            .query(
                &stmt,
                &[
                    &ids, &status, &attempts, &next, &started, &ended, &code, &message, &owner,
                    &seq,
                ],
            )
            .await
            .map_err(pg("update async invocations"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let written: Vec<bool> = rows
            .iter()
            .map(|r| r.lease.is_some() && done.contains(&r.request_id))
            .collect();
        tx.commit().await.map_err(pg("commit update async"))?;
        Ok(written)
    }

    pub(crate) async fn async_queue_stats(&self) -> Result<(u64, Option<i64>), StoreError> {
        let client = self.client("async queue stats").await?;
        let row = client
            .query_one(
                "SELECT COUNT(*), MIN(created_ms) FROM async_invocations WHERE status = 'WAIT'",
                &[],
            )
            .await
            .map_err(pg("async queue stats"))?;
        Ok((u64::try_from(row.get::<_, i64>(0)).unwrap_or(0), row.get(1)))
    }

    pub(crate) async fn next_due_async(&self) -> Result<Option<i64>, StoreError> {
        let client = self.client("next due async").await?;
        let row = client
            .query_one(
                "SELECT LEAST(
                   (SELECT MIN(next_attempt_ms) FROM async_invocations WHERE status = 'WAIT'),
                   (SELECT MIN(leased_until) FROM async_invocations WHERE status = 'RUNNING'))",
                &[],
            )
            .await
            .map_err(pg("next due async"))?;
        Ok(row.get(0))
    }

    pub(crate) async fn list_async(
        &self,
        f: AsyncFilter,
    ) -> Result<(Vec<AsyncRow>, u64), StoreError> {
        let client = self.client("list async invocations").await?;
        let fid =
            super::functions::function_row(&client, &f.project, &f.package, &f.name, false).await?;
        let mut cond = String::from("a.function_id = $1");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(fid)];
        let mut add = |clause: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            cond.push_str(&format!(" AND {clause} ${}", args.len()));
        };
        if let Some(id) = f.request_id {
            add("a.request_id =", Box::new(id));
        }
        if let Some(st) = f.status {
            add("a.status =", Box::new(st.as_str()));
        }
        if let Some(t) = f.begin_ms {
            add("a.created_ms >=", Box::new(t));
        }
        if let Some(t) = f.end_ms {
            add("a.created_ms <=", Box::new(t));
        }
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let count: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM async_invocations a WHERE {cond}"),
                &refs,
            )
            .await
            .map_err(pg("count async"))?
            .get(0);
        let sql = format!(
            "SELECT {COLUMNS} FROM async_invocations a JOIN functions f ON f.id = a.function_id
             WHERE {cond} ORDER BY a.created_ms DESC, a.seq DESC LIMIT {} OFFSET {}",
            int(f.limit),
            int(f.marker)
        );
        let rows = client.query(&sql, &refs).await.map_err(pg("list async"))?;
        let rows = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok((rows, u64::try_from(count).unwrap_or(0)))
    }

    pub(crate) async fn cancel_async(
        &self,
        project: &str,
        package: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<AsyncStatus, StoreError> {
        let mut client = self.client("cancel async invocation").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin cancel async"))?;
        let fid = super::functions::function_row(&tx, project, package, name, false).await?;
        // The row lock makes the read and the write one step against a claim on another node.
        let status: Option<String> = tx
            .query_opt(
                "SELECT status FROM async_invocations WHERE function_id = $1 AND request_id = $2
                 FOR UPDATE",
                &[&fid, &request_id],
            )
            .await
            .map_err(pg("find async invocation"))?
            .map(|r| r.get(0));
        let Some(status) = status else {
            return Err(StoreError::AsyncNotFound {
                request_id: request_id.to_owned(),
            });
        };
        let status = AsyncStatus::parse(&status).ok_or_else(|| StoreError::CorruptAsync {
            request_id: request_id.to_owned(),
            field: "status",
            value: status,
        })?;
        if status == AsyncStatus::Wait {
            tx.execute(
                "UPDATE async_invocations SET status = 'DISCARD', ended_ms = $3,
                 error_message = 'cancelled' WHERE function_id = $1 AND request_id = $2",
                &[&fid, &request_id, &now_ms],
            )
            .await
            .map_err(pg("cancel async invocation"))?;
        }
        tx.commit().await.map_err(pg("commit cancel async"))?;
        Ok(status)
    }
}
