//! Functions as storage has them: [`find`] is the one place a qualifier becomes a stored record
//! (or FunctionGraph's "no such function, version or alias"), and [`StoreSource`] is the
//! [`FunctionSource`] fgs resolves invocations through: the record, its code and dependencies
//! unpacked, and the dependencies merged into one tree.

use std::sync::Arc;

use fgs_core::flows::AliasRecord;
use fgs_core::{FunctionRecord, Qualifier};
use fgs_package::PackageStore;
use fgs_store::{Store, StoreError};

use crate::{FunctionKey, FunctionSource, Resolution, ResolveError, ResolvedFunction};

/// What a qualifier names in storage.
#[derive(Debug, Clone)]
pub enum Found {
    /// `latest` or a published version: its (frozen, for a version) record.
    Function {
        record: Box<FunctionRecord>,
        version: String,
    },
    Alias(AliasRecord),
}

/// The stored record or alias `qualifier` names; a missing function is told apart from a
/// missing version or alias of an existing one.
pub async fn find(store: &Store, key: &FunctionKey, q: &Qualifier) -> Result<Found, ResolveError> {
    let (project, package, name) = (&key.project, &key.package, &key.name);
    let function_missing = || ResolveError::FunctionNotFound(name.clone());
    match q {
        Qualifier::Latest => {
            let record = store
                .get_function(project, package, name)
                .await?
                .ok_or_else(function_missing)?;
            Ok(Found::Function {
                record: Box::new(record),
                version: fgs_core::urn::LATEST.to_string(),
            })
        }
        Qualifier::Version(v) => match store.get_version(project, package, name, v).await? {
            Some(found) => {
                let mut record = found.function;
                // Tracing is switched per function, on `latest` (`PUT .../tracing`): a
                // published version's frozen snapshot follows the current switch.
                if let Some(latest) = store.get_function(project, package, name).await? {
                    record.meta.tracing = latest.meta.tracing;
                }
                Ok(Found::Function {
                    record: Box::new(record),
                    version: found.version,
                })
            }
            None => match store.get_function(project, package, name).await? {
                Some(_) => Err(ResolveError::VersionNotFound {
                    name: name.clone(),
                    version: v.clone(),
                }),
                None => Err(function_missing()),
            },
        },
        Qualifier::Alias(a) => {
            let aliases = match store.list_aliases(project, package, name).await {
                Err(StoreError::FunctionNotFound { .. }) => return Err(function_missing()),
                other => other?,
            };
            aliases
                .into_iter()
                .find(|x| &x.name == a)
                .map(Found::Alias)
                .ok_or_else(|| ResolveError::AliasNotFound {
                    name: name.clone(),
                    alias: a.clone(),
                })
        }
    }
}

/// Resolves invocations from storage and the package store.
pub struct StoreSource {
    pub store: Store,
    pub packages: PackageStore,
    /// Where image functions' images are unpacked (pulled again by digest if missing).
    pub images: Arc<fgs_image::Images>,
}

impl FunctionSource for StoreSource {
    async fn resolve(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> Result<Resolution, ResolveError> {
        let (rec, version) = match find(&self.store, key, qualifier).await? {
            Found::Function { record, version } => (record, version),
            Found::Alias(a) => return Ok(Resolution::Alias(a)),
        };
        let mut dep_shas = Vec::new();
        for id in &rec.spec.depend_version_list {
            let dv = self
                .store
                .get_dependency_version(&key.project, id)
                .await?
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
        .map_err(|e| ResolveError::Internal(crate::error_chain(&e)))?;
        let (code_dir, dependencies, dependency_dir) = unpacked;
        let image = match &rec.spec.custom_image {
            Some(ci) => Some(image(&self.images, ci).await?),
            None => None,
        };
        Ok(Resolution::Function(ResolvedFunction {
            record: Arc::from(rec),
            version,
            code_dir,
            dependency_dir,
            dependencies,
            image,
        }))
    }

    async fn reserved(&self) -> Result<Vec<FunctionKey>, ResolveError> {
        Ok(self
            .store
            .all_functions()
            .await?
            .into_iter()
            .filter(|r| r.reserved.count > 0)
            .map(|r| FunctionKey {
                project: r.project,
                package: r.package,
                name: r.name,
            })
            .collect())
    }
}

/// The function's image at the digest it stored: unpacked here already, or pulled by digest.
async fn image(
    images: &fgs_image::Images,
    ci: &fgs_core::image::CustomImage,
) -> Result<fgs_image::Unpacked, ResolveError> {
    let fail =
        |e: fgs_image::ImageError| ResolveError::Internal(format!("image {}: {e}", ci.image));
    let reference = fgs_image::Reference::parse(&ci.image).map_err(fail)?;
    let digest = fgs_image::Digest::parse(&ci.digest).map_err(fail)?;
    images
        .pull(&reference.with_digest(&digest))
        .await
        .map_err(fail)
}
