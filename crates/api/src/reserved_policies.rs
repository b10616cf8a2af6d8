//! Reserved-instance policies (FunctionGraph's `tactics_config.cron_configs`, docs/api.md): at
//! each firing of a policy's cron between its `start_time` and `expired_time`, the function's
//! reserved instance count becomes the policy's `count`, written like `PUT .../reservedinstances`
//! (through the catalog, so the invoker starts or stops instances).
//!
//! The runner rereads the policies from storage at least every [`RELOAD`] and wakes at the
//! next firing; what fired since its last look is applied once (the latest firing of a
//! function wins), so a policy written between two looks still fires at its time, up to
//! [`RELOAD`] late. Every node of a cluster applies the same count: the write is idempotent.

use std::future::Future;
use std::time::Duration;

use fgs_core::function::{Reserved, ReservedCron};
use fgs_core::limits;
use fgs_triggers::Schedule;

use crate::error::{ApiError, ApiResult};
use crate::records::save;
use crate::request::now_ms;
use crate::state::SharedState;

/// The longest the runner goes without rereading the policies.
pub const RELOAD: Duration = Duration::from_secs(5);
/// At most this many policies on one function [FGS].
pub const POLICIES_MAX: usize = 10;
/// Firings looked at per policy and look: a policy that fires more often than this within
/// one look only counts its latest firings.
const FIRINGS_MAX: usize = 10_000;

/// A policy with its parsed cron.
#[derive(Debug, Clone)]
pub struct Policy {
    pub cron: ReservedCron,
    schedule: Schedule,
}

/// Parses and checks a function's policies (400 `FSS.0400` naming the bad one).
pub fn check(crons: &[ReservedCron]) -> ApiResult<Vec<Policy>> {
    if crons.len() > POLICIES_MAX {
        return Err(ApiError::bad_request(format!(
            "tactics_config.cron_configs has {} policies: at most {POLICIES_MAX}",
            crons.len()
        )));
    }
    let mut out: Vec<Policy> = Vec::new();
    for c in crons {
        let bad = |why: String| ApiError::bad_request(format!("cron config {:?}: {why}", c.name));
        if c.name.is_empty() || c.name.chars().count() > 64 {
            return Err(bad("name must be 1 to 64 characters".into()));
        }
        if out.iter().any(|p| p.cron.name == c.name) {
            return Err(bad("the name is used twice".into()));
        }
        if i64::from(c.count) > i64::from(limits::MAX_INSTANCE_NUM_MAX) {
            return Err(bad(format!("count {} is over 1000", c.count)));
        }
        if c.expired_time <= c.start_time {
            return Err(bad("expired_time must be after start_time".into()));
        }
        let schedule = Schedule::parse("Cron", &c.cron).map_err(|e| bad(e.to_string()))?;
        out.push(Policy {
            cron: c.clone(),
            schedule,
        });
    }
    Ok(out)
}

impl Policy {
    fn active(&self, t_ms: i64) -> bool {
        (self.cron.start_time.saturating_mul(1000)..=self.cron.expired_time.saturating_mul(1000))
            .contains(&t_ms)
    }

    /// Its firings in `(after_ms, now_ms]` within its window, the last at most
    /// [`FIRINGS_MAX`] of them.
    fn last_firing(&self, after_ms: i64, now_ms: i64) -> Option<i64> {
        let mut last = None;
        let mut t = self.schedule.next_after(after_ms, None)?;
        for _ in 0..FIRINGS_MAX {
            if t > now_ms {
                break;
            }
            if self.active(t) {
                last = Some(t);
            }
            t = self.schedule.next_after(t, Some(t))?;
        }
        last
    }

    fn next_firing(&self, now_ms: i64) -> Option<i64> {
        let mut t = self.schedule.next_after(now_ms, None)?;
        // Before the window: its first firing inside it.
        if t < self.cron.start_time.saturating_mul(1000) {
            t = self
                .schedule
                .next_after(self.cron.start_time.saturating_mul(1000) - 1, None)?;
        }
        self.active(t).then_some(t)
    }
}

/// The count the policies set in `(after_ms, now_ms]`: that of the latest firing.
pub fn due(policies: &[Policy], after_ms: i64, now_ms: i64) -> Option<u32> {
    policies
        .iter()
        .filter_map(|p| Some((p.last_firing(after_ms, now_ms)?, p.cron.count)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, count)| count)
}

/// The next firing of any policy after `now_ms`.
pub fn next_firing(policies: &[Policy], now_ms: i64) -> Option<i64> {
    policies.iter().filter_map(|p| p.next_firing(now_ms)).min()
}

/// One function's policies, as the runner reads them.
pub struct Plan<K> {
    pub key: K,
    pub policies: Vec<Policy>,
}

/// The runner's loop, over any source of plans and any way to apply a count: reads the plans,
/// applies what fired since the last look, sleeps until the next firing (at most [`RELOAD`]).
/// Time is tokio's, so tests drive it with paused time; `start_ms` is the wall clock at start.
pub async fn drive<K, L, LF, A, AF>(start_ms: i64, mut load: L, mut apply: A)
where
    L: FnMut() -> LF,
    LF: Future<Output = Vec<Plan<K>>>,
    A: FnMut(K, u32) -> AF,
    AF: Future<Output = ()>,
{
    let origin = tokio::time::Instant::now();
    let clock = || start_ms + origin.elapsed().as_millis() as i64;
    let mut last = clock();
    loop {
        let plans = load().await;
        let now = clock();
        let mut next: Option<i64> = None;
        for plan in plans {
            if let Some(n) = next_firing(&plan.policies, now) {
                next = Some(next.map_or(n, |m: i64| m.min(n)));
            }
            if let Some(count) = due(&plan.policies, last, now) {
                apply(plan.key, count).await;
            }
        }
        last = now;
        let reload = RELOAD.as_millis() as i64;
        let wait = next.map_or(reload, |n| (n - now).clamp(1, reload));
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

type Key = (String, String, String);

/// Runs the policies of every function of the store until fgs stops.
pub async fn run(state: SharedState) {
    let load = || async {
        match state.store.all_functions().await {
            Ok(all) => all
                .into_iter()
                .filter(|f| !f.meta.reserved_crons.is_empty())
                .filter_map(|f| {
                    let policies = check(&f.meta.reserved_crons).ok()?;
                    Some(Plan {
                        key: (f.project, f.package, f.name),
                        policies,
                    })
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %crate::error::chain(&e), "reading reserved-instance policies");
                Vec::new()
            }
        }
    };
    let apply = |(project, package, name): Key, count: u32| {
        let state = state.clone();
        async move {
            if let Err(e) = apply_count(&state, &project, &package, &name, count).await {
                tracing::warn!(project, name, count, error = %e, "applying a reserved-instance policy");
            }
        }
    };
    drive(now_ms(), load, apply).await;
}

async fn apply_count(
    state: &SharedState,
    project: &str,
    package: &str,
    name: &str,
    count: u32,
) -> ApiResult<()> {
    let Some(mut rec) = state.store.get_function(project, package, name).await? else {
        return Ok(());
    };
    if rec.reserved.count == count {
        return Ok(());
    }
    tracing::info!(project, name, count, "reserved-instance policy fired");
    rec.reserved = Reserved {
        count,
        idle_mode: rec.reserved.idle_mode,
    };
    save(state, rec).await.map(|_| ())
}

#[cfg(test)]
mod tests;
