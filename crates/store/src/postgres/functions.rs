//! Functions, settings and package use on PostgreSQL.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use fgs_core::FunctionRecord;
use tokio_postgres::{IsolationLevel, Row};

use super::{int, pg, Postgres};
use crate::{FunctionPage, PackageUse, StoreError};

fn encode(rec: &FunctionRecord) -> Result<String, StoreError> {
    serde_json::to_string(rec).map_err(|source| StoreError::Encode {
        project: rec.project.clone(),
        package: rec.package.clone(),
        name: rec.name.clone(),
        source,
    })
}

/// A `(project, package, name, record)` row decoded.
fn decode(row: &Row) -> Result<FunctionRecord, StoreError> {
    let record: String = row.get(3);
    serde_json::from_str(&record).map_err(|source| StoreError::Corrupt {
        project: row.get(0),
        package: row.get(1),
        name: row.get(2),
        source,
    })
}

/// The row id of a function, or `FunctionNotFound`. With `lock`, the row stays locked until
/// the transaction ends, so a limit checked on the function's children holds for its write.
pub(crate) async fn function_row<C: GenericClient>(
    c: &C,
    project: &str,
    package: &str,
    name: &str,
    lock: bool,
) -> Result<i64, StoreError> {
    let sql = if lock {
        "SELECT id FROM functions WHERE project = $1 AND package = $2 AND name = $3
         FOR NO KEY UPDATE"
    } else {
        "SELECT id FROM functions WHERE project = $1 AND package = $2 AND name = $3"
    };
    c.query_opt(sql, &[&project, &package, &name])
        .await
        .map_err(pg("find function"))?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::FunctionNotFound {
            project: project.to_string(),
            package: package.to_string(),
            name: name.to_string(),
        })
}

/// Takes the transaction-scoped advisory lock named `key`: writers of the same key (on any
/// node) run one after the other until commit.
pub(crate) async fn lock_name<C: GenericClient>(c: &C, key: &str) -> Result<(), StoreError> {
    c.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await
    .map_err(pg("take advisory lock"))?;
    Ok(())
}

