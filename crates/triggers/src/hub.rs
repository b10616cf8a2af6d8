//! The running side of triggers: the APIG route table (answered from memory, rebuilt whole from
//! storage) and the timer scheduler. Both follow the change feed: a change of a function's
//! triggers (or of what owns them: a deleted function, version or alias) reloads that
//! function's triggers; a resync reloads all of them.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use fgs_store::{ChangeKind, FunctionKey, Notice, Store, StoreError, Subscription, TriggerRecord};

use crate::apig::{Route, RouteTable};
use crate::timer::{Fire, Scheduler, SystemClock, Timer, TimerHandle, TimerStore};
use fgs_core::trigger::{TriggerKind, TriggerStatus};

use crate::{Target, TriggerConfig};

pub struct TriggerHub {
    routes: RwLock<Arc<RouteTable>>,
    timers: TimerHandle,
    /// Taken by [`TriggerHub::start`].
    scheduler: Mutex<Option<Scheduler>>,
    /// `http://host:port` of the listener, for `invoke_url`; set by [`TriggerHub::start`].
    base_url: RwLock<String>,
}

/// The function version a stored trigger fires.
pub fn target(rec: &TriggerRecord) -> Target {
    Target {
        project: rec.project.clone(),
        package: rec.package.clone(),
        function: rec.name.clone(),
        qualifier: rec.qualifier.to_string(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The timer a stored trigger runs as, if it is an active timer with a plan.
fn timer_of(rec: &TriggerRecord) -> Option<Timer> {
    if rec.type_code != TriggerKind::Timer || rec.status != TriggerStatus::Active {
        return None;
    }
    let Ok(TriggerConfig::Timer(t)) = TriggerConfig::parse(rec.type_code.as_str(), &rec.event_data)
    else {
        tracing::warn!(
            trigger_id = rec.trigger_id,
            "stored TIMER trigger is invalid; skipped"
        );
        return None;
    };
    Some(Timer {
        trigger_id: rec.trigger_id.clone(),
        target: target(rec),
        name: t.name,
        user_event: t.user_event,
        schedule: t.parsed,
        next_fire_ms: rec.next_fire_ms?,
        updated_ms: rec.updated_ms,
    })
}

/// The timer plan in storage, for the scheduler.
struct StoredPlans(Store);

impl TimerStore for StoredPlans {
    async fn advance(&self, id: &str, due: i64, next: Option<i64>) -> Result<bool, String> {
        self.0
            .advance_timer(id, due, next)
            .await
            .map_err(|e| e.to_string())
    }

    async fn planned(&self, timer: &Timer) -> Result<Option<i64>, String> {
        let t = &timer.target;
        let rec = self
            .0
            .get_trigger(&t.project, &t.package, &t.function, &timer.trigger_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(rec
            .filter(|r| r.type_code == TriggerKind::Timer && r.status == TriggerStatus::Active)
            .and_then(|r| r.next_fire_ms))
    }
}

impl TriggerHub {
    pub fn new() -> Arc<TriggerHub> {
        let (timers, scheduler) = Scheduler::new();
        Arc::new(TriggerHub {
            routes: RwLock::new(Arc::new(RouteTable::default())),
            timers,
            scheduler: Mutex::new(Some(scheduler)),
            base_url: RwLock::new("http://127.0.0.1:8080".to_string()),
        })
    }

    /// The current route table; the APIG hot path reads only this.
    pub fn routes(&self) -> Arc<RouteTable> {
        Arc::clone(&self.routes.read().expect("route lock is never poisoned"))
    }

    /// Where the listener is reached, for APIG's `invoke_url`.
    pub fn base_url(&self) -> String {
        self.base_url
            .read()
            .expect("base url lock is never poisoned")
            .clone()
    }

    /// Rebuilds the route table from storage.
    pub async fn rebuild_routes(&self, store: &Store) -> Result<usize, StoreError> {
        let all = store.all_triggers().await?;
        let routes: Vec<Route> = all
            .iter()
            .filter(|t| t.type_code == TriggerKind::Apig && t.status == TriggerStatus::Active)
            .filter_map(
                |t| match TriggerConfig::parse(t.type_code.as_str(), &t.event_data) {
                    Ok(TriggerConfig::Apig(c)) => Route::new(t.trigger_id.clone(), target(t), &c),
                    _ => {
                        tracing::warn!(
                            trigger_id = t.trigger_id,
                            "stored APIG trigger is invalid; skipped"
                        );
                        None
                    }
                },
            )
            .collect();
        let n = routes.len();
        *self.routes.write().expect("route lock is never poisoned") =
            Arc::new(RouteTable::new(routes));
        Ok(n)
    }

    /// Reloads the triggers of one function (`None`: of all) into the scheduler and the routes.
    async fn reload(&self, store: &Store, of: Option<&FunctionKey>) -> Result<(), StoreError> {
        let stored = match of {
            Some(k) => {
                store
                    .list_triggers(&k.project, &k.package, &k.name, None)
                    .await?
            }
            None => store.all_triggers().await?,
        };
        self.timers.replace(
            of.map(|k| (k.project.clone(), k.package.clone(), k.name.clone())),
            stored.iter().filter_map(timer_of).collect(),
        );
        self.rebuild_routes(store).await.map(drop)
    }

    /// Loads the stored triggers and starts serving them: the route table, and the scheduler
    /// task (returned, to stop it at shutdown), which fires through `fire`. `base_url` is where
    /// the listener is reached.
    pub async fn start<F: Fire>(
        &self,
        store: &Store,
        base_url: String,
        fire: Arc<F>,
    ) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        *self
            .base_url
            .write()
            .expect("base url lock is never poisoned") = base_url;
        let routes = self.rebuild_routes(store).await?;
        let now = now_ms();
        let mut timers = Vec::new();
        for mut rec in store.all_triggers().await? {
            if rec.type_code != TriggerKind::Timer || rec.status != TriggerStatus::Active {
                continue;
            }
            // A plan in the past fires once, now: the scheduler does not replay a backlog.
            if rec.next_fire_ms.is_none() {
                if let Ok(TriggerConfig::Timer(t)) =
                    TriggerConfig::parse(rec.type_code.as_str(), &rec.event_data)
                {
                    rec.next_fire_ms = t.parsed.next_after(now, None);
                    store.update_trigger(&rec).await?;
                }
            }
            timers.extend(timer_of(&rec));
        }
        tracing::info!(
            apig_routes = routes,
            timers = timers.len(),
            "triggers loaded"
        );
        let scheduler = self
            .scheduler
            .lock()
            .expect("scheduler slot is never poisoned")
            .take()
            .expect("triggers are started once");
        Ok(tokio::spawn(scheduler.run(
            timers,
            StoredPlans(store.clone()),
            fire,
            SystemClock,
        )))
    }

    /// Follows the change feed until it closes.
    pub fn follow(
        self: &Arc<Self>,
        store: Store,
        mut changes: Subscription,
    ) -> tokio::task::JoinHandle<()> {
        let this: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(notice) = changes.recv().await {
                let Some(this) = this.upgrade() else { return };
                let (of, revision) = match &notice {
                    // A configuration change moves no trigger.
                    Notice::Changed(c) if c.kind == ChangeKind::Function => {
                        changes.applied(c.revision);
                        continue;
                    }
                    Notice::Changed(c) => (Some(&c.key), c.revision),
                    Notice::Resync { revision } => (None, *revision),
                };
                if let Err(e) = this.reload(&store, of).await {
                    tracing::error!(error = %e, function = ?of, "reloading triggers failed");
                }
                changes.applied(revision);
            }
        })
    }
}

#[cfg(test)]
mod tests;
