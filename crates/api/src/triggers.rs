//! The trigger API (SPEC.md 2): `POST`/`GET`/`DELETE /triggers/{urn}` and
//! `GET`/`PUT`/`DELETE /triggers/{urn}/{type}/{id}`, and the [`TriggerHub`] that keeps the
//! running side in step with what is stored: the APIG route table (answered from memory,
//! rebuilt whole on every change) and the timer scheduler (told of every change).

use std::sync::{Arc, Mutex, RwLock, Weak};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use fgs_core::{FunctionRef, Qualifier};
use fgs_invoke::{FunctionKey, NewEvent};
use fgs_store::{Store, TriggerRecord};
use fgs_triggers::apig::{Route, RouteTable};
use fgs_triggers::timer::{Fire, Scheduler, SystemClock, Timer, TimerHandle, TimerStore};
use fgs_triggers::{Shown, Target, TriggerConfig, ACTIVE, DISABLED};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{chain, ApiError, ApiResult};
use crate::functions::{function_ref, now_ms, parse_json};
use crate::state::{AppState, SharedState};
use crate::wire;

/// Triggers per function version (SPEC.md 6).
pub const TRIGGERS_PER_VERSION: u64 = 10;

/// The running side of triggers.
pub struct TriggerHub {
    routes: RwLock<Arc<RouteTable>>,
    timers: TimerHandle,
    /// Taken by [`start`].
    scheduler: Mutex<Option<Scheduler>>,
    /// `http://host:port` of the listener, for `invoke_url`; set by [`start`].
    base_url: RwLock<String>,
    /// Serialises trigger writes, so that the uniqueness checks (timer names, APIG routes) and
    /// the write they guard cannot interleave with another create or update.
    writes: tokio::sync::Mutex<()>,
}

impl Default for TriggerHub {
    fn default() -> Self {
        let (timers, scheduler) = Scheduler::new();
        TriggerHub {
            routes: RwLock::new(Arc::new(RouteTable::default())),
            timers,
            scheduler: Mutex::new(Some(scheduler)),
            base_url: RwLock::new("http://127.0.0.1:8080".to_string()),
            writes: tokio::sync::Mutex::new(()),
        }
    }
}

impl TriggerHub {
    pub fn new() -> Arc<TriggerHub> {
        Arc::new(TriggerHub::default())
    }

    /// The current route table; the APIG hot path reads only this.
    pub fn routes(&self) -> Arc<RouteTable> {
        Arc::clone(&self.routes.read().expect("route lock is never poisoned"))
    }

    fn base_url(&self) -> String {
        self.base_url
            .read()
            .expect("base url lock is never poisoned")
            .clone()
    }

