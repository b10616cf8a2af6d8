//! Saved test events on SQLite: a function's named events that a user replays. They go with
//! their function row.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::function_row;
use super::{db, Sqlite};
use crate::{StoreError, TestEventRecord};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TestEventRecord> {
    Ok(TestEventRecord {
        event_id: r.get(0)?,
        name: r.get(1)?,
        content: r.get(2)?,
        created_ms: r.get(3)?,
        modified_ms: r.get(4)?,
    })
}

const COLUMNS: &str = "event_id, name, content, created_ms, modified_ms";

fn one(conn: &Connection, fid: i64, event_id: &str) -> Result<Option<TestEventRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM test_events WHERE function_id = ?1 AND event_id = ?2"),
        params![fid, event_id],
        row,
    )
    .optional()
    .map_err(db("select test event"))
}

impl Sqlite {
    pub(crate) async fn create_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        ev: TestEventRecord,
        max_per_function: u64,
    ) -> Result<(), StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("create test event", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin create test event"))?;
            let fid = function_row(&tx, &key.0, &key.1, &key.2)?;
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM test_events WHERE function_id = ?1 AND name = ?2)",
                    params![fid, ev.name],
                    |r| r.get(0),
                )
                .map_err(db("check test event exists"))?;
            if exists {
                return Err(StoreError::TestEventExists {
                    name: key.2,
                    event: ev.name,
                });
            }
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM test_events WHERE function_id = ?1",
                    params![fid],
                    |r| r.get(0),
                )
                .map_err(db("count test events"))?;
            if count >= super::int(max_per_function) {
                return Err(StoreError::TooManyTestEvents {
                    name: key.2,
                    limit: max_per_function,
                });
            }
            tx.execute(
                "INSERT INTO test_events (event_id, function_id, name, content, created_ms,
                 modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ev.event_id,
                    fid,
                    ev.name,
                    ev.content,
                    ev.created_ms,
                    ev.modified_ms
                ],
            )
            .map_err(db("insert test event"))?;
            tx.commit().map_err(db("commit create test event"))
        })
        .await
    }

    pub(crate) async fn list_test_events(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<TestEventRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        self.run("list test events", move |conn| {
            let fid = function_row(conn, &key.0, &key.1, &key.2)?;
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM test_events WHERE function_id = ?1
                     ORDER BY created_ms, id"
                ))
                .map_err(db("prepare list test events"))?;
            let rows = stmt
                .query_map(params![fid], row)
                .map_err(db("list test events"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(db("read test event"));
            rows
        })
        .await
    }

    pub(crate) async fn get_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        let id = event_id.to_owned();
        self.run("get test event", move |conn| {
            let fid = function_row(conn, &key.0, &key.1, &key.2)?;
            one(conn, fid, &id)
        })
        .await
    }

    /// Replaces an event's content; returns the updated event, `None` if there is none.
    pub(crate) async fn update_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
        content: &str,
        modified_ms: i64,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        let (id, content) = (event_id.to_owned(), content.to_owned());
        self.run("update test event", move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db("begin update test event"))?;
            let fid = function_row(&tx, &key.0, &key.1, &key.2)?;
            tx.execute(
                "UPDATE test_events SET content = ?3, modified_ms = ?4
                 WHERE function_id = ?1 AND event_id = ?2",
                params![fid, id, content, modified_ms],
            )
            .map_err(db("update test event"))?;
            let ev = one(&tx, fid, &id)?;
            tx.commit().map_err(db("commit update test event"))?;
            Ok(ev)
        })
        .await
    }

    /// Deletes an event; false if there was none.
    pub(crate) async fn delete_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        let key = (project.to_owned(), package.to_owned(), name.to_owned());
        let id = event_id.to_owned();
        self.run("delete test event", move |conn| {
            let fid = function_row(conn, &key.0, &key.1, &key.2)?;
            let n = conn
                .execute(
                    "DELETE FROM test_events WHERE function_id = ?1 AND event_id = ?2",
                    params![fid, id],
                )
                .map_err(db("delete test event"))?;
            Ok(n == 1)
        })
        .await
    }
}
