//! Triggers on SQLite. A trigger row belongs to a function row and goes with it; the `event_data`
//! is kept as the JSON `fgs-triggers` normalised, and a timer's plan is the `next_fire_ms`
//! column, moved by one compare-and-set per firing.

use fgs_core::trigger::{TriggerKind, TriggerStatus};
use fgs_core::Qualifier;
use rusqlite::{params, Connection, TransactionBehavior};

use super::{db, function_row, Sqlite};
use crate::{StoreError, TriggerRecord};

const COLUMNS: &str = "t.trigger_id, f.project, f.package, f.name, t.qualifier, t.type_code, \
     t.status, t.event_data, t.created_ms, t.updated_ms, t.next_fire_ms, t.last_fire_ms";

/// A trigger as read, with its event data, qualifier, kind and status still text.
type Row = (TriggerRecord, String, String, String, String);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        TriggerRecord {
            trigger_id: r.get(0)?,
            project: r.get(1)?,
            package: r.get(2)?,
            name: r.get(3)?,
            qualifier: Qualifier::Latest,
            type_code: TriggerKind::Timer,
            status: TriggerStatus::Disabled,
            event_data: serde_json::Value::Null,
            created_ms: r.get(8)?,
            updated_ms: r.get(9)?,
            next_fire_ms: r.get(10)?,
            last_fire_ms: r.get(11)?,
        },
        r.get(7)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// Checks what was stored as text: a corrupt qualifier is an error, never a guess (a guessed
/// one would fire another version of the function).
fn decode(
    (mut rec, event_data, qualifier, type_code, status): Row,
) -> Result<TriggerRecord, StoreError> {
    let corrupt = |field: &'static str, value: String| StoreError::CorruptTriggerField {
        trigger_id: rec.trigger_id.clone(),
        field,
        value,
    };
    rec.qualifier = Qualifier::parse(&qualifier).map_err(|_| corrupt("qualifier", qualifier))?;
    rec.type_code = type_code
        .parse()
        .map_err(|_| corrupt("type_code", type_code))?;
    rec.status = status.parse().map_err(|_| corrupt("status", status))?;
    rec.event_data =
        serde_json::from_str(&event_data).map_err(|source| StoreError::CorruptTrigger {
            trigger_id: rec.trigger_id.clone(),
            source,
        })?;
    Ok(rec)
}

fn query(
    conn: &Connection,
    where_: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<TriggerRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM triggers t JOIN functions f ON f.id = t.function_id
         WHERE {where_} ORDER BY t.created_ms, t.id"
    );
    let mut stmt = conn.prepare(&sql).map_err(db("prepare list triggers"))?;
    let rows = stmt
        .query_map(params, row)
        .map_err(db("list triggers"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db("read trigger"))?;
    rows.into_iter().map(decode).collect()
}

