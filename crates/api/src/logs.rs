//! `GET /functions/{urn}/logs` [FGS] (docs/logs.md): the stored invocation logs of a function.
//! They are written below the api, by `fgs_invoke::log_store`.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use fgs_store::{InvocationLog, LogQuery};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;
use crate::request::function_ref;
use crate::state::SharedState;
use crate::wire;

/// Default and largest page of `GET .../logs`.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 500;

/// `GET /v2/{project}/fgs/functions/{urn}/logs` [FGS]: a function's stored invocation logs,
/// oldest first (or `order=desc`), filtered by `request_id` and start time (`since`, `until`:
/// RFC 3339 or Unix milliseconds), paged by `marker` (the `next_marker` of the previous page).
pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let q = ListParams(&q);
    let newest_first = match q.get("order").map(String::as_str) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "order {o:?} is invalid: use asc or desc"
            )))
        }
    };
    if state
        .store
        .get_function(&project, &r.package, &r.name)
        .await?
        .is_none()
    {
        return Err(ApiError::function_not_found(&r.name));
    }
    let limit = q.num("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
    let mut rows = state
        .store
        .query_logs(LogQuery {
            project,
            package: r.package.clone(),
            function: r.name.clone(),
            request_id: q.get("request_id").cloned(),
            since_ms: q.time("since")?,
            until_ms: q.time("until")?,
            marker: i64::try_from(q.num("marker", 0)?).unwrap_or(i64::MAX),
            // One more than asked: whether there is a next page.
            limit: limit + 1,
            newest_first,
        })
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_marker = match rows.last() {
        Some(l) if more => l.id.to_string(),
        _ => String::new(),
    };
    let logs: Vec<Value> = rows.iter().map(record).collect();
    Ok(Json(json!({
        "logs": logs,
        "count": logs.len(),
        "next_marker": next_marker,
    })))
}

/// RFC 3339 with milliseconds: invocations a few ms apart must read apart (FunctionGraph's
/// other times have whole seconds).
fn start_time(ms: i64) -> String {
    let secs = wire::rfc3339_ms(ms);
    let base = secs.trim_end_matches("+00:00");
    format!("{base}.{:03}+00:00", ms.rem_euclid(1000))
}

fn record(l: &InvocationLog) -> Value {
    json!({
        "id": l.id.to_string(),
        "request_id": l.request_id,
        "func_name": l.function,
        "package": l.package,
        "version": l.version,
        "invoke_type": l.invoke_type,
        "start_time": start_time(l.started_ms),
        "start_time_ms": l.started_ms,
        "duration": (l.duration_ms * 1000.0).round() / 1000.0,
        "status": if l.error_code == 0 { "success" } else { "error" },
        "error_code": l.error_code,
        "log": l.log,
        "truncated": l.truncated,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn start_time_has_milliseconds() {
        assert_eq!(
            super::start_time(1_764_388_800_042),
            "2025-11-29T04:00:00.042+00:00"
        );
    }
}
