//! Async invocation (SPEC.md 2, 3): `POST /functions/{urn}/invocations-async` (202 once the
//! event is on disk), `GET .../async-invocations`, `POST .../cancel`, and
//! `GET`/`PUT`/`DELETE .../async-invoke-config`.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use fgs_core::async_config::UnknownDestination;
use fgs_core::flows::{
    AsyncInvokeConfig, AsyncStatus, Destination, DestinationConfig, DestinationKind,
    ASYNC_AGE_DEFAULT, ASYNC_AGE_MAX, ASYNC_RETRY_DEFAULT, ASYNC_RETRY_MAX,
};
use fgs_core::urn::qualified_urn;
use fgs_core::{FunctionRef, Qualifier};
use fgs_invoke::NewEvent;
use fgs_store::AsyncFilter;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;
use crate::records::latest;
use crate::request::{function_ref, key_of, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire;

pub async fn invoke(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    let body = crate::invocation::event_body(body)?;
    let request_id = state
        .dispatcher
        .submit(
            NewEvent {
                key: key_of(&project, &r),
                qualifier: r.qualifier_or_latest(),
                body,
                source: "api".into(),
            },
            None,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"request_id": request_id})),
    )
        .into_response())
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let q = ListParams(&q);
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(AsyncStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status {s:?} is invalid: use WAIT, RUNNING, SUCCESS, FAIL or DISCARD"
            ))
        })?),
    };
    let filter = AsyncFilter {
        project: project.clone(),
        package: r.package.clone(),
        name: r.name.clone(),
        request_id: q.get("request_id").cloned(),
        status,
        begin_ms: q.time("query_begin_time")?,
        end_ms: q.time("query_end_time")?,
        marker: q.num("marker", 0)?,
        limit: q.num("limit", 100)?.clamp(1, 500),
    };
    let marker = filter.marker;
    let (rows, count) = state.store.list_async(filter).await?;
    let next = marker + rows.len() as u64;
    let invocations: Vec<Value> = rows.iter().map(invocation_json).collect();
    Ok(Json(
        json!({"invocations": invocations, "count": count, "next_marker": next}),
    ))
}

/// One async invocation as FunctionGraph lists it (`ListFunctionAsyncInvocationsResult`).
pub(crate) fn invocation_json(row: &fgs_store::AsyncRow) -> Value {
    json!({
        "request_id": row.request_id,
        "status": row.status.as_str(),
        "error_message": row.error_message,
        "error_code": row.error_code.unwrap_or(0),
        "start_time": wire::rfc3339_ms(row.started_ms.unwrap_or(row.created_ms)),
        "end_time": row.ended_ms.map(wire::rfc3339_ms).unwrap_or_default(),
        "attempts": row.attempts,
        "created_time": wire::rfc3339_ms(row.created_ms),
    })
}

pub async fn cancel(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    struct B {
        request_id: Option<String>,
    }
    let r = function_ref(&project, &urn)?;
    let b: B = parse_json(&body)?;
    let id = b
        .request_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("request_id is required"))?;
    let before = state
        .store
        .cancel_async(&project, &r.package, &r.name, &id, now_ms())
        .await?;
    if before != AsyncStatus::Wait {
        return Err(ApiError::bad_request(format!(
            "async invocation {id} is {}: only a waiting invocation can be cancelled",
            before.as_str()
        )));
    }
    Ok(Json(
        json!({"request_id": id, "status": AsyncStatus::Discard.as_str()}),
    ))
}

pub(crate) fn config_json(c: &AsyncInvokeConfig, func_urn: &str) -> Value {
    json!({
        "func_urn": func_urn,
        "max_async_event_age_in_seconds": c.max_async_event_age_in_seconds,
        "max_async_retry_attempts": c.max_async_retry_attempts,
        "destination_config": c.destination_config,
        "created_time": wire::rfc3339_ms(c.created_ms),
        "last_modified": wire::rfc3339_ms(c.modified_ms),
        // fgs keeps every async event's status in its queue (async_views.rs).
        "enable_async_status_log": true,
    })
}

fn latest_urn(state: &SharedState, project: &str, r: &FunctionRef) -> String {
    qualified_urn(
        &state.region,
        project,
        &r.package,
        &r.name,
        &Qualifier::Latest,
    )
}

pub async fn get_config(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = latest(&state, &project, &r).await?;
    let c = rec.async_config.ok_or_else(|| {
        ApiError::not_found(format!("function {} has no async invoke config", r.name))
    })?;
    Ok(Json(config_json(&c, &latest_urn(&state, &project, &r))))
}

