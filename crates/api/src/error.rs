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

/// [FGS] Codes of the per-project and per-function limits of SPEC.md 6. FunctionGraph publishes
/// none for them, so fgs picks one a limit, all HTTP 400, in a block of its own (docs/security.md).
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

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "FSS.0400", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "FSS.0404", message)
    }

    pub fn function_not_found(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "FSS.1051",
            format!("function {name} does not exist"),
        )
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "FSS.0500", message)
    }

    pub fn bad_json(e: &serde_json::Error) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "FSS.0406",
            format!("request body is not valid JSON: {e}"),
        )
    }

    pub fn too_large(what: &str, limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FSS.0413",
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
pub fn chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

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
            Invalid::FuncName(_) => "FSS.1002",
            Invalid::Handler(..) => "FSS.1003",
            Invalid::Runtime(..) | Invalid::RuntimeUnavailable(..) => "FSS.1005",
            Invalid::CodeType(_) => "FSS.1006",
            Invalid::Memory(_) => "FSS.1007",
            Invalid::Timeout(_) => "FSS.1008",
            Invalid::UserData(_) => "FSS.1009",
            Invalid::InitializerHandler(_) => "FSS.1404",
            Invalid::InitializerTimeout(_) => "FSS.1405",
            Invalid::ZipTooLarge(_) => "FSS.1071",
            Invalid::InlineTooLarge(_) => "FSS.1072",
            Invalid::Package(_) | Invalid::Parameter(_) => "FSS.0400",
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
        match &e {
            StoreError::FunctionExists { name, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "FSS.1061",
                format!("function {name} already exists"),
            ),
            StoreError::FunctionNotFound { name, .. } => ApiError::function_not_found(name),
            StoreError::QuotaExceeded { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::FUNCTIONS, e.to_string())
            }
            StoreError::VersionNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "FSS.1052", e.to_string())
            }
            StoreError::AliasNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "FSS.1053", e.to_string())
            }
            StoreError::VersionInUse { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "FSS.1066", e.to_string())
            }
            StoreError::VersionExists { .. } | StoreError::AliasExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "FSS.0409", e.to_string())
            }
            StoreError::TooManyVersions { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::VERSIONS, e.to_string())
            }
            StoreError::TooManyAliases { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::ALIASES, e.to_string())
            }
            StoreError::DependencyNotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::DependencyInUse { .. } => ApiError::bad_request(format!(
                "{e}: remove it from the function's depend_version_list first"
            )),
            StoreError::AsyncNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "FSS.0404", e.to_string())
            }
            StoreError::Conflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "FSS.0409",
                format!("{e}; retry the request"),
            ),
            StoreError::TooManyTriggers { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::TRIGGERS, e.to_string())
            }
            StoreError::TooManyTestEvents { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, quota::TEST_EVENTS, e.to_string())
            }
            StoreError::TestEventExists { .. } => {
                ApiError::new(StatusCode::CONFLICT, "FSS.0409", e.to_string())
            }
            _ => {
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
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "FSS.0507", e.to_string())
            }
            PackageError::Io { .. }
            | PackageError::NotFound { .. }
            | PackageError::Build { .. } => {
                tracing::error!(error = %chain(&e), "package storage failed");
                ApiError::internal(chain(&e))
            }
            _ => ApiError::bad_request(format!("code package refused: {}", chain(&e))),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "FSS.0401", e.to_string())
    }
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> ApiError {
        match e {
            ResolveError::FunctionNotFound(name) => ApiError::function_not_found(&name),
            ResolveError::VersionNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "FSS.1052", e.to_string())
            }
            ResolveError::AliasNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "FSS.1053", e.to_string())
            }
            ResolveError::Internal(m) => ApiError::internal(m),
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> ApiError {
        match e {
            InvokeError::Resolve(r) => r.into(),
            InvokeError::Disabled(_) | InvokeError::Throttled(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "FSS.0429", e.to_string())
            }
            InvokeError::Platform(m) => ApiError::internal(m),
        }
    }
}

impl From<fgs_triggers::TriggerError> for ApiError {
    fn from(e: fgs_triggers::TriggerError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}
