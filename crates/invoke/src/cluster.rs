//! `max_instance_num` for the whole cluster: the [`Gate`] of each pool claims a place in the
//! store ([`SlotStore`]) before an instance starts and gives it back after the instance ended,
//! so that the instances of a function version on all nodes together never exceed its limit.
//! Only starting and ending an instance touches the store; a warm call never does.
//!
//! Places of a node that is not live (silent past `--node-timeout`) count for nobody, so a node
//! that cannot heartbeat must stop relying on its places before the others give them away: it
//! fences itself ([`Fence`]) once its last successful heartbeat is `fence_after` old (half the
//! node timeout), ends the instances that hold places and refuses new claims; after its next
//! successful heartbeat it gives back every place it may still hold in the store and claims
//! anew. A node starts fenced: its first heartbeat also clears what a previous run under the
//! same node id left.
//!
//! Reserved instances are that many in the cluster: each node keeps its share of a version's
//! reserved count ([`spread`]), computed from the live nodes as its heartbeats last saw them
//! ([`ClusterLimits::set_members`]); a fenced node keeps none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_pool::{Admission, Gate, Ticket};
use fgs_store::{FunctionKey, SlotClaim, SlotStore, StoreError};
use tokio::time::Instant;

/// Whether this node may count on its places: fenced until a heartbeat landed, and again once
/// the last one that landed is `after` old.
#[derive(Debug)]
pub struct Fence {
    after: Duration,
    state: Mutex<FenceState>,
}

#[derive(Debug, Clone, Copy)]
struct FenceState {
    /// When the last heartbeat that landed was sent.
    last_beat: Option<Instant>,
    /// Whether the node's instances were ended for it and its places are to be given back.
    fenced: bool,
}

