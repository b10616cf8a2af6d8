//! A lowered `max_instance_num` (5 to 2, or from unlimited to a number on a single node): the
//! instances past the new limit take no more events and stop once idle, at once if they are
//! idle already; a busy one finishes what it runs (a change cannot stop a call under way). No
//! instance starts until fewer than the new limit remain, so the count is exact again as soon
//! as the retired instances have finished. 0, which disables the function, is no limit here:
//! it retires nothing.
//!
//! Which instances go: on a single node (no gate), the idle ones first, the least recently
//! used of them first, then the least busy. With a shared limit (a gate), the places of the
//! version on every live node are ranked in claim order and the first ones keep; each node
//! retires its own instances whose places rank at or past the limit. Every node reads the same
//! order, so together they keep exactly the limit without talking to each other.

use std::sync::Arc;

use super::{spawn_stop, take_slots, Launcher, Pool, State};

impl<L: Launcher> Pool<L> {
    /// Holds a limit that just changed from `before`: retires the instances past it.
    pub(super) fn hold_new_limit(self: &Arc<Self>, before: i32) {
        let max = self.lock().limits.max_instances;
        // Unlimited, or disabled (0): calls are refused, but the instances stay until their
        // idle timeout, warm for when the function is enabled again.
        if max <= 0 {
            return;
        }
        if self.gate.is_some() {
            // Instances holding no place are handled by adoption (adopt.rs); those holding
            // one give it back if it ranks past the limit. A limit raised keeps every place.
            if before < 0 || max < before {
                self.give_back_places_past_limit(max);
            }
        } else {
            self.trim_to_limit();
        }
    }

    /// Retires this pool's instances past its own limit, idle ones first.
    pub(super) fn trim_to_limit(&self) {
        let st = self.lock();
        let Some(max) = usize::try_from(st.limits.max_instances)
            .ok()
            .filter(|&m| m > 0)
        else {
            return;
        };
        let mut order: Vec<_> = st
            .slots
            .iter()
            .filter(|s| !s.doomed)
            .map(|s| (s.in_flight, s.last_used, s.id))
            .collect();
        let Some(excess) = order.len().checked_sub(max).filter(|&n| n > 0) else {
            return;
        };
        // Idle first (in_flight 0), the longest idle first; then the least busy.
        order.sort_unstable();
        let past: Vec<u64> = order
            .into_iter()
            .take(excess)
            .map(|(_, _, id)| id)
            .collect();
        tracing::info!(
            instances = past.len(),
            limit = max,
            "the instance limit was lowered: instances past it stop once idle"
        );
        self.retire_slots(st, |s| past.contains(&s.id));
    }

    /// Asks the gate which of this node's places a limit of `max` no longer covers, and
    /// retires their instances; in the background (it reads the store).
    fn give_back_places_past_limit(self: &Arc<Self>, max: i32) {
        let Some(gate) = self.gate.clone() else {
            return;
        };
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            let past = match gate.past_limit(max as u32).await {
                Ok(ids) => ids,
                Err(why) => {
                    // The instances keep their places; the limit holds for new starts.
                    tracing::warn!(%why, "the instance limit was lowered, but the places could not be ranked");
                    return;
                }
            };
            let st = pool.lock();
            // Changed again meanwhile: that change ranks the places for itself.
            if st.limits.max_instances != max || past.is_empty() {
                return;
            }
            tracing::info!(
                instances = past.len(),
                limit = max,
                "the instance limit was lowered: instances whose places rank past it stop once idle"
            );
            pool.retire_slots(st, |s| {
                s.ticket.as_ref().is_some_and(|t| past.contains(&t.id()))
            });
        });
    }

    /// Dooms the slots `pick` chooses: the idle ones stop now, the busy ones once idle.
    pub(super) fn retire_slots(
        &self,
        mut st: std::sync::MutexGuard<'_, State<L::Worker>>,
        mut pick: impl FnMut(&super::Slot<L::Worker>) -> bool,
    ) {
        for s in st.slots.iter_mut() {
            if pick(s) {
                s.doomed = true;
            }
        }
        let stopped = take_slots(&mut st.slots, |s| !(s.doomed && s.in_flight == 0));
        drop(st);
        stopped.into_iter().for_each(|(w, t)| spawn_stop(w, t));
        // Waiters count again: an instance may start once fewer than the limit remain.
        self.freed.notify_waiters();
    }
}
