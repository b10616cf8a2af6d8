//! The one place where typed errors of every crate become FunctionGraph's wire errors:
//! an HTTP status plus `{"error_code":"FSS.xxxx","error_msg":"..."}` (SPEC.md 2).

use std::error::Error as StdError;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fgs_core::{Invalid, UrnError};
use fgs_invoke::{InvokeError, ResolveError};
use fgs_package::PackageError;
use fgs_store::StoreError;

use crate::auth::AuthError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Every FSS code fgs answers with: the one table (SPEC.md 2, docs/api.md). Handlers name a code
/// from here or, better, return a typed error that the `From` impls below map.
pub mod code {
    pub const BAD_REQUEST: &str = "FSS.0400";
    pub const UNAUTHORIZED: &str = "FSS.0401";
    pub const FORBIDDEN: &str = "FSS.0403";
    pub const NOT_FOUND: &str = "FSS.0404";
    pub const METHOD_NOT_ALLOWED: &str = "FSS.0405";
    pub const BAD_JSON: &str = "FSS.0406";
    pub const REQUEST_TIMEOUT: &str = "FSS.0408";
    pub const CONFLICT: &str = "FSS.0409";
    pub const TOO_LARGE: &str = "FSS.0413";
    pub const THROTTLED: &str = "FSS.0429";
    /// [FGS] Over `--max-headers` headers or `--max-header-bytes` of request head.
    pub const HEAD_TOO_LARGE: &str = "FSS.0431";
    pub const INTERNAL: &str = "FSS.0500";
    /// [FGS] An operation of FunctionGraph's API that fgs does not provide (the message names it).
    pub const NOT_PROVIDED: &str = "FSS.0501";
    pub const BAD_GATEWAY: &str = "FSS.0502";
    /// [FGS] An engine the request needs (the cluster's NATS or PostgreSQL) cannot be reached.
    pub const UNAVAILABLE: &str = "FSS.0503";
    pub const NO_SPACE: &str = "FSS.0507";
    pub const FUNC_NAME: &str = "FSS.1002";
    pub const HANDLER: &str = "FSS.1003";
    pub const RUNTIME: &str = "FSS.1005";
    pub const CODE_TYPE: &str = "FSS.1006";
    pub const MEMORY: &str = "FSS.1007";
    pub const TIMEOUT: &str = "FSS.1008";
    pub const USER_DATA: &str = "FSS.1009";
    /// Publishing a version identical to the last one.
    pub const NOTHING_TO_PUBLISH: &str = "FSS.1016";
    pub const FUNCTION_NOT_FOUND: &str = "FSS.1051";
    pub const VERSION_NOT_FOUND: &str = "FSS.1052";
    pub const ALIAS_NOT_FOUND: &str = "FSS.1053";
    pub const FUNCTION_EXISTS: &str = "FSS.1061";
    pub const VERSION_IN_USE: &str = "FSS.1066";
    pub const ZIP_TOO_LARGE: &str = "FSS.1071";
    pub const INLINE_TOO_LARGE: &str = "FSS.1072";
    pub const INITIALIZER_HANDLER: &str = "FSS.1404";
    pub const INITIALIZER_TIMEOUT: &str = "FSS.1405";

    /// [FGS] Codes of the per-project and per-function limits of SPEC.md 6. FunctionGraph
    /// publishes none for them, so fgs picks one a limit, all HTTP 400, in a block of its own
    /// (docs/security.md).
    pub mod quota {
        /// 400 functions per project.
        pub const FUNCTIONS: &str = "FSS.1091";
        /// 20 versions per function, `latest` included.
        pub const VERSIONS: &str = "FSS.1092";
        /// 10 aliases per function.
        pub const ALIASES: &str = "FSS.1093";
        /// 10 triggers per function version.
        pub const TRIGGERS: &str = "FSS.1094";
        /// 20 dependencies per function (`depend_version_list`).
        pub const DEPENDENCIES: &str = "FSS.1095";
        /// Test events per function.
        pub const TEST_EVENTS: &str = "FSS.1096";
    }

    /// [FGS] Code packages (function code and dependency zips) refused, one code a kind of
    /// refusal (docs/api.md). FunctionGraph publishes none; all HTTP 400.
    pub mod package {
        /// Not a zip archive, or an entry that cannot be read.
        pub const UNREADABLE: &str = "FSS.1081";
        /// An entry name fgs cannot take as a path (a backslash, a NUL, an empty component).
        pub const BAD_NAME: &str = "FSS.1082";
        /// An absolute entry path, or one with `..`.
        pub const PATH_ESCAPE: &str = "FSS.1083";
        /// A device, fifo or socket.
        pub const SPECIAL_FILE: &str = "FSS.1084";
        /// Two entries of one path, or a file where a directory must be.
        pub const PATH_CONFLICT: &str = "FSS.1085";
        /// A symlink without a usable target.
        pub const BAD_LINK: &str = "FSS.1086";
        /// A symlink leading out of the package.
        pub const LINK_ESCAPE: &str = "FSS.1087";
        /// More entries than a package may have.
        pub const TOO_MANY_FILES: &str = "FSS.1088";
        /// Unpacked, the package is over its size limit.
        pub const TOO_LARGE: &str = "FSS.1089";
        /// One entry is over the size limit.
        pub const ENTRY_TOO_LARGE: &str = "FSS.1090";
    }
}

