//! Versions and aliases on PostgreSQL. Every write locks its function's row first, so a limit
//! and the write it guards see the same versions and aliases on every node.

use deadpool_postgres::GenericClient;
use fgs_core::flows::{AliasRecord, VersionRecord};

use super::functions::function_row;
use super::{pg, Postgres};
use crate::StoreError;

fn json<T: serde::Serialize>(v: &T, op: &'static str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend {
        op,
        source: e.into(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(s: &str, op: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend {
        op,
        source: e.into(),
    })
}

async fn aliases_of<C: GenericClient>(c: &C, fid: i64) -> Result<Vec<AliasRecord>, StoreError> {
    let rows = c
        .query(
            "SELECT record FROM aliases WHERE function_id = $1 ORDER BY created_ms, id",
            &[&fid],
        )
        .await
        .map_err(pg("list aliases"))?;
    rows.iter()
        .map(|r| parse(r.get::<_, &str>(0), "decode alias"))
        .collect()
}

async fn version_exists<C: GenericClient>(
    c: &C,
    fid: i64,
    version: &str,
) -> Result<bool, StoreError> {
    if version == "latest" {
        return Ok(true);
    }
    Ok(c.query_opt(
        "SELECT 1 FROM versions WHERE function_id = $1 AND version = $2",
        &[&fid, &version],
    )
    .await
    .map_err(pg("check version exists"))?
    .is_some())
}

impl Postgres {
    pub(crate) async fn publish_version(
        &self,
        v: VersionRecord,
        max_published: usize,
    ) -> Result<(), StoreError> {
        let record = json(&v, "encode version")?;
        let mut client = self.client("publish version").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin publish version"))?;
        let f = &v.function;
        let fid = function_row(&tx, &f.project, &f.package, &f.name, true).await?;
        if version_exists(&tx, fid, &v.version).await? {
            return Err(StoreError::VersionExists {
                name: f.name.clone(),
                version: v.version.clone(),
            });
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM versions WHERE function_id = $1",
                &[&fid],
            )
            .await
            .map_err(pg("count versions"))?
            .get(0);
        if count as usize >= max_published {
            return Err(StoreError::TooManyVersions {
                name: f.name.clone(),
                limit: max_published + 1,
            });
        }
        tx.execute(
            "INSERT INTO versions (function_id, version, created_ms, record)
             VALUES ($1, $2, $3, $4)",
            &[&fid, &v.version, &v.created_ms, &record],
        )
        .await
        .map_err(pg("insert version"))?;
        tx.commit().await.map_err(pg("commit publish version"))
    }

    pub(crate) async fn get_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let client = self.client("get version").await?;
        let row = client
            .query_opt(
                "SELECT v.record FROM versions v JOIN functions f ON f.id = v.function_id
                 WHERE f.project = $1 AND f.package = $2 AND f.name = $3 AND v.version = $4",
                &[&project, &package, &name, &version],
            )
            .await
            .map_err(pg("get version"))?;
        row.map(|r| parse(r.get::<_, &str>(0), "decode version"))
            .transpose()
    }

    pub(crate) async fn list_versions(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let client = self.client("list versions").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        let rows = client
            .query(
                "SELECT record FROM versions WHERE function_id = $1 ORDER BY created_ms, id",
                &[&fid],
            )
            .await
            .map_err(pg("list versions"))?;
        rows.iter()
            .map(|r| parse(r.get::<_, &str>(0), "decode version"))
            .collect()
    }

    pub(crate) async fn delete_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client("delete version").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin delete version"))?;
        let fid = function_row(&tx, project, package, name, true).await?;
        if let Some(a) = aliases_of(&tx, fid)
            .await?
            .into_iter()
            .find(|a| a.versions().any(|v| v == version))
        {
            return Err(StoreError::VersionInUse {
                name: name.to_owned(),
                version: version.to_owned(),
                alias: a.name,
            });
        }
        let n = tx
            .execute(
                "DELETE FROM versions WHERE function_id = $1 AND version = $2",
                &[&fid, &version],
            )
            .await
            .map_err(pg("delete version"))?;
        if n == 0 {
            return Err(StoreError::VersionNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
            });
        }
        tx.commit().await.map_err(pg("commit delete version"))
    }

    pub(crate) async fn put_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> Result<(), StoreError> {
        let record = json(&alias, "encode alias")?;
        let mut client = self.client("put alias").await?;
        let tx = client.transaction().await.map_err(pg("begin put alias"))?;
        let fid = function_row(&tx, project, package, name, true).await?;
        for v in alias.versions() {
            if !version_exists(&tx, fid, v).await? {
                return Err(StoreError::VersionNotFound {
                    name: name.to_owned(),
                    version: v.to_string(),
                });
            }
        }
        let existing = aliases_of(&tx, fid).await?;
        let exists = existing.iter().any(|a| a.name == alias.name);
        if create {
            if exists {
                return Err(StoreError::AliasExists {
                    name: name.to_owned(),
                    alias: alias.name.clone(),
                });
            }
            if existing.len() >= max {
                return Err(StoreError::TooManyAliases {
                    name: name.to_owned(),
                    limit: max,
                });
            }
            tx.execute(
                "INSERT INTO aliases (function_id, alias, created_ms, record)
                 VALUES ($1, $2, $3, $4)",
                &[&fid, &alias.name, &alias.created_ms, &record],
            )
            .await
            .map_err(pg("insert alias"))?;
        } else {
            if !exists {
                return Err(StoreError::AliasNotFound {
                    name: name.to_owned(),
                    alias: alias.name.clone(),
                });
            }
            tx.execute(
                "UPDATE aliases SET record = $3 WHERE function_id = $1 AND alias = $2",
                &[&fid, &alias.name, &record],
            )
            .await
            .map_err(pg("update alias"))?;
        }
        tx.commit().await.map_err(pg("commit put alias"))
    }

    pub(crate) async fn list_aliases(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let client = self.client("list aliases").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        aliases_of(&client, fid).await
    }

    pub(crate) async fn delete_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), StoreError> {
        let client = self.client("delete alias").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        let n = client
            .execute(
                "DELETE FROM aliases WHERE function_id = $1 AND alias = $2",
                &[&fid, &alias],
            )
            .await
            .map_err(pg("delete alias"))?;
        if n == 0 {
            return Err(StoreError::AliasNotFound {
                name: name.to_owned(),
                alias: alias.to_owned(),
            });
        }
        Ok(())
    }
}
