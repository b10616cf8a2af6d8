//! Triggers on PostgreSQL. A timer's plan is the `next_fire_ms` column, moved by one
//! compare-and-set per firing: whichever node's scheduler wins the update fires it.

use deadpool_postgres::GenericClient;
use fgs_core::trigger::{TriggerKind, TriggerStatus};
use fgs_core::Qualifier;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::functions::function_row;
use super::{int, pg, Postgres};
use crate::{StoreError, TriggerRecord};

const COLUMNS: &str = "t.trigger_id, f.project, f.package, f.name, t.qualifier, t.type_code, \
     t.status, t.event_data, t.created_ms, t.updated_ms, t.next_fire_ms, t.last_fire_ms";

/// Checks what was stored as text: a corrupt qualifier is an error, never a guess.
fn decode(r: &Row) -> Result<TriggerRecord, StoreError> {
    let trigger_id: String = r.get(0);
    let corrupt = |field: &'static str, value: String| StoreError::CorruptTriggerField {
        trigger_id: trigger_id.clone(),
        field,
        value,
    };
    let (qualifier, type_code, status, event_data): (String, String, String, String) =
        (r.get(4), r.get(5), r.get(6), r.get(7));
    Ok(TriggerRecord {
        qualifier: Qualifier::parse(&qualifier).map_err(|_| corrupt("qualifier", qualifier))?,
        type_code: type_code
            .parse::<TriggerKind>()
            .map_err(|_| corrupt("type_code", type_code))?,
        status: status
            .parse::<TriggerStatus>()
            .map_err(|_| corrupt("status", status))?,
        event_data: serde_json::from_str(&event_data).map_err(|source| {
            StoreError::CorruptTrigger {
                trigger_id: trigger_id.clone(),
                source,
            }
        })?,
        project: r.get(1),
        package: r.get(2),
        name: r.get(3),
        created_ms: r.get(8),
        updated_ms: r.get(9),
        next_fire_ms: r.get(10),
        last_fire_ms: r.get(11),
        trigger_id: trigger_id.clone(),
    })
}

async fn query<C: GenericClient>(
    c: &C,
    where_: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<TriggerRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers t JOIN functions f ON f.id = t.function_id
         WHERE {where_} ORDER BY t.created_ms, t.id"
    );
    let rows = c.query(&sql, args).await.map_err(pg("list triggers"))?;
    rows.iter().map(decode).collect()
}

impl Postgres {
    pub(crate) async fn create_trigger(
        &self,
        rec: TriggerRecord,
        max_per_version: u64,
    ) -> Result<(), StoreError> {
        let event_data = rec.event_data.to_string();
        let qualifier = rec.qualifier.to_string();
        let mut client = self.client("create trigger").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin create trigger"))?;
        let fid = function_row(&tx, &rec.project, &rec.package, &rec.name, true).await?;
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM triggers WHERE function_id = $1 AND qualifier = $2",
                &[&fid, &qualifier],
            )
            .await
            .map_err(pg("count triggers"))?
            .get(0);
        if count >= int(max_per_version) {
            return Err(StoreError::TooManyTriggers {
                name: rec.name,
                qualifier,
                limit: max_per_version,
            });
        }
        tx.execute(
            "INSERT INTO triggers (trigger_id, function_id, qualifier, type_code, status,
             event_data, created_ms, updated_ms, next_fire_ms, last_fire_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &rec.trigger_id,
                &fid,
                &qualifier,
                &rec.type_code.as_str(),
                &rec.status.as_str(),
                &event_data,
                &rec.created_ms,
                &rec.updated_ms,
                &rec.next_fire_ms,
                &rec.last_fire_ms,
            ],
        )
        .await
        .map_err(pg("insert trigger"))?;
        tx.commit().await.map_err(pg("commit create trigger"))
    }

    pub(crate) async fn list_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        let client = self.client("list triggers").await?;
        let fid = function_row(&client, project, package, name, false).await?;
        match qualifier {
            Some(q) => {
                query(
                    &client,
                    "t.function_id = $1 AND t.qualifier = $2",
                    &[&fid, &q],
                )
                .await
            }
            None => query(&client, "t.function_id = $1", &[&fid]).await,
        }
    }

    pub(crate) async fn get_trigger(
        &self,
        project: &str,
        package: &str,
        name: &str,
        trigger_id: &str,
    ) -> Result<Option<TriggerRecord>, StoreError> {
        let client = self.client("get trigger").await?;
        Ok(query(
            &client,
            "f.project = $1 AND f.package = $2 AND f.name = $3 AND t.trigger_id = $4",
            &[&project, &package, &name, &trigger_id],
        )
        .await?
        .pop())
    }

    pub(crate) async fn all_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        let client = self.client("read all triggers").await?;
        query(&client, "true", &[]).await
    }

    pub(crate) async fn update_trigger(&self, rec: &TriggerRecord) -> Result<bool, StoreError> {
        let event_data = rec.event_data.to_string();
        let client = self.client("update trigger").await?;
        let n = client
            .execute(
                "UPDATE triggers SET status = $2, event_data = $3, updated_ms = $4,
                 next_fire_ms = $5 WHERE trigger_id = $1",
                &[
                    &rec.trigger_id,
                    &rec.status.as_str(),
                    &event_data,
                    &rec.updated_ms,
                    &rec.next_fire_ms,
                ],
            )
            .await
            .map_err(pg("update trigger"))?;
        Ok(n == 1)
    }

    pub(crate) async fn delete_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
        trigger_id: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        let mut client = self.client("delete triggers").await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg("begin delete triggers"))?;
        let fid = function_row(&tx, project, package, name, true).await?;
        let mut gone = query(&tx, "t.function_id = $1", &[&fid]).await?;
        gone.retain(|t| {
            qualifier.is_none_or(|q| t.qualifier.to_string() == q)
                && trigger_id.is_none_or(|id| t.trigger_id == id)
        });
        let ids: Vec<&str> = gone.iter().map(|t| t.trigger_id.as_str()).collect();
        tx.execute("DELETE FROM triggers WHERE trigger_id = ANY($1)", &[&ids])
            .await
            .map_err(pg("delete triggers"))?;
        tx.commit().await.map_err(pg("commit delete triggers"))?;
        Ok(gone)
    }

    pub(crate) async fn advance_timer(
        &self,
        trigger_id: &str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let client = self.client("advance timer").await?;
        let n = client
            .execute(
                "UPDATE triggers SET next_fire_ms = $3, last_fire_ms = $2
                 WHERE trigger_id = $1 AND status = 'ACTIVE' AND next_fire_ms = $2",
                &[&trigger_id, &due_ms, &next_ms],
            )
            .await
            .map_err(pg("advance timer"))?;
        Ok(n == 1)
    }
}
