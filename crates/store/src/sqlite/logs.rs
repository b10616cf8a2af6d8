//! Invocation logs on SQLite: one row per finished invocation, written in batches by the API's
//! log writer (never on an invocation's path), read by `GET .../logs` and purged by age.

use rusqlite::{params, params_from_iter, types::Value as SqlValue};

use super::{db, int, Sqlite};
use crate::StoreError;

/// One finished invocation's log, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationLog {
    /// Row id, increasing with insertion: the paging marker.
    pub id: i64,
    pub project: String,
    pub package: String,
    pub function: String,
    /// The version that ran (`latest` or a published version).
    pub version: String,
    pub request_id: String,
    /// `sync` or `async`.
    pub invoke_type: String,
    pub started_ms: i64,
    pub duration_ms: f64,
    /// 0 for success, the function error code (SPEC.md 3, e.g. 4002) otherwise.
    pub error_code: u32,
    /// Platform Start/Finish lines, runtime output and logger lines.
    pub log: String,
    /// Whether the log was cut to the per-invocation limit.
    pub truncated: bool,
}

/// Which logs of one function to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub project: String,
    pub package: String,
    pub function: String,
    pub request_id: Option<String>,
    /// Start time bounds, epoch milliseconds: `since <= started_ms < until`.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Row id the page continues from (exclusive); 0 starts at either end.
    pub marker: i64,
    pub limit: u64,
    /// Newest first (and `id < marker`) instead of oldest first (`id > marker`).
    pub newest_first: bool,
}

const COLUMNS: &str = "id, project, package, function, version, request_id, invoke_type, \
                       started_ms, duration_ms, error_code, log, truncated";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InvocationLog> {
    Ok(InvocationLog {
        id: r.get(0)?,
        project: r.get(1)?,
        package: r.get(2)?,
        function: r.get(3)?,
        version: r.get(4)?,
        request_id: r.get(5)?,
        invoke_type: r.get(6)?,
        started_ms: r.get(7)?,
        duration_ms: r.get(8)?,
        error_code: r.get::<_, i64>(9)?.try_into().unwrap_or(u32::MAX),
        log: r.get(10)?,
        truncated: r.get(11)?,
    })
}

impl Sqlite {
    pub(crate) async fn insert_logs(&self, logs: Vec<InvocationLog>) -> Result<(), StoreError> {
        self.run_relaxed("insert invocation logs", move |conn| {
            let tx = conn.transaction().map_err(db("begin insert logs"))?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO invocation_logs (project, package, function, version,
                         request_id, invoke_type, started_ms, duration_ms, error_code, log,
                         truncated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(db("prepare insert log"))?;
                for l in &logs {
                    stmt.execute(params![
                        l.project,
                        l.package,
                        l.function,
                        l.version,
                        l.request_id,
                        l.invoke_type,
                        l.started_ms,
                        l.duration_ms,
                        i64::from(l.error_code),
                        l.log,
                        l.truncated,
                    ])
                    .map_err(db("insert log"))?;
                }
            }
            tx.commit().map_err(db("commit insert logs"))
        })
        .await
    }

    pub(crate) async fn query_logs(&self, q: LogQuery) -> Result<Vec<InvocationLog>, StoreError> {
        self.run("query invocation logs", move |conn| {
            let mut sql = format!(
                "SELECT {COLUMNS} FROM invocation_logs
                 WHERE project = ?1 AND package = ?2 AND function = ?3"
            );
            let mut args: Vec<SqlValue> =
                vec![q.project.into(), q.package.into(), q.function.into()];
            let mut cond = |clause: &str, v: SqlValue| {
                args.push(v);
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            };
            if let Some(r) = q.request_id {
                cond("request_id =", r.into());
            }
            if let Some(s) = q.since_ms {
                cond("started_ms >=", s.into());
            }
            if let Some(u) = q.until_ms {
                cond("started_ms <", u.into());
            }
            if q.marker > 0 {
                let op = if q.newest_first { "id <" } else { "id >" };
                cond(op, q.marker.into());
            }
            let order = if q.newest_first { "DESC" } else { "ASC" };
            sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", int(q.limit)));
            let mut stmt = conn.prepare(&sql).map_err(db("prepare query logs"))?;
            let rows = stmt
                .query_map(params_from_iter(args), row)
                .map_err(db("query logs"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read log"));
            rows
        })
        .await
    }

    pub(crate) async fn purge_logs(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.run("purge invocation logs", move |conn| {
            conn.execute(
                "DELETE FROM invocation_logs WHERE started_ms < ?1",
                params![before_ms],
            )
            .map_err(db("purge logs"))
        })
        .await
    }
}
