//! Dependency versions on SQLite.

use fgs_core::dependency::DependencyVersion;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{db, Sqlite};
use crate::StoreError;

fn decode(s: &str) -> Result<DependencyVersion, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend {
        op: "decode dependency version",
        source: e.into(),
    })
}

fn rows(
    conn: &rusqlite::Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<DependencyVersion>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(db("prepare list dependencies"))?;
    let recs = stmt
        .query_map(args, |r| r.get::<_, String>(0))
        .map_err(db("list dependencies"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("read dependency"))?;
    recs.iter().map(|r| decode(r)).collect()
}

impl Sqlite {
    /// Adds the next version of dependency `dv.name` in its project, taking the dependency's
    /// `dep_id` (or a new one) and the next version number; returns the stored record.
    pub(crate) async fn create_dependency_version(
        &self,
        mut dv: DependencyVersion,
    ) -> Result<DependencyVersion, StoreError> {
        self.run("create dependency version", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin create dependency"))?;
            let last: Option<(String, i64)> = tx
                .query_row(
                    "SELECT dep_id, version FROM dependency_versions
                     WHERE project = ?1 AND name = ?2 ORDER BY version DESC LIMIT 1",
                    params![dv.project, dv.name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db("find dependency"))?;
            if let Some((dep_id, version)) = last {
                dv.dep_id = dep_id;
                dv.version = version as u32 + 1;
            } else {
                dv.version = 1;
            }
            let record = serde_json::to_string(&dv).expect("dependency records serialise");
            tx.execute(
                "INSERT INTO dependency_versions (id, dep_id, project, name, version, created_ms, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![dv.id, dv.dep_id, dv.project, dv.name, i64::from(dv.version), dv.created_ms, record],
            )
            .map_err(db("insert dependency version"))?;
            tx.commit().map_err(db("commit create dependency"))?;
            Ok(dv)
        })
        .await
    }

    /// A dependency version by its id, within a project.
    pub(crate) async fn get_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<DependencyVersion>, StoreError> {
        let k = (project.to_owned(), id.to_owned());
        self.run("get dependency version", move |conn| {
            let rec: Option<String> = conn
                .query_row(
                    "SELECT record FROM dependency_versions WHERE project = ?1 AND id = ?2",
                    params![k.0, k.1],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db("get dependency version"))?;
            rec.map(|r| decode(&r)).transpose()
        })
        .await
    }

    /// Every version of one dependency, oldest first; or, without `dep_id`, the newest version
    /// of every dependency of the project.
    pub(crate) async fn list_dependency_versions(
        &self,
        project: &str,
        dep_id: Option<&str>,
    ) -> Result<Vec<DependencyVersion>, StoreError> {
        let k = (project.to_owned(), dep_id.map(str::to_owned));
        self.run("list dependency versions", move |conn| match &k.1 {
            Some(dep) => rows(
                conn,
                "SELECT record FROM dependency_versions WHERE project = ?1 AND dep_id = ?2 ORDER BY version",
                params![k.0, dep],
            ),
            None => rows(
                conn,
                "SELECT d.record FROM dependency_versions d
                 WHERE d.project = ?1 AND d.version = (SELECT MAX(version) FROM dependency_versions x
                 WHERE x.project = d.project AND x.dep_id = d.dep_id) ORDER BY d.created_ms, d.name",
                params![k.0],
            ),
        })
        .await
    }

    /// Deletes a dependency version unless a function or a published version lists it.
    pub(crate) async fn delete_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let k = (project.to_owned(), id.to_owned());
        self.run("delete dependency version", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin delete dependency"))?;
            let user: Option<String> = tx
                .query_row(
                    "SELECT f.name FROM functions f, json_each(f.record, '$.spec.depend_version_list') j
                     WHERE f.project = ?1 AND j.value = ?2
                     UNION ALL
                     SELECT f.name || ':' || v.version FROM versions v JOIN functions f ON f.id = v.function_id,
                       json_each(v.record, '$.function.spec.depend_version_list') j
                     WHERE f.project = ?1 AND j.value = ?2
                     LIMIT 1",
                    params![k.0, k.1],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db("check dependency use"))?;
            if let Some(function) = user {
                return Err(StoreError::DependencyInUse { id: k.1.clone(), function });
            }
            let n = tx
                .execute(
                    "DELETE FROM dependency_versions WHERE project = ?1 AND id = ?2",
                    params![k.0, k.1],
                )
                .map_err(db("delete dependency version"))?;
            if n == 0 {
                return Err(StoreError::DependencyNotFound { id: k.1.clone() });
            }
            tx.commit().map_err(db("commit delete dependency"))
        })
        .await
    }
}
