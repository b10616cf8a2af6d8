//! Invocation logs on SQLite: one row per finished invocation, written in batches by the API's
//! log writer (never on an invocation's path), read by `GET .../logs` and purged by age.

use std::sync::LazyLock;

use rusqlite::{params, params_from_iter, types::Value as SqlValue, Connection};

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

/// A finished invocation's log on its way to the store: an [`InvocationLog`] without its id,
/// made on the invocation's path, so its strings share one allocation (a warm call makes one
/// of these; separate strings cost one allocation each).
#[derive(Debug, Clone, PartialEq)]
pub struct NewInvocationLog {
    /// The project, package, function, version and request id, then the log, back to back.
    text: String,
    /// Where each of the five strings before the log ends in `text`.
    ends: [usize; 5],
    /// The columns that are not strings of the invocation's.
    pub meta: LogMeta,
}

/// The columns of a [`NewInvocationLog`] besides its strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogMeta {
    /// `sync` or `async`.
    pub invoke_type: &'static str,
    pub started_ms: i64,
    pub duration_ms: f64,
    /// 0 for success, the function error code otherwise.
    pub error_code: u32,
    /// Whether the log was cut to the per-invocation limit.
    pub truncated: bool,
}

impl NewInvocationLog {
    /// The row of one invocation; its log is the concatenation of `log` (e.g. the head of a cut
    /// log, the marker and the tail).
    pub fn new(
        project: &str,
        package: &str,
        function: &str,
        version: &str,
        request_id: &str,
        log: &[&str],
        meta: LogMeta,
    ) -> NewInvocationLog {
        let fields = [project, package, function, version, request_id];
        let len = fields.iter().chain(log).map(|s| s.len()).sum();
        let mut text = String::with_capacity(len);
        let mut ends = [0; 5];
        for (end, field) in ends.iter_mut().zip(fields) {
            text.push_str(field);
            *end = text.len();
        }
        for part in log {
            text.push_str(part);
        }
        NewInvocationLog { text, ends, meta }
    }

    fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn project(&self) -> &str {
        self.field(0)
    }

    pub fn package(&self) -> &str {
        self.field(1)
    }

    pub fn function(&self) -> &str {
        self.field(2)
    }

    pub fn version(&self) -> &str {
        self.field(3)
    }

    pub fn request_id(&self) -> &str {
        self.field(4)
    }

    pub fn log(&self) -> &str {
        &self.text[self.ends[4]..]
    }
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

/// The columns an insert sets, in the order [`bind_row`] binds them.
const INSERT_COLUMNS: &str = "project, package, function, version, request_id, invoke_type, \
                              started_ms, duration_ms, error_code, log, truncated";
const INSERT_PARAMS: usize = 11;

/// Rows one `INSERT` statement stores: SQLite sets a statement up (its cursors on the table and
/// each index) once per execution, so a batch's rows go in this many at a time, and the rest
/// one by one (measured with SQLite alone, 500-row transactions: 3.9 us of cpu a row one by
/// one, 3.0 with 16 a statement, 3.1-3.2 with 32 or 64).
const ROWS_PER_INSERT: usize = 16;

/// `INSERT ... VALUES (?, ...), ...` for `rows` rows. `OR FAIL`: a plain `INSERT` of several
/// rows has SQLite keep a statement journal (every page it changes copied first, to undo the
/// statement alone), which doubled the log writer's file writes; failing keeps the rows before
/// the failure, and the transaction is rolled back anyway when a statement fails. No row can
/// fail a constraint: every column is bound, none is unique.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", ["?"; INSERT_PARAMS].join(", "));
    format!(
        "INSERT OR FAIL INTO invocation_logs ({INSERT_COLUMNS}) VALUES {}",
        vec![row; rows].join(", ")
    )
}

static INSERT_ONE: LazyLock<String> = LazyLock::new(|| insert_sql(1));
static INSERT_MANY: LazyLock<String> = LazyLock::new(|| insert_sql(ROWS_PER_INSERT));

/// Binds `l`'s columns as the `n`th row (from 0) of an insert statement.
fn bind_row(
    stmt: &mut rusqlite::Statement<'_>,
    n: usize,
    l: &NewInvocationLog,
) -> rusqlite::Result<()> {
    let at = n * INSERT_PARAMS;
    stmt.raw_bind_parameter(at + 1, l.project())?;
    stmt.raw_bind_parameter(at + 2, l.package())?;
    stmt.raw_bind_parameter(at + 3, l.function())?;
    stmt.raw_bind_parameter(at + 4, l.version())?;
    stmt.raw_bind_parameter(at + 5, l.request_id())?;
    stmt.raw_bind_parameter(at + 6, l.meta.invoke_type)?;
    stmt.raw_bind_parameter(at + 7, l.meta.started_ms)?;
    stmt.raw_bind_parameter(at + 8, l.meta.duration_ms)?;
    stmt.raw_bind_parameter(at + 9, i64::from(l.meta.error_code))?;
    stmt.raw_bind_parameter(at + 10, l.log())?;
    stmt.raw_bind_parameter(at + 11, l.meta.truncated)
}

/// Inserts `logs` in their order (their ids grow in it): `per` rows a statement while that many
/// are left, then one a statement.
fn insert_rows(conn: &Connection, logs: &[NewInvocationLog], per: usize) -> Result<(), StoreError> {
    let per = per.max(1);
    let (many, rest) = logs.split_at(if per > 1 {
        logs.len() - logs.len() % per
    } else {
        0
    });
    if !many.is_empty() {
        let sql: std::borrow::Cow<'_, str> = if per == ROWS_PER_INSERT {
            INSERT_MANY.as_str().into()
        } else {
            insert_sql(per).into()
        };
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(db("prepare insert logs"))?;
        for chunk in many.chunks_exact(per) {
            for (n, l) in chunk.iter().enumerate() {
                bind_row(&mut stmt, n, l).map_err(db("bind log"))?;
            }
            stmt.raw_execute().map_err(db("insert logs"))?;
        }
    }
    if !rest.is_empty() {
        let mut stmt = conn
            .prepare_cached(&INSERT_ONE)
            .map_err(db("prepare insert log"))?;
        for l in rest {
            bind_row(&mut stmt, 0, l).map_err(db("bind log"))?;
            stmt.raw_execute().map_err(db("insert log"))?;
        }
    }
    Ok(())
}

impl Sqlite {
    pub(crate) async fn insert_logs(&self, logs: Vec<NewInvocationLog>) -> Result<(), StoreError> {
        self.run_relaxed("insert invocation logs", move |conn| {
            let tx = conn.transaction().map_err(db("begin insert logs"))?;
            insert_rows(&tx, &logs, ROWS_PER_INSERT)?;
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
