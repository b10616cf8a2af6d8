//! Function CRUD (SPEC.md 2): create, list, config and code get/put, delete, limits, quotas.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
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

use crate::error::{code, ApiError, ApiResult};
use crate::records::{load, save};
use crate::request::{function_ref, now_ms, parse_json};
use crate::state::SharedState;
use crate::wire::{self, CodeBody, CreateBody, FuncCode};

/// A runtime this fgs can start instances of: Custom and http always, Python and Node.js when
/// an interpreter of the language was found at start-up (SPEC.md 4, refused with FSS.1005).
fn runtime_available(runtimes: &RuntimeTable, rt: Runtime) -> Result<(), Invalid> {
    runtimes
        .check(rt)
        .map_err(|why| Invalid::RuntimeUnavailable(rt.to_string(), why))
}

/// Decodes `func_code` into the zip that is stored, checking the size limits (SPEC.md 6).
fn code_package(
    runtime: Runtime,
    code_type: Option<&str>,
    code_filename: Option<&str>,
    func_code: Option<&FuncCode>,
) -> ApiResult<(CodeType, String, Vec<u8>)> {
    let code_type = code_type.ok_or_else(|| Invalid::CodeType(String::new()))?;
    let ct = CodeType::parse(code_type).ok_or_else(|| Invalid::CodeType(code_type.to_string()))?;
    let fc = func_code.ok_or_else(|| ApiError::bad_request("func_code is required"))?;
    if fc.link.as_deref().is_some_and(|l| !l.is_empty())
        && fc.file.as_deref().unwrap_or("").is_empty()
    {
        return Err(ApiError::bad_request(
            "func_code.link is not supported: send the code base64-encoded in func_code.file",
        ));
    }
    let file = fc
        .file
        .as_deref()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("func_code.file is required"))?;
    // Reject oversize input before decoding it (base64 is 4/3 of the bytes).
    let max = match ct {
        CodeType::Inline => limits::INLINE_CODE_MAX,
        CodeType::Zip => limits::ZIP_CODE_MAX,
    };
    let too_large = |n| match ct {
        CodeType::Inline => Invalid::InlineTooLarge(n),
        CodeType::Zip => Invalid::ZipTooLarge(n),
    };
    if file.len() / 4 * 3 > max + 3 {
        return Err(too_large(file.len() / 4 * 3).into());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file.trim())
        .map_err(|e| ApiError::bad_request(format!("func_code.file is not valid base64: {e}")))?;
    if bytes.len() > max {
        return Err(too_large(bytes.len()).into());
    }
    match ct {
        CodeType::Inline => {
            let name = runtime.inline_file_name();
            let mode = if name == "bootstrap" { 0o755 } else { 0o644 };
            let zip = fgs_package::single_file_zip(name, &bytes, mode)?;
            Ok((ct, name.to_string(), zip))
        }
        CodeType::Zip => {
            let filename = code_filename
                .filter(|f| !f.is_empty())
                .ok_or_else(|| ApiError::bad_request("code_filename is required for zip code"))?;
            Ok((ct, filename.to_string(), bytes))
        }
    }
}

async fn store_package(state: &SharedState, zip: Vec<u8>) -> ApiResult<fgs_package::StoredPackage> {
    let packages = state.packages.clone();
    Ok(tokio::task::spawn_blocking(move || packages.put(&zip))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??)
}

/// Removes a package stored by a request that then failed, unless a function uses it.
async fn discard_package(state: &SharedState, sha256: &str) {
    if let Ok(false) = state.store.package_referenced(sha256).await {
        let packages = state.packages.clone();
        let sha = sha256.to_string();
        let _ = tokio::task::spawn_blocking(move || packages.remove(&sha)).await;
    }
}

/// The shape of `depend_version_list`: at most 20 ids (SPEC.md 6), none twice.
fn check_dependencies(list: &[String]) -> ApiResult<()> {
    use fgs_core::dependency::DEPENDENCIES_PER_FUNCTION;
    if list.len() > DEPENDENCIES_PER_FUNCTION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::quota::DEPENDENCIES,
            format!(
                "depend_version_list has {} entries, over the limit of {DEPENDENCIES_PER_FUNCTION}",
                list.len()
            ),
        ));
    }
    for (i, id) in list.iter().enumerate() {
        if list[..i].contains(id) {
            return Err(ApiError::bad_request(format!(
                "dependency version {id} is listed twice"
            )));
        }
    }
    Ok(())
}

