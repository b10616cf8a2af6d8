//! The SQLite schema as an ordered list of scripts. Script `i` takes the database from
//! `user_version` `i` to `i + 1`; scripts are only ever appended, never edited, because a database
//! on a user's disk may have run any prefix of them.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: functions and settings.
    r#"
    CREATE TABLE functions (
        id          INTEGER PRIMARY KEY,
        project     TEXT    NOT NULL,
        package     TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        func_id     TEXT    NOT NULL,
        revision    INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        modified_ms INTEGER NOT NULL,
        record      TEXT    NOT NULL,
        UNIQUE (project, package, name)
    );
    -- Listing is by project, optionally narrowed to a package, in creation order; `id` breaks
    -- ties between functions created in the same millisecond so that paging is stable.
    CREATE INDEX functions_by_project ON functions (project, created_ms, id);
    CREATE INDEX functions_by_package ON functions (project, package, created_ms, id);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: published versions, aliases and the durable async invocation queue. Rows belong to a
    // function row and go with it.
    r#"
    CREATE TABLE versions (
        id          INTEGER PRIMARY KEY,
        function_id INTEGER NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        version     TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        record      TEXT    NOT NULL,
        UNIQUE (function_id, version)
    );

    CREATE TABLE aliases (
        id          INTEGER PRIMARY KEY,
        function_id INTEGER NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        alias       TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        record      TEXT    NOT NULL,
        UNIQUE (function_id, alias)
    );

    CREATE TABLE async_invocations (
        request_id      TEXT    PRIMARY KEY,
        function_id     INTEGER NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        qualifier       TEXT    NOT NULL,
        status          TEXT    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_ms      INTEGER NOT NULL,
        next_attempt_ms INTEGER NOT NULL,
        started_ms      INTEGER,
        ended_ms        INTEGER,
        error_code      INTEGER,
        error_message   TEXT,
        body            BLOB    NOT NULL,
        extra           TEXT    NOT NULL DEFAULT '{}'
    );
    -- The dispatcher claims due events in time order; listings are per function, newest first.
    CREATE INDEX async_due ON async_invocations (status, next_attempt_ms);
    CREATE INDEX async_by_function ON async_invocations (function_id, created_ms);
    "#,
    // 3: triggers and saved test events, which also go with their function row. A timer's
    // plan (`next_fire_ms`) is a column so that firing is one compare-and-set.
    r#"
    CREATE TABLE triggers (
        id           INTEGER PRIMARY KEY,
        trigger_id   TEXT    NOT NULL UNIQUE,
        function_id  INTEGER NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        qualifier    TEXT    NOT NULL,
        type_code    TEXT    NOT NULL,
        status       TEXT    NOT NULL,
        event_data   TEXT    NOT NULL,
        created_ms   INTEGER NOT NULL,
        updated_ms   INTEGER NOT NULL,
        next_fire_ms INTEGER,
        last_fire_ms INTEGER
    );
    CREATE INDEX triggers_by_function ON triggers (function_id, qualifier, created_ms, id);

    CREATE TABLE test_events (
        id          INTEGER PRIMARY KEY,
        event_id    TEXT    NOT NULL UNIQUE,
        function_id INTEGER NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        name        TEXT    NOT NULL,
        content     TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        modified_ms INTEGER NOT NULL,
        UNIQUE (function_id, name)
    );
    "#,
    // 4: dependency versions. They belong to a project, not to a function: functions name them
    // by id in `depend_version_list`, and a version in use cannot be deleted.
    r#"
    CREATE TABLE dependency_versions (
        id         TEXT    PRIMARY KEY,
        dep_id     TEXT    NOT NULL,
        project    TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        record     TEXT    NOT NULL,
        UNIQUE (project, name, version)
    );
    CREATE INDEX dependency_versions_by_dep ON dependency_versions (project, dep_id, version);
    "#,
    // 5: invocation logs, one row per finished invocation. No foreign key to `functions`: rows
    // are written in batches after the fact and outlive nothing but their retention, which a
    // periodic purge by `started_ms` enforces.
    r#"
    CREATE TABLE invocation_logs (
        id          INTEGER PRIMARY KEY,
        project     TEXT    NOT NULL,
        package     TEXT    NOT NULL,
        function    TEXT    NOT NULL,
        version     TEXT    NOT NULL,
        request_id  TEXT    NOT NULL,
        invoke_type TEXT    NOT NULL,
        started_ms  INTEGER NOT NULL,
        duration_ms REAL    NOT NULL,
        error_code  INTEGER NOT NULL,
        log         TEXT    NOT NULL,
        truncated   INTEGER NOT NULL
    );
    CREATE INDEX invocation_logs_by_function ON invocation_logs (project, package, function, id);
    CREATE INDEX invocation_logs_by_request ON invocation_logs (project, request_id);
    CREATE INDEX invocation_logs_by_start ON invocation_logs (started_ms);
    "#,
    // 6: leases on async events. A RUNNING event belongs to `lease_owner` (a node id) until
    // `leased_until`; `lease_seq` grows with every claim, so an outcome is written only by the
    // run that holds the current lease. Events an older fgs left RUNNING had no lease: an
    // expired one (0) hands them to the next claim, as that fgs would have requeued them.
    r#"
    ALTER TABLE async_invocations ADD COLUMN lease_owner TEXT;
    ALTER TABLE async_invocations ADD COLUMN leased_until INTEGER;
    ALTER TABLE async_invocations ADD COLUMN lease_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE async_invocations SET leased_until = 0 WHERE status = 'RUNNING';
    CREATE INDEX async_leases ON async_invocations (status, leased_until);
    "#,
    // 7: membership. A single node heartbeats its one row, as every node of a cluster does.
    // `IF NOT EXISTS`: the table is new and holds nothing a repeated run could lose.
    r#"
    CREATE TABLE IF NOT EXISTS nodes (
        node_id       TEXT    PRIMARY KEY,
        advertise_url TEXT    NOT NULL,
        started_ms    INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL
    );
    "#,
    // 8: places for instances of function versions, claimed before an instance starts and
    // given back when it ends (`SlotStore`). A single node never claims any: its pools count
    // their own instances. `IF NOT EXISTS`: the table is new.
    r#"
    CREATE TABLE IF NOT EXISTS instance_slots (
        slot_id    INTEGER PRIMARY KEY AUTOINCREMENT,
        project    TEXT    NOT NULL,
        package    TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        version    TEXT    NOT NULL,
        node_id    TEXT    NOT NULL,
        claimed_ms INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS instance_slots_by_version
        ON instance_slots (project, package, name, version);
    CREATE INDEX IF NOT EXISTS instance_slots_by_node ON instance_slots (node_id);
    "#,
];

