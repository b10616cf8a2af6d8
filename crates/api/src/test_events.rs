//! Saved test events (SPEC.md 2): `POST`/`GET /functions/{urn}/events` and
//! `GET`/`PUT`/`DELETE /functions/{urn}/events/{id}`. An event belongs to the function, whatever
//! version the URN names; `content` is the base64 of the event, stored as sent.

use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_store::TestEventRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{function_ref, now_ms, parse_json};
use crate::state::SharedState;

/// Test events per function (FunctionGraph's user guide, "Test Management").
pub const EVENTS_PER_FUNCTION: u64 = 10;
/// The longest event name (FunctionGraph's API reference, CreateEvent).
const NAME_MAX: usize = 25;

#[derive(Debug, Deserialize)]
struct Body {
    name: Option<String>,
    content: Option<String>,
}

/// 1-25 letters, digits, `-` and `_`, starting with a letter and ending with a letter or digit.
fn name_ok(s: &str) -> bool {
    (1..=NAME_MAX).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `content` must be base64 of at most a sync payload.
fn check_content(content: Option<String>) -> ApiResult<String> {
    let c = content.ok_or_else(|| ApiError::bad_request("content is required"))?;
    if c.len() / 4 * 3 > SYNC_PAYLOAD_MAX + 3 {
        return Err(ApiError::too_large("the test event", SYNC_PAYLOAD_MAX));
    }
    base64::engine::general_purpose::STANDARD
        .decode(c.trim())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "content is not valid base64: {e}; send the event JSON base64-encoded"
            ))
        })?;
    Ok(c)
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("test event {id} does not exist"))
}

/// FunctionGraph reports `last_modified` in seconds.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

pub async fn create(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: Body = parse_json(&body)?;
    let name = b.name.unwrap_or_default();
    if !name_ok(&name) {
        return Err(ApiError::bad_request(format!(
            "name {name:?} is invalid: use 1-25 letters, digits, '-' or '_', starting with a \
             letter and ending with a letter or digit"
        )));
    }
    let content = check_content(b.content)?;
    let now = now_ms();
    let ev = TestEventRecord {
        event_id: uuid::Uuid::new_v4().to_string(),
        name,
        content,
        created_ms: now,
        modified_ms: now,
    };
    state
        .store
        .create_test_event(
            &project,
            &r.package,
            &r.name,
            ev.clone(),
            EVENTS_PER_FUNCTION,
        )
        .await?;
    Ok(Json(json!({"id": ev.event_id, "name": ev.name})))
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let events = state
        .store
        .list_test_events(&project, &r.package, &r.name)
        .await?;
    let list: Vec<Value> = events
        .iter()
        .map(|e| json!({"id": e.event_id, "name": e.name, "last_modified": seconds(e.modified_ms)}))
        .collect();
    let n = list.len();
    Ok(Json(json!({"events": list, "next_marker": n, "count": n})))
}

pub async fn get(
    State(state): State<SharedState>,
    Path((project, urn, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let e = state
        .store
        .get_test_event(&project, &r.package, &r.name, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({
        "id": e.event_id,
        "name": e.name,
        "content": e.content,
        "last_modified": seconds(e.modified_ms),
    })))
}

pub async fn update(
    State(state): State<SharedState>,
    Path((project, urn, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: Body = parse_json(&body)?;
    let content = check_content(b.content)?;
    let e = state
        .store
        .update_test_event(&project, &r.package, &r.name, &id, &content, now_ms())
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({"id": e.event_id, "name": e.name})))
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, urn, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    if !state
        .store
        .delete_test_event(&project, &r.package, &r.name, &id)
        .await?
    {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "event-123test", "A_b-9", &"a".repeat(25)] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in ["", "1a", "a-", "a_", "a b", "é", &"a".repeat(26)] {
            assert!(!name_ok(bad), "{bad}");
        }
    }
}
