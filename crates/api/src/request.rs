//! What every handler takes from a request: the function reference of the path, a JSON body,
//! and the time.

use std::time::{SystemTime, UNIX_EPOCH};

use fgs_core::FunctionRef;
use fgs_invoke::FunctionKey;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_json(&e))
}

/// A function reference from the path, checked against the path's project.
pub fn function_ref(project: &str, urn: &str) -> ApiResult<FunctionRef> {
    let r = FunctionRef::parse(urn)?;
    if let Some(p) = &r.project {
        if p != project {
            return Err(ApiError::forbidden(format!(
                "function URN names project {p}, not the project {project} of the path"
            )));
        }
    }
    Ok(r)
}

pub fn key_of(project: &str, r: &FunctionRef) -> FunctionKey {
    FunctionKey {
        project: project.to_string(),
        package: r.package.clone(),
        name: r.name.clone(),
    }
}
