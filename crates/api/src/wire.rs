//! FunctionGraph's JSON shapes for functions (SPEC.md 2): request bodies as the SDKs send them
//! and the function object every function call answers with.

use fgs_core::urn::{function_urn, qualified_urn};
use fgs_core::{FunctionRecord, Qualifier};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

#[derive(Debug, Default, Deserialize)]
pub struct FuncCode {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
}

/// `POST /functions`. Numbers arrive as JSON numbers; fields are optional here so that a
/// missing one gets its own FSS code rather than a generic parse error.
#[derive(Debug, Default, Deserialize)]
pub struct CreateBody {
    pub func_name: Option<String>,
    pub package: Option<String>,
    pub runtime: Option<String>,
    pub timeout: Option<i64>,
    pub handler: Option<String>,
    pub memory_size: Option<i64>,
    pub code_type: Option<String>,
    pub code_filename: Option<String>,
    pub func_code: Option<FuncCode>,
    pub user_data: Option<String>,
    pub encrypted_user_data: Option<String>,
    pub description: Option<String>,
    pub initializer_handler: Option<String>,
    pub initializer_timeout: Option<i64>,
    pub pre_stop_handler: Option<String>,
    pub pre_stop_timeout: Option<i64>,
    pub depend_version_list: Option<Vec<String>>,
    pub strategy_config: Option<StrategyBody>,
    pub network_controller: Option<NetworkBody>,
    /// Tags at create time (`fgs_core::tags::parse_create` says which forms).
    pub tags: Option<serde_json::Value>,
    /// An image function's image (the SDK's `CustomImage`).
    pub custom_image: Option<CustomImageBody>,
}

/// FunctionGraph's `custom_image`; `uid`/`gid` are strings in its SDK, numbers are taken too.
#[derive(Debug, Default, Deserialize)]
pub struct CustomImageBody {
    pub enabled: Option<bool>,
    pub image: Option<String>,
    pub command: Option<String>,
    pub args: Option<String>,
    pub working_dir: Option<String>,
    pub uid: Option<serde_json::Value>,
    pub gid: Option<serde_json::Value>,
}

/// FunctionGraph's NetworkControlConfig; fgs honours `disable_public_network`.
#[derive(Debug, Default, Deserialize)]
pub struct NetworkBody {
    pub disable_public_network: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StrategyBody {
    pub concurrency: Option<i64>,
    pub concurrent_num: Option<i64>,
}

/// `PUT /functions/{urn}/code`.
#[derive(Debug, Default, Deserialize)]
pub struct CodeBody {
    pub code_type: Option<String>,
    pub code_filename: Option<String>,
    pub func_code: Option<FuncCode>,
    pub depend_version_list: Option<Vec<String>>,
}

pub fn rfc3339_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The function object of FunctionGraph for the `latest` version.
pub fn function_json(rec: &FunctionRecord, region: &str) -> Value {
    let spec = &rec.spec;
    let urn = qualified_urn(
        region,
        &rec.project,
        &rec.package,
        &rec.name,
        &Qualifier::Latest,
    );
    json!({
        "func_id": rec.func_id,
        "func_urn": urn,
        "func_name": rec.name,
        "domain_id": rec.project,
        "namespace": rec.project,
        "project_name": region,
        "package": rec.package,
        "runtime": spec.runtime,
        "timeout": spec.timeout,
        "handler": spec.handler,
        "memory_size": spec.memory_size,
        "cpu": spec.cpu(),
        "code_type": if spec.custom_image.is_some() {
            "Custom-Image-Swr"
        } else {
            rec.code.code_type.as_str()
        },
        "code_url": "",
        "code_filename": rec.code.code_filename,
        "code_size": rec.code.size,
        "user_data": spec.user_data,
        "encrypted_user_data": spec.encrypted_user_data,
        "digest": rec.code.digest,
        "version": "latest",
        "image_name": "latest",
        "xrole": "",
        "app_xrole": "",
        "description": spec.description,
        "last_modified": rfc3339_ms(rec.modified_ms),
        "reserved_instance_count": rec.reserved.count,
        "depend_version_list": spec.depend_version_list,
        "strategy_config": {
            "concurrency": spec.strategy_config.concurrency,
            "concurrent_num": spec.strategy_config.concurrent_num,
        },
        "initializer_handler": spec.initializer_handler,
        "initializer_timeout": spec.initializer_timeout,
        "pre_stop_handler": spec.pre_stop_handler,
        "pre_stop_timeout": spec.pre_stop_timeout,
        "max_instance_num": spec.max_instance_num,
        "network_controller": {
            "disable_public_network": spec.disable_public_network,
            "trigger_access_vpcs": [],
        },
        "enterprise_project_id": "0",
        "long_time": false,
        "type": "v2",
        "enable_dynamic_memory": false,
        "is_stateful_function": false,
        // [FGS] FunctionGraph's collect state (`PUT .../collect/{state}`).
        "pinned": rec.meta.pinned,
        "custom_image": custom_image_json(spec.custom_image.as_ref()),
    })
}

/// `custom_image` as FunctionGraph shows it, plus the digest fgs resolved the image to
/// (`digest`, [FGS]); `{"enabled": false}` for a code function.
pub fn custom_image_json(ci: Option<&fgs_core::image::CustomImage>) -> Value {
    match ci {
        None => json!({"enabled": false}),
        Some(ci) => json!({
            "enabled": true,
            "image": ci.image,
            "command": ci.command,
            "args": ci.args,
            "working_dir": ci.working_dir,
            "uid": ci.uid.to_string(),
            "gid": ci.gid.to_string(),
            "digest": ci.digest,
        }),
    }
}

/// `func_urn` without the version field, as the list of reserved instances names functions.
pub fn unversioned_urn(rec: &FunctionRecord, region: &str) -> String {
    function_urn(region, &rec.project, &rec.package, &rec.name)
}
