//! `fgs serve`'s cluster settings: which change feed the node uses (`--nats`), the URL other
//! nodes reach it at (`--advertise-url`), and the rules that keep a node from starting half a
//! cluster (docs/cluster.md).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use fgs_nats::NatsFeed;
use fgs_store::{ChangeFeed, LocalFeed, StoreKind};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// NATS server of the cluster (`nats://HOST:PORT`, JetStream on): the nodes follow each
    /// other's changes there. Needs a PostgreSQL `--store`, and a PostgreSQL store needs it
    /// (either alone is refused at start).
    #[arg(long, env = "FGS_NATS")]
    pub nats: Option<String>,
    /// How long connecting to NATS at start may take before fgs gives up (exit 1).
    #[arg(long, env = "FGS_NATS_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub nats_connect_timeout: Duration,
    /// The URL other nodes reach this one at; default the public URL (`--public-url`, else
    /// `http://<listen address>`).
    #[arg(long, env = "FGS_ADVERTISE_URL", value_parser = crate::serve::parse_public_url)]
    pub advertise_url: Option<String>,
}

/// Refuses a store and feed that do not make a node: a cluster shares a PostgreSQL store
/// and follows changes over NATS; a single node keeps both in its process.
pub fn check(store: &StoreKind, args: &ClusterArgs) -> Result<()> {
    match (store, &args.nats) {
        (StoreKind::Sqlite, None) => Ok(()),
        (StoreKind::Sqlite, Some(_)) => bail!(
            "--nats joins a cluster, whose nodes share a PostgreSQL store: give --store \
             postgres://USER@HOST:PORT/DB too (the SQLite store is one node's)"
        ),
        // A node on a shared store that follows no feed would serve what it loaded at start
        // while other nodes change the same rows: refused rather than silently stale.
        (StoreKind::Postgres(_), None) => bail!(
            "a PostgreSQL --store is shared by the nodes of a cluster, which follow each \
             other's changes over NATS: give --nats nats://HOST:PORT too (a NATS server with \
             JetStream on), or use the default SQLite store for a single node"
        ),
        (StoreKind::Postgres(_), Some(_)) => Ok(()),
    }
}

/// The change feed: NATS JetStream when `--nats` is given (connected, or an error saying why
/// not), else this process's own.
pub async fn feed(args: &ClusterArgs, node_id: &str) -> Result<Arc<dyn ChangeFeed>> {
    match &args.nats {
        None => Ok(LocalFeed::new()),
        Some(url) => {
            let feed = NatsFeed::connect(url, node_id, args.nats_connect_timeout).await?;
            Ok(feed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(nats: Option<&str>) -> ClusterArgs {
        ClusterArgs {
            nats: nats.map(str::to_owned),
            nats_connect_timeout: Duration::from_secs(1),
            advertise_url: None,
        }
    }

    #[test]
    fn sqlite_is_one_node_and_refuses_nats() {
        assert!(check(&StoreKind::Sqlite, &args(None)).is_ok());
        let err = check(&StoreKind::Sqlite, &args(Some("nats://127.0.0.1:4222")))
            .expect_err("SQLite is not shared");
        assert!(err.to_string().contains("--store postgres://"), "{err}");
    }

    #[test]
    fn postgres_needs_nats() {
        let pg: StoreKind = "postgres://fgs@db:5432/fgs".parse().expect("a URL");
        let err = check(&pg, &args(None)).expect_err("PostgreSQL without NATS");
        assert!(err.to_string().contains("--nats nats://"), "{err}");
        assert!(check(&pg, &args(Some("nats://127.0.0.1:4222"))).is_ok());
    }
}
