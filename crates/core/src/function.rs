//! A function as fgs stores it: the user's configuration ([`FunctionSpec`]), where its code is
//! ([`CodeInfo`]) and the platform's bookkeeping ([`FunctionRecord`]).

use serde::{Deserialize, Serialize};

use crate::limits::MAX_INSTANCE_NUM_DEFAULT;
use crate::runtime::Runtime;

pub const DEFAULT_PACKAGE: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeType {
    Inline,
    Zip,
}

impl CodeType {
    pub fn parse(s: &str) -> Option<CodeType> {
        match s {
            "inline" => Some(CodeType::Inline),
            "zip" => Some(CodeType::Zip),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CodeType::Inline => "inline",
            CodeType::Zip => "zip",
        }
    }
}

/// Per-instance concurrency (SPEC.md 2 `strategy_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyConfig {
    /// Reserved concurrency of the function; -1 means unlimited.
    pub concurrency: i32,
    /// Requests one instance serves at once (1-1000).
    pub concurrent_num: u32,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            concurrency: -1,
            concurrent_num: 1,
        }
    }
}

/// The configuration a user sets on a function; validated before it is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Stored as FunctionGraph's name; a record with a name fgs does not know fails to load.
    pub runtime: Runtime,
    pub handler: String,
    pub timeout: u32,
    pub memory_size: u32,
    /// The environment variables as the user sent them: a JSON object string, or empty.
    #[serde(default)]
    pub user_data: String,
    #[serde(default)]
    pub encrypted_user_data: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub initializer_handler: String,
    #[serde(default)]
    pub initializer_timeout: u32,
    #[serde(default)]
    pub pre_stop_handler: String,
    #[serde(default)]
    pub pre_stop_timeout: u32,
    #[serde(default)]
    pub depend_version_list: Vec<String>,
    #[serde(default)]
    pub strategy_config: StrategyConfig,
    /// -1 unlimited, 0 disables the function (SPEC.md 2).
    #[serde(default = "default_max_instances")]
    pub max_instance_num: i32,
    /// FunctionGraph's `network_controller.disable_public_network`: the function's instances
    /// reach nothing beyond their own loopback (no egress, no `host.fgs.internal`).
    #[serde(default)]
    pub disable_public_network: bool,
    /// The image of an image function (`runtime: "Custom Image"`, or an HTTP function from an
    /// image: `runtime: "http"` with an image); `None` for code functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_image: Option<crate::image::CustomImage>,
}

fn default_max_instances() -> i32 {
    MAX_INSTANCE_NUM_DEFAULT
}

impl FunctionSpec {
    /// A spec of `runtime` with FunctionGraph's defaults for what a create request leaves out
    /// (SPEC.md 2): timeout 3 s, 128 MB, 400 instances; the handler has none.
    pub fn new(runtime: Runtime) -> FunctionSpec {
        FunctionSpec {
            runtime,
            handler: String::new(),
            timeout: 3,
            memory_size: 128,
            user_data: String::new(),
            encrypted_user_data: String::new(),
            description: String::new(),
            initializer_handler: String::new(),
            initializer_timeout: 0,
            pre_stop_handler: String::new(),
            pre_stop_timeout: 0,
            depend_version_list: Vec::new(),
            strategy_config: StrategyConfig::default(),
            max_instance_num: MAX_INSTANCE_NUM_DEFAULT,
            disable_public_network: false,
            custom_image: None,
        }
    }

    /// The user's environment variables. They were validated when the spec was stored; one
    /// that a later fgs reserves for the platform is left out rather than dropping them all,
    /// so a stored function keeps the rest of its environment.
    pub fn user_env(&self) -> Vec<(String, String)> {
        if let Ok(all) = crate::validate::user_data(&self.user_data) {
            return all;
        }
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.user_data).unwrap_or_default();
        map.into_iter()
            .filter(|(k, _)| !crate::validate::env_name_reserved(k))
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect()
    }

    pub fn cpu(&self) -> u32 {
        crate::limits::cpu_millicores(self.memory_size)
    }
}

/// Where a function's code lives. Packages are content-addressed by `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeInfo {
    pub code_type: CodeType,
    /// The file name the user gave a zip (`code_filename`), or the inline file's name.
    pub code_filename: String,
    /// Hex sha256 of the stored zip: its name in the package store.
    pub sha256: String,
    /// Hex sha512 of the stored zip: FunctionGraph's `digest`.
    pub digest: String,
    pub size: u64,
}

/// Reserved instances kept started ahead (SPEC.md 2 `reservedinstances`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub count: u32,
    pub idle_mode: bool,
}

/// A function's `latest` version as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRecord {
    pub project: String,
    pub package: String,
    pub name: String,
    /// A stable id, FunctionGraph's `func_id`.
    pub func_id: String,
    pub spec: FunctionSpec,
    pub code: CodeInfo,
    pub reserved: Reserved,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Unix milliseconds.
    pub modified_ms: i64,
    /// Grows by one with every change of config or code; instances of an older revision are
    /// drained and replaced.
    pub revision: u64,
    #[serde(default)]
    pub async_config: Option<crate::async_config::AsyncInvokeConfig>,
    /// What FunctionGraph keeps beside the configuration (tags, ...); a record stored before
    /// it existed reads as empty.
    #[serde(default)]
    pub meta: FunctionMeta,
}

/// A function's settings that do not change how its instances start: changing one leaves
/// running instances alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionMeta {
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: crate::tags::Tags,
    /// Pinned by the user (FunctionGraph's "collect" state): the console lists pinned
    /// functions first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// Scheduled changes of the reserved instance count (FunctionGraph's
    /// `tactics_config.cron_configs`), applied at their times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved_crons: Vec<ReservedCron>,
    /// Set by `PUT .../tracing` (FunctionGraph's APM credentials): while set, `fgs serve
    /// --otlp-endpoint` exports a span per invocation of the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
}

/// FunctionGraph's `tracing_ak`/`tracing_sk`. fgs exports to the collector named at startup,
/// so the pair is kept only to be shown back; a non-empty `tracing_ak` turns tracing on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracing {
    pub tracing_ak: String,
    pub tracing_sk: String,
}

/// At each firing of `cron` between `start_time` and `expired_time` (Unix seconds), the
/// function's reserved instance count becomes `count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedCron {
    pub name: String,
    pub cron: String,
    pub count: u32,
    pub start_time: i64,
    pub expired_time: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user_data: &str) -> FunctionSpec {
        FunctionSpec {
            handler: "bootstrap".into(),
            user_data: user_data.into(),
            ..FunctionSpec::new(Runtime::Custom)
        }
    }

    #[test]
    fn a_stored_runtime_keeps_its_name_and_an_unknown_one_fails_to_load() {
        let json = serde_json::to_value(spec("")).unwrap();
        assert_eq!(json["runtime"], "Custom");
        let back: FunctionSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.runtime, Runtime::Custom);
        let mut bad = json;
        bad["runtime"] = "Fortran77".into();
        let err = serde_json::from_value::<FunctionSpec>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown runtime"), "{err}");
    }

    #[test]
    fn a_stored_variable_now_reserved_drops_alone() {
        let env = spec(r#"{"A":"1","FGS_EXTENSIONS":"x","B":"2"}"#).user_env();
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(spec("").user_env(), vec![]);
    }
}
