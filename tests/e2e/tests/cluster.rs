//! Cluster mode (docs/cluster.md): the settings a node refuses at start.

use fgs_e2e::{Server, ServerOpts};

/// `--nats` joins a cluster, whose nodes share a PostgreSQL store: with SQLite it is refused
/// before anything is created, saying what is missing.
#[test]
fn nats_with_the_sqlite_store_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let err = Server::try_start(
        ServerOpts::default()
            .data_dir(&data)
            .flag("--nats", "nats://127.0.0.1:4222"),
    )
    .err()
    .expect("--nats with SQLite was accepted");
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains("--store postgres://"), "{err}");
    assert!(!data.exists(), "nothing is created for a refused start");
}
