//! `fgs function create|update|update-code|list|get|delete|invoke`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::table::Table;
use super::{b64, code, http, s, text, ClientOptions, Ctx, Outcome};

/// `fgs function ...`: manage and invoke functions.
#[derive(Debug, clap::Args)]
pub struct FunctionArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    #[command(subcommand)]
    pub command: FunctionCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FunctionCommand {
    /// Create a function from a code directory or a .zip.
    Create(CreateArgs),
    /// Change a function's configuration and/or code.
    Update(UpdateArgs),
    /// Replace the code of a function (same as `update --code`).
    UpdateCode(UpdateCodeArgs),
    /// List functions.
    List(ListArgs),
    /// Show a function's configuration.
    Get {
        /// Function name or URN.
        name: String,
    },
    /// Delete a function with all its versions.
    Delete {
        /// Function name or URN.
        name: String,
    },
    /// Invoke a function and print its result.
    Invoke(InvokeArgs),
}

/// Configuration flags shared by `create` and `update`.
#[derive(Debug, Default, clap::Args)]
pub struct ConfigFlags {
    /// Runtime: Custom, http, Python3.9/3.10/3.12, Node.js16.17/18.15/20.15, PHP8.3, Java17, ... (see `fgs runtimes`).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Handler; for Custom, the conventional `bootstrap`.
    #[arg(long)]
    pub handler: Option<String>,
    /// Memory in MB (128, 256, 512, ... 10240).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds (3-259200).
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Environment variable for the function, `KEY=VALUE`; repeatable. `update` adds to or
    /// changes the function's variables.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// A container image (`host[:port]/repo:tag`): an image function, `Custom Image` unless
    /// `--runtime http` makes it an HTTP function (docs/images.md). `update` pulls the tag
    /// again, so new instances run what it names now.
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Function name: 1-60 letters, digits, `-` or `_`, starting with a letter.
    pub name: String,
    /// Code: a directory (zipped with file modes kept, so `bootstrap` stays executable) or a
    /// .zip; not with `--image`.
    #[arg(
        long,
        required_unless_present_any = ["template", "image"],
        conflicts_with_all = ["template", "image"]
    )]
    pub code: Option<PathBuf>,
    /// Start from the server's built-in template ID (`GET /templates`): its code, settings and
    /// triggers; the flags given override its settings.
    #[arg(long, value_name = "ID")]
    pub template: Option<String>,
    /// Package (function group).
    #[arg(long, default_value = "default")]
    pub package: String,
    #[command(flatten)]
    pub config: ConfigFlags,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Function name or URN.
    pub name: String,
    /// New code: a directory or a .zip.
    #[arg(long)]
    pub code: Option<PathBuf>,
    #[command(flatten)]
    pub config: ConfigFlags,
}

#[derive(Debug, clap::Args)]
pub struct UpdateCodeArgs {
    /// Function name or URN.
    pub name: String,
    /// Code: a directory or a .zip.
    #[arg(long)]
    pub code: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only functions of this package.
    #[arg(long)]
    pub package: Option<String>,
    /// Only functions with this tag (`KEY=VALUE`, or `KEY` for any value); repeat to require
    /// several.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Same as `--output json`.
    #[arg(long, hide = true)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Function name or URN.
    pub name: String,
    /// The event, as JSON text.
    #[arg(long, conflicts_with = "file")]
    pub data: Option<String>,
    /// Read the event from a file; `-` reads standard input.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Invoke asynchronously: print the request id and return (see `fgs logs --request-id`).
    #[arg(long = "async")]
    pub is_async: bool,
    /// Invoke this published version.
    #[arg(long, conflicts_with = "alias")]
    pub version: Option<String>,
    /// Invoke through this alias.
    #[arg(long)]
    pub alias: Option<String>,
    /// Print the tail of the invocation's log (last 4 KB) on standard error.
    #[arg(long)]
    pub log_tail: bool,
}

