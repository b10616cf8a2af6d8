//! A function's `async-invoke-config` (SPEC.md 3): retries, event age and where outcomes go.

use serde::{Deserialize, Serialize};

/// Where an async invocation's outcome goes (FunctionGraph's FuncDestinationConfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// `FunctionGraph` (param `{"func_urn": ...}`) or, as fgs's addition, `HTTP`
    /// (param `{"url": ...}`).
    pub destination: String,
    /// A JSON object, as a string.
    pub param: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Destination>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Destination>,
}

/// `async-invoke-config` of a function (SPEC.md 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncInvokeConfig {
    pub max_async_event_age_in_seconds: u32,
    pub max_async_retry_attempts: u32,
    #[serde(default)]
    pub destination_config: DestinationConfig,
    pub created_ms: i64,
    pub modified_ms: i64,
}

pub const ASYNC_RETRY_DEFAULT: u32 = 1;
pub const ASYNC_RETRY_MAX: u32 = 3;
pub const ASYNC_AGE_DEFAULT: u32 = 3600;
pub const ASYNC_AGE_MAX: u32 = 86_400;
