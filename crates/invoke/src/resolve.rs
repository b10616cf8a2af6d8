//! Resolution and routing: a function reference and qualifier to the version that serves it,
//! cached so that a warm invocation never reads storage, and an alias's rules and weights to one
//! of its versions.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fgs_core::flows::AliasRecord;
use fgs_core::{FunctionRecord, Qualifier};

use crate::FunctionKey;

/// What serves invocations of one reference: the configuration of the version it resolves to
/// and its unpacked code.
#[derive(Debug, Clone)]
pub struct ResolvedFunction {
    pub record: Arc<FunctionRecord>,
    /// The version name the reference resolved to (`latest`, or a published version).
    pub version: String,
    pub code_dir: PathBuf,
    /// The function's dependencies merged into one read-only tree, if it has any.
    pub dependency_dir: Option<PathBuf>,
    /// Each dependency's own tree, in list order (extensions are found in these).
    pub dependencies: Vec<PathBuf>,
    /// An image function's image, unpacked on this host.
    pub image: Option<fgs_image::Unpacked>,
}

impl ResolvedFunction {
    pub fn key(&self) -> FunctionKey {
        FunctionKey {
            project: self.record.project.clone(),
            package: self.record.package.clone(),
            name: self.record.name.clone(),
        }
    }

    pub(crate) fn is_of(&self, key: &FunctionKey) -> bool {
        self.record.project == key.project
            && self.record.package == key.package
            && self.record.name == key.name
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("function {0} does not exist")]
    FunctionNotFound(String),
    #[error("version {version} of function {name} does not exist")]
    VersionNotFound { name: String, version: String },
    #[error("alias {alias} of function {name} does not exist")]
    AliasNotFound { name: String, alias: String },
    #[error(transparent)]
    Store(#[from] fgs_store::StoreError),
    #[error("{0}")]
    Internal(String),
}

/// What a qualifier resolves to: a version that runs, or an alias that routes to versions.
#[derive(Debug, Clone)]
pub enum Resolution {
    Function(ResolvedFunction),
    Alias(AliasRecord),
}

/// Loads functions from storage; only called when the cache misses.
pub trait FunctionSource: Send + Sync + 'static {
    fn resolve(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> impl Future<Output = Result<Resolution, ResolveError>> + Send;

    /// The functions that keep reserved instances started, for start-up and resyncs.
    fn reserved(&self) -> impl Future<Output = Result<Vec<FunctionKey>, ResolveError>> + Send;
}

#[derive(Debug, Clone)]
enum Cached {
    Function(Arc<ResolvedFunction>),
    Alias(Arc<AliasRecord>),
}

/// The qualifier an alias's chosen version is looked up by.
pub(crate) fn version_qualifier(version: &str) -> Qualifier {
    if version == fgs_core::urn::LATEST {
        Qualifier::Latest
    } else {
        Qualifier::Version(version.to_string())
    }
}

/// The resolution cache in front of a [`FunctionSource`].
pub(crate) struct Resolver<S> {
    source: S,
    /// By function, then qualifier: a warm call looks its resolution up by reference, without
    /// building a key of copies (three strings) for the lookup.
    resolved: Mutex<HashMap<FunctionKey, HashMap<Qualifier, Cached>>>,
    /// Bumped (under the `resolved` lock) by every invalidation: a resolution read from storage
    /// before a change must not be cached after it.
    changes: AtomicU64,
}

impl<S: FunctionSource> Resolver<S> {
    pub(crate) fn new(source: S) -> Resolver<S> {
        Resolver {
            source,
            resolved: Mutex::new(HashMap::new()),
            changes: AtomicU64::new(0),
        }
    }

    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    async fn lookup(&self, key: &FunctionKey, q: &Qualifier) -> Result<Cached, ResolveError> {
        if let Some(c) = self
            .resolved
            .lock()
            .expect("cache lock is never poisoned")
            .get(key)
            .and_then(|by_qualifier| by_qualifier.get(q))
        {
            return Ok(c.clone());
        }
        let before = self.changes.load(Ordering::Acquire);
        // Boxed: a store read's future is large, and a cache hit (every warm call) should not
        // carry its size.
        let c = match Box::pin(self.source.resolve(key, q)).await? {
            Resolution::Function(f) => Cached::Function(Arc::new(f)),
            Resolution::Alias(a) => Cached::Alias(Arc::new(a)),
        };
        let mut cache = self.resolved.lock().expect("cache lock is never poisoned");
        // A code update then a config update in quick succession (`fgs deploy`) once left the
        // first change's re-resolution caching the record from between the two.
        if self.changes.load(Ordering::Acquire) == before {
            cache
                .entry(key.clone())
                .or_default()
                .insert(q.clone(), c.clone());
        }
        Ok(c)
    }

    /// The version that serves one invocation: an alias picks by its rules, then its weights.
    pub(crate) async fn resolve(
        &self,
        key: &FunctionKey,
        q: &Qualifier,
        headers: &[(String, String)],
    ) -> Result<Arc<ResolvedFunction>, ResolveError> {
        match self.lookup(key, q).await? {
            Cached::Function(f) => Ok(f),
            Cached::Alias(a) => {
                let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
                let vq = version_qualifier(a.route(headers, roll));
                match self.lookup(key, &vq).await? {
                    Cached::Function(f) => Ok(f),
                    Cached::Alias(_) => Err(ResolveError::Internal(format!(
                        "alias {} routes to another alias",
                        a.name
                    ))),
                }
            }
        }
    }

    /// Forgets what is cached of one function, or of every function (`None`).
    pub(crate) fn forget(&self, key: Option<&FunctionKey>) {
        let mut cache = self.resolved.lock().expect("cache lock is never poisoned");
        self.changes.fetch_add(1, Ordering::AcqRel);
        match key {
            Some(key) => {
                cache.remove(key);
            }
            None => cache.clear(),
        }
    }
}
