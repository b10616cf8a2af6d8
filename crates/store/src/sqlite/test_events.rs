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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, name: &str) -> TestEventRecord {
        TestEventRecord {
            event_id: id.into(),
            name: name.into(),
            content: "eyJrIjoidiJ9".into(),
            created_ms: 5,
            modified_ms: 5,
        }
    }

    #[tokio::test]
    async fn crud_names_and_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Sqlite::open(&dir.path().join("fgs.db")).expect("open");
        db.conn
            .lock()
            .unwrap()
            .execute(
                "INSERT INTO functions (project, package, name, func_id, revision, created_ms,
                 modified_ms, record) VALUES ('p', 'default', 'f', 'f', 1, 0, 0, '{}')",
                [],
            )
            .unwrap();
        db.create_test_event("p", "default", "f", ev("1", "a"), 2)
            .await
            .unwrap();
        let err = db
            .create_test_event("p", "default", "f", ev("2", "a"), 2)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::TestEventExists { .. }), "{err:?}");
        db.create_test_event("p", "default", "f", ev("2", "b"), 2)
            .await
            .unwrap();
        let err = db
            .create_test_event("p", "default", "f", ev("3", "c"), 2)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::TooManyTestEvents { limit: 2, .. }),
            "{err:?}"
        );
        let err = db
            .create_test_event("p", "default", "nope", ev("4", "d"), 2)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::FunctionNotFound { .. }),
            "{err:?}"
        );

        let list = db.list_test_events("p", "default", "f").await.unwrap();
        assert_eq!(
            list.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let up = db
            .update_test_event("p", "default", "f", "1", "e30=", 9)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((up.content.as_str(), up.modified_ms), ("e30=", 9));
        assert!(db
            .update_test_event("p", "default", "f", "nope", "e30=", 9)
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            db.get_test_event("p", "default", "f", "1").await.unwrap(),
            Some(up)
        );
        assert!(db
            .delete_test_event("p", "default", "f", "1")
            .await
            .unwrap());
        assert!(!db
            .delete_test_event("p", "default", "f", "1")
            .await
            .unwrap());
    }
}
