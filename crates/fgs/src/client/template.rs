//! `fgs function create NAME --template ID`: a function, and the template's triggers, from one
//! of the server's built-in templates (`GET /templates/{id}`); the config flags given override
//! the template's.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::function::ConfigFlags;
use super::{http, Ctx};

/// Creates `name` in `package` from template `id`; returns the function object.
pub(super) fn create(
    ctx: &Ctx,
    name: &str,
    package: &str,
    id: &str,
    c: &ConfigFlags,
) -> Result<Value> {
    let path = format!("/templates/{}", http::segment(id));
    let t = ctx.api.call("GET", &path, None, &[])?.json()?;
    let code_type = t["code_type"].as_str().unwrap_or("inline");
    let mut body = json!({
        "func_name": name,
        "package": package,
        "runtime": c.runtime.as_deref().or(t["runtime"].as_str()),
        "handler": c.handler.as_deref().or(t["handler"].as_str()),
        "memory_size": c.memory.map_or_else(|| t["memory_size"].clone(), Value::from),
        "timeout": c.timeout.map_or_else(|| t["timeout"].clone(), Value::from),
        "code_type": code_type,
        "func_code": {"file": t["code"]},
        "description": c.description.as_deref().or(t["description"].as_str()),
    });
    if code_type == "zip" {
        body["code_filename"] = json!(format!("{id}.zip"));
    }
    if !c.env.is_empty() {
        body["user_data"] = Value::String(super::function::env_json(&c.env));
    }
    let f = ctx
        .api
        .call("POST", "/functions", Some(&body), &[])?
        .json()?;
    let urn = f["func_urn"].as_str().unwrap_or(name).to_owned();
    for trigger in t["trigger_metadata_list"].as_array().into_iter().flatten() {
        let kind = trigger["trigger_type"].as_str().unwrap_or_default();
        let data: Value = serde_json::from_str(trigger["event_data"].as_str().unwrap_or("{}"))
            .with_context(|| format!("template {id}: the {kind} trigger's event_data"))?;
        let t = json!({"trigger_type_code": kind, "trigger_status": "ACTIVE", "event_data": data});
        let path = format!("/triggers/{}", http::segment(&urn));
        ctx.api
            .call("POST", &path, Some(&t), &[])
            .with_context(|| format!("creating the template's {kind} trigger"))?;
    }
    Ok(f)
}
