//! The trigger API (SPEC.md 2): `POST`/`GET`/`DELETE /triggers/{urn}` and
//! `GET`/`PUT`/`DELETE /triggers/{urn}/{type}/{id}`. Writes go through the catalog, whose change
//! the running side ([`fgs_triggers::TriggerHub`]: APIG routes, timers) follows.

use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use fgs_core::trigger::TriggerStatus;
use fgs_core::FunctionRef;
use fgs_invoke::source::find;
use fgs_store::TriggerRecord;
use fgs_triggers::apig::Route;
use fgs_triggers::{target, Shown, TriggerConfig, TriggerHub};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{function_ref, key_of, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire;

/// Triggers per function version (SPEC.md 6).
pub const TRIGGERS_PER_VERSION: u64 = 10;

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

fn status(s: Option<&str>) -> ApiResult<Option<TriggerStatus>> {
    s.map(|s| {
        s.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "trigger_status {s:?} is invalid: use ACTIVE or DISABLED"
            ))
        })
    })
    .transpose()
}

/// The function version a trigger URN names exists.
async fn check_target(state: &SharedState, project: &str, r: &FunctionRef) -> ApiResult<()> {
    find(&state.store, &key_of(project, r), &r.qualifier_or_latest()).await?;
    Ok(())
}

fn parsed(rec: &TriggerRecord) -> ApiResult<TriggerConfig> {
    TriggerConfig::parse(rec.type_code.as_str(), &rec.event_data).map_err(|e| {
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
                    return Err(ApiError::conflict(format!(
                        "a TIMER trigger named {} already exists on this function",
                        t.name
                    )));
                }
            }
        }
        TriggerConfig::Apig(c) => {
            let Some(mine) = Route::new(rec.trigger_id.clone(), target(rec), c) else {
                return Ok(());
            };
            for o in others.filter(|o| o.project == rec.project) {
                let Ok(TriggerConfig::Apig(oc)) =
                    TriggerConfig::parse(o.type_code.as_str(), &o.event_data)
                else {
                    continue;
                };
                let clash = Route::new(o.trigger_id.clone(), target(o), &oc)
                    .is_some_and(|r| r.conflicts_with(&mine));
                if clash {
                    return Err(ApiError::conflict(format!(
                        "APIG trigger {} of function {} already serves {} {} ({})",
                        o.trigger_id,
                        o.name,
                        oc.req_method,
                        oc.path,
                        oc.match_mode.as_str()
                    )));
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
        if f.is_some_and(|f| f.spec.runtime == fgs_core::Runtime::Http) {
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
    let status = status(b.trigger_status.as_deref())?.unwrap_or(TriggerStatus::Active);
    let event_data = b
        .event_data
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::bad_request("event_data is required and must be an object"))?;
    let config = TriggerConfig::parse(&type_code, &event_data)?;
    check_target(&state, &project, &r).await?;
    check_kind(&state, &project, &r, &config).await?;
    let now = now_ms();
    let next_fire_ms = match (&config, status) {
        (TriggerConfig::Timer(t), TriggerStatus::Active) => t.parsed.next_after(now, None),
        _ => None,
    };
    let rec = TriggerRecord {
        trigger_id: uuid::Uuid::new_v4().to_string(),
        project: project.clone(),
        package: r.package.clone(),
        name: r.name.clone(),
        qualifier: r.qualifier_or_latest(),
        type_code: config.kind(),
        status,
        event_data: config.stored(),
        created_ms: now,
        updated_ms: now,
        next_fire_ms,
        last_fire_ms: None,
    };
    {
        let _guard = state.trigger_writes.lock().await;
        check_unique(&state, &rec, &config).await?;
        state
            .catalog
            .create_trigger(rec.clone(), TRIGGERS_PER_VERSION)
            .await?;
    }
    tracing::info!(
        project,
        function = rec.name,
        trigger_id = rec.trigger_id,
        r#type = %rec.type_code,
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
        .filter(|t| t.type_code.as_str() == type_code)
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
    let _guard = state.trigger_writes.lock().await;
    let mut rec = load(&state, &project, &urn, &type_code, &id).await?;
    let was_active = rec.status == TriggerStatus::Active;
    let mut config = parsed(&rec)?;
    let mut replanned = false;
    if let Some(Value::Object(changes)) = b.event_data {
        let mut merged = rec.event_data.clone();
        if let Value::Object(m) = &mut merged {
            for (k, v) in changes {
                m.insert(k, v);
            }
        }
        config = TriggerConfig::parse(rec.type_code.as_str(), &merged)?;
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
        rec.next_fire_ms = match rec.status {
            // Enabled again or re-planned: the plan starts from now, not from before.
            TriggerStatus::Active if !was_active || replanned || rec.next_fire_ms.is_none() => {
                t.parsed.next_after(now, None)
            }
            TriggerStatus::Active => rec.next_fire_ms,
            TriggerStatus::Disabled => None,
        };
    }
    if !state.catalog.update_trigger(&rec).await? {
        return Err(trigger_not_found(&type_code, &id));
    }
    drop(_guard);
    tracing::info!(
        project,
        trigger_id = id,
        status = %rec.status,
        "trigger updated"
    );
    Ok(Json(trigger_json(&state.triggers, &rec, &config)))
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, urn, type_code, id)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let rec = load(&state, &project, &urn, &type_code, &id).await?;
    let gone = state
        .catalog
        .delete_triggers(&project, &rec.package, &rec.name, None, Some(&id))
        .await?;
    if gone.is_empty() {
        return Err(trigger_not_found(&type_code, &id));
    }
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
        .catalog
        .delete_triggers(&project, &r.package, &r.name, q.as_deref(), None)
        .await?;
    tracing::info!(
        project,
        function = r.name,
        count = gone.len(),
        "triggers deleted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
