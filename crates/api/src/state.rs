//! What every handler shares, and the storage-backed [`FunctionSource`] the invoker resolves
//! functions through on a cache miss.

use std::sync::Arc;

use fgs_core::Qualifier;
use fgs_invoke::{FunctionKey, FunctionSource, Invoker, ResolveError, ResolvedFunction};
use fgs_package::PackageStore;
use fgs_store::Store;

use crate::auth::Keyring;
use crate::error::chain;

pub struct AppState {
    pub store: Store,
    pub packages: PackageStore,
    pub invoker: Arc<Invoker<StoreSource>>,
    pub keyring: Keyring,
    pub region: String,
    /// What the host lets fgs enforce, reported by `GET /healthz`.
    pub isolation: serde_json::Value,
}

pub type SharedState = Arc<AppState>;

pub struct StoreSource {
    pub store: Store,
    pub packages: PackageStore,
}

impl FunctionSource for StoreSource {
    async fn resolve(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> Result<ResolvedFunction, ResolveError> {
        let rec = self
            .store
            .get_function(&key.project, &key.package, &key.name)
            .await
            .map_err(|e| ResolveError::Internal(chain(&e)))?
            .ok_or_else(|| ResolveError::FunctionNotFound(key.name.clone()))?;
        match qualifier {
            Qualifier::Latest => {}
            Qualifier::Version(v) => {
                return Err(ResolveError::VersionNotFound {
                    name: key.name.clone(),
                    version: v.clone(),
                })
            }
            Qualifier::Alias(a) => {
                return Err(ResolveError::AliasNotFound {
                    name: key.name.clone(),
                    alias: a.clone(),
                })
            }
        }
        let packages = self.packages.clone();
        let sha = rec.code.sha256.clone();
        // Unpacking is file work: keep it off the async workers.
        let code_dir = tokio::task::spawn_blocking(move || packages.unpack(&sha))
            .await
            .map_err(|e| ResolveError::Internal(e.to_string()))?
            .map_err(|e| ResolveError::Internal(chain(&e)))?;
        Ok(ResolvedFunction {
            record: Arc::new(rec),
            version: "latest".to_string(),
            code_dir,
        })
    }
}
