//! Reading and saving function records for handlers: which record a reference names is decided
//! in one place below the api ([`fgs_invoke::source::find`]); saving goes through the
//! [`fgs_store::Catalog`], which publishes the change.

use fgs_core::{FunctionRecord, FunctionRef, Qualifier};
use fgs_invoke::source::{find, Found};
use fgs_invoke::ResolveError;

use crate::error::ApiResult;
use crate::request::{key_of, now_ms};
use crate::state::SharedState;

/// The record a reference names: `latest`, or a published version's frozen snapshot. An alias
/// has no record of its own: it is answered as not found (FSS.1053).
pub(crate) async fn load(
    state: &SharedState,
    project: &str,
    r: &FunctionRef,
) -> ApiResult<FunctionRecord> {
    let q = r.qualifier_or_latest();
    if let Qualifier::Alias(alias) = q {
        return Err(ResolveError::AliasNotFound {
            name: r.name.clone(),
            alias,
        }
        .into());
    }
    match find(&state.store, &key_of(project, r), &q).await? {
        Found::Function { record, .. } => Ok(*record),
        Found::Alias(a) => Err(ResolveError::AliasNotFound {
            name: r.name.clone(),
            alias: a.name,
        }
        .into()),
    }
}

/// The `latest` record of the function a reference names, whatever version it names.
pub(crate) async fn latest(
    state: &SharedState,
    project: &str,
    r: &FunctionRef,
) -> ApiResult<FunctionRecord> {
    match find(&state.store, &key_of(project, r), &Qualifier::Latest).await? {
        Found::Function { record, .. } => Ok(*record),
        Found::Alias(a) => Err(ResolveError::Internal(format!(
            "latest of function {} resolved to alias {}",
            r.name, a.name
        ))
        .into()),
    }
}

/// Saves a changed record; the optimistic revision check makes two concurrent updates one
/// success and one 409 rather than a lost write.
pub(crate) async fn save(
    state: &SharedState,
    mut rec: FunctionRecord,
) -> ApiResult<FunctionRecord> {
    let expected = rec.revision;
    rec.revision += 1;
    rec.modified_ms = now_ms();
    state.catalog.update_function(&rec, expected).await?;
    Ok(rec)
}
