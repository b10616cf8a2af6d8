//! Function CRUD (SPEC.md 2): create, list, config and code get/put, delete, limits, quotas.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use fgs_core::function::{CodeInfo, CodeType, Reserved};
use fgs_core::limits::{self, FUNCTIONS_PER_PROJECT};
use fgs_core::runtime::RuntimeTable;
use fgs_core::{validate, FunctionRecord, FunctionSpec, Invalid, Qualifier, Runtime};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::function_code::{
    check_dependencies, code_package, dependencies_exist, discard_package, store_package,
};
use crate::records::{load, save};
use crate::request::{function_ref, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire::{self, CreateBody, FuncCode};

/// A zip archive with no entries (its end-of-central-directory record alone).
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// A runtime this fgs can start instances of: Custom and http always, Python and Node.js when
/// an interpreter of the language was found at start-up (SPEC.md 4, refused with FSS.1005).
fn runtime_available(runtimes: &RuntimeTable, rt: Runtime) -> Result<(), Invalid> {
    runtimes
        .check(rt)
        .map_err(|why| Invalid::RuntimeUnavailable(rt.to_string(), why))
}

/// Applies the fields of a create or config body onto a spec, validating each.
fn apply_config(
    spec: &mut FunctionSpec,
    b: &CreateBody,
    runtimes: &RuntimeTable,
) -> ApiResult<Runtime> {
    if let Some(rt) = &b.runtime {
        spec.runtime = validate::runtime(rt)?;
        runtime_available(runtimes, spec.runtime)?;
    }
    let runtime = spec.runtime;
    if let Some(h) = &b.handler {
        spec.handler = h.clone();
    }
    // Custom and http functions run `bootstrap` whatever the handler says: one that is not
    // given at all defaults to it; one given empty is refused like any bad handler (FSS.1003).
    if spec.handler.is_empty() && b.handler.is_none() && !runtime.needs_module_handler() {
        spec.handler = "bootstrap".to_string();
    }
    validate::handler(runtime, &spec.handler)?;
    if let Some(m) = b.memory_size {
        spec.memory_size = validate::memory_size(m)?;
    }
    if let Some(t) = b.timeout {
        spec.timeout = validate::timeout(t)?;
    }
    if let Some(u) = &b.user_data {
        validate::user_data(u)?;
        spec.user_data = u.clone();
    }
    if let Some(u) = &b.encrypted_user_data {
        validate::user_data(u)?;
        spec.encrypted_user_data = u.clone();
    }
    if let Some(d) = &b.description {
        if d.chars().count() > limits::DESCRIPTION_MAX {
            return Err(Invalid::Parameter(format!(
                "description is over {} characters",
                limits::DESCRIPTION_MAX
            ))
            .into());
        }
        spec.description = d.clone();
    }
    if let Some(h) = &b.initializer_handler {
        validate::initializer_handler(runtime, h)?;
        spec.initializer_handler = h.clone();
    }
    if let Some(t) = b.initializer_timeout {
        if t != 0 || !spec.initializer_handler.is_empty() {
            spec.initializer_timeout = validate::initializer_timeout(t)?;
        }
    }
    if !spec.initializer_handler.is_empty() && spec.initializer_timeout == 0 {
        return Err(Invalid::InitializerTimeout(0).into());
    }
    if let Some(h) = &b.pre_stop_handler {
        if !h.is_empty() {
            validate::handler(runtime, h)?;
        }
        spec.pre_stop_handler = h.clone();
    }
    if let Some(t) = b.pre_stop_timeout {
        if !(0..=i64::from(limits::PRE_STOP_TIMEOUT_MAX)).contains(&t) {
            return Err(Invalid::Parameter(format!(
                "pre_stop_timeout {t} is invalid: use 0 to {} seconds",
                limits::PRE_STOP_TIMEOUT_MAX
            ))
            .into());
        }
        spec.pre_stop_timeout = t as u32;
    }
    if let Some(sc) = &b.strategy_config {
        if let Some(n) = sc.concurrent_num {
            if !(1..=i64::from(limits::CONCURRENT_NUM_MAX)).contains(&n) {
                return Err(Invalid::Parameter(format!(
                    "strategy_config.concurrent_num {n} is invalid: use 1 to 1000"
                ))
                .into());
            }
            spec.strategy_config.concurrent_num = n as u32;
        }
        if let Some(c) = sc.concurrency {
            if !(-1..=i64::from(limits::MAX_INSTANCE_NUM_MAX)).contains(&c) {
                return Err(Invalid::Parameter(format!(
                    "strategy_config.concurrency {c} is invalid: use -1 to 1000"
                ))
                .into());
            }
            spec.strategy_config.concurrency = c as i32;
        }
    }
    if let Some(d) = b
        .network_controller
        .as_ref()
        .and_then(|n| n.disable_public_network)
    {
        spec.disable_public_network = d;
    }
    if let Some(list) = &b.depend_version_list {
        check_dependencies(list)?;
        spec.depend_version_list = list.clone();
    }
    apply_image(spec, b)?;
    Ok(runtime)
}

/// The image of an image function: `runtime: "Custom Image"` (an event function) needs one;
/// `runtime: "http"` with an enabled `custom_image` is an HTTP function from an image; other
/// runtimes take none. A new or changed image is left unresolved (empty digest) for
/// [`resolve_image`].
fn apply_image(spec: &mut FunctionSpec, b: &CreateBody) -> ApiResult<()> {
    if let Some(ci) = &b.custom_image {
        if ci.enabled == Some(false) {
            spec.custom_image = None;
        } else {
            let old = spec.custom_image.as_ref();
            let text = |v: &Option<String>, old: Option<&String>| {
                v.clone().or(old.cloned()).unwrap_or_default()
            };
            let image = fgs_core::image::CustomImage::new(
                &text(&ci.image, old.map(|o| &o.image)),
                &text(&ci.command, old.map(|o| &o.command)),
                &text(&ci.args, old.map(|o| &o.args)),
                &text(&ci.working_dir, old.map(|o| &o.working_dir)),
                ci.uid.as_ref(),
                ci.gid.as_ref(),
            )?;
            fgs_image::Reference::parse(&image.image)?;
            spec.custom_image = Some(image);
        }
    }
    match (spec.runtime, &spec.custom_image) {
        (Runtime::CustomImage, None) => Err(Invalid::Parameter(
            "runtime Custom Image needs custom_image with enabled true and an image".into(),
        )
        .into()),
        (Runtime::CustomImage | Runtime::Http, _) | (_, None) => Ok(()),
        (rt, Some(_)) => Err(Invalid::Parameter(format!(
            "custom_image is for runtime Custom Image (event functions) or http (HTTP functions), not {rt}"
        ))
        .into()),
    }
}

/// Pulls the function's image when the request named one: the tag is resolved to a digest now
/// (so an update with the same tag moves new instances to what the tag names today) and the
/// image is unpacked before the function is stored.
async fn resolve_image(
    state: &SharedState,
    spec: &mut FunctionSpec,
    b: &CreateBody,
) -> ApiResult<()> {
    let Some(ci) = spec.custom_image.as_mut() else {
        return Ok(());
    };
    if b.custom_image.is_none() && !ci.digest.is_empty() {
        return Ok(());
    }
    let reference = fgs_image::Reference::parse(&ci.image)?;
    let unpacked = state.images.pull(&reference).await?;
    ci.digest = unpacked.digest.to_string();
    tracing::info!(image = ci.image, digest = ci.digest, "image resolved");
    Ok(())
}

pub async fn create(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: CreateBody = parse_json(&body)?;
    let rec = create_function(&state, &project, &b).await?;
    Ok(Json(wire::function_json(&rec, &state.region)))
}

/// Creates the demo Custom function `name` unless it exists.
pub async fn create_demo_function(
    state: &SharedState,
    project: &str,
    name: &str,
    bootstrap: &[u8],
) -> ApiResult<()> {
    if state
        .store
        .get_function(project, fgs_core::DEFAULT_PACKAGE, name)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let b = CreateBody {
        func_name: Some(name.to_string()),
        runtime: Some("Custom".into()),
        handler: Some("bootstrap".into()),
        timeout: Some(30),
        memory_size: Some(128),
        code_type: Some("inline".into()),
        func_code: Some(FuncCode {
            file: Some(base64::engine::general_purpose::STANDARD.encode(bootstrap)),
            link: None,
        }),
        description: Some("fgs demo: a Custom runtime in POSIX sh".into()),
        ..CreateBody::default()
    };
    create_function(state, project, &b).await.map(|_| ())
}

pub(crate) async fn create_function(
    state: &SharedState,
    project: &str,
    b: &CreateBody,
) -> ApiResult<FunctionRecord> {
    let project = project.to_string();
    let name = b.func_name.clone().unwrap_or_default();
    if !validate::func_name_ok(&name) {
        return Err(Invalid::FuncName(name).into());
    }
    let package = b
        .package
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| fgs_core::DEFAULT_PACKAGE.to_string());
    if !validate::package_name_ok(&package) {
        return Err(Invalid::Package(package).into());
    }
    let runtime = match b.runtime.as_deref() {
        None | Some("") => {
            return Err(Invalid::Runtime(String::new(), "see the documentation".into()).into())
        }
        Some(rt) => validate::runtime(rt)?,
    };
    let mut spec = FunctionSpec::new(runtime);
    let runtime = apply_config(&mut spec, b, &state.runtimes)?;
    resolve_image(state, &mut spec, b).await?;
    let tags = match &b.tags {
        Some(t) => fgs_core::tags::add(&Default::default(), &fgs_core::tags::parse_create(t)?)?,
        None => Default::default(),
    };
    dependencies_exist(state, &project, &spec.depend_version_list).await?;
    let (code_type, filename, zip) = if spec.custom_image.is_some() {
        // An image function's code is its image: it keeps an empty package, so that code and
        // versions are handled as for every function.
        (CodeType::Zip, String::new(), EMPTY_ZIP.to_vec())
    } else {
        code_package(
            runtime,
            b.code_type.as_deref(),
            b.code_filename.as_deref(),
            b.func_code.as_ref(),
        )?
    };
    let stored = store_package(state, zip).await?;
    let now = now_ms();
    let rec = FunctionRecord {
        project: project.clone(),
        package,
        name,
        func_id: uuid::Uuid::new_v4().to_string(),
        spec,
        code: CodeInfo {
            code_type,
            code_filename: filename,
            sha256: stored.sha256.clone(),
            digest: stored.digest,
            size: stored.size,
        },
        reserved: Reserved::default(),
        created_ms: now,
        modified_ms: now,
        revision: 1,
        async_config: None,
        meta: fgs_core::function::FunctionMeta {
            tags,
            ..Default::default()
        },
    };
    if let Err(e) = state
        .catalog
        .create_function(rec.clone(), FUNCTIONS_PER_PROJECT)
        .await
    {
        discard_package(state, &stored.sha256).await;
        return Err(e.into());
    }
    tracing::info!(
        project,
        package = rec.package,
        name = rec.name,
        "function created"
    );
    Ok(rec)
}

