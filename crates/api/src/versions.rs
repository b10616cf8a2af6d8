//! Published versions (SPEC.md 2): `POST`/`GET /functions/{urn}/versions`; a version is deleted
//! through `DELETE /functions/{urn}` with the version in the URN.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use fgs_core::flows::{VersionRecord, VERSIONS_MAX};
use fgs_core::urn::{qualified_urn, LATEST};
use fgs_core::{validate, FunctionRecord, Qualifier};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::records::latest;
use crate::request::{function_ref, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire;

/// The function object of a published version.
pub fn version_json(v: &VersionRecord, region: &str) -> Value {
    let mut j = wire::function_json(&v.function, region);
    let f = &v.function;
    j["func_urn"] = json!(qualified_urn(
        region,
        &f.project,
        &f.package,
        &f.name,
        &Qualifier::Version(v.version.clone())
    ));
    j["version"] = json!(v.version);
    j["version_description"] = json!(v.description);
    j["last_modified"] = json!(wire::rfc3339_ms(v.created_ms));
    j
}

/// What a version freezes: code and configuration, not the bookkeeping.
fn same_content(a: &FunctionRecord, b: &FunctionRecord) -> bool {
    a.code.digest == b.code.digest && a.spec == b.spec
}

fn auto_version_name(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "v{:04}{:02}{:02}-{:02}{:02}{:02}{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub async fn publish(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    #[derive(serde::Deserialize, Default)]
    struct B {
        version: Option<String>,
        description: Option<String>,
        digest: Option<String>,
    }
    let r = function_ref(&project, &urn)?;
    let b: B = if body.is_empty() {
        B::default()
    } else {
        parse_json(&body)?
    };
    let rec = latest(&state, &project, &r).await?;
    if let Some(d) = b.digest.as_deref().filter(|d| !d.is_empty()) {
        if d != rec.code.digest {
            return Err(ApiError::bad_request(format!(
                "digest {d} does not match the function's current code (digest {}): it changed since you read it",
                rec.code.digest
            )));
        }
    }
    let published = state
        .store
        .list_versions(&project, &r.package, &r.name)
        .await?;
    if let Some(last) = published.last() {
        if same_content(&last.function, &rec) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                crate::error::code::NOTHING_TO_PUBLISH,
                format!(
                    "nothing changed since version {} was published: update the code or configuration first",
                    last.version
                ),
            ));
        }
    }
    let now = now_ms();
    let version = b
        .version
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| auto_version_name(now));
    if version == LATEST || !validate::version_name_ok(&version) {
        return Err(ApiError::bad_request(format!(
            "version {version:?} is invalid: use 1-42 letters, digits, '.', '-' or '_', starting with a letter or digit, and not `latest`"
        )));
    }
    let description = b.description.unwrap_or_default();
    if description.chars().count() > fgs_core::limits::DESCRIPTION_MAX {
        return Err(ApiError::bad_request("description is over 512 characters"));
    }
    let v = VersionRecord {
        version,
        description,
        created_ms: now,
        function: rec,
    };
    // `latest` counts toward the 20 versions of a function (SPEC.md 6).
    state
        .catalog
        .publish_version(v.clone(), VERSIONS_MAX - 1)
        .await?;
    tracing::info!(
        project,
        name = r.name,
        version = v.version,
        "version published"
    );
    Ok(Json(version_json(&v, &state.region)))
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = latest(&state, &project, &r).await?;
    let mut all = vec![wire::function_json(&rec, &state.region)];
    for v in state
        .store
        .list_versions(&project, &r.package, &r.name)
        .await?
    {
        all.push(version_json(&v, &state.region));
    }
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(d);
    let marker = num("marker", 0).min(all.len());
    let maxitems = num("maxitems", 400).clamp(1, 400);
    let count = all.len();
    let page: Vec<Value> = all.into_iter().skip(marker).take(maxitems).collect();
    Ok(Json(json!({
        "versions": page,
        "next_marker": (marker + page.len()).min(count),
        "count": count,
    })))
}