/// A destination as a request sends it: its type is checked here, so that an unknown one is
/// refused by name (FSS.0400) rather than as bad JSON.
#[derive(serde::Deserialize)]
struct WireDestination {
    destination: String,
    param: String,
}

#[derive(Default, serde::Deserialize)]
struct WireDestinations {
    #[serde(default)]
    on_success: Option<WireDestination>,
    #[serde(default)]
    on_failure: Option<WireDestination>,
}

fn check_destination(dest: WireDestination) -> ApiResult<Destination> {
    let param: Value = serde_json::from_str(&dest.param).map_err(|e| {
        ApiError::bad_request(format!("destination param is not a JSON object: {e}"))
    })?;
    let kind: DestinationKind = dest
        .destination
        .parse()
        .map_err(|e: UnknownDestination| ApiError::bad_request(e.to_string()))?;
    match kind {
        DestinationKind::FunctionGraph => {
            let urn = param.get("func_urn").and_then(Value::as_str).unwrap_or("");
            FunctionRef::parse(urn).map_err(|e| {
                ApiError::bad_request(format!("destination func_urn {urn:?} is invalid: {e}"))
            })?;
        }
        DestinationKind::Http => {
            let url = param.get("url").and_then(Value::as_str).unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ApiError::bad_request(format!(
                    "destination url {url:?} is invalid: use http:// or https://"
                )));
            }
        }
    }
    Ok(Destination {
        destination: kind,
        param: dest.param,
    })
}

fn check_destinations(d: WireDestinations) -> ApiResult<DestinationConfig> {
    Ok(DestinationConfig {
        on_success: d.on_success.map(check_destination).transpose()?,
        on_failure: d.on_failure.map(check_destination).transpose()?,
    })
}

pub async fn put_config(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    struct B {
        max_async_event_age_in_seconds: Option<i64>,
        max_async_retry_attempts: Option<i64>,
        destination_config: Option<WireDestinations>,
    }
    let r = function_ref(&project, &urn)?;
    let b: B = parse_json(&body)?;
    let age = b
        .max_async_event_age_in_seconds
        .unwrap_or(i64::from(ASYNC_AGE_DEFAULT));
    if !(1..=i64::from(ASYNC_AGE_MAX)).contains(&age) {
        return Err(ApiError::bad_request(format!(
            "max_async_event_age_in_seconds {age} is invalid: use 1 to 86400"
        )));
    }
    let retries = b
        .max_async_retry_attempts
        .unwrap_or(i64::from(ASYNC_RETRY_DEFAULT));
    if !(0..=i64::from(ASYNC_RETRY_MAX)).contains(&retries) {
        return Err(ApiError::bad_request(format!(
            "max_async_retry_attempts {retries} is invalid: use 0 to 3"
        )));
    }
    let destinations = check_destinations(b.destination_config.unwrap_or_default())?;
    let mut rec = latest(&state, &project, &r).await?;
    let now = now_ms();
    let created = rec.async_config.as_ref().map_or(now, |c| c.created_ms);
    let c = AsyncInvokeConfig {
        max_async_event_age_in_seconds: age as u32,
        max_async_retry_attempts: retries as u32,
        destination_config: destinations,
        created_ms: created,
        modified_ms: now,
    };
    rec.async_config = Some(c.clone());
    crate::records::save(&state, rec).await?;
    Ok(Json(config_json(&c, &latest_urn(&state, &project, &r))))
}

pub async fn delete_config(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    let mut rec = latest(&state, &project, &r).await?;
    if rec.async_config.take().is_some() {
        crate::records::save(&state, rec).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(kind: &str, param: &str) -> WireDestinations {
        WireDestinations {
            on_success: Some(WireDestination {
                destination: kind.into(),
                param: param.into(),
            }),
            on_failure: None,
        }
    }

    #[test]
    fn destinations_are_checked_into_their_kinds() {
        let d = check_destinations(wire("HTTP", r#"{"url":"http://h/x"}"#)).unwrap();
        let s = d.on_success.unwrap();
        assert_eq!(s.destination, DestinationKind::Http);
        assert_eq!(s.param, r#"{"url":"http://h/x"}"#);
        assert!(d.on_failure.is_none());
    }

    #[test]
    fn an_unknown_destination_is_refused_by_name_not_as_bad_json() {
        let e = check_destinations(wire("SMN", "{}")).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "FSS.0400"));
        assert_eq!(
            e.message,
            r#"destination "SMN" is not supported: use FunctionGraph or HTTP"#
        );
        let e = check_destinations(wire("HTTP", r#"{"url":"ftp://x"}"#)).unwrap_err();
        assert!(
            e.message.contains("use http:// or https://"),
            "{}",
            e.message
        );
    }
}
