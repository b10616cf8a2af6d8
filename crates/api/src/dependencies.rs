//! Dependencies (SPEC.md 2, 4): `POST /dependencies/version`, `GET /dependencies`,
//! `GET /dependencies/{id}/version`, `GET`/`DELETE /dependencies/{id}/version/{version}`.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use fgs_core::dependency::{name_ok, DependencyVersion};
use fgs_core::limits::ZIP_CODE_MAX;
use fgs_core::{validate, Invalid};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{now_ms, parse_json};
use crate::state::SharedState;

fn dep_json(d: &DependencyVersion) -> Value {
    json!({
        "id": d.id,
        "dep_id": d.dep_id,
        "owner": d.project,
        "link": "",
        "runtime": d.runtime,
        "etag": d.sha256,
        "size": d.size,
        "name": d.name,
        "description": d.description,
        "file_name": d.file_name,
        "version": d.version,
        "last_modified": d.created_ms,
        "download_link": "",
        "is_shared": false,
    })
}

pub async fn create(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize)]
    struct B {
        depend_file: Option<String>,
        depend_link: Option<String>,
        depend_type: Option<String>,
        runtime: Option<String>,
        name: Option<String>,
        description: Option<String>,
        file_name: Option<String>,
    }
    let b: B = parse_json(&body)?;
    let name = b.name.unwrap_or_default();
    if !name_ok(&name) {
        return Err(ApiError::bad_request(format!(
            "dependency name {name:?} is invalid: use 1-96 letters, digits, '.', '-' or '_', starting with a letter"
        )));
    }
    let runtime = b.runtime.unwrap_or_default();
    validate::runtime(&runtime)?;
    match b.depend_type.as_deref() {
        Some("zip") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "depend_type {other:?} is not supported: use zip and send the file in depend_file"
            )))
        }
    }
    let file = b.depend_file.filter(|f| !f.is_empty()).ok_or_else(|| {
        if b.depend_link.is_some_and(|l| !l.is_empty()) {
            ApiError::bad_request(
                "depend_link is not supported: send the zip base64-encoded in depend_file",
            )
        } else {
            ApiError::bad_request("depend_file is required")
        }
    })?;
    if file.len() / 4 * 3 > ZIP_CODE_MAX + 3 {
        return Err(Invalid::ZipTooLarge(file.len() / 4 * 3).into());
    }
    let zip = base64::engine::general_purpose::STANDARD
        .decode(file.trim())
        .map_err(|e| ApiError::bad_request(format!("depend_file is not valid base64: {e}")))?;
    if zip.len() > ZIP_CODE_MAX {
        return Err(Invalid::ZipTooLarge(zip.len()).into());
    }
    let packages = state.packages.clone();
    let stored = tokio::task::spawn_blocking(move || packages.put(&zip))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let dv = DependencyVersion {
        id: uuid::Uuid::new_v4().to_string(),
        dep_id: uuid::Uuid::new_v4().to_string(),
        project: project.clone(),
        name,
        runtime,
        description: b.description.unwrap_or_default(),
        version: 0,
        file_name: b.file_name.unwrap_or_else(|| "dependency.zip".into()),
        sha256: stored.sha256,
        size: stored.size,
        created_ms: now_ms(),
    };
    let dv = state.store.create_dependency_version(dv).await?;
    tracing::info!(
        project,
        name = dv.name,
        version = dv.version,
        "dependency version created"
    );
    Ok(Json(dep_json(&dv)))
}

fn page(all: Vec<Value>, q: &HashMap<String, String>, key: &str) -> Json<Value> {
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(d);
    let count = all.len();
    let marker = num("marker", 0).min(count);
    let max = num("maxitems", num("limit", 400)).clamp(1, 400);
    let items: Vec<Value> = all.into_iter().skip(marker).take(max).collect();
    let next = marker + items.len();
    Json(json!({key: items, "next_marker": next, "count": count}))
}

pub async fn list(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let all = state.store.list_dependency_versions(&project, None).await?;
    let name = q.get("name").filter(|s| !s.is_empty());
    let runtime = q.get("runtime").filter(|s| !s.is_empty());
    let items = all
        .iter()
        .filter(|d| name.is_none_or(|n| d.name.contains(n.as_str())))
        .filter(|d| runtime.is_none_or(|r| &d.runtime == r))
        .map(dep_json)
        .collect();
    Ok(page(items, &q, "dependencies"))
}

pub async fn list_versions(
    State(state): State<SharedState>,
    Path((project, dep_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let all = state
        .store
        .list_dependency_versions(&project, Some(&dep_id))
        .await?;
    if all.is_empty() {
        return Err(ApiError::not_found(format!(
            "dependency {dep_id} does not exist"
        )));
    }
    Ok(page(all.iter().map(dep_json).collect(), &q, "dependencies"))
}

async fn find(
    state: &SharedState,
    project: &str,
    dep_id: &str,
    version: &str,
) -> ApiResult<DependencyVersion> {
    let v: u32 = version.parse().map_err(|_| {
        ApiError::bad_request(format!("dependency version {version:?} is not a number"))
    })?;
    state
        .store
        .list_dependency_versions(project, Some(dep_id))
        .await?
        .into_iter()
        .find(|d| d.version == v)
        .ok_or_else(|| {
            ApiError::not_found(format!("version {v} of dependency {dep_id} does not exist"))
        })
}

pub async fn get(
    State(state): State<SharedState>,
    Path((project, dep_id, version)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(dep_json(
        &find(&state, &project, &dep_id, &version).await?,
    )))
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, dep_id, version)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let d = find(&state, &project, &dep_id, &version).await?;
    state
        .store
        .delete_dependency_version(&project, &d.id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
