//! The node's one consumer of the change stream, and the background republication of a
//! change NATS did not take.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::{self};
use fgs_store::feed::Change;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::fanout::{Fanout, Item};
use crate::wire;

/// Wait before trying again to create the consumer.
const RETRY: Duration = Duration::from_millis(250);

/// Follows the stream from just after `fanout.last()` until fgs stops. At each reconnection
/// (`reconnected` changes) it tells the followers to resync and starts a new consumer after
/// the last change it passed on: NATS may have lost the consumer, and the changes published
/// while this node was away are read from the store by the resync.
pub async fn run(
    js: jetstream::Context,
    fanout: Arc<Fanout>,
    mut reconnected: watch::Receiver<u64>,
) {
    reconnected.borrow_and_update();
    loop {
        let mut messages = match consume(&js, fanout.last()).await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "cannot follow the change stream yet");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    r = reconnected.changed() => {
                        if r.is_err() { return; }
                        fanout.send(Item::Lost(fanout.last()));
                    }
                }
                continue;
            }
        };
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(m)) => pass_on(&fanout, &m),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "the change stream failed; following it anew");
                        break;
                    }
                    None => break,
                },
                r = reconnected.changed() => {
                    if r.is_err() { return; }
                    // Everything up to what this node passed on is in the store; what other
                    // nodes published meanwhile is too, and the resync reads it.
                    fanout.send(Item::Lost(fanout.last()));
                    break;
                }
            }
        }
    }
}

async fn consume(js: &jetstream::Context, after: u64) -> Result<pull::Ordered, String> {
    let stream = js
        .get_stream(wire::STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: wire::SUBJECTS.to_owned(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}

fn pass_on(fanout: &Fanout, m: &jetstream::Message) {
    let Ok(info) = m.info() else {
        tracing::warn!("a change without JetStream metadata; followers resync");
        fanout.send(Item::Lost(fanout.last()));
        return;
    };
    let revision = info.stream_sequence;
    match wire::decode(&m.payload) {
        Some((key, kind)) => fanout.send(Item::Change(Change {
            revision,
            key,
            kind,
        })),
        None => {
            tracing::warn!(revision, "an unreadable change; followers resync");
            fanout.send(Item::Lost(revision));
        }
    }
}

/// Publishes a change until NATS takes it, trying every second.
pub async fn republish(js: jetstream::Context, subject: String, body: Vec<u8>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match crate::publish_once(&js, subject.clone(), body.clone()).await {
            Ok(revision) => {
                tracing::info!(revision, "a change NATS had not taken is published");
                return;
            }
            Err(e) => tracing::debug!(error = %e, "NATS still does not take a change"),
        }
    }
}
