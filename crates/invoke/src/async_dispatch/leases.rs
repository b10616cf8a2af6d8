//! The leases this node holds on async events, and their extension while the events wait for a
//! slot or run. One batch extends them all every [`LeaseConfig::renew`], so a long run keeps its
//! event and a stopped node's events go to another claim within [`LeaseConfig::length`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_store::{AsyncQueue, Lease};

use super::Clock;

/// [FGS] How long a claim holds an event, and how often held leases are extended.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// This node's id: the owner of its leases.
    pub owner: String,
    /// How long a lease lasts from its claim or last extension: the longest an event of a
    /// stopped node waits before another claim takes it.
    pub length: Duration,
    /// How often held leases are extended; well under `length`, so that one slow or failed
    /// extension does not lose a lease.
    pub renew: Duration,
}

/// 30 s: long enough that two missed extensions (every 10 s) still hold the lease, short enough
/// that the events of a node killed mid-run run again within half a minute.
pub const LEASE_LENGTH: Duration = Duration::from_secs(30);
pub const LEASE_RENEW: Duration = Duration::from_secs(10);

impl LeaseConfig {
    pub fn new(owner: String) -> LeaseConfig {
        LeaseConfig {
            owner,
            length: LEASE_LENGTH,
            renew: LEASE_RENEW,
        }
    }

    pub(crate) fn until(&self, now_ms: i64) -> i64 {
        now_ms + self.length.as_millis() as i64
    }
}

/// The leases held now, by request id (the value is the lease's sequence number).
#[derive(Debug, Default)]
pub(crate) struct Held {
    leases: Mutex<HashMap<String, i64>>,
}

impl Held {
    pub(crate) fn hold(&self, request_id: &str, lease: &Lease) {
        self.lock().insert(request_id.to_owned(), lease.seq);
    }

    pub(crate) fn release(&self, request_id: &str) {
        self.lock().remove(request_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // The map is never left half-written: a panic cannot poison it mid-update.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Extends every held lease once; a lease found lost (it ran out and another claim took
    /// the event) is forgotten: its run's outcome will be refused by the queue.
    pub(crate) async fn extend_all(&self, queue: &dyn AsyncQueue, config: &LeaseConfig, now: i64) {
        let leases: Vec<(String, i64)> = self
            .lock()
            .iter()
            .map(|(id, seq)| (id.clone(), *seq))
            .collect();
        if leases.is_empty() {
            return;
        }
        match queue
            .extend(&config.owner, leases.clone(), config.until(now))
            .await
        {
            Ok(held) => {
                let mut map = self.lock();
                for ((id, seq), held) in leases.into_iter().zip(held) {
                    // Released (settled) meanwhile, or claimed again under a newer lease.
                    if !held && map.get(&id) == Some(&seq) {
                        tracing::warn!(
                            request_id = id,
                            "async event lease lost; another claim may run it"
                        );
                        map.remove(&id);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "extending async event leases failed"),
        }
    }

    /// Extends the held leases every `config.renew` until the task is aborted.
    pub(crate) async fn renew_forever(
        self: Arc<Self>,
        queue: Arc<dyn AsyncQueue>,
        config: LeaseConfig,
        clock: Clock,
    ) {
        let mut tick = tokio::time::interval(config.renew.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.extend_all(&*queue, &config, clock.now_ms()).await;
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