pub use code::{package, quota};

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            message,
        )
    }

    pub fn request_timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, code::REQUEST_TIMEOUT, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code::CONFLICT, message)
    }

    pub fn function_not_found(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            code::FUNCTION_NOT_FOUND,
            format!("function {name} does not exist"),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, message)
    }

    /// HTTP 501: an operation of FunctionGraph's API that fgs does not provide.
    pub fn not_provided(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, code::NOT_PROVIDED, message)
    }

    pub fn bad_gateway(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, code::BAD_GATEWAY, message)
    }

    pub fn bad_json(e: &serde_json::Error) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code::BAD_JSON,
            format!("request body is not valid JSON: {e}"),
        )
    }

    pub fn too_large(what: &str, limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::TOO_LARGE,
            format!("{what} exceeds the limit of {limit} bytes"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl StdError for ApiError {}

/// An error with its chain of causes, for messages users read.
pub use fgs_invoke::error_chain as chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error_code": self.code, "error_msg": self.message});
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            "X-Fgs-Error-Code",
            axum::http::HeaderValue::from_static(self.code),
        );
        resp
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        let code = match &e {
            Invalid::FuncName(_) => code::FUNC_NAME,
            Invalid::Handler(..) => code::HANDLER,
            Invalid::Runtime(..) | Invalid::RuntimeUnavailable(..) => code::RUNTIME,
            Invalid::CodeType(_) => code::CODE_TYPE,
            Invalid::Memory(_) => code::MEMORY,
            Invalid::Timeout(_) => code::TIMEOUT,
            Invalid::UserData(_) => code::USER_DATA,
            Invalid::InitializerHandler(_) => code::INITIALIZER_HANDLER,
            Invalid::InitializerTimeout(_) => code::INITIALIZER_TIMEOUT,
            Invalid::ZipTooLarge(_) => code::ZIP_TOO_LARGE,
            Invalid::InlineTooLarge(_) => code::INLINE_TOO_LARGE,
            Invalid::Package(_) | Invalid::Parameter(_) => code::BAD_REQUEST,
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

impl From<UrnError> for ApiError {
    fn from(e: UrnError) -> ApiError {
        ApiError::bad_request(format!("invalid function URN: {e}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let msg = e.to_string();
        match &e {
            StoreError::FunctionExists { name, .. } => ApiError::new(
                StatusCode::CONFLICT,
                code::FUNCTION_EXISTS,
                format!("function {name} already exists"),
            ),
            StoreError::FunctionNotFound { name, .. } => ApiError::function_not_found(name),
            StoreError::QuotaExceeded { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::FUNCTIONS, msg)
            }
            StoreError::VersionNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, code::VERSION_NOT_FOUND, msg)
            }
            StoreError::AliasNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, code::ALIAS_NOT_FOUND, msg)
            }
            StoreError::VersionInUse { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, code::VERSION_IN_USE, msg)
            }
            StoreError::VersionExists { .. }
            | StoreError::AliasExists { .. }
            | StoreError::TestEventExists { .. } => ApiError::conflict(msg),
            StoreError::TooManyVersions { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::VERSIONS, msg)
            }
            StoreError::TooManyAliases { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::ALIASES, msg)
            }
            StoreError::TooManyTriggers { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::TRIGGERS, msg)
            }
            StoreError::TooManyTestEvents { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::TEST_EVENTS, msg)
            }
            StoreError::DependencyNotFound { .. } | StoreError::AsyncNotFound { .. } => {
                ApiError::not_found(msg)
            }
            StoreError::DependencyInUse { .. } => ApiError::bad_request(format!(
                "{e}: remove it from the function's depend_version_list first"
            )),
            StoreError::Conflict { .. } => ApiError::conflict(format!("{e}; retry the request")),
            StoreError::FeedUnavailable { .. } => {
                tracing::warn!(error = %e, "write refused: the change feed is unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, msg)
            }
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %chain(&e), "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::UNAVAILABLE,
                    chain(&e),
                )
            }
            // Failures of the store itself, not of the request: named, so that a new kind of
            // refusal cannot fall into a 500 unnoticed.
            StoreError::Open { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::Migrate { .. }
            | StoreError::Backend { .. }
            | StoreError::AsyncExists { .. }
            | StoreError::Encode { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Task { .. }
            | StoreError::CorruptTrigger { .. }
            | StoreError::CorruptTriggerField { .. }
            | StoreError::CorruptAsync { .. }
            | StoreError::UnsupportedStore { .. }
            | StoreError::Connect { .. } => {
                tracing::error!(error = %chain(&e), "storage failed");
                ApiError::internal(chain(&e))
            }
        }
    }
}