pub fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub(super) fn run(args: FunctionArgs) -> Result<Outcome> {
    let mut ctx = Ctx::new(&args.options)?;
    match args.command {
        FunctionCommand::Create(a) => {
            let f = match (&a.code, &a.template) {
                (Some(code), _) => create(&ctx, &a.name, &a.package, Some(code), &a.config)?,
                (None, Some(id)) => {
                    super::template::create(&ctx, &a.name, &a.package, id, &a.config)?
                }
                (None, None) if a.config.image.is_some() => {
                    create(&ctx, &a.name, &a.package, None, &a.config)?
                }
                (None, None) => anyhow::bail!("give --code DIR, --image REF or --template ID"),
            };
            let msg = if a.config.image.is_some() {
                format!(
                    "created {} (image {})",
                    s(&f, "func_urn"),
                    s(&f["custom_image"], "digest")
                )
            } else {
                format!(
                    "created {} ({} bytes of code)",
                    s(&f, "func_urn"),
                    text(&f, "code_size")
                )
            };
            ctx.done(&f, msg);
        }
        FunctionCommand::Update(a) => {
            let mut f = Value::Null;
            if let Some(code) = &a.code {
                f = update_code(&ctx, &a.name, code)?;
            }
            if a.code.is_none() || !a.config.is_empty() {
                f = update_config(&ctx, &a.name, &a.config, false)?;
            }
            ctx.done(&f, format!("updated {}", a.name));
        }
        FunctionCommand::UpdateCode(a) => {
            let f = update_code(&ctx, &a.name, &a.code)?;
            let msg = format!(
                "updated the code of {} (digest {})",
                a.name,
                s(&f, "digest")
            );
            ctx.done(&f, msg);
        }
        FunctionCommand::List(a) => {
            ctx.json |= a.json;
            let mut all = list(&ctx, a.package.as_deref())?;
            if !a.tags.is_empty() {
                let tagged = tagged(&ctx, &a.tags)?;
                all.retain(|f| f["func_urn"].as_str().is_some_and(|u| tagged.contains(u)));
            }
            ctx.show(&json!({"functions": all, "count": all.len()}), |_| {
                let mut t = Table::new(&[
                    "NAME",
                    "PACKAGE",
                    "RUNTIME",
                    "MEMORY",
                    "TIMEOUT",
                    "LAST MODIFIED",
                ]);
                for f in &all {
                    t.row(vec![
                        s(f, "func_name").into(),
                        s(f, "package").into(),
                        s(f, "runtime").into(),
                        text(f, "memory_size"),
                        text(f, "timeout"),
                        text(f, "last_modified"),
                    ]);
                }
                t.render()
            })?;
        }
        FunctionCommand::Get { name } => {
            let f = get(&ctx, &name)?;
            ctx.show(&f, describe)?;
        }
        FunctionCommand::Delete { name } => {
            ctx.api.call(
                "DELETE",
                &format!("/functions/{}", http::segment(&name)),
                None,
                &[],
            )?;
            ctx.done(&json!({"deleted": name}), format!("deleted {name}"));
        }
        FunctionCommand::Invoke(a) => return invoke(&ctx, a),
    }
    Ok(Outcome::Done)
}

impl ConfigFlags {
    fn is_empty(&self) -> bool {
        self.runtime.is_none()
            && self.handler.is_none()
            && self.memory.is_none()
            && self.timeout.is_none()
            && self.env.is_empty()
            && self.description.is_none()
            && self.image.is_none()
    }
}

pub(super) fn env_json(vars: &[(String, String)]) -> String {
    let m: Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(m).to_string()
}