pub async fn list(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let num = |k: &str, default: u64, max: u64| -> ApiResult<u64> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                ApiError::bad_request(format!("{k} {v:?} is invalid: use 0 to {max}"))
            }),
        }
    };
    let marker = num("marker", 0, u64::MAX)?;
    let maxitems = num("maxitems", 400, 400)?.max(1);
    let package = q
        .get("package_name")
        .filter(|p| !p.is_empty())
        .map(String::as_str);
    let page = state
        .store
        .list_functions(&project, package, marker, maxitems)
        .await?;
    let functions: Vec<Value> = page
        .functions
        .iter()
        .map(|r| wire::function_json(r, &state.region))
        .collect();
    Ok(Json(json!({
        "functions": functions,
        "next_marker": page.next_marker,
        "count": page.count,
    })))
}

pub async fn get_config(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = load(&state, &project, &r).await?;
    Ok(Json(wire::function_json(&rec, &state.region)))
}

pub async fn put_config(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: CreateBody = parse_json(&body)?;
    let mut rec = load(&state, &project, &r).await?;
    if let Some(n) = &b.func_name {
        if n != &rec.name {
            return Err(Invalid::FuncName(format!("{n} (a function cannot be renamed)")).into());
        }
    }
    apply_config(&mut rec.spec, &b, &state.runtimes)?;
    dependencies_exist(&state, &project, &rec.spec.depend_version_list).await?;
    resolve_image(&state, &mut rec.spec, &b).await?;
    let rec = save(&state, rec).await?;
    Ok(Json(wire::function_json(&rec, &state.region)))
}

