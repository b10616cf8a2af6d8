//! `fgs trigger create|list|get|delete|enable|disable` and
//! `fgs dependency create|list|delete`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::table::Table;
use super::{b64, code, http, s, text, ClientOptions, Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: TriggerCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TriggerCommand {
    /// Create a trigger (docs/triggers.md), e.g.
    /// `--type TIMER --event-data '{"name":"tick","schedule_type":"Rate","schedule":"1m"}'`.
    Create {
        /// Function name or URN (with a version or alias to trigger that one).
        name: String,
        /// TIMER or APIG.
        #[arg(long = "type")]
        type_code: String,
        /// The trigger's `event_data` as JSON.
        #[arg(long)]
        event_data: String,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List a function's triggers.
    List { name: String },
    /// Show one trigger.
    Get { name: String, trigger_id: String },
    /// Delete one trigger.
    Delete { name: String, trigger_id: String },
    /// Let a trigger fire (or route) again.
    Enable { name: String, trigger_id: String },
    /// Stop a trigger from firing (or routing) without deleting it.
    Disable { name: String, trigger_id: String },
}

#[derive(Debug, clap::Args)]
pub struct DependencyArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: DependencyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum DependencyCommand {
    /// Upload a new version of a dependency (a directory or a .zip).
    Create {
        /// Dependency name.
        name: String,
        #[arg(long)]
        code: PathBuf,
        /// The runtime it is for.
        #[arg(long, default_value = "Custom")]
        runtime: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List dependencies (the newest version of each), or the versions of one.
    List { name: Option<String> },
    /// Delete one version of a dependency.
    Delete { name: String, version: u32 },
}

fn trigger_table(list: &[Value]) -> String {
    let mut t = Table::new(&["ID", "TYPE", "STATUS", "CREATED", "EVENT DATA"]);
    for x in list {
        t.row(vec![
            s(x, "trigger_id").into(),
            s(x, "trigger_type_code").into(),
            s(x, "trigger_status").into(),
            text(x, "created_time"),
            x["event_data"].to_string(),
        ]);
    }
    t.render()
}

/// The path of one trigger; its type is looked up, so people only give its id.
fn trigger_path(ctx: &Ctx, name: &str, id: &str) -> Result<String> {
    let base = format!("/triggers/{}", http::segment(name));
    let list = ctx.api.call("GET", &base, None, &[])?.json()?;
    let Some(t) = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| s(t, "trigger_id") == id)
    else {
        bail!("function {name} has no trigger {id} (see `fgs trigger list {name}`)");
    };
    Ok(format!(
        "{base}/{}/{}",
        http::segment(s(t, "trigger_type_code")),
        http::segment(id)
    ))
}

pub(super) fn run_trigger(a: TriggerArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    match a.command {
        TriggerCommand::Create {
            name,
            type_code,
            event_data,
            disabled,
        } => {
            let ed: Value = serde_json::from_str(&event_data)
                .context("--event-data is not JSON (quote it: --event-data '{\"name\":...}')")?;
            let body = json!({
                "trigger_type_code": type_code.to_uppercase(),
                "trigger_status": if disabled { "DISABLED" } else { "ACTIVE" },
                "event_data": ed,
            });
            let path = format!("/triggers/{}", http::segment(&name));
            let v = ctx.api.call("POST", &path, Some(&body), &[])?.json()?;
            let msg = format!(
                "created {} trigger {} of {name}",
                s(&v, "trigger_type_code"),
                s(&v, "trigger_id")
            );
            ctx.done(&v, msg);
        }
        TriggerCommand::List { name } => {
            let path = format!("/triggers/{}", http::segment(&name));
            let v = ctx.api.call("GET", &path, None, &[])?.json()?;
            let list = v.as_array().cloned().unwrap_or_default();
            ctx.show(&v, |_| trigger_table(&list))?;
        }
        TriggerCommand::Get { name, trigger_id } => {
            let path = trigger_path(&ctx, &name, &trigger_id)?;
            let v = ctx.api.call("GET", &path, None, &[])?.json()?;
            ctx.show(&v, |v| trigger_table(std::slice::from_ref(v)))?;
        }
        TriggerCommand::Delete { name, trigger_id } => {
            let path = trigger_path(&ctx, &name, &trigger_id)?;
            ctx.api.call("DELETE", &path, None, &[])?;
            ctx.done(
                &json!({"deleted": trigger_id}),
                format!("deleted trigger {trigger_id} of {name}"),
            );
        }
        TriggerCommand::Enable { name, trigger_id } => {
            set_status(&ctx, &name, &trigger_id, "ACTIVE")?
        }
        TriggerCommand::Disable { name, trigger_id } => {
            set_status(&ctx, &name, &trigger_id, "DISABLED")?
        }
    }
    Ok(Outcome::Done)
}

fn set_status(ctx: &Ctx, name: &str, id: &str, status: &str) -> Result<()> {
    let path = trigger_path(ctx, name, id)?;
    let v = ctx
        .api
        .call("PUT", &path, Some(&json!({"trigger_status": status})), &[])?
        .json()?;
    ctx.done(&v, format!("trigger {id} of {name} is {status}"));
    Ok(())
}

fn dependency_table(list: &[Value]) -> String {
    let mut t = Table::new(&["NAME", "VERSION", "RUNTIME", "SIZE", "ID", "DESCRIPTION"]);
    for d in list {
        t.row(vec![
            s(d, "name").into(),
            text(d, "version"),
            s(d, "runtime").into(),
            text(d, "size"),
            s(d, "id").into(),
            s(d, "description").into(),
        ]);
    }
    t.render()
}

/// The `dep_id` of the dependency named `name`.
fn dep_id(ctx: &Ctx, name: &str) -> Result<String> {
    let q = format!("name={}", http::segment(name));
    let list = ctx
        .api
        .call_query("GET", "/dependencies", &q, None, &[])?
        .json()?;
    list["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| s(d, "name") == name)
        .map(|d| s(d, "dep_id").to_owned())
        .with_context(|| format!("dependency {name:?} does not exist (see `fgs dependency list`)"))
}

pub(super) fn run_dependency(a: DependencyArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    match a.command {
        DependencyCommand::Create {
            name,
            code: path,
            runtime,
            description,
        } => {
            let code = code::load(&path)?;
            let mut body = json!({
                "name": name,
                "runtime": runtime,
                "depend_type": "zip",
                "file_name": code.filename,
                "depend_file": b64(&code.zip),
            });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v = ctx
                .api
                .call("POST", "/dependencies/version", Some(&body), &[])?
                .json()?;
            let msg = format!(
                "created version {} of dependency {name} (id {})",
                text(&v, "version"),
                s(&v, "id")
            );
            ctx.done(&v, msg);
        }
        DependencyCommand::List { name } => {
            let v = match name {
                None => ctx.api.call("GET", "/dependencies", None, &[])?.json()?,
                Some(n) => {
                    let path = format!(
                        "/dependencies/{}/version",
                        http::segment(&dep_id(&ctx, &n)?)
                    );
                    ctx.api.call("GET", &path, None, &[])?.json()?
                }
            };
            let list = v["dependencies"].as_array().cloned().unwrap_or_default();
            ctx.show(&v, |_| dependency_table(&list))?;
        }
        DependencyCommand::Delete { name, version } => {
            let path = format!(
                "/dependencies/{}/version/{version}",
                http::segment(&dep_id(&ctx, &name)?)
            );
            ctx.api.call("DELETE", &path, None, &[])?;
            ctx.done(
                &json!({"deleted": {"name": name, "version": version}}),
                format!("deleted version {version} of dependency {name}"),
            );
        }
    }
    Ok(Outcome::Done)
}
