//! Aliases (SPEC.md 2): `POST`/`GET /functions/{urn}/aliases`,
//! `GET`/`PUT`/`DELETE /functions/{urn}/aliases/{name}`; weighted and rule-based routing.

use std::collections::BTreeMap;

use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use fgs_core::flows::{AliasRecord, VersionStrategy, ALIASES_MAX};
use fgs_core::urn::qualified_urn;
use fgs_core::{validate, Qualifier};
use fgs_invoke::source::{find as find_stored, Found};
use fgs_invoke::ResolveError;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{function_ref, key_of, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire;

#[derive(serde::Deserialize, Default)]
struct AliasBody {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    additional_version_weights: Option<BTreeMap<String, i64>>,
    additional_version_strategy: Option<BTreeMap<String, VersionStrategy>>,
}

fn alias_json(a: &AliasRecord, project: &str, package: &str, name: &str, region: &str) -> Value {
    json!({
        "name": a.name,
        "version": a.version,
        "description": a.description,
        "last_modified": wire::rfc3339_ms(a.modified_ms),
        "alias_urn": qualified_urn(region, project, package, name, &Qualifier::Alias(a.name.clone())),
        "additional_version_weights": a.additional_version_weights,
        "additional_version_strategy": a.additional_version_strategy,
    })
}

/// Applies a body onto an alias and checks the routing it describes.
fn apply(a: &mut AliasRecord, b: AliasBody) -> ApiResult<()> {
    if let Some(v) = b.version {
        a.version = v;
    }
    if a.version.is_empty() {
        return Err(ApiError::bad_request("version is required"));
    }
    if let Some(d) = b.description {
        a.description = d;
    }
    if let Some(w) = b.additional_version_weights {
        if w.len() > 1 {
            return Err(ApiError::bad_request(
                "additional_version_weights takes one extra version",
            ));
        }
        let mut weights = BTreeMap::new();
        for (v, pct) in w {
            if !(0..=100).contains(&pct) {
                return Err(ApiError::bad_request(format!(
                    "weight {pct} of version {v} is invalid: use 0 to 100"
                )));
            }
            if v == a.version {
                return Err(ApiError::bad_request(format!(
                    "version {v} is the alias's own version; weight another one"
                )));
            }
            weights.insert(v, pct as u32);
        }
        a.additional_version_weights = weights;
    }
    if let Some(s) = b.additional_version_strategy {
        for (v, strategy) in &s {
            for rule in &strategy.rules {
                let ok_type =
                    ["header", "cookie"].contains(&rule.rule_type.to_ascii_lowercase().as_str());
                let ok_op = ["=", "!=", "in"].contains(&rule.op.as_str());
                if !ok_type || !ok_op || rule.param.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "a rule of version {v} is invalid: rule_type Header or Cookie, op =, != or in, and a param"
                    )));
                }
            }
        }
        a.additional_version_strategy = s;
    }
    if !a.additional_version_weights.is_empty() && !a.additional_version_strategy.is_empty() {
        return Err(ApiError::bad_request(
            "use additional_version_weights or additional_version_strategy, not both",
        ));
    }
    Ok(())
}

pub async fn create(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: AliasBody = parse_json(&body)?;
    let name = b.name.clone().unwrap_or_default();
    if !validate::alias_name_ok(&name) {
        return Err(ApiError::bad_request(format!(
            "alias name {name:?} is invalid: start with a letter; at most 63 letters, digits, '-' or '_'"
        )));
    }
    let now = now_ms();
    let mut a = AliasRecord {
        name,
        version: String::new(),
        description: String::new(),
        additional_version_weights: BTreeMap::new(),
        additional_version_strategy: BTreeMap::new(),
        created_ms: now,
        modified_ms: now,
    };
    apply(&mut a, b)?;
    state
        .catalog
        .put_alias(&project, &r.package, &r.name, a.clone(), true, ALIASES_MAX)
        .await?;
    Ok(Json(alias_json(
        &a,
        &project,
        &r.package,
        &r.name,
        &state.region,
    )))
}

async fn find(
    state: &SharedState,
    project: &str,
    r: &fgs_core::FunctionRef,
    alias: &str,
) -> ApiResult<AliasRecord> {
    let q = Qualifier::Alias(alias.to_string());
    match find_stored(&state.store, &key_of(project, r), &q).await? {
        Found::Alias(a) => Ok(a),
        Found::Function { .. } => Err(ResolveError::AliasNotFound {
            name: r.name.clone(),
            alias: alias.to_string(),
        }
        .into()),
    }
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let all = state
        .store
        .list_aliases(&project, &r.package, &r.name)
        .await?;
    Ok(Json(Value::Array(
        all.iter()
            .map(|a| alias_json(a, &project, &r.package, &r.name, &state.region))
            .collect(),
    )))
}

pub async fn get(
    State(state): State<SharedState>,
    Path((project, urn, alias)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let a = find(&state, &project, &r, &alias).await?;
    Ok(Json(alias_json(
        &a,
        &project,
        &r.package,
        &r.name,
        &state.region,
    )))
}

pub async fn update(
    State(state): State<SharedState>,
    Path((project, urn, alias)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: AliasBody = parse_json(&body)?;
    let mut a = find(&state, &project, &r, &alias).await?;
    apply(&mut a, b)?;
    a.modified_ms = now_ms();
    state
        .catalog
        .put_alias(&project, &r.package, &r.name, a.clone(), false, ALIASES_MAX)
        .await?;
    Ok(Json(alias_json(
        &a,
        &project,
        &r.package,
        &r.name,
        &state.region,
    )))
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, urn, alias)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    // Its triggers go with it: a trigger must not outlive what it fires.
    state
        .catalog
        .delete_alias(&project, &r.package, &r.name, &alias)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
