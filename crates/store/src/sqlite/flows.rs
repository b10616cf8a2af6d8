//! Versions and aliases on SQLite.

use fgs_core::flows::{AliasRecord, VersionRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{db, function_row as function_id, Sqlite};
use crate::StoreError;

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
}