/// Creates a function from code (`code_path`) or, with `c.image`, from a container image.
pub(super) fn create(
    ctx: &Ctx,
    name: &str,
    package: &str,
    code_path: Option<&std::path::Path>,
    c: &ConfigFlags,
) -> Result<Value> {
    let default_runtime = if c.image.is_some() {
        "Custom Image"
    } else {
        "Custom"
    };
    let mut body = json!({
        "func_name": name,
        "package": package,
        "runtime": c.runtime.as_deref().unwrap_or(default_runtime),
        "handler": c.handler.as_deref().unwrap_or("bootstrap"),
        "memory_size": c.memory.unwrap_or(128),
        "timeout": c.timeout.unwrap_or(30),
    });
    match (&c.image, code_path) {
        (Some(image), _) => body["custom_image"] = json!({"enabled": true, "image": image}),
        (None, Some(p)) => {
            let code = code::load(p)?;
            body["code_type"] = "zip".into();
            body["code_filename"] = code.filename.into();
            body["func_code"] = json!({"file": b64(&code.zip)});
        }
        (None, None) => anyhow::bail!("a function needs code or an image"),
    }
    if !c.env.is_empty() {
        body["user_data"] = Value::String(env_json(&c.env));
    }
    if let Some(d) = &c.description {
        body["description"] = Value::String(d.clone());
    }
    ctx.api.call("POST", "/functions", Some(&body), &[])?.json()
}

pub(super) fn get(ctx: &Ctx, name: &str) -> Result<Value> {
    let path = format!("/functions/{}/config", http::segment(name));
    ctx.api.call("GET", &path, None, &[])?.json()
}

pub(super) fn update_code(ctx: &Ctx, name: &str, code_path: &std::path::Path) -> Result<Value> {
    let code = code::load(code_path)?;
    let body = json!({
        "code_type": "zip",
        "code_filename": code.filename,
        "func_code": {"file": b64(&code.zip)},
    });
    let path = format!("/functions/{}/code", http::segment(name));
    ctx.api.call("PUT", &path, Some(&body), &[])?.json()
}

/// Reads the configuration, changes what `c` sets and writes it back. With `replace_env` the
/// variables become exactly `c.env` (deploy); otherwise `c.env` is merged into them.
pub(super) fn update_config(
    ctx: &Ctx,
    name: &str,
    c: &ConfigFlags,
    replace_env: bool,
) -> Result<Value> {
    let cur = get(ctx, name)?;
    let mut body = json!({
        "func_name": cur["func_name"],
        "runtime": c.runtime.as_deref().map_or(cur["runtime"].clone(), Value::from),
        "handler": c.handler.as_deref().map_or(cur["handler"].clone(), Value::from),
        "memory_size": c.memory.map_or(cur["memory_size"].clone(), Value::from),
        "timeout": c.timeout.map_or(cur["timeout"].clone(), Value::from),
    });
    if let Some(d) = &c.description {
        body["description"] = Value::from(d.as_str());
    }
    if let Some(image) = &c.image {
        // Named again, the tag is pulled again: new instances run what it names now.
        body["custom_image"] = json!({"enabled": true, "image": image});
    }
    if replace_env || !c.env.is_empty() {
        let mut vars: Vec<(String, String)> = Vec::new();
        if !replace_env {
            let old: Map<String, Value> =
                serde_json::from_str(s(&cur, "user_data")).unwrap_or_default();
            vars.extend(
                old.into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))),
            );
        }
        for (k, v) in &c.env {
            vars.retain(|(old, _)| old != k);
            vars.push((k.clone(), v.clone()));
        }
        body["user_data"] = Value::String(env_json(&vars));
    }
    let path = format!("/functions/{}/config", http::segment(name));
    ctx.api.call("PUT", &path, Some(&body), &[])?.json()
}

/// Follows `next_marker` until every function has been listed.
pub(super) fn list(ctx: &Ctx, package: Option<&str>) -> Result<Vec<Value>> {
    const PAGE: u64 = 400;
    let mut all: Vec<Value> = Vec::new();
    let mut marker: u64 = 0;
    loop {
        let mut query = format!("marker={marker}&maxitems={PAGE}");
        if let Some(p) = package {
            query.push_str(&format!("&package_name={}", http::segment(p)));
        }
        let page = ctx
            .api
            .call_query("GET", "/functions", &query, None, &[])?
            .json()?;
        let items = page["functions"].as_array().cloned().unwrap_or_default();
        let got = items.len() as u64;
        all.extend(items);
        let next = marker_value(&page["next_marker"]);
        let count = marker_value(&page["count"]);
        match next {
            Some(n) if got > 0 && n > marker && count.is_none_or(|c| n < c) => marker = n,
            _ => break,
        }
    }
    Ok(all)
}

