//! Test events, dependency versions and invocation logs on PostgreSQL.

use deadpool_postgres::GenericClient;
use fgs_core::dependency::DependencyVersion;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::functions::{function_row, lock_name};
use super::{int, pg, Postgres};
use crate::{InvocationLog, LogQuery, NewInvocationLog, StoreError, TestEventRecord};

const EVENT_COLUMNS: &str = "event_id, name, content, created_ms, modified_ms";

fn event(r: &Row) -> TestEventRecord {
    TestEventRecord {
        event_id: r.get(0),
        name: r.get(1),
        content: r.get(2),
        created_ms: r.get(3),
        modified_ms: r.get(4),
    }
}

async fn one_event<C: GenericClient>(
    c: &C,
    fid: i64,
    event_id: &str,
) -> Result<Option<TestEventRecord>, StoreError> {
    Ok(c.query_opt(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM test_events WHERE function_id = $1 AND event_id = $2"
        ),
        &[&fid, &event_id],
    )
    .await
    .map_err(pg("select test event"))?
    .as_ref()
    .map(event))
}

fn dependency(r: &Row) -> Result<DependencyVersion, StoreError> {
    serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| StoreError::Backend {
        op: "decode dependency version",
        source: e.into(),
    })
}

const LOG_COLUMNS: &str = "id, project, package, function, version, request_id, invoke_type, \
                           started_ms, duration_ms, error_code, log, truncated";

fn log(r: &Row) -> InvocationLog {
    InvocationLog {
        id: r.get(0),
        project: r.get(1),
        package: r.get(2),
        function: r.get(3),
        version: r.get(4),
        request_id: r.get(5),
        invoke_type: r.get(6),
        started_ms: r.get(7),
        duration_ms: r.get(8),
        error_code: r.get::<_, i64>(9).try_into().unwrap_or(u32::MAX),
        log: r.get(10),
        truncated: r.get(11),
    }
}