/// Every listed dependency version exists in the project.
async fn dependencies_exist(state: &SharedState, project: &str, list: &[String]) -> ApiResult<()> {
    for id in list {
        if state
            .store
            .get_dependency_version(project, id)
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!(
                "dependency version {id} does not exist"
            )));
        }
    }
    Ok(())
}

/// Applies the fields of a create or config body onto a spec, validating each.
fn apply_config(
    spec: &mut FunctionSpec,
    b: &CreateBody,
    runtimes: &RuntimeTable,
) -> ApiResult<Runtime> {
    if let Some(rt) = &b.runtime {
        spec.runtime = rt.clone();
    }
    let runtime = validate::runtime(&spec.runtime)?;
    if b.runtime.is_some() {
        runtime_available(runtimes, runtime)?;
    }
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
    Ok(runtime)
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

async fn create_function(
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
    if b.runtime.as_deref().unwrap_or("").is_empty() {
        return Err(Invalid::Runtime(String::new(), "see the documentation".into()).into());
    }
    let mut spec = FunctionSpec::default();
    let runtime = apply_config(&mut spec, b, &state.runtimes)?;
    dependencies_exist(state, &project, &spec.depend_version_list).await?;
    let (code_type, filename, zip) = code_package(
        runtime,
        b.code_type.as_deref(),
        b.code_filename.as_deref(),
        b.func_code.as_ref(),
    )?;
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
    let rec = save(&state, rec).await?;
    Ok(Json(wire::function_json(&rec, &state.region)))
}

pub async fn get_code(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = load(&state, &project, &r).await?;
    let packages = state.packages.clone();
    let sha = rec.code.sha256.clone();
    let zip = tokio::task::spawn_blocking(move || packages.read(&sha))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    // Inline code is shown as the source the user wrote, zip code as the archive.
    let file = match rec.code.code_type {
        CodeType::Inline => fgs_package::read_entry(
            &zip,
            &rec.code.code_filename,
            limits::INLINE_CODE_MAX as u64,
        )?
        .unwrap_or_default(),
        CodeType::Zip => zip,
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(file);
    Ok(Json(json!({
        "func_urn": wire::function_json(&rec, &state.region)["func_urn"],
        "func_name": rec.name,
        "runtime": rec.spec.runtime,
        "code_type": rec.code.code_type.as_str(),
        "code_url": "",
        "code_filename": rec.code.code_filename,
        "code_size": rec.code.size,
        "digest": rec.code.digest,
        "last_modified": wire::rfc3339_ms(rec.modified_ms),
        "func_code": {"file": b64, "link": ""},
        "depend_version_list": rec.spec.depend_version_list,
        "concurrency": rec.spec.strategy_config.concurrency,
        "concurrent_num": rec.spec.strategy_config.concurrent_num,
    })))
}

pub async fn put_code(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let b: CodeBody = parse_json(&body)?;
    let mut rec = load(&state, &project, &r).await?;
    if let Some(list) = &b.depend_version_list {
        check_dependencies(list)?;
        dependencies_exist(&state, &project, list).await?;
    }
    let (code_type, filename, zip) = code_package(
        rec.spec.runtime(),
        b.code_type.as_deref(),
        b.code_filename.as_deref(),
        b.func_code.as_ref(),
    )?;
    let stored = store_package(&state, zip).await?;
    rec.code = CodeInfo {
        code_type,
        code_filename: filename,
        sha256: stored.sha256.clone(),
        digest: stored.digest,
        size: stored.size,
    };
    if let Some(list) = b.depend_version_list {
        rec.spec.depend_version_list = list;
    }
    let rec = match save(&state, rec).await {
        Ok(rec) => rec,
        Err(e) => {
            discard_package(&state, &stored.sha256).await;
            return Err(e);
        }
    };
    tracing::info!(project, name = rec.name, "function code updated");
    get_code(State(state), Path((project, urn))).await
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
    struct B {
        count: Option<i64>,
        idle_mode: Option<bool>,
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
    rec.reserved = Reserved {
        count: count as u32,
        idle_mode: b.idle_mode.unwrap_or(false),
    };
    let rec = save(&state, rec).await?;
    Ok(Json(json!({
        "count": rec.reserved.count,
        "idle_mode": rec.reserved.idle_mode,
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
