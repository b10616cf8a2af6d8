//! Tags on functions, FunctionGraph's tag API outside `/fgs` (docs/api.md): a function's tags
//! (`/v2/{project}/functions/{resource_id}/tags`, `.../tags/create`, `.../tags/delete`), the
//! project's keys with their values (`/v2/{project}/functions/tags`) and functions filtered by
//! tags (`/v2/{project}/functions/resource-instances/{filter|count}`). `resource_type` is
//! `functions`; `resource_id` is a function's URN (any form of SPEC.md 1) or its `func_id`.

use std::collections::{BTreeMap, BTreeSet};

use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use fgs_core::limits::FUNCTIONS_PER_PROJECT;
use fgs_core::tags::{self, Tag};
use fgs_core::urn::qualified_urn;
use fgs_core::{FunctionRecord, Qualifier};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::records::{latest, save};
use crate::request::{function_ref, parse_json};
use crate::state::SharedState;

/// The only resource type fgs tags.
const FUNCTIONS: &str = "functions";

fn resource_type(rt: &str) -> ApiResult<()> {
    if rt == FUNCTIONS {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "resource_type {rt:?} is invalid: fgs tags {FUNCTIONS} only"
        )))
    }
}

/// Every function of a project (a project holds at most [`FUNCTIONS_PER_PROJECT`]).
pub(crate) async fn project_functions(
    state: &SharedState,
    project: &str,
) -> ApiResult<Vec<FunctionRecord>> {
    Ok(state
        .store
        .list_functions(project, None, 0, FUNCTIONS_PER_PROJECT)
        .await?
        .functions)
}

/// The function a `resource_id` names: by reference first, then by `func_id`.
async fn resource(state: &SharedState, project: &str, id: &str) -> ApiResult<FunctionRecord> {
    let by_ref = match function_ref(project, id) {
        Ok(r) => latest(state, project, &r).await,
        Err(e) => Err(e),
    };
    match by_ref {
        Ok(rec) => Ok(rec),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(e),
        Err(_) => project_functions(state, project)
            .await?
            .into_iter()
            .find(|f| f.func_id == id)
            .ok_or_else(|| ApiError::function_not_found(id)),
    }
}

fn kv(tags: &tags::Tags) -> Vec<Value> {
    tags.iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

/// `POST .../tags/create` and `DELETE .../tags/delete` (`UpdateFunctionTagsRequestBody`).
#[derive(Debug, Deserialize)]
struct TagsBody {
    #[serde(default)]
    tags: Vec<Tag>,
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, rt, id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    resource_type(&rt)?;
    let rec = resource(&state, &project, &id).await?;
    Ok(Json(json!({"tags": kv(&rec.meta.tags), "sys_tags": []})))
}

pub async fn create(
    State(state): State<SharedState>,
    Path((project, rt, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    resource_type(&rt)?;
    let b: TagsBody = parse_json(&body)?;
    let mut rec = resource(&state, &project, &id).await?;
    rec.meta.tags = tags::add(&rec.meta.tags, &b.tags)?;
    save(&state, rec).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, rt, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    resource_type(&rt)?;
    let b: TagsBody = parse_json(&body)?;
    let mut rec = resource(&state, &project, &id).await?;
    let kept = tags::remove(&rec.meta.tags, &b.tags);
    if kept != rec.meta.tags {
        rec.meta.tags = kept;
        save(&state, rec).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/{project}/functions/tags`: every key used in the project with its values.
pub async fn project_tags(
    State(state): State<SharedState>,
    Path((project, rt)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    resource_type(&rt)?;
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in project_functions(&state, &project).await? {
        for (k, v) in f.meta.tags {
            keys.entry(k).or_default().insert(v);
        }
    }
    let tags: Vec<Value> = keys
        .into_iter()
        .map(|(key, values)| json!({"key": key, "values": values}))
        .collect();
    Ok(Json(json!({"tags": tags, "sys_tags": []})))
}

/// A tag filter: the key, and the values any one of which matches (none: any value).
#[derive(Debug, Deserialize)]
struct TagFilter {
    key: String,
    #[serde(default)]
    values: Vec<String>,
}

/// `POST /v2/{project}/functions/resource-instances/{action}` (`ListEnterpriseResourceRequestBody`,
/// with the tag service's `tags`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FilterBody {
    tags: Vec<TagFilter>,
    without_any_tag: bool,
    matches: Vec<Tag>,
    limit: Option<Value>,
    offset: Option<Value>,
}

/// A paging number FunctionGraph writes as a string or a number.
fn number(what: &str, v: Option<&Value>, default: usize, max: usize) -> ApiResult<usize> {
    let n = match v {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if s.is_empty() => return Ok(default),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    n.and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n <= max)
        .ok_or_else(|| ApiError::bad_request(format!("{what} is invalid: use 0 to {max}")))
}

impl FilterBody {
    fn selects(&self, f: &FunctionRecord) -> bool {
        if self.without_any_tag {
            return f.meta.tags.is_empty();
        }
        let tags_match = self.tags.iter().all(|t| {
            f.meta
                .tags
                .get(&t.key)
                .is_some_and(|v| t.values.is_empty() || t.values.contains(v))
        });
        // `resource_name` is matched as a substring, as the tag service does.
        let names_match = self
            .matches
            .iter()
            .filter(|m| m.key == "resource_name")
            .all(|m| f.name.contains(&m.value));
        tags_match && names_match
    }
}

pub async fn filter(
    State(state): State<SharedState>,
    Path((project, rt, action)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    resource_type(&rt)?;
    let b: FilterBody = if body.is_empty() {
        FilterBody::default()
    } else {
        parse_json(&body)?
    };
    let limit = number("limit", b.limit.as_ref(), 1000, 1000)?;
    let offset = number("offset", b.offset.as_ref(), 0, usize::MAX)?;
    let found: Vec<FunctionRecord> = project_functions(&state, &project)
        .await?
        .into_iter()
        .filter(|f| b.selects(f))
        .collect();
    match action.as_str() {
        "count" => Ok(Json(json!({"total_count": found.len()}))),
        "filter" => {
            let resources: Vec<Value> = found
                .iter()
                .skip(offset)
                .take(limit)
                .map(|f| {
                    let urn = qualified_urn(
                        &state.region,
                        &f.project,
                        &f.package,
                        &f.name,
                        &Qualifier::Latest,
                    );
                    json!({
                        "resource_id": urn,
                        "resource_name": f.name,
                        "resource_detail": {"detail_id": f.func_id},
                        "tags": kv(&f.meta.tags),
                        "sys_tags": [],
                    })
                })
                .collect();
            Ok(Json(
                json!({"resources": resources, "total_count": found.len()}),
            ))
        }
        other => Err(ApiError::bad_request(format!(
            "action {other:?} is invalid: use filter or count"
        ))),
    }
}