impl Fence {
    pub fn new(after: Duration) -> Fence {
        Fence {
            after,
            state: Mutex::new(FenceState {
                last_beat: None,
                fenced: true,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FenceState> {
        self.state.lock().expect("fence lock is never poisoned")
    }

    /// Whether claims are allowed now.
    pub fn open(&self) -> bool {
        let st = *self.lock();
        !st.fenced && st.last_beat.is_some_and(|b| b.elapsed() < self.after)
    }

    /// Marks the node fenced if its last heartbeat is too old; true the first time, when its
    /// instances must be ended.
    pub fn check(&self) -> bool {
        let mut st = self.lock();
        if st.fenced || st.last_beat.is_some_and(|b| b.elapsed() < self.after) {
            return false;
        }
        st.fenced = true;
        true
    }

    /// Whether a landed heartbeat must first give the node's places back (it was fenced).
    pub fn needs_release(&self) -> bool {
        self.lock().fenced
    }

    /// A heartbeat sent at `sent` landed (and, if the node was fenced, its places were given
    /// back): claims are allowed again.
    pub fn beat(&self, sent: Instant) {
        let mut st = self.lock();
        st.last_beat = Some(st.last_beat.map_or(sent, |b| b.max(sent)));
        st.fenced = false;
    }
}

/// What the gates of one node share: the store, the node's id, membership's silence limit and
/// the fence.
#[derive(Debug)]
pub struct ClusterLimits {
    store: Arc<dyn SlotStore>,
    node_id: String,
    silence_ms: i64,
    fence: Fence,
    now_ms: fn() -> i64,
    /// Places claimed and not yet dropped: instances holding them run or are stopping.
    held: Arc<AtomicUsize>,
    /// The live nodes as this node's heartbeats last saw them.
    members: Mutex<Members>,
}

/// The live node ids, sorted, and how many times they changed.
#[derive(Debug, Default)]
struct Members {
    ids: Arc<[String]>,
    generation: u64,
}

impl ClusterLimits {
    /// `silence` is `--node-timeout`; the node fences itself after half of it without a
    /// heartbeat, which leaves the other half for its instances to end.
    pub fn new(store: Arc<dyn SlotStore>, node_id: String, silence: Duration) -> ClusterLimits {
        ClusterLimits {
            store,
            node_id,
            silence_ms: i64::try_from(silence.as_millis()).unwrap_or(i64::MAX),
            fence: Fence::new(silence / 2),
            now_ms: crate::now_ms,
            held: Arc::new(AtomicUsize::new(0)),
            members: Mutex::new(Members::default()),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().expect("members lock is never poisoned")
    }

    /// The live nodes, as a heartbeat of this node that just landed read them (this node is
    /// among them: it is live). Returns whether they changed: the reserved instances' shares
    /// are then computed again.
    pub fn set_members(&self, mut ids: Vec<String>) -> bool {
        if !ids.contains(&self.node_id) {
            ids.push(self.node_id.clone());
        }
        ids.sort_unstable();
        ids.dedup();
        let mut m = self.members();
        if *m.ids == *ids {
            return false;
        }
        tracing::info!(nodes = ?ids, "live nodes changed: reserved instances are spread again");
        m.ids = ids.into();
        m.generation += 1;
        true
    }

    /// Forgets the live nodes: this node fenced itself, and keeps no reserved instance until a
    /// heartbeat lands again.
    pub fn forget_members(&self) {
        let mut m = self.members();
        if !m.ids.is_empty() {
            m.ids = Arc::from(Vec::new());
            m.generation += 1;
        }
    }

    /// Grows with every change of the live nodes.
    pub fn members_generation(&self) -> u64 {
        self.members().generation
    }

    /// How many of a version's `count` reserved instances this node keeps.
    pub fn reserved_share(&self, function: &FunctionKey, version: &str, count: u32) -> u32 {
        if count == 0 {
            return 0;
        }
        let ids = Arc::clone(&self.members().ids);
        spread::share(&self.node_id, &ids, function, version, count)
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Called after each heartbeat that landed, sent at `sent`: a fenced node gives back the
    /// places it may hold before it claims again, once every instance that held one has
    /// stopped (until then it stays fenced).
    pub async fn heartbeat_landed(&self, sent: Instant) -> Result<(), StoreError> {
        if self.fence.needs_release() {
            let stopping = self.held.load(Ordering::Acquire);
            if stopping > 0 {
                tracing::info!(stopping, "fenced: waiting for instances to stop");
                return Ok(());
            }
            let n = self.store.release_node_slots(&self.node_id).await?;
            if n > 0 {
                tracing::info!(places = n, "gave back the instance places this node held");
            }
        }
        self.fence.beat(sent);
        Ok(())
    }

    /// The gate of one function version's pool.
    pub fn gate(self: &Arc<Self>, function: &FunctionKey, version: &str) -> Arc<dyn Gate> {
        Arc::new(VersionGate {
            limits: Arc::clone(self),
            function: function.clone(),
            version: version.to_owned(),
        })
    }
}

struct VersionGate {
    limits: Arc<ClusterLimits>,
    function: FunctionKey,
    version: String,
}

impl Gate for VersionGate {
    fn admit(
        &self,
        limit: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Admission> + Send + '_>> {
        Box::pin(async move {
            let l = &self.limits;
            if !l.fence.open() {
                return Admission::Refused(format!(
                    "node {} has not reached the store for a while and counts on no instance places",
                    l.node_id
                ));
            }
            let claim = l
                .store
                .claim_slot(
                    &l.node_id,
                    &self.function,
                    &self.version,
                    limit,
                    (l.now_ms)(),
                    l.silence_ms,
                )
                .await;
            match claim {
                Ok(SlotClaim::Granted(id)) => {
                    l.held.fetch_add(1, Ordering::AcqRel);
                    Admission::Granted(Ticket::new(
                        id,
                        Place {
                            store: Arc::clone(&l.store),
                            id,
                            held: Arc::clone(&l.held),
                        },
                    ))
                }
                Ok(SlotClaim::Full(mut holders)) => {
                    // The node holding the most places first: the likeliest to have one free.
                    holders.sort_by_key(|h| std::cmp::Reverse(h.slots));
                    Admission::Full(
                        holders
                            .into_iter()
                            .filter(|h| h.node_id != l.node_id)
                            .map(|h| h.advertise_url)
                            .collect(),
                    )
                }
                Ok(SlotClaim::NotLive) => {
                    Admission::Refused(format!("node {} is not live in the store yet", l.node_id))
                }
                Err(e) => Admission::Refused(format!(
                    "claiming an instance place: {}",
                    crate::error_chain(&e)
                )),
            }
        })
    }

    fn past_limit(
        &self,
        limit: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<i64>, String>> + Send + '_>>
    {
        Box::pin(self.places_past(limit))
    }
}

impl VersionGate {
    async fn places_past(&self, limit: u32) -> Result<Vec<i64>, String> {
        let l = &self.limits;
        let places = l
            .store
            .version_slots(&self.function, &self.version, (l.now_ms)(), l.silence_ms)
            .await
            .map_err(|e| format!("listing instance places: {}", crate::error_chain(&e)))?;
        Ok(places
            .into_iter()
            .skip(limit as usize)
            .filter(|p| p.node_id == l.node_id)
            .map(|p| p.slot_id)
            .collect())
    }
}

/// A claimed place; dropping it gives the place back in the background, retried while the
/// store cannot be reached (a place left behind is given back when the node fences itself or
/// is forgotten).
struct Place {
    store: Arc<dyn SlotStore>,
    id: i64,
    held: Arc<AtomicUsize>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, id) = (Arc::clone(&self.store), self.id);
        rt.spawn(async move {
            for attempt in 0..30u32 {
                match store.release_slot(id).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, "giving back an instance place failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
}

mod spread;

#[cfg(test)]
mod tests;