impl Postgres {
    pub(crate) async fn create_function(
        &self,
        rec: FunctionRecord,
        max_per_project: u64,
    ) -> Result<(), StoreError> {
        let record = encode(&rec)?;
        let mut client = self.client("create function").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin create function"))?;
        // The count and the insert must see the same table even with other nodes creating.
        lock_name(&tx, &format!("functions of {}", rec.project)).await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM functions WHERE project = $1 AND package = $2 AND name = $3",
                &[&rec.project, &rec.package, &rec.name],
            )
            .await
            .map_err(pg("check function exists"))?
            .is_some();
        if exists {
            return Err(StoreError::FunctionExists {
                project: rec.project,
                package: rec.package,
                name: rec.name,
            });
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM functions WHERE project = $1",
                &[&rec.project],
            )
            .await
            .map_err(pg("count functions of project"))?
            .get(0);
        if count >= int(max_per_project) {
            return Err(StoreError::QuotaExceeded {
                project: rec.project,
                limit: max_per_project,
            });
        }
        tx.execute(
            "INSERT INTO functions
             (project, package, name, func_id, revision, created_ms, modified_ms, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &rec.project,
                &rec.package,
                &rec.name,
                &rec.func_id,
                &int(rec.revision),
                &rec.created_ms,
                &rec.modified_ms,
                &record,
            ],
        )
        .await
        .map_err(pg("insert function"))?;
        tx.commit().await.map_err(pg("commit create function"))
    }

    pub(crate) async fn get_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let client = self.client("get function").await?;
        let row = client
            .query_opt(
                "SELECT project, package, name, record FROM functions
                 WHERE project = $1 AND package = $2 AND name = $3",
                &[&project, &package, &name],
            )
            .await
            .map_err(pg("select function"))?;
        row.as_ref().map(decode).transpose()
    }

    pub(crate) async fn list_functions(
        &self,
        project: &str,
        package: Option<&str>,
        marker: u64,
        max_items: u64,
    ) -> Result<FunctionPage, StoreError> {
        let (limit, offset) = (int(max_items), int(marker));
        let mut client = self.client("list functions").await?;
        // One snapshot, so `count` and the page agree even if a create lands in between.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg("begin list functions"))?;
        let (count, rows) = match package {
            Some(package) => (
                tx.query_one(
                    "SELECT COUNT(*) FROM functions WHERE project = $1 AND package = $2",
                    &[&project, &package],
                )
                .await
                .map_err(pg("count functions"))?,
                tx.query(
                    "SELECT project, package, name, record FROM functions
                     WHERE project = $1 AND package = $2
                     ORDER BY created_ms, id LIMIT $3 OFFSET $4",
                    &[&project, &package, &limit, &offset],
                )
                .await
                .map_err(pg("list functions"))?,
            ),
            None => (
                tx.query_one(
                    "SELECT COUNT(*) FROM functions WHERE project = $1",
                    &[&project],
                )
                .await
                .map_err(pg("count functions"))?,
                tx.query(
                    "SELECT project, package, name, record FROM functions
                     WHERE project = $1 ORDER BY created_ms, id LIMIT $2 OFFSET $3",
                    &[&project, &limit, &offset],
                )
                .await
                .map_err(pg("list functions"))?,
            ),
        };
        tx.commit().await.map_err(pg("end list functions"))?;
        let functions = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let count: i64 = count.get(0);
        Ok(FunctionPage {
            next_marker: marker.saturating_add(functions.len() as u64),
            count: u64::try_from(count).unwrap_or(0),
            functions,
        })
    }

    pub(crate) async fn update_function(
        &self,
        rec: &FunctionRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let record = encode(rec)?;
        let client = self.client("update function").await?;
        // One statement: the revision check and the write are atomic on their own.
        let changed = client
            .execute(
                "UPDATE functions SET func_id = $4, revision = $5, modified_ms = $6, record = $7
                 WHERE project = $1 AND package = $2 AND name = $3 AND revision = $8",
                &[
                    &rec.project,
                    &rec.package,
                    &rec.name,
                    &rec.func_id,
                    &int(rec.revision),
                    &rec.modified_ms,
                    &record,
                    &int(expected_revision),
                ],
            )
            .await
            .map_err(pg("update function"))?;
        if changed == 1 {
            return Ok(());
        }
        // Nothing matched: a lost race if the function is still there, else it is gone.
        let exists = function_row(&client, &rec.project, &rec.package, &rec.name, false).await;
        let (project, package, name) = (rec.project.clone(), rec.package.clone(), rec.name.clone());
        Err(match exists {
            Ok(_) => StoreError::Conflict {
                project,
                package,
                name,
                expected: expected_revision,
            },
            Err(e) => e,
        })
    }

    pub(crate) async fn delete_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        let client = self.client("delete function").await?;
        let row = client
            .query_opt(
                "DELETE FROM functions WHERE project = $1 AND package = $2 AND name = $3
                 RETURNING project, package, name, record",
                &[&project, &package, &name],
            )
            .await
            .map_err(pg("delete function"))?;
        // A corrupt record is still deleted, as asked; the error says it could not be returned.
        row.as_ref().map(decode).transpose()
    }

    pub(crate) async fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let client = self.client("read all functions").await?;
        let rows = client
            .query(
                "SELECT project, package, name, record FROM functions
                 ORDER BY project, created_ms, id",
                &[],
            )
            .await
            .map_err(pg("read all functions"))?;
        rows.iter().map(decode).collect()
    }

    /// Which packages the records use. The records are JSON text; they are read whole and
    /// looked into here rather than with SQL JSON functions, which would tie this to one
    /// record layout in two languages.
    pub(crate) async fn package_use(&self) -> Result<PackageUse, StoreError> {
        let unreadable = |what: String| StoreError::Backend {
            op: "read package use",
            source: what.into(),
        };
        let mut client = self.client("read package use").await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg("begin read package use"))?;
        let deps = tx
            .query("SELECT project, id, record FROM dependency_versions", &[])
            .await
            .map_err(pg("read dependency packages"))?;
        let records = tx
            .query(
                "SELECT project, record, false FROM functions
                 UNION ALL
                 SELECT f.project, v.record, true FROM versions v
                 JOIN functions f ON f.id = v.function_id",
                &[],
            )
            .await
            .map_err(pg("read code packages"))?;
        tx.commit().await.map_err(pg("end read package use"))?;

        let mut used = PackageUse::default();
        let mut by_id = HashMap::new();
        for row in &deps {
            let (project, id, record): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let v: serde_json::Value = serde_json::from_str(&record)
                .map_err(|e| unreadable(format!("dependency version {id}: {e}")))?;
            let sha = v["sha256"]
                .as_str()
                .ok_or_else(|| unreadable(format!("dependency version {id} names no package")))?
                .to_owned();
            used.packages.insert(sha.clone());
            by_id.insert((project, id), sha);
        }
        for row in &records {
            let (project, record, is_version): (String, String, bool) =
                (row.get(0), row.get(1), row.get(2));
            let v: serde_json::Value = serde_json::from_str(&record)
                .map_err(|e| unreadable(format!("a function record: {e}")))?;
            let f = if is_version { &v["function"] } else { &v };
            let sha = f["code"]["sha256"]
                .as_str()
                .ok_or_else(|| unreadable("a function record names no code package".into()))?;
            used.packages.insert(sha.to_owned());
            let ids = match &f["spec"]["depend_version_list"] {
                serde_json::Value::Array(ids) => ids.clone(),
                _ => Vec::new(),
            };
            // A list naming a dependency version that is gone has no merged tree to keep.
            let shas: Option<Vec<String>> = ids
                .iter()
                .map(|id| {
                    id.as_str()
                        .and_then(|id| by_id.get(&(project.clone(), id.to_owned())).cloned())
                })
                .collect();
            if let Some(shas) = shas.filter(|s| !s.is_empty()) {
                used.dependency_lists.push(shas);
            }
        }
        Ok(used)
    }

    pub(crate) async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client("get setting").await?;
        Ok(client
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .await
            .map_err(pg("get setting"))?
            .map(|r| r.get(0)))
    }

    pub(crate) async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client("put setting").await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await
            .map_err(pg("put setting"))?;
        Ok(())
    }
}
