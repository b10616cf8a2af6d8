//! `fgs version publish|list|delete` and `fgs alias create|list|get|update|delete`.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::table::Table;
use super::{http, s, text, ClientOptions, Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: VersionCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VersionCommand {
    /// Publish the function's current code and configuration as a version.
    Publish {
        /// Function name or URN.
        name: String,
        /// The version's name; default: the next number.
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the function's versions (`latest` first).
    List {
        /// Function name or URN.
        name: String,
    },
    /// Delete a published version.
    Delete {
        /// Function name.
        name: String,
        version: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct AliasArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: AliasCommand,
}

/// What `alias create` and `alias update` set.
#[derive(Debug, clap::Args)]
pub struct AliasFlags {
    #[arg(long)]
    pub description: Option<String>,
    /// Send a share of invocations to another version, `VERSION=PERCENT`; repeatable.
    #[arg(long = "weight", value_name = "VERSION=PERCENT", value_parser = parse_weight)]
    pub weights: Vec<(String, u32)>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AliasCommand {
    /// Create an alias pointing at a version.
    Create {
        /// Function name or URN.
        name: String,
        alias: String,
        /// The version it points at.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        flags: AliasFlags,
    },
    /// List the function's aliases.
    List {
        /// Function name or URN.
        name: String,
    },
    /// Show one alias.
    Get { name: String, alias: String },
    /// Point an alias elsewhere or change its weights.
    Update {
        name: String,
        alias: String,
        /// The version it points at.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        flags: AliasFlags,
    },
    /// Delete an alias.
    Delete { name: String, alias: String },
}

fn parse_weight(s: &str) -> Result<(String, u32), String> {
    let (v, w) = s
        .split_once('=')
        .ok_or_else(|| format!("expected VERSION=PERCENT, got {s:?}"))?;
    let w = w
        .parse()
        .map_err(|_| format!("weight {w:?} is not a number"))?;
    Ok((v.to_owned(), w))
}

pub(super) fn run_version(a: VersionArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    match a.command {
        VersionCommand::Publish {
            name,
            version,
            description,
        } => {
            let mut body = json!({});
            if let Some(v) = version {
                body["version"] = json!(v);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let path = format!("/functions/{}/versions", http::segment(&name));
            let v = ctx.api.call("POST", &path, Some(&body), &[])?.json()?;
            let msg = format!("published version {} of {name}", s(&v, "version"));
            ctx.done(&v, msg);
        }
        VersionCommand::List { name } => {
            let path = format!("/functions/{}/versions", http::segment(&name));
            let v = ctx
                .api
                .call_query("GET", &path, "maxitems=400", None, &[])?
                .json()?;
            ctx.show(&v, |v| {
                let mut t = Table::new(&["VERSION", "DIGEST", "LAST MODIFIED", "DESCRIPTION"]);
                for x in v["versions"].as_array().into_iter().flatten() {
                    t.row(vec![
                        s(x, "version").into(),
                        s(x, "digest").chars().take(12).collect(),
                        text(x, "last_modified"),
                        s(x, "version_description").into(),
                    ]);
                }
                t.render()
            })?;
        }
        VersionCommand::Delete { name, version } => {
            let path = format!("/functions/{}", ctx.qualified(&name, &version));
            ctx.api.call("DELETE", &path, None, &[])?;
            ctx.done(
                &json!({"deleted": version}),
                format!("deleted version {version} of {name}"),
            );
        }
    }
    Ok(Outcome::Done)
}

fn alias_body(version: Option<String>, f: AliasFlags) -> Value {
    let mut body = json!({});
    if let Some(v) = version {
        body["version"] = json!(v);
    }
    if let Some(d) = f.description {
        body["description"] = json!(d);
    }
    if !f.weights.is_empty() {
        let w: BTreeMap<String, u32> = f.weights.into_iter().collect();
        body["additional_version_weights"] = json!(w);
    }
    body
}

fn alias_table(aliases: &[Value]) -> String {
    let mut t = Table::new(&[
        "ALIAS",
        "VERSION",
        "WEIGHTS",
        "LAST MODIFIED",
        "DESCRIPTION",
    ]);
    for a in aliases {
        let weights = a["additional_version_weights"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}%"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        t.row(vec![
            s(a, "name").into(),
            s(a, "version").into(),
            weights,
            text(a, "last_modified"),
            s(a, "description").into(),
        ]);
    }
    t.render()
}

pub(super) fn run_alias(a: AliasArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    let base = |name: &str| format!("/functions/{}/aliases", http::segment(name));
    match a.command {
        AliasCommand::Create {
            name,
            alias,
            version,
            flags,
        } => {
            let mut body = alias_body(Some(version), flags);
            body["name"] = json!(alias);
            let v = ctx
                .api
                .call("POST", &base(&name), Some(&body), &[])?
                .json()?;
            let msg = format!(
                "created alias {alias} of {name} -> version {}",
                s(&v, "version")
            );
            ctx.done(&v, msg);
        }
        AliasCommand::List { name } => {
            let v = ctx.api.call("GET", &base(&name), None, &[])?.json()?;
            let list = v.as_array().cloned().unwrap_or_default();
            ctx.show(&v, |_| alias_table(&list))?;
        }
        AliasCommand::Get { name, alias } => {
            let path = format!("{}/{}", base(&name), http::segment(&alias));
            let v = ctx.api.call("GET", &path, None, &[])?.json()?;
            ctx.show(&v, |v| alias_table(std::slice::from_ref(v)))?;
        }
        AliasCommand::Update {
            name,
            alias,
            version,
            flags,
        } => {
            let path = format!("{}/{}", base(&name), http::segment(&alias));
            let body = alias_body(version, flags);
            let v = ctx.api.call("PUT", &path, Some(&body), &[])?.json()?;
            let msg = format!(
                "updated alias {alias} of {name} -> version {}",
                s(&v, "version")
            );
            ctx.done(&v, msg);
        }
        AliasCommand::Delete { name, alias } => {
            let path = format!("{}/{}", base(&name), http::segment(&alias));
            ctx.api.call("DELETE", &path, None, &[])?;
            ctx.done(
                &json!({"deleted": alias}),
                format!("deleted alias {alias} of {name}"),
            );
        }
    }
    Ok(Outcome::Done)
}
