//! Views of async invocation and the log switches of FunctionGraph's API, answered from what fgs
//! keeps anyway (docs/api.md):
//!
//! - `GET /functions/{urn}/active-async-invocations`: the function's `WAIT` and `RUNNING`
//!   events of the durable queue, newest first.
//! - `GET /functions/{urn}/async-invoke-configs`: the async config of `latest` and of every
//!   published version that has one.
//! - `POST /functions/enable-async-status-logs`, `GET /functions/async-status-log-detail`:
//!   FunctionGraph sends async status to an LTS log group once enabled; fgs keeps every async
//!   event's status in its queue from the start (`.../async-invocations`), so enabling answers
//!   200 and changes nothing, and the detail names that store.
//! - `POST /functions/enable-lts-logs`, `GET /functions/{urn}/lts-log-detail`: likewise for
//!   invocation logs, which fgs always writes to its log store (`GET .../logs`, docs/logs.md).

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use fgs_core::flows::AsyncStatus;
use fgs_core::urn::qualified_urn;
use fgs_core::Qualifier;
use fgs_store::AsyncFilter;
use serde_json::{json, Value};

use crate::async_invoke::{config_json, invocation_json};
use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;
use crate::records::latest;
use crate::request::function_ref;
use crate::state::SharedState;

/// The events of the queue that have not finished.
const ACTIVE: [AsyncStatus; 2] = [AsyncStatus::Wait, AsyncStatus::Running];

/// How far into the active events a page may start: each status is read from the start.
const ACTIVE_WINDOW: u64 = 10_000;

pub async fn active(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    latest(&state, &project, &r).await?;
    let q = ListParams(&q);
    let statuses: Vec<AsyncStatus> = match q.get("status") {
        None => ACTIVE.to_vec(),
        Some(s) => match AsyncStatus::parse(s).filter(|st| ACTIVE.contains(st)) {
            Some(st) => vec![st],
            None => {
                return Err(ApiError::bad_request(format!(
                    "status {s:?} is invalid: active invocations are WAIT or RUNNING"
                )))
            }
        },
    };
    let marker = q.num("marker", 0)?;
    let limit = q.num("limit", 100)?.clamp(1, 500);
    if marker + limit > ACTIVE_WINDOW {
        return Err(ApiError::bad_request(format!(
            "marker {marker} is invalid: active invocations page within the first {ACTIVE_WINDOW}"
        )));
    }
    let (mut rows, mut count) = (Vec::new(), 0);
    for status in statuses {
        let filter = AsyncFilter {
            project: project.clone(),
            package: r.package.clone(),
            name: r.name.clone(),
            request_id: q.get("request_id").cloned(),
            status: Some(status),
            begin_ms: q.time("query_begin_time")?,
            end_ms: q.time("query_end_time")?,
            marker: 0,
            limit: marker + limit,
        };
        let (found, n) = state.store.list_async(filter).await?;
        rows.extend(found);
        count += n;
    }
    // Newest first across both statuses, as each list is.
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_ms));
    let page: Vec<Value> = rows
        .iter()
        .skip(marker as usize)
        .take(limit as usize)
        .map(invocation_json)
        .collect();
    let next = marker + page.len() as u64;
    Ok(Json(
        json!({"invocations": page, "count": count, "next_marker": next}),
    ))
}

pub async fn configs(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = latest(&state, &project, &r).await?;
    let q = ListParams(&q);
    let marker = q.num("marker", 0)? as usize;
    let limit = q.num("limit", 100)?.clamp(1, 500) as usize;
    let urn_of = |qualifier: &Qualifier| {
        qualified_urn(&state.region, &project, &r.package, &r.name, qualifier)
    };
    let mut all = Vec::new();
    if let Some(c) = &rec.async_config {
        all.push(config_json(c, &urn_of(&Qualifier::Latest)));
    }
    for v in state
        .store
        .list_versions(&project, &r.package, &r.name)
        .await?
    {
        if let Some(c) = &v.function.async_config {
            all.push(config_json(c, &urn_of(&Qualifier::Version(v.version))));
        }
    }
    let count = all.len();
    let page: Vec<Value> = all.into_iter().skip(marker).take(limit).collect();
    let next = marker + page.len();
    Ok(Json(json!({
        "async_invoke_configs": page,
        "count": count,
        "page_info": {"next_marker": next, "previous_marker": marker.saturating_sub(limit), "current_count": page.len()},
    })))
}

/// Where fgs keeps what FunctionGraph would send to LTS: a log group per store (`fgs`) and a
/// stream per project or function, named so.
fn log_place(group: &str, stream: &str) -> Value {
    json!({
        "group_name": group,
        "group_id": group,
        "stream_name": stream,
        "stream_id": stream,
    })
}

pub async fn enable_async_status_logs() -> Json<Value> {
    Json(json!({}))
}

pub async fn async_status_log_detail(Path(project): Path<String>) -> Json<Value> {
    Json(log_place("fgs-async-status", &project))
}

pub async fn enable_lts_logs() -> Json<Value> {
    Json(json!({}))
}

pub async fn lts_log_detail(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = latest(&state, &project, &r).await?;
    Ok(Json(log_place(
        "fgs-invocation-logs",
        &format!("{}:{}:{}", rec.project, rec.package, rec.name),
    )))
}