impl Postgres {
    pub(crate) async fn create_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        ev: TestEventRecord,
        max_per_function: u64,
    ) -> Result<(), StoreError> {
        let mut client = self.client("create test event").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin create test event"))?;
        let fid = function_row(&tx, project, package, name, true).await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM test_events WHERE function_id = $1 AND name = $2",
                &[&fid, &ev.name],
            )
            .await
            .map_err(pg("check test event exists"))?
            .is_some();
        if exists {
            return Err(StoreError::TestEventExists {
                name: name.to_owned(),
                event: ev.name,
            });
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM test_events WHERE function_id = $1",
                &[&fid],
            )
            .await
            .map_err(pg("count test events"))?
            .get(0);
        if count >= int(max_per_function) {
            return Err(StoreError::TooManyTestEvents {
                name: name.to_owned(),
                limit: max_per_function,
            });
        }
        tx.execute(
            "INSERT INTO test_events (event_id, function_id, name, content, created_ms,
             modified_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &ev.event_id,
                &fid,
                &ev.name,
                &ev.content,
                &ev.created_ms,
                &ev.modified_ms,
            ],
        )
        .await
        .map_err(pg("insert test event"))?;
        tx.commit().await.map_err(pg("commit create test event"))
    }

    pub(crate) async fn list_test_events(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<TestEventRecord>, StoreError> {
        let client = self.client("list test events").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM test_events WHERE function_id = $1
                     ORDER BY created_ms, id"
                ),
                &[&fid],
            )
            .await
            .map_err(pg("list test events"))?;
        Ok(rows.iter().map(event).collect())
    }

    pub(crate) async fn get_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        let client = self.client("get test event").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        one_event(&client, fid, event_id).await
    }

    pub(crate) async fn update_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
        content: &str,
        modified_ms: i64,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        let mut client = self.client("update test event").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin update test event"))?;
        let fid = function_row(&tx, project, package, name, false).await?;
        tx.execute(
            "UPDATE test_events SET content = $3, modified_ms = $4
             WHERE function_id = $1 AND event_id = $2",
            &[&fid, &event_id, &content, &modified_ms],
        )
        .await
        .map_err(pg("update test event"))?;
        let ev = one_event(&tx, fid, event_id).await?;
        tx.commit().await.map_err(pg("commit update test event"))?;
        Ok(ev)
    }

    pub(crate) async fn delete_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let client = self.client("delete test event").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        let n = client
            .execute(
                "DELETE FROM test_events WHERE function_id = $1 AND event_id = $2",
                &[&fid, &event_id],
            )
            .await
            .map_err(pg("delete test event"))?;
        Ok(n == 1)
    }

    /// Adds the next version of dependency `dv.name` in its project: its `dep_id` (or a new
    /// one) and the next number, under a lock on the dependency's name so that two nodes never
    /// hand out the same number.
    pub(crate) async fn create_dependency_version(
        &self,
        mut dv: DependencyVersion,
    ) -> Result<DependencyVersion, StoreError> {
        let mut client = self.client("create dependency version").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin create dependency"))?;
        lock_name(&tx, &format!("dependency {} {}", dv.project, dv.name)).await?;
        let last = tx
            .query_opt(
                "SELECT dep_id, version FROM dependency_versions
                 WHERE project = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
                &[&dv.project, &dv.name],
            )
            .await
            .map_err(pg("find dependency"))?;
        if let Some(row) = last {
            dv.dep_id = row.get(0);
            dv.version = u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX - 1) + 1;
        } else {
            dv.version = 1;
        }
        let record = serde_json::to_string(&dv).map_err(|e| StoreError::Backend {
            op: "encode dependency version",
            source: e.into(),
        })?;
        tx.execute(
            "INSERT INTO dependency_versions (id, dep_id, project, name, version, created_ms,
             record) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &dv.id,
                &dv.dep_id,
                &dv.project,
                &dv.name,
                &i64::from(dv.version),
                &dv.created_ms,
                &record,
            ],
        )
        .await
        .map_err(pg("insert dependency version"))?;
        tx.commit().await.map_err(pg("commit create dependency"))?;
        Ok(dv)
    }

    pub(crate) async fn get_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<DependencyVersion>, StoreError> {
        let client = self.client("get dependency version").await?;
        client
            .query_opt(
                "SELECT record FROM dependency_versions WHERE project = $1 AND id = $2",
                &[&project, &id],
            )
            .await
            .map_err(pg("get dependency version"))?
            .as_ref()
            .map(dependency)
            .transpose()
    }

    pub(crate) async fn list_dependency_versions(
        &self,
        project: &str,
        dep_id: Option<&str>,
    ) -> Result<Vec<DependencyVersion>, StoreError> {
        let client = self.client("list dependency versions").await?;
        let rows =
            match dep_id {
                Some(dep) => client
                    .query(
                        "SELECT record FROM dependency_versions WHERE project = $1 AND dep_id = $2
                     ORDER BY version",
                        &[&project, &dep],
                    )
                    .await,
                None => {
                    client
                        .query(
                            "SELECT d.record FROM dependency_versions d
                     WHERE d.project = $1 AND d.version = (SELECT MAX(version)
                       FROM dependency_versions x
                       WHERE x.project = d.project AND x.dep_id = d.dep_id)
                     ORDER BY d.created_ms, d.name",
                            &[&project],
                        )
                        .await
                }
            }
            .map_err(pg("list dependency versions"))?;
        rows.iter().map(dependency).collect()
    }

    /// Deletes a dependency version unless a function or a published version lists it.
    pub(crate) async fn delete_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client("delete dependency version").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin delete dependency"))?;
        // A function taking the version into its list at the same moment holds its own row,
        // not this one; the window is the same as on a single node, where the API checks
        // that listed versions exist before it writes.
        let user = tx
            .query_opt(
                "SELECT f.name FROM functions f,
                   jsonb_array_elements_text(CASE
                     WHEN jsonb_typeof(f.record::jsonb -> 'spec' -> 'depend_version_list') = 'array'
                     THEN f.record::jsonb -> 'spec' -> 'depend_version_list' ELSE '[]' END) j
                 WHERE f.project = $1 AND j = $2
                 UNION ALL
                 SELECT f.name || ':' || v.version FROM versions v
                   JOIN functions f ON f.id = v.function_id,
                   jsonb_array_elements_text(CASE
                     WHEN jsonb_typeof(v.record::jsonb -> 'function' -> 'spec' -> 'depend_version_list') = 'array'
                     THEN v.record::jsonb -> 'function' -> 'spec' -> 'depend_version_list' ELSE '[]' END) j
                 WHERE f.project = $1 AND j = $2
                 LIMIT 1",
                &[&project, &id],
            )
            .await
            .map_err(pg("check dependency use"))?;
        if let Some(row) = user {
            return Err(StoreError::DependencyInUse {
                id: id.to_owned(),
                function: row.get(0),
            });
        }
        let n = tx
            .execute(
                "DELETE FROM dependency_versions WHERE project = $1 AND id = $2",
                &[&project, &id],
            )
            .await
            .map_err(pg("delete dependency version"))?;
        if n == 0 {
            return Err(StoreError::DependencyNotFound { id: id.to_owned() });
        }
        tx.commit().await.map_err(pg("commit delete dependency"))
    }

    /// Stores a batch of logs; relaxed like SQLite's (a crash of PostgreSQL may lose the last
    /// batch, never reorder ids).
    pub(crate) async fn insert_logs(&self, logs: Vec<NewInvocationLog>) -> Result<(), StoreError> {
        let mut client = self.client("insert invocation logs").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin insert logs"))?;
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await
            .map_err(pg("relax commit"))?;
        // One statement for the whole batch: a round trip per row would make the log writer
        // the slowest part of a busy node.
        let col = |f: fn(&NewInvocationLog) -> &str| logs.iter().map(f).collect::<Vec<_>>();
        let (project, package, function, version, request_id, invoke_type, log_text) = (
            col(NewInvocationLog::project),
            col(NewInvocationLog::package),
            col(NewInvocationLog::function),
            col(NewInvocationLog::version),
            col(NewInvocationLog::request_id),
            col(|l| l.meta.invoke_type),
            col(NewInvocationLog::log),
        );
        let started: Vec<i64> = logs.iter().map(|l| l.meta.started_ms).collect();
        let duration: Vec<f64> = logs.iter().map(|l| l.meta.duration_ms).collect();
        let code: Vec<i64> = logs.iter().map(|l| i64::from(l.meta.error_code)).collect();
        let truncated: Vec<bool> = logs.iter().map(|l| l.meta.truncated).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO invocation_logs (project, package, function, version, request_id,
                 invoke_type, started_ms, duration_ms, error_code, log, truncated)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                   $5::text[], $6::text[], $7::bigint[], $8::float8[], $9::bigint[],
                   $10::text[], $11::bool[])",
            )
            .await
            .map_err(pg("prepare insert logs"))?;
        tx.execute(
            &stmt,
            &[
                &project,
                &package,
                &function,
                &version,
                &request_id,
                &invoke_type,
                &started,
                &duration,
                &code,
                &log_text,
                &truncated,
            ],
        )
        .await
        .map_err(pg("insert logs"))?;
        tx.commit().await.map_err(pg("commit insert logs"))
    }

    pub(crate) async fn query_logs(&self, q: LogQuery) -> Result<Vec<InvocationLog>, StoreError> {
        let mut sql = format!(
            "SELECT {LOG_COLUMNS} FROM invocation_logs
             WHERE project = $1 AND package = $2 AND function = $3"
        );
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(q.project),
            Box::new(q.package),
            Box::new(q.function),
        ];
        let mut cond = |clause: &str, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ${}", args.len()));
        };
        if let Some(r) = q.request_id {
            cond("request_id =", Box::new(r));
        }
        if let Some(s) = q.since_ms {
            cond("started_ms >=", Box::new(s));
        }
        if let Some(u) = q.until_ms {
            cond("started_ms <", Box::new(u));
        }
        if q.marker > 0 {
            let op = if q.newest_first { "id <" } else { "id >" };
            cond(op, Box::new(q.marker));
        }
        let order = if q.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY id {order} LIMIT {}", int(q.limit)));
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| a.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let client = self.client("query invocation logs").await?;
        let rows = client.query(&sql, &refs).await.map_err(pg("query logs"))?;
        Ok(rows.iter().map(log).collect())
    }

    pub(crate) async fn purge_logs(&self, before_ms: i64) -> Result<usize, StoreError> {
        let client = self.client("purge invocation logs").await?;
        let n = client
            .execute(
                "DELETE FROM invocation_logs WHERE started_ms < $1",
                &[&before_ms],
            )
            .await
            .map_err(pg("purge logs"))?;
        Ok(n as usize)
    }
}