/// The URNs of the functions that carry every tag of `filters` (`KEY=VALUE` or `KEY`), asked
/// of the tag API (`resource-instances/filter`).
fn tagged(ctx: &Ctx, filters: &[String]) -> Result<std::collections::HashSet<String>> {
    let tags: Vec<Value> = filters
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => json!({"key": k, "values": [v]}),
            None => json!({"key": f, "values": []}),
        })
        .collect();
    let found = ctx
        .api
        .call_project(
            "POST",
            "/functions/resource-instances/filter",
            Some(&json!({"tags": tags})),
        )?
        .json()?;
    Ok(found["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["resource_id"].as_str().map(str::to_owned))
        .collect())
}

/// FunctionGraph sends markers as numbers; be lenient with numeric strings.
fn marker_value(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A function's configuration as `key: value` lines.
fn describe(f: &Value) -> String {
    let mut out = String::new();
    for k in [
        "func_name",
        "func_urn",
        "package",
        "runtime",
        "handler",
        "memory_size",
        "timeout",
        "code_size",
        "digest",
        "version",
        "description",
        "last_modified",
    ] {
        let v = text(f, k);
        if !v.is_empty() {
            out.push_str(&format!("{:<14} {v}\n", format!("{k}:")));
        }
    }
    let env: Map<String, Value> = serde_json::from_str(s(f, "user_data")).unwrap_or_default();
    if !env.is_empty() {
        out.push_str("env:\n");
        for (k, v) in env {
            out.push_str(&format!("  {k}={}\n", v.as_str().unwrap_or("")));
        }
    }
    let deps = f["depend_version_list"].as_array().map_or(0, Vec::len);
    if deps > 0 {
        out.push_str(&format!("{:<14} {deps}\n", "dependencies:"));
    }
    out
}

fn read_event(a: &InvokeArgs) -> Result<Vec<u8>> {
    Ok(match (&a.data, &a.file) {
        (Some(d), _) => d.clone().into_bytes(),
        (None, Some(p)) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the event from stdin")?;
            buf
        }
        (None, Some(p)) => {
            std::fs::read(p).with_context(|| format!("reading the event from {}", p.display()))?
        }
        (None, None) => b"{}".to_vec(),
    })
}

fn invoke(ctx: &Ctx, a: InvokeArgs) -> Result<Outcome> {
    let event = read_event(&a)?;
    let target = match (&a.version, &a.alias) {
        (Some(v), _) => ctx.qualified(&a.name, v),
        (None, Some(al)) => ctx.qualified(&a.name, &format!("!{al}")),
        (None, None) => http::segment(&a.name),
    };
    if a.is_async {
        let path = format!("/functions/{target}/invocations-async");
        let v = ctx.api.call_raw("POST", &path, "", event, &[])?.json()?;
        ctx.show(&v, |v| format!("{}\n", s(v, "request_id")))?;
        return Ok(Outcome::Done);
    }
    let mut headers = vec![];
    if a.log_tail {
        headers.push(("X-Cff-Log-Type", "tail"));
    }
    let path = format!("/functions/{target}/invocations");
    let resp = ctx.api.call_raw("POST", &path, "", event, &headers)?;
    if a.log_tail {
        if let Some(log) = resp.header("x-cff-function-log") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(log.trim())
                .context("the X-Cff-Function-Log header is not base64")?;
            let mut err = std::io::stderr();
            err.write_all(&decoded)?;
            if !decoded.ends_with(b"\n") {
                err.write_all(b"\n")?;
            }
        }
    }
    let mut out = std::io::stdout();
    out.write_all(&resp.body)?;
    if !resp.body.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if resp.header("x-is-func-err").as_deref() == Some("true") {
        let code = resp.header("x-func-err-code").unwrap_or_default();
        let rid = resp.header("x-cff-request-id").unwrap_or_default();
        eprintln!(
            "error: the function failed (X-Func-Err-Code {code}); its log: fgs logs {} --request-id {rid}",
            a.name
        );
        return Ok(Outcome::FunctionFailed);
    }
    Ok(Outcome::Done)
}
