//! The PostgreSQL schema as an ordered list of scripts, applied by fgs itself when a node opens
//! the store. Script `i` takes the database from version `i` to `i + 1` (the row of
//! `fgs_schema`); scripts are only ever appended, never edited.
//!
//! Several nodes may start at once on a fresh database: each applies the scripts in one
//! transaction that first takes `pg_advisory_xact_lock(MIGRATION_LOCK)`, so the second waits for
//! the first to commit, then finds the schema current and does nothing. A failed script rolls the
//! whole transaction back (PostgreSQL's DDL is transactional).

use std::path::PathBuf;

use crate::StoreError;

/// The advisory lock key of schema migrations: any fixed number no other user of the database
/// takes ("fgs" in ASCII, then 1).
const MIGRATION_LOCK: i64 = 0x6667_7300_0000_0001;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: everything a single SQLite node keeps, in PostgreSQL's types. Ids are identities so
    // that listings in creation order break ties in insertion order, as SQLite's rowids do.
    r#"
    CREATE TABLE functions (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project     TEXT   NOT NULL,
        package     TEXT   NOT NULL,
        name        TEXT   NOT NULL,
        func_id     TEXT   NOT NULL,
        revision    BIGINT NOT NULL,
        created_ms  BIGINT NOT NULL,
        modified_ms BIGINT NOT NULL,
        record      TEXT   NOT NULL,
        UNIQUE (project, package, name)
    );
    CREATE INDEX functions_by_project ON functions (project, created_ms, id);
    CREATE INDEX functions_by_package ON functions (project, package, created_ms, id);

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );

    CREATE TABLE versions (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        function_id BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        version     TEXT   NOT NULL,
        created_ms  BIGINT NOT NULL,
        record      TEXT   NOT NULL,
        UNIQUE (function_id, version)
    );

    CREATE TABLE aliases (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        function_id BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        alias       TEXT   NOT NULL,
        created_ms  BIGINT NOT NULL,
        record      TEXT   NOT NULL,
        UNIQUE (function_id, alias)
    );

    -- The async queue. `seq` orders listings of events accepted in the same millisecond. A
    -- RUNNING event belongs to `lease_owner` until `leased_until`; `lease_seq` grows with every
    -- claim, so only the run holding the current lease writes an outcome.
    CREATE TABLE async_invocations (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        request_id      TEXT   PRIMARY KEY,
        function_id     BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        qualifier       TEXT   NOT NULL,
        status          TEXT   NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        created_ms      BIGINT NOT NULL,
        next_attempt_ms BIGINT NOT NULL,
        started_ms      BIGINT,
        ended_ms        BIGINT,
        error_code      BIGINT,
        error_message   TEXT,
        body            BYTEA  NOT NULL,
        extra           TEXT   NOT NULL DEFAULT '{}',
        lease_owner     TEXT,
        leased_until    BIGINT,
        lease_seq       BIGINT NOT NULL DEFAULT 0
    );
    -- Claims walk these in due order; both stay small because finished events leave them.
    CREATE INDEX async_waiting ON async_invocations (next_attempt_ms) WHERE status = 'WAIT';
    CREATE INDEX async_leased ON async_invocations (leased_until) WHERE status = 'RUNNING';
    CREATE INDEX async_by_function ON async_invocations (function_id, created_ms);

    CREATE TABLE triggers (
        id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        trigger_id   TEXT   NOT NULL UNIQUE,
        function_id  BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        qualifier    TEXT   NOT NULL,
        type_code    TEXT   NOT NULL,
        status       TEXT   NOT NULL,
        event_data   TEXT   NOT NULL,
        created_ms   BIGINT NOT NULL,
        updated_ms   BIGINT NOT NULL,
        next_fire_ms BIGINT,
        last_fire_ms BIGINT
    );
    CREATE INDEX triggers_by_function ON triggers (function_id, qualifier, created_ms, id);

    CREATE TABLE test_events (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id    TEXT   NOT NULL UNIQUE,
        function_id BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
        name        TEXT   NOT NULL,
        content     TEXT   NOT NULL,
        created_ms  BIGINT NOT NULL,
        modified_ms BIGINT NOT NULL,
        UNIQUE (function_id, name)
    );

    CREATE TABLE dependency_versions (
        id         TEXT   PRIMARY KEY,
        dep_id     TEXT   NOT NULL,
        project    TEXT   NOT NULL,
        name       TEXT   NOT NULL,
        version    BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        record     TEXT   NOT NULL,
        UNIQUE (project, name, version)
    );
    CREATE INDEX dependency_versions_by_dep ON dependency_versions (project, dep_id, version);

    CREATE TABLE invocation_logs (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project     TEXT    NOT NULL,
        package     TEXT    NOT NULL,
        function    TEXT    NOT NULL,
        version     TEXT    NOT NULL,
        request_id  TEXT    NOT NULL,
        invoke_type TEXT    NOT NULL,
        started_ms  BIGINT  NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        error_code  BIGINT  NOT NULL,
        log         TEXT    NOT NULL,
        truncated   BOOLEAN NOT NULL
    );
    CREATE INDEX invocation_logs_by_function ON invocation_logs (project, package, function, id);
    CREATE INDEX invocation_logs_by_request ON invocation_logs (project, request_id);
    CREATE INDEX invocation_logs_by_start ON invocation_logs (started_ms);
    "#,
    // 2: code packages, so that a node lacking one gets it from here (docs/cluster.md), in
    // chunks of at most 1 MiB (`bytea` values that large stay cheap to read and write).
    r#"
    CREATE TABLE packages (
        sha256     TEXT   PRIMARY KEY,
        size       BIGINT NOT NULL,
        chunks     BIGINT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    CREATE TABLE package_chunks (
        sha256 TEXT   NOT NULL REFERENCES packages (sha256) ON DELETE CASCADE,
        n      BIGINT NOT NULL,
        data   BYTEA  NOT NULL,
        PRIMARY KEY (sha256, n)
    );
    "#,
    // 3: membership: one row per node, moved by its heartbeats.
    r#"
    CREATE TABLE nodes (
        node_id       TEXT   PRIMARY KEY,
        advertise_url TEXT   NOT NULL,
        started_ms    BIGINT NOT NULL,
        last_seen_ms  BIGINT NOT NULL
    );
    "#,
    // 4: places for instances of function versions across the nodes (`SlotStore`): a node
    // claims one before it starts an instance and gives it back when the instance ended.
    r#"
    CREATE TABLE instance_slots (
        slot_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project    TEXT   NOT NULL,
        package    TEXT   NOT NULL,
        name       TEXT   NOT NULL,
        version    TEXT   NOT NULL,
        node_id    TEXT   NOT NULL,
        claimed_ms BIGINT NOT NULL
    );
    CREATE INDEX instance_slots_by_version ON instance_slots (project, package, name, version);
    CREATE INDEX instance_slots_by_node ON instance_slots (node_id);
    "#,
    // 5: the cluster's statistics: what each run of a node counted, per function version and
    // minute (or month).
    r#"
    CREATE TABLE stat_minutes (
        run             TEXT   NOT NULL,
        project         TEXT   NOT NULL,
        package         TEXT   NOT NULL,
        name            TEXT   NOT NULL,
        version         TEXT   NOT NULL,
        start_ms        BIGINT NOT NULL,
        count           BIGINT NOT NULL,
        function_errors BIGINT NOT NULL,
        system_errors   BIGINT NOT NULL,
        rejected        BIGINT NOT NULL,
        duration_sum_ms DOUBLE PRECISION NOT NULL,
        duration_max_ms DOUBLE PRECISION NOT NULL,
        duration_min_ms DOUBLE PRECISION NOT NULL,
        mb_ms           BIGINT NOT NULL,
        PRIMARY KEY (run, project, package, name, version, start_ms)
    );
    CREATE INDEX stat_minutes_by_project ON stat_minutes (project, start_ms);
    CREATE TABLE stat_months (
        run     TEXT   NOT NULL,
        project TEXT   NOT NULL,
        package TEXT   NOT NULL,
        name    TEXT   NOT NULL,
        version TEXT   NOT NULL,
        month   BIGINT NOT NULL,
        count   BIGINT NOT NULL,
        mb_ms   BIGINT NOT NULL,
        PRIMARY KEY (run, project, package, name, version, month)
    );
    "#,
];