impl From<PackageError> for ApiError {
    fn from(e: PackageError) -> ApiError {
        match &e {
            PackageError::ZipTooLarge { size, .. } => Invalid::ZipTooLarge(*size as usize).into(),
            PackageError::NoSpace { .. } => {
                tracing::warn!(error = %e, "upload refused: data dir short of space");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    code::NO_SPACE,
                    e.to_string(),
                )
            }
            PackageError::Io { .. }
            | PackageError::NotFound { .. }
            | PackageError::Build { .. } => {
                tracing::error!(error = %chain(&e), "package storage failed");
                ApiError::internal(chain(&e))
            }
            PackageError::InvalidId { .. } => ApiError::bad_request(chain(&e)),
            PackageError::Remote { .. } => {
                tracing::warn!(error = %chain(&e), "the cluster's package copy failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::UNAVAILABLE,
                    chain(&e),
                )
            }
            PackageError::Unreadable { .. } | PackageError::EntryUnreadable { .. } => {
                package_refused(package::UNREADABLE, &e)
            }
            PackageError::BadName { .. } => package_refused(package::BAD_NAME, &e),
            PackageError::PathEscape { .. } => package_refused(package::PATH_ESCAPE, &e),
            PackageError::SpecialFile { .. } => package_refused(package::SPECIAL_FILE, &e),
            PackageError::PathConflict { .. } => package_refused(package::PATH_CONFLICT, &e),
            PackageError::BadLink { .. } => package_refused(package::BAD_LINK, &e),
            PackageError::LinkEscape { .. } => package_refused(package::LINK_ESCAPE, &e),
            PackageError::TooManyFiles { .. } => package_refused(package::TOO_MANY_FILES, &e),
            PackageError::TooLarge { .. } => package_refused(package::TOO_LARGE, &e),
            PackageError::EntryTooLarge { .. } => package_refused(package::ENTRY_TOO_LARGE, &e),
        }
    }
}

/// A code package refused for what is in it: one code a kind (docs/api.md).
fn package_refused(code: &'static str, e: &PackageError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("code package refused: {}", chain(e)),
    )
}

/// An image function's image (docs/images.md): what is wrong with the image or the reference
/// is the caller's (400), a registry that cannot be reached or refuses fgs is a bad gateway
/// (502, with the registry's own answer), the image store's failures are fgs's (500).
impl From<fgs_image::ImageError> for ApiError {
    fn from(e: fgs_image::ImageError) -> ApiError {
        use fgs_image::ImageError as E;
        let message = format!("custom_image: {e}");
        match e {
            E::Reference(_)
            | E::NotFound { .. }
            | E::DigestMismatch { .. }
            | E::Manifest(_)
            | E::Platform(_)
            | E::Layer(_)
            | E::TooLarge => ApiError::bad_request(message),
            E::Registry { .. } | E::Unreachable { .. } => ApiError::bad_gateway(message),
            E::Store(_) | E::Import(_) | E::Config(_) => ApiError::internal(message),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, e.to_string())
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> ApiError {
        match e {
            ResolveError::FunctionNotFound(name) => ApiError::function_not_found(&name),
            ResolveError::VersionNotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                code::VERSION_NOT_FOUND,
                e.to_string(),
            ),
            ResolveError::AliasNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, code::ALIAS_NOT_FOUND, e.to_string())
            }
            ResolveError::Store(e) => e.into(),
            ResolveError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> ApiError {
        match e {
            InvokeError::Resolve(r) => r.into(),
            InvokeError::Disabled(_) | InvokeError::Throttled(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                code::THROTTLED,
                e.to_string(),
            ),
            InvokeError::Platform(m) => ApiError::internal(m),
            // Only callers that forward ask for it, and they handle it.
            InvokeError::Elsewhere(..) => ApiError::internal(e.to_string()),
            InvokeError::Unavailable(..) => {
                tracing::warn!(error = %e, "no instance place in the cluster");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::UNAVAILABLE,
                    e.to_string(),
                )
            }
            InvokeError::Queue(e) => e.into(),
        }
    }
}

impl From<fgs_triggers::TriggerError> for ApiError {
    fn from(e: fgs_triggers::TriggerError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_package_refusal_has_its_own_code() {
        let name = || "x".to_string();
        let refusals = [
            PackageError::BadName {
                name: name(),
                reason: "r",
            },
            PackageError::PathEscape { name: name() },
            PackageError::SpecialFile {
                name: name(),
                mode: 0,
            },
            PackageError::PathConflict { name: name() },
            PackageError::BadLink {
                name: name(),
                reason: "r",
            },
            PackageError::LinkEscape {
                name: name(),
                target: name(),
            },
            PackageError::TooManyFiles { limit: 1 },
            PackageError::TooLarge { limit: 1 },
            PackageError::EntryTooLarge {
                name: name(),
                limit: 1,
            },
        ];
        let answers: Vec<ApiError> = refusals.into_iter().map(ApiError::from).collect();
        assert!(answers.iter().all(|a| a.status == StatusCode::BAD_REQUEST));
        let mut codes: Vec<&str> = answers.iter().map(|a| a.code).collect();
        assert!(codes
            .iter()
            .all(|c| c.starts_with("FSS.108") || *c == "FSS.1090"));
        let n = codes.len();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), n, "{codes:?}");
    }
}
