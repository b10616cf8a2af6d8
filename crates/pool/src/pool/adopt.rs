//! A shared limit that comes to a pool with instances running: a function version's
//! `max_instance_num` changed from unlimited (-1) to a limit. Its instances started holding no
//! place (an unlimited pool never asks its gate), so they would not count against the limit,
//! on this node or any other. Each of them now claims a place, the busiest first; one that
//! gets none (the limit is full, or the gate refuses) is doomed: it takes no more events and
//! stops once idle, at once if it is idle already. The count is then exact again as soon as
//! the doomed instances have finished what they were running.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Launcher, Pool, State};
use crate::gate::Admission;

impl<L: Launcher> Pool<L> {
    /// Whether instances without a place must claim one: the pool shares a limit now.
    pub(super) fn needs_places(&self, st: &State<L::Worker>) -> bool {
        self.gate.is_some() && st.limits.max_instances > 0
    }

    fn untracked(&self) -> bool {
        let st = self.lock();
        self.needs_places(&st) && st.slots.iter().any(|s| s.ticket.is_none() && !s.doomed)
    }

    /// Has the instances holding no place claim theirs, in the background, when the pool
    /// shares a limit; one pass at a time.
    pub fn adopt_untracked(self: &Arc<Self>) {
        if !self.untracked() || self.adopting.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                pool.adopt_pass().await;
                pool.adopting.store(false, Ordering::Release);
                // An instance that joined while the pass was ending would be left out.
                if !pool.untracked() || pool.adopting.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }

    /// Claims a place for each instance holding none until none is left.
    async fn adopt_pass(&self) {
        let Some(gate) = &self.gate else { return };
        loop {
            let (max, id) = {
                let st = self.lock();
                if !self.needs_places(&st) {
                    return;
                }
                // The busiest first: doomed, it would keep its place the longest.
                let next = st
                    .slots
                    .iter()
                    .filter(|s| s.ticket.is_none() && !s.doomed)
                    .max_by_key(|s| s.in_flight)
                    .map(|s| s.id);
                match next {
                    Some(id) => (st.limits.max_instances as u32, id),
                    None => return,
                }
            };
            let fences = self.fences.load(Ordering::Acquire);
            let admission = gate.admit(max).await;
            let mut st = self.lock();
            let Some(i) = st.slots.iter().position(|s| s.id == id) else {
                // Gone meanwhile (stopped, fenced, retired): a place it got goes back.
                drop(st);
                continue;
            };
            match admission {
                // A fence since the claim: the place may be another node's by now.
                Admission::Granted(t) if self.fences.load(Ordering::Acquire) == fences => {
                    st.slots[i].ticket = Some(t);
                }
                other => {
                    tracing::info!(
                        answer = ?other,
                        busy = st.slots[i].in_flight > 0,
                        "an instance started without a limit got no place under it: it stops once idle"
                    );
                    self.retire_slots(st, |s| s.id == id);
                }
            }
        }
    }
}
