//! The errors of the store. They name the operation and the function they concern; the backend's
//! own error type stays behind a `Box<dyn Error>` so that `fgs-api` maps one enum whichever
//! database sits underneath.

use std::path::PathBuf;

/// The underlying database error, whatever the backend.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: BackendError,
    },
    #[error(
        "database {path} has schema version {found}, newer than version {known} known to this fgs"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("migrating database {path} to schema version {version}")]
    Migrate {
        path: PathBuf,
        version: i64,
        #[source]
        source: BackendError,
    },
    #[error("function {project}/{package}/{name} already exists")]
    FunctionExists {
        project: String,
        package: String,
        name: String,
    },
    #[error("project {project} already has the maximum of {limit} functions")]
    QuotaExceeded { project: String, limit: u64 },
    #[error("function {project}/{package}/{name} not found")]
    FunctionNotFound {
        project: String,
        package: String,
        name: String,
    },
    #[error(
        "function {project}/{package}/{name} was changed concurrently: expected revision {expected}"
    )]
    Conflict {
        project: String,
        package: String,
        name: String,
        expected: u64,
    },
    #[error("version {version} of function {name} already exists")]
    VersionExists { name: String, version: String },
    #[error("version {version} of function {name} does not exist")]
    VersionNotFound { name: String, version: String },
    #[error("version {version} of function {name} is used by alias {alias}")]
    VersionInUse {
        name: String,
        version: String,
        alias: String,
    },
    #[error("function {name} already has the maximum of {limit} versions")]
    TooManyVersions { name: String, limit: usize },
    #[error("alias {alias} of function {name} already exists")]
    AliasExists { name: String, alias: String },
    #[error("alias {alias} of function {name} does not exist")]
    AliasNotFound { name: String, alias: String },
    #[error("function {name} already has the maximum of {limit} aliases")]
    TooManyAliases { name: String, limit: usize },
    #[error("async invocation {request_id} does not exist")]
    AsyncNotFound { request_id: String },
    #[error("dependency version {id} does not exist")]
    DependencyNotFound { id: String },
    #[error("dependency version {id} is used by function {function}")]
    DependencyInUse { id: String, function: String },
    #[error("async invocation {request_id} is already queued")]
    AsyncExists { request_id: String },
    #[error("database {op}")]
    Backend {
        op: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("encoding the record of function {project}/{package}/{name}")]
    Encode {
        project: String,
        package: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("decoding the stored record of function {project}/{package}/{name}")]
    Corrupt {
        project: String,
        package: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("database task of {op} did not finish")]
    Task {
        op: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("version {qualifier} of function {name} already has the maximum of {limit} triggers")]
    TooManyTriggers {
        name: String,
        qualifier: String,
        limit: u64,
    },
    #[error("decoding the stored event data of trigger {trigger_id}")]
    CorruptTrigger {
        trigger_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the stored {field} {value:?} of trigger {trigger_id} is not valid")]
    CorruptTriggerField {
        trigger_id: String,
        field: &'static str,
        value: String,
    },
    #[error("function {name} already has a test event named {event}")]
    TestEventExists { name: String, event: String },
    #[error("function {name} already has the maximum of {limit} test events")]
    TooManyTestEvents { name: String, limit: u64 },
    #[error("the stored {field} {value:?} of async invocation {request_id} is not valid")]
    CorruptAsync {
        request_id: String,
        field: &'static str,
        value: String,
    },
    #[error("--store {value}: {reason}")]
    UnsupportedStore { value: String, reason: String },
    /// The change feed cannot carry a change now (the cluster's NATS is unreachable): the
    /// write was refused before it committed, so no node serves something the others do not.
    #[error("{reason}; nothing was changed, retry when it is back")]
    FeedUnavailable { reason: String },
    /// The database engine cannot be reached (PostgreSQL down, the network between, or every
    /// pooled connection broken). Nothing was written; the pool reconnects by itself, so the
    /// same call may succeed later.
    #[error("the store's PostgreSQL is unavailable ({op}); retry when it is back")]
    Unavailable {
        op: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("opening the PostgreSQL store {url}")]
    Connect {
        /// The URL without its password.
        url: String,
        #[source]
        source: BackendError,
    },
}

impl StoreError {
    /// Whether this is PostgreSQL refusing a row whose unique key is taken (SQLSTATE 23505):
    /// the row is already there. Any other failure, of the statement or of the server, is not.
    pub fn is_unique_violation(&self) -> bool {
        let StoreError::Backend { source, .. } = self else {
            return false;
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
        while let Some(e) = cause {
            if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
                return pg.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
            }
            cause = e.source();
        }
        false
    }
}