pub async fn delete(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Response> {
    let r = function_ref(&project, &urn)?;
    match &r.qualifier {
        Some(Qualifier::Version(v)) => {
            // Its triggers go with it: a trigger must not outlive what it fires.
            state
                .catalog
                .delete_version(&project, &r.package, &r.name, v)
                .await?;
            tracing::info!(project, name = r.name, version = v, "version deleted");
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Some(Qualifier::Alias(a)) => {
            return Err(ApiError::bad_request(format!(
                "!{a} names an alias: delete it with DELETE /functions/{{urn}}/aliases/{a}"
            )));
        }
        _ => {}
    }
    let deleted = state
        .catalog
        .delete_function(&project, &r.package, &r.name)
        .await?;
    if deleted.is_none() {
        return Err(ApiError::function_not_found(&r.name));
    }
    tracing::info!(
        project,
        package = r.package,
        name = r.name,
        "function deleted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /functions/{urn}/collect/{state}`: pins (`true`) or unpins (`false`) a function.
pub async fn collect(
    State(state): State<SharedState>,
    Path((project, urn, pin)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let pinned = match pin.as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "state {other:?} is invalid: use true or false"
            )))
        }
    };
    let r = function_ref(&project, &urn)?;
    let mut rec = crate::records::latest(&state, &project, &r).await?;
    if rec.meta.pinned != pinned {
        rec.meta.pinned = pinned;
        save(&state, rec).await?;
    }
    Ok(Json(json!({})))
}