    /// Rebuilds the route table from storage.
    pub async fn rebuild_routes(&self, store: &Store) -> Result<usize, fgs_store::StoreError> {
        let all = store.all_triggers().await?;
        let routes: Vec<Route> = all
            .iter()
            .filter(|t| t.type_code == "APIG" && t.status == ACTIVE)
            .filter_map(
                |t| match TriggerConfig::parse(&t.type_code, &t.event_data) {
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

    /// Tells the scheduler about a trigger as it now is in storage.
    fn sync_timer(&self, rec: &TriggerRecord, config: &TriggerConfig) {
        match (config, rec.status.as_str(), rec.next_fire_ms) {
            (TriggerConfig::Timer(t), ACTIVE, Some(next)) => self.timers.upsert(Timer {
                trigger_id: rec.trigger_id.clone(),
                target: target(rec),
                name: t.name.clone(),
                user_event: t.user_event.clone(),
                schedule: t.parsed.clone(),
                next_fire_ms: next,
            }),
            _ => self.timers.remove(&rec.trigger_id),
        }
    }

    /// Brings the running side in step after `rec` changed.
    async fn changed(&self, store: &Store, rec: &TriggerRecord, config: &TriggerConfig) {
        self.sync_timer(rec, config);
        if matches!(config, TriggerConfig::Apig(_)) {
            self.rebuild_routes_logged(store).await;
        }
    }

    async fn rebuild_routes_logged(&self, store: &Store) {
        if let Err(e) = self.rebuild_routes(store).await {
            tracing::error!(error = %chain(&e), "rebuilding the APIG route table failed");
        }
    }
}

fn target(rec: &TriggerRecord) -> Target {
    Target {
        project: rec.project.clone(),
        package: rec.package.clone(),
        function: rec.name.clone(),
        qualifier: rec.qualifier.to_string(),
    }
}

/// The timer plan in storage, for the scheduler.
struct StoredPlans(Store);

impl TimerStore for StoredPlans {
    async fn advance(&self, id: &str, due: i64, next: Option<i64>) -> Result<bool, String> {
        self.0
            .advance_timer(id, due, next)
            .await
            .map_err(|e| chain(&e))
    }
}

/// A timer firing is an async invocation (SPEC.md 4), queued like any other and listed with
/// them. Weak, so the scheduler does not keep a stopping fgs alive.
struct AsyncFire(Weak<AppState>);

impl Fire for AsyncFire {
    async fn fire(&self, t: &Target, trigger_id: &str, event: Vec<u8>) -> Result<(), String> {
        let state = self.0.upgrade().ok_or("fgs is stopping")?;
        let qualifier = Qualifier::parse(&t.qualifier).map_err(|e| e.to_string())?;
        state
            .dispatcher
            .submit(
                NewEvent {
                    key: FunctionKey {
                        project: t.project.clone(),
                        package: t.package.clone(),
                        name: t.function.clone(),
                    },
                    qualifier,
                    body: Bytes::from(event),
                    source: format!("timer:{trigger_id}"),
                },
                None,
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// Loads the stored triggers and starts serving them: the route table, and the scheduler task
/// (returned, to stop it at shutdown). `base_url` is where the listener is reached.
pub async fn start(
    state: &SharedState,
    base_url: String,
) -> Result<tokio::task::JoinHandle<()>, fgs_store::StoreError> {
    let hub = &state.triggers;
    *hub.base_url
        .write()
        .expect("base url lock is never poisoned") = base_url;
    let routes = hub.rebuild_routes(&state.store).await?;
    let now = now_ms();
    let mut timers = Vec::new();
    for mut rec in state.store.all_triggers().await? {
        if rec.type_code != "TIMER" || rec.status != ACTIVE {
            continue;
        }
        let Ok(TriggerConfig::Timer(t)) = TriggerConfig::parse(&rec.type_code, &rec.event_data)
        else {
            tracing::warn!(
                trigger_id = rec.trigger_id,
                "stored TIMER trigger is invalid; skipped"
            );
            continue;
        };
        // A plan in the past fires once, now: the scheduler does not replay a backlog.
        let next = match rec.next_fire_ms {
            Some(n) => n,
            None => {
                rec.next_fire_ms = t.parsed.next_after(now, None);
                state.store.update_trigger(&rec).await?;
                match rec.next_fire_ms {
                    Some(n) => n,
                    None => continue,
                }
            }
        };
        timers.push(Timer {
            trigger_id: rec.trigger_id.clone(),
            target: target(&rec),
            name: t.name,
            user_event: t.user_event,
            schedule: t.parsed,
            next_fire_ms: next,
        });
    }
    tracing::info!(
        apig_routes = routes,
        timers = timers.len(),
        "triggers loaded"
    );
    let scheduler = hub
        .scheduler
        .lock()
        .expect("scheduler slot is never poisoned")
        .take()
        .expect("triggers are started once");
    Ok(tokio::spawn(scheduler.run(
        timers,
        StoredPlans(state.store.clone()),
        Arc::new(AsyncFire(Arc::downgrade(state))),
        SystemClock,
    )))
}

/// `POST /triggers/{urn}`.
#[derive(Debug, Deserialize)]
struct CreateBody {
    trigger_type_code: Option<String>,
    trigger_status: Option<String>,
    #[allow(dead_code)]
    event_type_code: Option<String>,
    event_data: Option<Value>,
}

/// `PUT /triggers/{urn}/{type}/{id}`. The SDK types `event_data` as a list of stream-polling
/// settings; an object is taken as changed `event_data` fields.
#[derive(Debug, Deserialize)]
struct UpdateBody {
    trigger_status: Option<String>,
    event_data: Option<Value>,
}

fn status(s: Option<&str>) -> ApiResult<Option<String>> {
    match s {
        None => Ok(None),
        Some(s @ (ACTIVE | DISABLED)) => Ok(Some(s.to_string())),
        Some(other) => Err(ApiError::bad_request(format!(
            "trigger_status {other:?} is invalid: use ACTIVE or DISABLED"
        ))),
    }
}

/// The function version a trigger URN names exists.
async fn check_target(state: &SharedState, project: &str, r: &FunctionRef) -> ApiResult<()> {
    state
        .store
        .get_function(project, &r.package, &r.name)
        .await?
        .ok_or_else(|| ApiError::function_not_found(&r.name))?;
    match r.qualifier_or_latest() {
        Qualifier::Latest => Ok(()),
        Qualifier::Version(v) => state
            .store
            .get_version(project, &r.package, &r.name, &v)
            .await?
            .map(drop)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "FSS.1052",
                    format!("version {v} of function {} does not exist", r.name),
                )
            }),
        Qualifier::Alias(a) => state
            .store
            .list_aliases(project, &r.package, &r.name)
            .await?
            .iter()
            .any(|x| x.name == a)
            .then_some(())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "FSS.1053",
                    format!("alias {a} of function {} does not exist", r.name),
                )
            }),
    }
}