/// The schema version this binary writes.
#[cfg(test)]
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to [`latest`], refusing one that a newer fgs has already migrated further:
/// running old code over a newer schema could silently drop what the newer code stores.
pub(crate) fn apply(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    apply_list(conn, path, MIGRATIONS)
}

fn apply_list(conn: &mut Connection, path: &Path, scripts: &[&str]) -> Result<(), StoreError> {
    let known = scripts.len() as i64;
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source: e.into(),
    };
    // IMMEDIATE takes the write lock before reading the version, so two processes opening the
    // same fresh file cannot both run script 1.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(open_err)?;
    if found > known {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    for (i, script) in scripts.iter().enumerate().skip(found.max(0) as usize) {
        let version = i as i64 + 1;
        let migrate_err = |e: rusqlite::Error| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source: e.into(),
        };
        tx.execute_batch(script).map_err(migrate_err)?;
        // user_version lives in the database header and is written inside the transaction, so
        // a crash leaves either the old schema and version or the new ones.
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
    }
    tx.commit().map_err(|e| StoreError::Migrate {
        path: path.to_path_buf(),
        version: known,
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("user_version is readable")
    }

    #[test]
    fn scripts_run_in_order_and_only_once() {
        let mut conn = Connection::open_in_memory().expect("in-memory db opens");
        let path = Path::new(":memory:");
        apply_list(&mut conn, path, &["CREATE TABLE a (x INTEGER);"]).expect("first migration");
        assert_eq!(version(&conn), 1);
        // Re-running with one more script applies only the new one; re-running script 1 would
        // fail with "table a already exists".
        let two = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"];
        apply_list(&mut conn, path, &two).expect("second migration");
        assert_eq!(version(&conn), 2);
        apply_list(&mut conn, path, &two).expect("nothing to do");
        assert_eq!(version(&conn), 2);
    }

    #[test]
    fn failed_script_rolls_back_the_whole_batch() {
        let mut conn = Connection::open_in_memory().expect("in-memory db opens");
        let path = Path::new(":memory:");
        let scripts = ["CREATE TABLE a (x INTEGER);", "THIS IS NOT SQL;"];
        let err = apply_list(&mut conn, path, &scripts).expect_err("bad script must fail");
        assert!(
            matches!(err, StoreError::Migrate { version: 2, .. }),
            "{err:?}"
        );
        assert_eq!(version(&conn), 0);
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'a'",
                [],
                |r| r.get(0),
            )
            .expect("sqlite_master is readable");
        assert_eq!(tables, 0, "script 1 must be rolled back with script 2");
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().expect("in-memory db opens");
        conn.pragma_update(None, "user_version", 5)
            .expect("user_version is writable");
        let err = apply_list(&mut conn, Path::new(":memory:"), &["SELECT 1;"])
            .expect_err("newer schema must be refused");
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 5,
                    known: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