/// Brings the database to the newest schema, refusing one a newer fgs migrated further.
pub(crate) async fn apply(
    client: &mut deadpool_postgres::Client,
    shown: &str,
) -> Result<(), StoreError> {
    apply_list(client, shown, MIGRATIONS).await
}

pub(crate) async fn apply_list(
    client: &mut deadpool_postgres::Client,
    shown: &str,
    scripts: &[&str],
) -> Result<(), StoreError> {
    let path = || PathBuf::from(shown);
    let known = scripts.len() as i64;
    let open_err = |e: tokio_postgres::Error| StoreError::Open {
        path: path(),
        source: e.into(),
    };
    let tx = client.transaction().await.map_err(open_err)?;
    // Held until commit or rollback: every other node's migration waits here.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(open_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fgs_schema (version BIGINT NOT NULL);
         INSERT INTO fgs_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM fgs_schema);",
    )
    .await
    .map_err(open_err)?;
    let found: i64 = tx
        .query_one("SELECT version FROM fgs_schema", &[])
        .await
        .map_err(open_err)?
        .get(0);
    if found > known {
        return Err(StoreError::SchemaTooNew {
            path: path(),
            found,
            known,
        });
    }
    for (i, script) in scripts.iter().enumerate().skip(found.max(0) as usize) {
        let version = i as i64 + 1;
        let migrate_err = |e: tokio_postgres::Error| StoreError::Migrate {
            path: path(),
            version,
            source: e.into(),
        };
        tx.batch_execute(script).await.map_err(migrate_err)?;
        tx.execute("UPDATE fgs_schema SET version = $1", &[&version])
            .await
            .map_err(migrate_err)?;
    }
    tx.commit().await.map_err(|e| StoreError::Migrate {
        path: path(),
        version: known,
        source: e.into(),
    })
}
