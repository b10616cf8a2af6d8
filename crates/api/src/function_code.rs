//! What a function runs: `GET`/`PUT /functions/{urn}/code` (SPEC.md 2), decoding and storing
//! code packages, and checking a dependency list.

use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use fgs_core::function::{CodeInfo, CodeType};
use fgs_core::limits;
use fgs_core::{Invalid, Runtime};
use serde_json::{json, Value};

use crate::error::{code, ApiError, ApiResult};
use crate::records::{load, save};
use crate::request::{function_ref, parse_json};
use crate::state::SharedState;
use crate::wire::{self, CodeBody, FuncCode};

/// Decodes `func_code` into the zip that is stored, checking the size limits (SPEC.md 6).
pub(crate) fn code_package(
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

pub(crate) async fn store_package(
    state: &SharedState,
    zip: Vec<u8>,
) -> ApiResult<fgs_package::StoredPackage> {
    let packages = state.packages.clone();
    Ok(tokio::task::spawn_blocking(move || packages.put(&zip))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??)
}

/// Removes a package stored by a request that then failed, unless a function uses it.
pub(crate) async fn discard_package(state: &SharedState, sha256: &str) {
    if let Ok(false) = state.store.package_referenced(sha256).await {
        let packages = state.packages.clone();
        let sha = sha256.to_string();
        let _ = tokio::task::spawn_blocking(move || packages.remove(&sha)).await;
    }
}

/// The shape of `depend_version_list`: at most 20 ids (SPEC.md 6), none twice.
pub(crate) fn check_dependencies(list: &[String]) -> ApiResult<()> {
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
pub(crate) async fn dependencies_exist(
    state: &SharedState,
    project: &str,
    list: &[String],
) -> ApiResult<()> {
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
        rec.spec.runtime,
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