fn parsed(rec: &TriggerRecord) -> ApiResult<TriggerConfig> {
    TriggerConfig::parse(&rec.type_code, &rec.event_data).map_err(|e| {
        ApiError::internal(format!("stored trigger {} is invalid: {e}", rec.trigger_id))
    })
}

fn trigger_json(hub: &TriggerHub, rec: &TriggerRecord, config: &TriggerConfig) -> Value {
    let base = hub.base_url();
    json!({
        "trigger_id": rec.trigger_id,
        "trigger_type_code": rec.type_code,
        "trigger_status": rec.status,
        "event_data": config.shown(&Shown {
            trigger_id: &rec.trigger_id,
            project: &rec.project,
            base_url: &base,
        }),
        "last_updated_time": wire::rfc3339_ms(rec.updated_ms),
        "created_time": wire::rfc3339_ms(rec.created_ms),
    })
}

/// Refuses a trigger that would clash with a stored one: a timer name used twice on one
/// function version, or an APIG route another trigger of the project already answers.
async fn check_unique(
    state: &SharedState,
    rec: &TriggerRecord,
    config: &TriggerConfig,
) -> ApiResult<()> {
    let all = state.store.all_triggers().await?;
    let others = all
        .iter()
        .filter(|t| t.trigger_id != rec.trigger_id && t.type_code == rec.type_code);
    match config {
        TriggerConfig::Timer(t) => {
            for o in others {
                let same_version = o.project == rec.project
                    && o.package == rec.package
                    && o.name == rec.name
                    && o.qualifier == rec.qualifier;
                if same_version && o.event_data["name"] == json!(t.name) {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "FSS.0409",
                        format!(
                            "a TIMER trigger named {} already exists on this function",
                            t.name
                        ),
                    ));
                }
            }
        }
        TriggerConfig::Apig(c) => {
            let Some(mine) = Route::new(rec.trigger_id.clone(), target(rec), c) else {
                return Ok(());
            };
            for o in others.filter(|o| o.project == rec.project) {
                let Ok(TriggerConfig::Apig(oc)) = TriggerConfig::parse(&o.type_code, &o.event_data)
                else {
                    continue;
                };
                let clash = Route::new(o.trigger_id.clone(), target(o), &oc)
                    .is_some_and(|r| r.conflicts_with(&mine));
                if clash {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "FSS.0409",
                        format!(
                            "APIG trigger {} of function {} already serves {} {} ({})",
                            o.trigger_id,
                            o.name,
                            oc.req_method,
                            oc.path,
                            oc.match_mode.as_str()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Refuses what FunctionGraph refuses for the function's kind: HTTP functions take no timers.
async fn check_kind(
    state: &SharedState,
    project: &str,
    r: &FunctionRef,
    config: &TriggerConfig,
) -> ApiResult<()> {
    if let TriggerConfig::Timer(_) = config {
        let f = state
            .store
            .get_function(project, &r.package, &r.name)
            .await?;
        if f.is_some_and(|f| f.spec.runtime.eq_ignore_ascii_case("http")) {
            return Err(ApiError::bad_request(
                "HTTP functions do not support TIMER triggers",
            ));
        }
    }
    Ok(())
}

pub async fn create(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    let b: CreateBody = parse_json(&body)?;
    let type_code = b
        .trigger_type_code
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("trigger_type_code is required: TIMER or APIG"))?;
    let status = status(b.trigger_status.as_deref())?.unwrap_or_else(|| ACTIVE.to_string());
    let event_data = b
        .event_data
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request("event_data is required and must be an object"))?;
    let config = TriggerConfig::parse(&type_code, &event_data)?;
    check_target(&state, &project, &r).await?;
    check_kind(&state, &project, &r, &config).await?;
    let now = now_ms();
    let next_fire_ms = match (&config, status.as_str()) {
        (TriggerConfig::Timer(t), ACTIVE) => t.parsed.next_after(now, None),
        _ => None,
    };
    let rec = TriggerRecord {
        trigger_id: uuid::Uuid::new_v4().to_string(),
        project: project.clone(),
        package: r.package.clone(),
        name: r.name.clone(),
        qualifier: r.qualifier_or_latest(),
        type_code,
        status,
        event_data: config.stored(),
        created_ms: now,
        updated_ms: now,
        next_fire_ms,
        last_fire_ms: None,
    };
    {
        let _guard = state.triggers.writes.lock().await;
        check_unique(&state, &rec, &config).await?;
        state
            .store
            .create_trigger(rec.clone(), TRIGGERS_PER_VERSION)
            .await?;
    }
    state.triggers.changed(&state.store, &rec, &config).await;
    tracing::info!(
        project,
        function = rec.name,
        trigger_id = rec.trigger_id,
        r#type = rec.type_code,
        "trigger created"
    );
    let body = trigger_json(&state.triggers, &rec, &config);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    check_target(&state, &project, &r).await?;
    let q = r.qualifier_or_latest().to_string();
    let list = state
        .store
        .list_triggers(&project, &r.package, &r.name, Some(&q))
        .await?;
    let mut out = Vec::new();
    for rec in &list {
        out.push(trigger_json(&state.triggers, rec, &parsed(rec)?));
    }
    Ok(Json(Value::Array(out)))
}

fn trigger_not_found(type_code: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("{type_code} trigger {id} does not exist"))
}

/// The stored trigger a `/triggers/{urn}/{type}/{id}` path names.
async fn load(
    state: &SharedState,
    project: &str,
    urn: &str,
    type_code: &str,
    id: &str,
) -> ApiResult<TriggerRecord> {
    let r = function_ref(project, urn)?;
    check_target(state, project, &r).await?;
    let rec = state
        .store
        .get_trigger(project, &r.package, &r.name, id)
        .await?
        .filter(|t| t.type_code == type_code)
        .filter(|t| r.qualifier.is_none() || t.qualifier == r.qualifier_or_latest())
        .ok_or_else(|| trigger_not_found(type_code, id))?;
    Ok(rec)
}

pub async fn get(
    State(state): State<SharedState>,
    Path((project, urn, type_code, id)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let rec = load(&state, &project, &urn, &type_code, &id).await?;
    Ok(Json(trigger_json(&state.triggers, &rec, &parsed(&rec)?)))
}

pub async fn update(
    State(state): State<SharedState>,
    Path((project, urn, type_code, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: UpdateBody = parse_json(&body)?;
    let new_status = status(b.trigger_status.as_deref())?;
    let _guard = state.triggers.writes.lock().await;
    let mut rec = load(&state, &project, &urn, &type_code, &id).await?;
    let was_active = rec.status == ACTIVE;
    let mut config = parsed(&rec)?;
    let mut replanned = false;
    if let Some(Value::Object(changes)) = b.event_data {
        let mut merged = rec.event_data.clone();
        if let Value::Object(m) = &mut merged {
            for (k, v) in changes {
                m.insert(k, v);
            }
        }
        config = TriggerConfig::parse(&rec.type_code, &merged)?;
        let stored = config.stored();
        replanned = stored != rec.event_data;
        rec.event_data = stored;
        check_unique(&state, &rec, &config).await?;
    }
    if let Some(s) = new_status {
        rec.status = s;
    }
    let now = now_ms();
    rec.updated_ms = now;
    if let TriggerConfig::Timer(t) = &config {
        rec.next_fire_ms = match rec.status.as_str() {
            // Enabled again or re-planned: the plan starts from now, not from before.
            ACTIVE if !was_active || replanned || rec.next_fire_ms.is_none() => {
                t.parsed.next_after(now, None)
            }
            ACTIVE => rec.next_fire_ms,
            _ => None,
        };
    }
    if !state.store.update_trigger(&rec).await? {
        return Err(trigger_not_found(&type_code, &id));
    }
    drop(_guard);
    state.triggers.changed(&state.store, &rec, &config).await;
    tracing::info!(
        project,
        trigger_id = id,
        status = rec.status,
        "trigger updated"
    );
    Ok(Json(trigger_json(&state.triggers, &rec, &config)))
}

/// Deletes the triggers of one version or alias that is itself being deleted: a trigger must
/// not outlive what it fires.
pub(crate) async fn delete_for_qualifier(
    state: &SharedState,
    project: &str,
    package: &str,
    name: &str,
    qualifier: &str,
) -> ApiResult<()> {
    let gone = state
        .store
        .delete_triggers(project, package, name, Some(qualifier), None)
        .await?;
    forget(state, &gone).await;
    Ok(())
}

async fn forget(state: &SharedState, gone: &[TriggerRecord]) {
    for t in gone {
        state.triggers.timers.remove(&t.trigger_id);
    }
    if gone.iter().any(|t| t.type_code == "APIG") {
        state.triggers.rebuild_routes_logged(&state.store).await;
    }
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, urn, type_code, id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let rec = load(&state, &project, &urn, &type_code, &id).await?;
    let gone = state
        .store
        .delete_triggers(&project, &rec.package, &rec.name, None, Some(&id))
        .await?;
    if gone.is_empty() {
        return Err(trigger_not_found(&type_code, &id));
    }
    forget(&state, &gone).await;
    tracing::info!(project, trigger_id = id, "trigger deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /triggers/{urn}`: every trigger of the version the URN names, or of every version
/// when it names none.
pub async fn delete_all(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    check_target(&state, &project, &r).await?;
    let q = r.qualifier.as_ref().map(ToString::to_string);
    let gone = state
        .store
        .delete_triggers(&project, &r.package, &r.name, q.as_deref(), None)
        .await?;
    forget(&state, &gone).await;
    tracing::info!(
        project,
        function = r.name,
        count = gone.len(),
        "triggers deleted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