impl Sqlite {
    pub(crate) async fn create_trigger(
        &self,
        rec: TriggerRecord,
        max_per_version: u64,
    ) -> Result<(), StoreError> {
        let event_data = rec.event_data.to_string();
        let qualifier = rec.qualifier.to_string();
        self.run("create trigger", move |conn| {
            // IMMEDIATE: the count and the insert see the same table, so two creates cannot
            // both take the last place.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin create trigger"))?;
            let fid = function_row(&tx, &rec.project, &rec.package, &rec.name)?;
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM triggers WHERE function_id = ?1 AND qualifier = ?2",
                    params![fid, qualifier],
                    |r| r.get(0),
                )
                .map_err(db("count triggers"))?;
            if count >= super::int(max_per_version) {
                return Err(StoreError::TooManyTriggers {
                    name: rec.name,
                    qualifier,
                    limit: max_per_version,
                });
            }
            tx.execute(
                "INSERT INTO triggers (trigger_id, function_id, qualifier, type_code, status,
                 event_data, created_ms, updated_ms, next_fire_ms, last_fire_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    rec.trigger_id,
                    fid,
                    qualifier,
                    rec.type_code.as_str(),
                    rec.status.as_str(),
                    event_data,
                    rec.created_ms,
                    rec.updated_ms,
                    rec.next_fire_ms,
                    rec.last_fire_ms
                ],
            )
            .map_err(db("insert trigger"))?;
            tx.commit().map_err(db("commit create trigger"))
        })
        .await
    }

    /// Triggers of a function, of one version if `qualifier` is given; `FunctionNotFound` when
    /// the function does not exist.
    pub(crate) async fn list_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        let qualifier = qualifier.map(str::to_owned);
        self.run("list triggers", move |conn| {
            let tx = conn.transaction().map_err(db("begin list triggers"))?;
            let fid = function_row(&tx, &key.0, &key.1, &key.2)?;
            let out = match &qualifier {
                Some(q) => query(
                    &tx,
                    "t.function_id = ?1 AND t.qualifier = ?2",
                    params![fid, q],
                )?,
                None => query(&tx, "t.function_id = ?1", params![fid])?,
            };
            tx.finish().map_err(db("end list triggers"))?;
            Ok(out)
        })
        .await
    }

    pub(crate) async fn get_trigger(
        &self,
        project: &str,
        package: &str,
        name: &str,
        trigger_id: &str,
    ) -> Result<Option<TriggerRecord>, StoreError> {
        let key = (
            project.to_owned(),
            package.to_owned(),
            name.to_owned(),
            trigger_id.to_owned(),
        );
        self.run("get trigger", move |conn| {
            Ok(query(
                conn,
                "f.project = ?1 AND f.package = ?2 AND f.name = ?3 AND t.trigger_id = ?4",
                params![key.0, key.1, key.2, key.3],
            )?
            .pop())
        })
        .await
    }

    /// Every trigger of every function, for building the route table and the timer plan.
    pub(crate) async fn all_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        self.run("read all triggers", |conn| query(conn, "1 = 1", []))
            .await
    }

    /// Writes a trigger's status, event data, update time and timer plan; false when it is gone.
    pub(crate) async fn update_trigger(&self, rec: &TriggerRecord) -> Result<bool, StoreError> {
        let rec = rec.clone();
        let event_data = rec.event_data.to_string();
        self.run("update trigger", move |conn| {
            let n = conn
                .execute(
                    "UPDATE triggers SET status = ?2, event_data = ?3, updated_ms = ?4,
                     next_fire_ms = ?5
                     WHERE trigger_id = ?1",
                    params![
                        rec.trigger_id,
                        rec.status.as_str(),
                        event_data,
                        rec.updated_ms,
                        rec.next_fire_ms
                    ],
                )
                .map_err(db("update trigger"))?;
            Ok(n == 1)
        })
        .await
    }

    /// Deletes triggers of a function: one by id, those of one version, or all of them.
    /// Returns what was deleted.
    pub(crate) async fn delete_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
        trigger_id: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        let (qualifier, trigger_id) = (qualifier.map(str::to_owned), trigger_id.map(str::to_owned));
        self.run("delete triggers", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin delete triggers"))?;
            let fid = function_row(&tx, &key.0, &key.1, &key.2)?;
            let mut gone = query(&tx, "t.function_id = ?1", params![fid])?;
            gone.retain(|t| {
                qualifier
                    .as_ref()
                    .is_none_or(|q| t.qualifier.to_string() == *q)
                    && trigger_id.as_ref().is_none_or(|id| &t.trigger_id == id)
            });
            for t in &gone {
                tx.execute(
                    "DELETE FROM triggers WHERE trigger_id = ?1",
                    params![t.trigger_id],
                )
                .map_err(db("delete trigger"))?;
            }
            tx.commit().map_err(db("commit delete triggers"))?;
            Ok(gone)
        })
        .await
    }

    /// The timer compare-and-set: see `Store::advance_timer`.
    pub(crate) async fn advance_timer(
        &self,
        trigger_id: &str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        let id = trigger_id.to_owned();
        self.run("advance timer", move |conn| {
            let n = conn
                .execute(
                    "UPDATE triggers SET next_fire_ms = ?3, last_fire_ms = ?2
                     WHERE trigger_id = ?1 AND status = 'ACTIVE' AND next_fire_ms = ?2",
                    params![id, due_ms, next_ms],
                )
                .map_err(db("advance timer"))?;
            Ok(n == 1)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn open() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Sqlite::open(&dir.path().join("fgs.db")).expect("open");
        (dir, db)
    }

    /// A bare function row: these tables only need its key.
    fn function(db: &Sqlite, name: &str) {
        db.conn
            .lock()
            .unwrap()
            .execute(
                "INSERT INTO functions (project, package, name, func_id, revision, created_ms,
                 modified_ms, record) VALUES ('p', 'default', ?1, ?1, 1, 0, 0, '{}')",
                params![name],
            )
            .expect("insert function row");
    }

    fn trigger(id: &str, name: &str, qualifier: &str, next: Option<i64>) -> TriggerRecord {
        TriggerRecord {
            trigger_id: id.into(),
            project: "p".into(),
            package: "default".into(),
            name: name.into(),
            qualifier: Qualifier::parse(qualifier).expect("a valid qualifier"),
            type_code: TriggerKind::Timer,
            status: TriggerStatus::Active,
            event_data: json!({"name": id, "schedule_type": "Rate", "schedule": "1m"}),
            created_ms: 1,
            updated_ms: 1,
            next_fire_ms: next,
            last_fire_ms: None,
        }
    }

    #[tokio::test]
    async fn a_corrupt_stored_qualifier_is_a_typed_error() {
        let (_d, db) = open();
        function(&db, "f");
        db.create_trigger(trigger("t", "f", "!blue", None), 10)
            .await
            .expect("create");
        let back = db.get_trigger("p", "default", "f", "t").await.expect("get");
        assert_eq!(
            back.map(|t| t.qualifier),
            Some(Qualifier::Alias("blue".into()))
        );
        db.conn
            .lock()
            .expect("lock")
            .execute("UPDATE triggers SET qualifier = '!'", [])
            .expect("corrupt");
        let err = db.all_triggers().await.expect_err("corrupt qualifier");
        assert!(
            matches!(&err, StoreError::CorruptTriggerField { field: "qualifier", value, .. } if value == "!"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_corrupt_stored_kind_or_status_is_a_typed_error() {
        let (_d, db) = open();
        function(&db, "f");
        db.create_trigger(trigger("t", "f", "latest", None), 10)
            .await
            .expect("create");
        let back = db.get_trigger("p", "default", "f", "t").await.expect("get");
        assert_eq!(
            back.map(|t| (t.type_code, t.status)),
            Some((TriggerKind::Timer, TriggerStatus::Active))
        );
        for (sql, field, value) in [
            ("UPDATE triggers SET status = 'active'", "status", "active"),
            (
                "UPDATE triggers SET status = 'ACTIVE', type_code = 'OBS'",
                "type_code",
                "OBS",
            ),
        ] {
            db.conn
                .lock()
                .expect("lock")
                .execute(sql, [])
                .expect("corrupt");
            let err = db.all_triggers().await.expect_err("corrupt row");
            assert!(
                matches!(&err, StoreError::CorruptTriggerField { field: f, value: v, .. } if *f == field && v == value),
                "{err:?}"
            );
        }
    }
}
