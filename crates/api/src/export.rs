//! Exporting a function to a zip a user can keep, and creating a function from one
//! (`GET /functions/{urn}/export`, `POST /functions/import`, docs/api.md).
//!
//! The export is a zip of `function.json` (the function object of `GET .../config` with its
//! `tags`) and `code.zip` (the stored code package, byte for byte, so the imported function has
//! the same `digest`). FunctionGraph's own export is a zip of the code and a configuration file
//! too; its configuration file's layout is not published, so fgs writes its own function
//! object, which any fgs imports.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use fgs_core::function::CodeType;
use fgs_core::limits;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::functions::create_function;
use crate::records::load;
use crate::request::{function_ref, parse_json};
use crate::state::SharedState;
use crate::wire::{self, CreateBody, FuncCode};

/// The configuration inside an export.
const CONFIG: &str = "function.json";
/// The code package inside an export.
const CODE: &str = "code.zip";
/// The largest `function.json` an import reads.
const CONFIG_MAX: u64 = 256 * 1024;

/// What `config`, `code` and `type` ask for: (config, code).
fn parts(q: &HashMap<String, String>) -> ApiResult<(bool, bool)> {
    let flag = |k: &str| -> ApiResult<bool> {
        match q.get(k).map(String::as_str) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "{k} {v:?} is invalid: use true or false"
            ))),
        }
    };
    let (config, code) = (flag("config")?, flag("code")?);
    match q.get("type").map(String::as_str).filter(|t| !t.is_empty()) {
        Some(_) if config || code => Err(ApiError::bad_request(
            "type cannot be combined with config or code",
        )),
        Some("code") => Ok((false, true)),
        Some("config") => Ok((true, false)),
        Some(t) => Err(ApiError::bad_request(format!(
            "type {t:?} is invalid: use code or config"
        ))),
        None if config || code => Ok((config, code)),
        None => Err(ApiError::bad_request(
            "say what to export: type=code, type=config, or code=true and/or config=true",
        )),
    }
}

pub async fn export(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let (config, code) = parts(&q)?;
    let r = function_ref(&project, &urn)?;
    let rec = load(&state, &project, &r).await?;
    let mut object = wire::function_json(&rec, &state.region);
    object["tags"] = rec
        .meta
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let config_bytes = serde_json::to_vec_pretty(&object)
        .map_err(|e| ApiError::internal(format!("encoding {CONFIG}: {e}")))?;
    let packages = state.packages.clone();
    let sha = rec.code.sha256.clone();
    let zip = tokio::task::spawn_blocking(move || {
        let code_bytes = if code {
            packages.read(&sha)?
        } else {
            Vec::new()
        };
        let mut files: Vec<(&str, &[u8], u32)> = Vec::new();
        if config {
            files.push((CONFIG, &config_bytes, 0o644));
        }
        if code {
            files.push((CODE, &code_bytes, 0o644));
        }
        fgs_package::files_zip(&files)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let disposition = format!("attachment; filename=\"{}.zip\"", rec.name);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        zip,
    )
        .into_response())
}

/// `ImportFunctionRequestBody`.
#[derive(Debug, Deserialize)]
struct ImportBody {
    func_name: Option<String>,
    #[serde(default)]
    file_name: String,
    #[serde(default)]
    file_type: Option<String>,
    file_code: Option<String>,
    package: Option<String>,
}

/// The create body an export's `function.json` and `code.zip` make, named as the import asks.
fn create_body(zip: &[u8], name: Option<String>, package: Option<String>) -> ApiResult<CreateBody> {
    let refused = |what: &str| {
        ApiError::bad_request(format!(
            "file_code is not a function export: {what} (export one with GET .../export?code=true&config=true)"
        ))
    };
    let config = fgs_package::read_entry(zip, CONFIG, CONFIG_MAX)?
        .ok_or_else(|| refused(&format!("it has no {CONFIG}")))?;
    let code = fgs_package::read_entry(zip, CODE, limits::ZIP_CODE_MAX as u64)?
        .ok_or_else(|| refused(&format!("it has no {CODE}")))?;
    let mut body: CreateBody = serde_json::from_slice(&config)
        .map_err(|e| refused(&format!("{CONFIG} is not a function object: {e}")))?;
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        body.func_name = Some(n);
    }
    if let Some(p) = package.filter(|p| !p.is_empty()) {
        body.package = Some(p);
    }
    // Inline code is stored as a one-file package: give back the file it was made of.
    let file = if body.code_type.as_deref() == Some(CodeType::Inline.as_str()) {
        let name = body.code_filename.clone().unwrap_or_default();
        fgs_package::read_entry(&code, &name, limits::INLINE_CODE_MAX as u64)?
            .ok_or_else(|| refused(&format!("its inline code has no file {name:?}")))?
    } else {
        code
    };
    body.func_code = Some(FuncCode {
        file: Some(base64::engine::general_purpose::STANDARD.encode(file)),
        link: None,
    });
    Ok(body)
}

pub async fn import(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: ImportBody = parse_json(&body)?;
    if let Some(t) = b
        .file_type
        .as_deref()
        .filter(|t| !t.is_empty() && *t != "zip")
    {
        return Err(ApiError::bad_request(format!(
            "file_type {t:?} is invalid: fgs imports zip exports"
        )));
    }
    let code = b
        .file_code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("file_code is required"))?;
    if code.len() / 4 * 3 > limits::ZIP_CODE_MAX + CONFIG_MAX as usize {
        return Err(ApiError::bad_request(format!(
            "file_code {} is over the limit of a function export",
            b.file_name
        )));
    }
    let zip = base64::engine::general_purpose::STANDARD
        .decode(code.trim())
        .map_err(|e| ApiError::bad_request(format!("file_code is not valid base64: {e}")))?;
    let (name, package) = (b.func_name, b.package);
    let create = tokio::task::spawn_blocking(move || create_body(&zip, name, package))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let rec = create_function(&state, &project, &create).await?;
    tracing::info!(project, name = rec.name, "function imported");
    Ok(Json(wire::function_json(&rec, &state.region)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn what_to_export() {
        assert_eq!(parts(&q(&[("type", "code")])).unwrap(), (false, true));
        assert_eq!(parts(&q(&[("type", "config")])).unwrap(), (true, false));
        let both = q(&[("code", "true"), ("config", "true")]);
        assert_eq!(parts(&both).unwrap(), (true, true));
        assert_eq!(parts(&q(&[("code", "true")])).unwrap(), (false, true));
        for bad in [
            q(&[]),
            q(&[("type", "all")]),
            q(&[("type", "code"), ("code", "true")]),
            q(&[("code", "yes")]),
        ] {
            assert!(parts(&bad).is_err(), "{bad:?}");
        }
    }
}
