//! Instance limits (SPEC.md 2): `PUT .../config-max-instance`, reserved instances, and quotas.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use bytes::Bytes;
use fgs_core::function::{Reserved, ReservedCron};
use fgs_core::limits::{self, FUNCTIONS_PER_PROJECT};
use fgs_core::FunctionRecord;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;
use crate::records::{latest, load, save};
use crate::request::{function_ref, parse_json};
use crate::reserved_policies;
use crate::state::SharedState;
use crate::wire;

pub async fn put_max_instances(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    struct B {
        max_instance_num: Option<i64>,
    }
    let r = function_ref(&project, &urn)?;
    let b: B = parse_json(&body)?;
    let n = b
        .max_instance_num
        .ok_or_else(|| ApiError::bad_request("max_instance_num is required"))?;
    if !(-1..=i64::from(limits::MAX_INSTANCE_NUM_MAX)).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "max_instance_num {n} is invalid: use -1 (unlimited) to 1000; 0 disables the function"
        )));
    }
    let mut rec = load(&state, &project, &r).await?;
    rec.spec.max_instance_num = n as i32;
    let rec = save(&state, rec).await?;
    Ok(Json(wire::function_json(&rec, &state.region)))
}

pub async fn put_reserved(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    struct Tactics {
        #[serde(default)]
        cron_configs: Vec<ReservedCron>,
        #[serde(default)]
        metric_configs: Vec<Value>,
    }
    #[derive(serde::Deserialize)]
    struct B {
        count: Option<i64>,
        idle_mode: Option<bool>,
        tactics_config: Option<Tactics>,
    }
    let r = function_ref(&project, &urn)?;
    let b: B = parse_json(&body)?;
    let count = b
        .count
        .ok_or_else(|| ApiError::bad_request("count is required"))?;
    if !(0..=i64::from(limits::MAX_INSTANCE_NUM_MAX)).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count {count} is invalid: use 0 to 1000"
        )));
    }
    let mut rec = load(&state, &project, &r).await?;
    if let Some(t) = b.tactics_config {
        if !t.metric_configs.is_empty() {
            return Err(ApiError::bad_request(
                "tactics_config.metric_configs are not supported: fgs scales reserved instances by cron_configs only",
            ));
        }
        reserved_policies::check(&t.cron_configs)?;
        rec.meta.reserved_crons = t.cron_configs;
    }
    rec.reserved = Reserved {
        count: count as u32,
        idle_mode: b.idle_mode.unwrap_or(false),
    };
    let rec = save(&state, rec).await?;
    Ok(Json(json!({
        "count": rec.reserved.count,
        "idle_mode": rec.reserved.idle_mode,
        "tactics_config": tactics(&rec),
    })))
}

fn tactics(rec: &FunctionRecord) -> Value {
    json!({"cron_configs": rec.meta.reserved_crons, "metric_configs": []})
}

/// `GET /functions/reservedinstanceconfigs?function_urn=&marker=&limit=`: the reserved
/// instances and policies of one function, or of every function of the project that has some.
pub async fn list_reserved_configs(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let q = ListParams(&q);
    let records = match q.get("function_urn") {
        Some(urn) => vec![latest(&state, &project, &function_ref(&project, urn)?).await?],
        None => crate::tags::project_functions(&state, &project)
            .await?
            .into_iter()
            .filter(|f| f.reserved.count > 0 || !f.meta.reserved_crons.is_empty())
            .collect(),
    };
    let marker = q.num("marker", 0)? as usize;
    let limit = q.num("limit", 100)?.clamp(1, 500) as usize;
    let count = records.len();
    let page: Vec<Value> = records
        .iter()
        .skip(marker)
        .take(limit)
        .map(|f| {
            json!({
                "function_urn": wire::unversioned_urn(f, &state.region),
                "qualifier_type": "version",
                "qualifier_name": fgs_core::urn::LATEST,
                "min_count": f.reserved.count,
                "idle_mode": f.reserved.idle_mode,
                "tactics_config": tactics(f),
            })
        })
        .collect();
    let next = marker + page.len();
    Ok(Json(json!({
        "reserved_instances": page,
        "page_info": {"next_marker": next, "previous_marker": marker.saturating_sub(limit), "current_count": page.len()},
        "count": count,
    })))
}

pub async fn list_reserved(
    State(state): State<SharedState>,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let all = state.store.all_functions().await?;
    let list: Vec<Value> = all
        .iter()
        .filter(|r| r.project == project && r.reserved.count > 0)
        .map(|r| json!({"func_urn": wire::unversioned_urn(r, &state.region), "count": r.reserved.count}))
        .collect();
    let n = list.len();
    Ok(Json(json!({
        "reservedinstances": list,
        "page_info": {"next_marker": n, "previous_marker": 0, "current_count": n},
        "count": n,
    })))
}

pub async fn quotas(
    State(state): State<SharedState>,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    let page = state.store.list_functions(&project, None, 0, 1).await?;
    Ok(Json(json!({"quotas": {"resources": [
        {"type": "fgs_func_num", "quota": FUNCTIONS_PER_PROJECT, "used": page.count, "unit": ""},
        {"type": "fgs_func_code_size", "quota": limits::ZIP_CODE_MAX / (1024 * 1024), "used": 0, "unit": "MB"},
        {"type": "fgs_func_occurs", "quota": limits::MAX_INSTANCE_NUM_DEFAULT, "used": 0, "unit": ""},
        {"type": "fgs_func_pat_idle_time", "quota": 0, "used": 0, "unit": "s"},
    ]}})))
}
