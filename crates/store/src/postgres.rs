//! The PostgreSQL backend: the store of a cluster, where every node reads and writes the same
//! database (docs/cluster.md). It implements every storage trait (`impls`) over a pool of
//! `tokio-postgres` connections that reconnects by itself: while the server cannot be reached,
//! calls fail with [`StoreError::Unavailable`] and succeed again once it is back.
//!
//! Limits are checked in the transaction that writes, under a lock every node takes: the row of
//! the function concerned (`FOR NO KEY UPDATE`, which async inserts referencing it do not wait
//! for) or a transaction-scoped advisory lock on a name (a project's function count, a
//! dependency's version numbers). fgs speaks plain TCP or a unix socket to PostgreSQL; a URL
//! asking for TLS is refused when the store is opened.

mod blobs;
mod flows;
mod functions;
mod impls;
mod migrations;
mod nodes;
mod queue;
mod records;
mod slots;
mod stats;
#[cfg(test)]
pub(crate) mod tests;
mod triggers;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Config, NoTls};

use crate::StoreError;

/// Connections per node. Each API call holds one for a transaction, the async dispatcher one per
/// batch; more would only queue inside PostgreSQL (its default `max_connections` is 100, shared
/// by every node).
const POOL_SIZE: usize = 16;

/// How long a call waits for a connection, or for a new one to be made, before it answers
/// `Unavailable`: long enough for a busy pool, short enough that an API call fails fast while
/// PostgreSQL is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Postgres {
    pool: Pool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's config holds the password: never print it.
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

/// Maps a driver error: a broken or refused connection, or a server shutting down, is
/// `Unavailable` (retry later); anything else is a `Backend` failure of `op`.
pub(crate) fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| {
        if unreachable(&e) {
            StoreError::Unavailable {
                op,
                source: e.into(),
            }
        } else {
            StoreError::Backend {
                op,
                source: e.into(),
            }
        }
    }
}

/// Whether `e` says the server is out of reach rather than that the statement failed.
fn unreachable(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        // Class 08: connection exception; class 57: operator intervention (shutdown, restart).
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("57");
    }
    if e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// An integer column read back as a count or offset: never negative in practice.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A URL without its password, fit for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Parses a `postgres://` URL (or key=value string) and refuses what fgs does not speak.
pub(crate) fn parse_url(url: &str) -> Result<Config, StoreError> {
    let connect = |msg: String| StoreError::Connect {
        url: redact(url),
        source: msg.into(),
    };
    let mut config: Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| connect(format!("not a PostgreSQL URL: {e}")))?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(connect(
            "sslmode=require: fgs speaks plain TCP or a unix socket to PostgreSQL, without TLS \
             (docs/cluster.md); drop sslmode or reach the server over a trusted network"
                .into(),
        ));
    }
    if config.get_dbname().is_none() {
        return Err(connect(
            "the URL names no database: postgres://USER@HOST:PORT/DB".into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("fgs");
    Ok(config)
}

impl Postgres {
    /// Connects to the database `url` names, checks that it answers, and brings its schema up
    /// to date (creating it in an empty database). Fails with `Connect` when it cannot reach it.
    pub(crate) async fn open(url: &str) -> Result<Postgres, StoreError> {
        let config = parse_url(url)?;
        Postgres::open_config(config, &redact(url)).await
    }

    pub(crate) async fn open_config(config: Config, shown: &str) -> Result<Postgres, StoreError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection whose socket closed (the server restarted) is dropped at checkout
                // and a new one made: that is the reconnecting.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Connect {
                url: shown.to_owned(),
                source: e.into(),
            })?;
        let store = Postgres { pool };
        let mut client = store.pool.get().await.map_err(|e| StoreError::Connect {
            url: shown.to_owned(),
            source: pool_message(e).into(),
        })?;
        migrations::apply(&mut client, shown).await?;
        Ok(store)
    }

    /// A pooled connection, or `Unavailable` when none can be had in time.
    pub(crate) async fn client(
        &self,
        op: &'static str,
    ) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable {
            op,
            source: pool_message(e).into(),
        })
    }
}

/// What a pool failure means, with the driver's cause when there is one.
fn pool_message(e: deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            msg
        }
        PoolError::Timeout(_) => format!(
            "no connection within {}s (the server is not answering)",
            CONNECT_TIMEOUT.as_secs()
        ),
        other => other.to_string(),
    }
}
