//! A function's `async-invoke-config` (SPEC.md 3): retries, event age and where outcomes go.

use serde::{Deserialize, Serialize};

/// The kind of place an outcome goes to, stored and sent as FunctionGraph spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DestinationKind {
    /// Another function, async (param `{"func_urn": ...}`).
    #[serde(rename = "FunctionGraph")]
    FunctionGraph,
    /// [FGS] A webhook (param `{"url": ...}`).
    #[serde(rename = "HTTP")]
    Http,
}

impl DestinationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DestinationKind::FunctionGraph => "FunctionGraph",
            DestinationKind::Http => "HTTP",
        }
    }
}

impl std::fmt::Display for DestinationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination type fgs does not deliver to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {0:?} is not supported: use FunctionGraph or HTTP")]
pub struct UnknownDestination(pub String);

impl std::str::FromStr for DestinationKind {
    type Err = UnknownDestination;

    fn from_str(s: &str) -> Result<DestinationKind, UnknownDestination> {
        match s {
            "FunctionGraph" => Ok(DestinationKind::FunctionGraph),
            "HTTP" => Ok(DestinationKind::Http),
            other => Err(UnknownDestination(other.to_string())),
        }
    }
}

/// Where an async invocation's outcome goes (FunctionGraph's FuncDestinationConfig).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub destination: DestinationKind,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_kinds_keep_their_names() {
        for (kind, name) in [
            (DestinationKind::FunctionGraph, "FunctionGraph"),
            (DestinationKind::Http, "HTTP"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
            assert_eq!(name.parse::<DestinationKind>(), Ok(kind));
            assert_eq!(kind.to_string(), name);
        }
    }

    #[test]
    fn an_unknown_stored_destination_is_an_error() {
        assert!("SMN".parse::<DestinationKind>().is_err());
        let stored = r#"{"destination":"SMN","param":"{}"}"#;
        let err = serde_json::from_str::<Destination>(stored).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }
}
