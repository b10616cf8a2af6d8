//! The CLI client: `fgs function create|update-code|list|get|delete|invoke`, talking to an fgs
//! server (or anything else that speaks FunctionGraph's API) over HTTP, signing every request
//! with AK/SK exactly as the official SDKs do (SPEC.md 2, "Authentication").
//!
//! It is a thin client: it knows the wire shapes of the calls it makes and nothing of how the
//! server works.

mod code;
mod creds;
mod http;

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use http::{Api, ApiError};

/// Server and credentials, shared by every `fgs function` command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOptions {
    /// The fgs server (only http://; this build has no TLS).
    #[arg(
        long,
        env = "FGS_ENDPOINT",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub endpoint: String,
    /// Access key (AK) to sign requests with.
    #[arg(long, env = "FGS_ACCESS_KEY", global = true)]
    pub access_key: Option<String>,
    /// Secret key (SK) to sign requests with.
    #[arg(long, env = "FGS_SECRET_KEY", global = true, hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Project id the access key belongs to.
    #[arg(long = "project", env = "FGS_PROJECT_ID", global = true)]
    pub project: Option<String>,
    /// A credentials file (`ACCESS_KEY SECRET_KEY PROJECT_ID` lines; the first is used), as
    /// `fgs serve` writes to `<data-dir>/credentials`. Default: ./fgs-data/credentials if it exists.
    #[arg(long, env = "FGS_CREDENTIALS", global = true)]
    pub credentials: Option<PathBuf>,
}

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
    /// Replace the code of a function.
    UpdateCode(UpdateCodeArgs),
    /// List functions.
    List(ListArgs),
    /// Show a function's configuration (JSON).
    Get {
        /// Function name or URN.
        name: String,
    },
    /// Delete a function with all its versions.
    Delete {
        /// Function name or URN.
        name: String,
    },
    /// Invoke a function synchronously and print its result.
    Invoke(InvokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Function name: 1-60 letters, digits, `-` or `_`, starting with a letter.
    pub name: String,
    /// Code: a directory (zipped with file modes kept, so `bootstrap` stays executable) or a .zip.
    #[arg(long)]
    pub code: PathBuf,
    /// Runtime: Custom, http, Python3.9/3.10/3.12, Node.js16.17/18.15/20.15 (see `fgs runtimes`).
    #[arg(long, default_value = "Custom")]
    pub runtime: String,
    /// Handler; for Custom, the conventional `bootstrap`.
    #[arg(long, default_value = "bootstrap")]
    pub handler: String,
    /// Memory in MB (128, 256, 512, ... 10240).
    #[arg(long, default_value_t = 128)]
    pub memory: u32,
    /// Timeout in seconds (3-259200).
    #[arg(long, default_value_t = 30)]
    pub timeout: u32,
    /// Environment variable for the function, `KEY=VALUE`; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Package (function group).
    #[arg(long, default_value = "default")]
    pub package: String,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
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
    /// Print the function objects as JSON instead of a table.
    #[arg(long)]
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
    /// Print the tail of the invocation's log (last 4 KB) on standard error.
    #[arg(long)]
    pub log_tail: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// What a command ended with, when it did not fail outright.
enum Outcome {
    Done,
    /// The function itself failed; its error has been printed.
    FunctionFailed,
}

/// Runs one `fgs function` command. Failures are printed here (`error: FSS.xxxx: message` for
/// errors the API returns) and end the process with status 1; a function error prints the
/// error JSON on stdout and also exits 1, so scripts can test `$?`.
pub fn run(args: FunctionArgs) -> Result<()> {
    match execute(args) {
        Ok(Outcome::Done) => Ok(()),
        Ok(Outcome::FunctionFailed) => std::process::exit(1),
        Err(e) => {
            match e.downcast_ref::<ApiError>() {
                Some(api) => eprintln!("error: {api}"),
                None => eprintln!("error: {e:#}"),
            }
            std::process::exit(1)
        }
    }
}

fn execute(args: FunctionArgs) -> Result<Outcome> {
    let cred = creds::resolve(&args.options)?;
    let api = Api::new(&args.options.endpoint, cred)?;
    match args.command {
        FunctionCommand::Create(a) => create(&api, a),
        FunctionCommand::UpdateCode(a) => update_code(&api, a),
        FunctionCommand::List(a) => list(&api, a),
        FunctionCommand::Get { name } => {
            let f = api.call(
                "GET",
                &format!("/functions/{}/config", http::segment(&name)),
                None,
                &[],
            )?;
            print_json(&f.json()?);
            Ok(Outcome::Done)
        }
        FunctionCommand::Delete { name } => {
            api.call(
                "DELETE",
                &format!("/functions/{}", http::segment(&name)),
                None,
                &[],
            )?;
            eprintln!("deleted {name}");
            Ok(Outcome::Done)
        }
        FunctionCommand::Invoke(a) => invoke(&api, a),
    }
}

fn create(api: &Api, a: CreateArgs) -> Result<Outcome> {
    let code = code::load(&a.code)?;
    let mut body = json!({
        "func_name": a.name,
        "package": a.package,
        "runtime": a.runtime,
        "handler": a.handler,
        "memory_size": a.memory,
        "timeout": a.timeout,
        "code_type": "zip",
        "code_filename": code.filename,
        "func_code": {"file": b64(&code.zip)},
    });
    if !a.env.is_empty() {
        let vars: serde_json::Map<String, Value> = a
            .env
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        body["user_data"] = Value::String(Value::Object(vars).to_string());
    }
    if let Some(d) = a.description {
        body["description"] = Value::String(d);
    }
    let f = api.call("POST", "/functions", Some(&body), &[])?.json()?;
    eprintln!(
        "created {} ({} bytes of code)",
        f["func_urn"].as_str().unwrap_or(&a.name),
        f["code_size"].as_u64().unwrap_or(code.zip.len() as u64)
    );
    Ok(Outcome::Done)
}

fn update_code(api: &Api, a: UpdateCodeArgs) -> Result<Outcome> {
    let code = code::load(&a.code)?;
    let body = json!({
        "code_type": "zip",
        "code_filename": code.filename,
        "func_code": {"file": b64(&code.zip)},
    });
    let path = format!("/functions/{}/code", http::segment(&a.name));
    let f = api.call("PUT", &path, Some(&body), &[])?.json()?;
    eprintln!(
        "updated the code of {} (digest {})",
        a.name,
        f["digest"].as_str().unwrap_or("?")
    );
    Ok(Outcome::Done)
}

/// Follows `next_marker` until every function has been listed.
fn list(api: &Api, a: ListArgs) -> Result<Outcome> {
    const PAGE: u64 = 400;
    let mut all: Vec<Value> = Vec::new();
    let mut marker: u64 = 0;
    loop {
        let mut query = format!("marker={marker}&maxitems={PAGE}");
        if let Some(p) = &a.package {
            query.push_str(&format!("&package_name={}", http::segment(p)));
        }
        let page = api
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
    if a.json {
        print_json(&json!({"functions": all, "count": all.len()}));
        return Ok(Outcome::Done);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{:<32} {:<10} {:<8} {:>7} {:>8}  {}\n",
        "NAME", "PACKAGE", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED"
    ));
    for f in &all {
        let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
        let n = |k: &str| f[k].as_u64().map(|v| v.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{:<32} {:<10} {:<8} {:>7} {:>8}  {}\n",
            s("func_name"),
            s("package"),
            s("runtime"),
            n("memory_size"),
            n("timeout"),
            f["last_modified"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| n("last_modified")),
        ));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(Outcome::Done)
}

/// FunctionGraph sends markers as numbers; be lenient with numeric strings.
fn marker_value(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn invoke(api: &Api, a: InvokeArgs) -> Result<Outcome> {
    let event: Vec<u8> = match (&a.data, &a.file) {
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
    };
    let mut headers = vec![];
    if a.log_tail {
        headers.push(("X-Cff-Log-Type", "tail"));
    }
    let path = format!("/functions/{}/invocations", http::segment(&a.name));
    let resp = api.call_raw("POST", &path, "", event, &headers)?;
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
        eprintln!("error: the function failed (X-Func-Err-Code {code})");
        return Ok(Outcome::FunctionFailed);
    }
    Ok(Outcome::Done)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("a Value serializes")
    );
}
