//! What every handler shares, and the storage-backed [`FunctionSource`] the invoker resolves
//! functions through on a cache miss.

use std::sync::Arc;

use fgs_core::Qualifier;
use fgs_invoke::{
    AsyncDispatcher, FunctionKey, FunctionSource, Invoker, Resolution, ResolveError,
    ResolvedFunction,
};
use fgs_package::PackageStore;
use fgs_store::Store;

use crate::auth::Keyring;
use crate::error::chain;

pub struct AppState {
    pub store: Store,
    pub packages: PackageStore,
    pub invoker: Arc<Invoker<StoreSource>>,
    pub dispatcher: Arc<AsyncDispatcher<Invoker<StoreSource>>>,
    pub keyring: Keyring,
    pub region: String,
    /// What the host lets fgs enforce, reported by `GET /healthz`.
    pub isolation: serde_json::Value,
    /// What each runtime name runs on here; creating a function of a missing one is refused.
    pub runtimes: Arc<fgs_core::runtime::RuntimeTable>,
    /// The running side of triggers: APIG routes and the timer scheduler.
    pub triggers: Arc<crate::triggers::TriggerHub>,
    /// `GET /metrics` answers without credentials (`--metrics-public`, docs/metrics.md).
    pub metrics_public: bool,
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
    ) -> Result<Resolution, ResolveError> {
        let internal = |e: fgs_store::StoreError| ResolveError::Internal(chain(&e));
        let (rec, version) = match qualifier {
            Qualifier::Latest => {
                let rec = self
                    .store
                    .get_function(&key.project, &key.package, &key.name)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| ResolveError::FunctionNotFound(key.name.clone()))?;
                (rec, fgs_core::urn::LATEST.to_string())
            }
            Qualifier::Version(v) => {
                let found = self
                    .store
                    .get_version(&key.project, &key.package, &key.name, v)
                    .await
                    .map_err(internal)?;
                let Some(found) = found else {
                    return Err(self
                        .missing(
                            key,
                            ResolveError::VersionNotFound {
                                name: key.name.clone(),
                                version: v.clone(),
                            },
                        )
                        .await);
                };
                (found.function, found.version)
            }
            Qualifier::Alias(a) => {
                let aliases = match self
                    .store
                    .list_aliases(&key.project, &key.package, &key.name)
                    .await
                {
                    Err(fgs_store::StoreError::FunctionNotFound { .. }) => {
                        return Err(ResolveError::FunctionNotFound(key.name.clone()))
                    }
                    other => other.map_err(internal)?,
                };
                return aliases
                    .into_iter()
                    .find(|x| &x.name == a)
                    .map(Resolution::Alias)
                    .ok_or_else(|| ResolveError::AliasNotFound {
                        name: key.name.clone(),
                        alias: a.clone(),
                    });
            }
        };
        let mut dep_shas = Vec::new();
        for id in &rec.spec.depend_version_list {
            let dv = self
                .store
                .get_dependency_version(&key.project, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    ResolveError::Internal(format!("dependency version {id} no longer exists"))
                })?;
            dep_shas.push(dv.sha256);
        }
        let packages = self.packages.clone();
        let sha = rec.code.sha256.clone();
        // Unpacking is file work: keep it off the async workers.
        let unpacked = tokio::task::spawn_blocking(move || {
            let code_dir = packages.unpack(&sha)?;
            let deps = dep_shas
                .iter()
                .map(|s| packages.unpack(s))
                .collect::<Result<Vec<_>, _>>()?;
            let merged = if dep_shas.is_empty() {
                None
            } else {
                Some(packages.merged(&dep_shas)?)
            };
            Ok::<_, fgs_package::PackageError>((code_dir, deps, merged))
        })
        .await
        .map_err(|e| ResolveError::Internal(e.to_string()))?
        .map_err(|e| ResolveError::Internal(chain(&e)))?;
        let (code_dir, dependencies, dependency_dir) = unpacked;
        Ok(Resolution::Function(ResolvedFunction {
            record: Arc::new(rec),
            version,
            code_dir,
            dependency_dir,
            dependencies,
        }))
    }
}

impl StoreSource {
    /// A missing version of an existing function, or a missing function.
    async fn missing(&self, key: &FunctionKey, version_missing: ResolveError) -> ResolveError {
        match self
            .store
            .get_function(&key.project, &key.package, &key.name)
            .await
        {
            Ok(Some(_)) => version_missing,
            _ => ResolveError::FunctionNotFound(key.name.clone()),
        }
    }
}
