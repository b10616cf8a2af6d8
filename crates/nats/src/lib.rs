//! The change feed between fgs nodes, over NATS JetStream.
//!
//! Every node publishes its committed changes to one stream ([`wire::STREAM`], subjects
//! `fgs.changes.>`, created idempotently by every node at start) and follows the whole stream
//! with one ordered, ephemeral consumer that starts after the last message present when the
//! node started. The stream sequence NATS gives a message IS the change's revision, so the
//! revisions of all nodes form one sequence and a follower sees a gap as a gap. Within the
//! node, a [`fanout::Fanout`] hands each change to every follower (the invoker's resolution
//! cache, the trigger hub).
//!
//! Loss is answered as [`fgs_store::feed`] says: when the connection to NATS comes back after
//! a loss, when the stream skipped sequences (messages aged out) or when a message cannot be
//! read, the followers are told to resync, and reload everything from the store. A write
//! whose publication fails (NATS went away after the commit) is published again in the
//! background until NATS takes it; the other nodes resync on their reconnection anyway.
//!
//! It speaks the JetStream API of nats-server 2.9 (no multi-subject filters, no 2.10 consumer
//! actions): async-nats is built without its `server_2_10` features.

mod fanout;
mod pump;
pub mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{ConnectOptions, Event};
use fgs_store::feed::BoxFuture;
use fgs_store::{ChangeFeed, ChangeKind, FunctionKey, Subscription};
use tokio::sync::watch;

use crate::fanout::Fanout;

/// How long the changes stay in the stream: a node that reconnects within this can be caught
/// up by NATS; a later one resyncs from the store either way.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The most changes the stream keeps.
const MAX_MESSAGES: i64 = 100_000;

/// What went wrong reaching NATS.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS at {url} does not give JetStream stream {stream}: {reason} (is the server started with -js?)")]
    Stream {
        url: String,
        stream: &'static str,
        reason: String,
    },
}

/// A [`ChangeFeed`] over NATS JetStream. Cheap to share (`Arc`).
pub struct NatsFeed {
    js: jetstream::Context,
    /// The server's URL without credentials, for messages.
    url: String,
    fanout: Arc<Fanout>,
    connected: Arc<AtomicBool>,
}

/// The part of `url` fit for a message: no user or password.
fn display_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl NatsFeed {
    /// Connects to NATS at `url` (giving up after `timeout`), creates the stream if it is not
    /// there yet and starts following it. `node` names the connection in the server's
    /// monitoring. Fails, rather than retrying, when NATS cannot be reached: fgs refuses to
    /// start without it.
    pub async fn connect(
        url: &str,
        node: &str,
        timeout: Duration,
    ) -> Result<Arc<NatsFeed>, NatsError> {
        let shown = display_url(url);
        let connected = Arc::new(AtomicBool::new(false));
        // Bumped at each reconnection: the consumer then starts over and the followers resync.
        let (reconnects, reconnected) = watch::channel(0u64);
        let callback_connected = Arc::clone(&connected);
        let options = ConnectOptions::new()
            .name(format!("fgs {node}"))
            .connection_timeout(timeout)
            // A short request timeout: a publish must not hold a write for long.
            .request_timeout(Some(timeout))
            // Retry quickly: every node waits on NATS to follow changes again.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100 * attempts.min(10) as u64)
            })
            .event_callback(move |event| {
                let connected = Arc::clone(&callback_connected);
                let reconnects = reconnects.clone();
                async move {
                    match event {
                        Event::Connected => {
                            tracing::info!("connected to NATS");
                            if !connected.swap(true, Ordering::AcqRel) {
                                reconnects.send_modify(|n| *n += 1);
                            }
                        }
                        Event::Disconnected => {
                            tracing::warn!("lost the connection to NATS; reconnecting");
                            connected.store(false, Ordering::Release);
                        }
                        other => tracing::debug!(%other, "NATS event"),
                    }
                }
            });
        let client = tokio::time::timeout(timeout, options.connect(url))
            .await
            .map_err(|_| NatsError::Connect {
                url: shown.clone(),
                reason: format!("no answer within {timeout:?}"),
            })?
            .map_err(|e| NatsError::Connect {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        connected.store(true, Ordering::Release);
        let js = jetstream::new(client);
        let mut stream = create_stream(&js)
            .await
            .map_err(|reason| NatsError::Stream {
                url: shown.clone(),
                stream: wire::STREAM,
                reason,
            })?;
        let last = stream
            .info()
            .await
            .map_err(|e| NatsError::Stream {
                url: shown.clone(),
                stream: wire::STREAM,
                reason: e.to_string(),
            })?
            .state
            .last_sequence;
        let fanout = Arc::new(Fanout::new(last));
        tokio::spawn(pump::run(js.clone(), Arc::clone(&fanout), reconnected));
        Ok(Arc::new(NatsFeed {
            js,
            url: shown,
            fanout,
            connected,
        }))
    }

    /// Whether the connection to NATS is up right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
}

/// Creates the stream, or takes the one there: every node does this at start, maybe at once.
async fn create_stream(js: &jetstream::Context) -> Result<stream::Stream, String> {
    let config = stream::Config {
        name: wire::STREAM.to_owned(),
        subjects: vec![wire::SUBJECTS.to_owned()],
        max_age: MAX_AGE,
        max_messages: MAX_MESSAGES,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    match js.get_or_create_stream(config).await {
        Ok(s) => Ok(s),
        // Another node created it between our look-up and our creation.
        Err(first) => js
            .get_stream(wire::STREAM)
            .await
            .map_err(|_| first.to_string()),
    }
}

/// Publishes one change and waits for JetStream's acknowledgement: its sequence.
async fn publish_once(
    js: &jetstream::Context,
    subject: String,
    body: Vec<u8>,
) -> Result<u64, String> {
    let ack = js
        .publish(subject, body.into())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ack.await.map_err(|e| e.to_string())?.sequence)
}

impl ChangeFeed for NatsFeed {
    fn publish(&self, key: FunctionKey, kind: ChangeKind) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let (subject, body) = wire::encode(&key, kind);
            let published = if self.is_connected() {
                publish_once(&self.js, subject.clone(), body.clone()).await
            } else {
                // A disconnected client buffers and waits the whole request timeout.
                Err("not connected".to_owned())
            };
            match published {
                Ok(revision) => revision,
                Err(e) => {
                    // The write is committed; the other nodes learn it when NATS takes it (or
                    // by their resync on reconnection). This node resyncs on its own
                    // reconnection, so the write need not wait for a revision.
                    tracing::warn!(error = %e, "cannot publish a change to NATS; retrying in the background");
                    tokio::spawn(pump::republish(self.js.clone(), subject, body));
                    0
                }
            }
        })
    }

    fn subscribe(&self) -> Subscription {
        self.fanout.subscribe()
    }

    fn settled(&self, revision: u64, limit: Duration) -> BoxFuture<'_, ()> {
        self.fanout.settled(revision, limit)
    }

    fn unavailable(&self) -> Option<String> {
        (!self.is_connected()).then(|| {
            format!(
                "the cluster's NATS at {} is unavailable to this node, so the other nodes \
                 would not learn of the change",
                self.url
            )
        })
    }
}
