//! Function errors: what an invocation answers when the function (not the platform) failed
//! (SPEC.md 3, codes after YuanRong's). They travel to the caller as HTTP 200 with
//! `X-Is-Func-Err: true`, `X-Func-Err-Code` and a body of `{errorCode, errorMessage, errorType,
//! stackTrace}`.

use serde::{Deserialize, Serialize};

pub mod codes {
    pub const HANDLER_NOT_FOUND: u32 = 4001;
    pub const FUNCTION_RAISED: u32 = 4002;
    pub const RESPONSE_TOO_LARGE: u32 = 4004;
    pub const RESPONSE_TOO_LARGE_V2: u32 = 4008;
    pub const TIMEOUT: u32 = 4010;
    pub const INIT_FAILED: u32 = 4201;
    pub const BOOTSTRAP_MISSING: u32 = 4202;
    pub const RUNTIME_EXITED: u32 = 4204;
    pub const MEMORY_LIMIT: u32 = 4205;
    pub const DISK_LIMIT: u32 = 4207;
    pub const INIT_TIMEOUT: u32 = 4211;
    pub const EXTENSION_MISSING: u32 = 4216;
    pub const EXTENSION_FAILED: u32 = 4217;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionError {
    #[serde(rename = "errorCode")]
    pub code: u32,
    #[serde(rename = "errorMessage")]
    pub message: String,
    #[serde(rename = "errorType")]
    pub error_type: String,
    #[serde(rename = "stackTrace", default)]
    pub stack_trace: Vec<String>,
}

impl FunctionError {
    pub fn new(code: u32, error_type: &str, message: impl Into<String>) -> FunctionError {
        FunctionError {
            code,
            message: message.into(),
            error_type: error_type.to_string(),
            stack_trace: Vec::new(),
        }
    }

    pub fn timeout(secs: u64) -> FunctionError {
        FunctionError::new(
            codes::TIMEOUT,
            "TimeoutError",
            format!("invocation timed out after {secs}s"),
        )
    }

    pub fn memory_limit() -> FunctionError {
        FunctionError::new(
            codes::MEMORY_LIMIT,
            "MemoryLimitExceeded",
            "runtime memory limit exceeded",
        )
    }
}
