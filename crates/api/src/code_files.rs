//! [FGS] The files of a function's code package, for the console's code view:
//! `GET /functions/{urn}/code/files` lists the entries of the code zip and the extensions the
//! function starts (SPEC.md 5: `extension/extension*.sh` in its dependencies and its code);
//! `GET /functions/{urn}/code/files/content?path=` reads one file (at most 1 MB). Both are
//! authenticated and project-scoped like the rest of `/v2`.

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::records::load;
use crate::request::function_ref;
use crate::state::SharedState;

/// The largest file the code view reads.
const FILE_MAX: u64 = 1024 * 1024;

async fn read_zip(state: &SharedState, sha: String) -> ApiResult<Vec<u8>> {
    let packages = state.packages.clone();
    Ok(tokio::task::spawn_blocking(move || packages.read(&sha))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??)
}

/// Extension start scripts in a zip's `extension/` folder, by name (SPEC.md 5).
fn extensions_in(zip: &[u8]) -> ApiResult<Vec<String>> {
    let mut v: Vec<String> = fgs_package::list_entries(zip)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| {
            let file = e.name.strip_prefix("extension/")?;
            (file.starts_with("extension") && file.ends_with(".sh") && !file.contains('/'))
                .then(|| file.to_string())
        })
        .collect();
    v.sort();
    Ok(v)
}

pub async fn list(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = load(&state, &project, &r).await?;
    let zip = read_zip(&state, rec.code.sha256.clone()).await?;
    let files: Vec<Value> = fgs_package::list_entries(&zip)?
        .into_iter()
        .map(|e| json!({"name": e.name, "size": e.size, "is_dir": e.is_dir}))
        .collect();
    // Dependencies first, in list order, then the code's: the order they start in.
    let mut extensions = Vec::new();
    for id in &rec.spec.depend_version_list {
        let Some(dv) = state.store.get_dependency_version(&project, id).await? else {
            continue;
        };
        let dzip = read_zip(&state, dv.sha256.clone()).await?;
        for name in extensions_in(&dzip)? {
            extensions.push(json!({
                "name": name,
                "source": "dependency",
                "dependency": dv.name,
                "dependency_version": dv.version,
            }));
        }
    }
    for name in extensions_in(&zip)? {
        extensions.push(json!({"name": name, "source": "code"}));
    }
    Ok(Json(json!({
        "code_type": rec.code.code_type.as_str(),
        "files": files,
        "extensions": extensions,
    })))
}

#[derive(Debug, Deserialize)]
pub struct FileQuery {
    path: String,
}

pub async fn read(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = load(&state, &project, &r).await?;
    let zip = read_zip(&state, rec.code.sha256.clone()).await?;
    let Some(bytes) = fgs_package::read_entry(&zip, &q.path, FILE_MAX)? else {
        return Err(ApiError::not_found(format!(
            "the code package has no file {:?}",
            q.path
        )));
    };
    let (encoding, content) = match String::from_utf8(bytes) {
        Ok(s) => ("utf-8", s),
        Err(e) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
        ),
    };
    Ok(Json(
        json!({"path": q.path, "encoding": encoding, "content": content}),
    ))
}
