//! The CLI client (docs/cli.md): `fgs function|deploy|logs|version|alias|trigger|dependency`,
//! talking to an fgs server (or anything else that speaks FunctionGraph's API) over HTTP, signing
//! every request with AK/SK exactly as the official SDKs do (SPEC.md 2, "Authentication").
//!
//! It is a thin client: it knows the wire shapes of the calls it makes and nothing of how the
//! server works. Tables are for people; `--output json` prints the API's own objects for scripts.

mod code;
mod creds;
mod deploy;
mod flows;
mod function;
mod http;
mod logs;
mod table;
mod template;
mod triggers;

use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use http::{Api, ApiError};

/// Server and credentials, shared by every client command.
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
    /// `table` for people, `json` for scripts (the API's objects, one JSON document).
    #[arg(long, short = 'o', env = "FGS_OUTPUT", default_value = "table", value_parser = ["table", "json"], global = true)]
    pub output: String,
}

/// The client commands, flattened into `fgs`'s own.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage and invoke functions (a client of a running fgs).
    Function(Box<function::FunctionArgs>),
    /// Create or update a function from a directory with an `fgs.yaml`.
    Deploy(Box<deploy::DeployArgs>),
    /// Show a function's stored invocation logs.
    Logs(Box<logs::LogsArgs>),
    /// Publish, list and delete a function's versions.
    Version(Box<flows::VersionArgs>),
    /// Manage a function's aliases.
    Alias(Box<flows::AliasArgs>),
    /// Manage a function's triggers (TIMER, APIG).
    Trigger(Box<triggers::TriggerArgs>),
    /// Manage dependency packages.
    Dependency(Box<triggers::DependencyArgs>),
}

/// What a command ended with, when it did not fail outright.
enum Outcome {
    Done,
    /// The function itself failed; its error has been printed.
    FunctionFailed,
}

/// What every command works with: the server, the project and how to print.
struct Ctx {
    api: Api,
    project: String,
    json: bool,
}

impl Ctx {
    fn new(o: &ClientOptions) -> Result<Ctx> {
        let cred = creds::resolve(o)?;
        let project = cred.project_id.clone();
        Ok(Ctx {
            api: Api::new(&o.endpoint, cred)?,
            project,
            json: o.output == "json",
        })
    }

    /// A function (by name, `package:name` or URN) with a version or `!alias` as one path
    /// segment, in the short `project:package:name:qualifier` form the API accepts.
    fn qualified(&self, name: &str, qualifier: &str) -> String {
        let (package, bare) = match name.split(':').collect::<Vec<_>>()[..] {
            [n] => ("default", n),
            [p, n] => (p, n),
            _ => return http::segment(name),
        };
        http::segment(&format!("{}:{package}:{bare}:{qualifier}", self.project))
    }

    /// Prints `v` as JSON, or hands it to `table` for people.
    fn show(&self, v: &Value, table: impl FnOnce(&Value) -> String) -> Result<()> {
        use std::io::Write;
        let text = if self.json {
            format!(
                "{}\n",
                serde_json::to_string_pretty(v).expect("a Value serializes")
            )
        } else {
            table(v)
        };
        std::io::stdout().write_all(text.as_bytes())?;
        Ok(())
    }

    /// A line for people on stderr (stdout stays for results); JSON mode prints `v` instead.
    fn done(&self, v: &Value, message: impl std::fmt::Display) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(v).expect("a Value serializes")
            );
        } else {
            eprintln!("{message}");
        }
    }
}

/// Runs one client command. Failures are printed here (`error: FSS.xxxx: message` for errors
/// the API returns) and end the process with status 1; a function error prints the error JSON
/// on stdout and also exits 1, so scripts can test `$?`.
pub fn run(cmd: Command) -> Result<()> {
    let result = match cmd {
        Command::Function(a) => function::run(*a),
        Command::Deploy(a) => deploy::run(*a),
        Command::Logs(a) => logs::run(*a),
        Command::Version(a) => flows::run_version(*a),
        Command::Alias(a) => flows::run_alias(*a),
        Command::Trigger(a) => triggers::run_trigger(*a),
        Command::Dependency(a) => triggers::run_dependency(*a),
    };
    match result {
        Ok(Outcome::Done) => Ok(()),
        Ok(Outcome::FunctionFailed) => std::process::exit(1),
        Err(e) => {
            match e.downcast_ref::<ApiError>() {
                Some(api) => eprintln!("error: {api}{}", hint(api)),
                None => eprintln!("error: {e:#}"),
            }
            std::process::exit(1)
        }
    }
}

/// What to do about the API errors people meet most.
fn hint(e: &ApiError) -> &'static str {
    match e.code.as_deref() {
        Some("FSS.0401") => {
            " (check --access-key/--secret-key/--project or --credentials: the server's are in <data-dir>/credentials)"
        }
        Some("FSS.1051") => " (see `fgs function list`)",
        Some("FSS.1061") => " (use `fgs function update` or `fgs deploy` to change it)",
        _ => "",
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A string field, or "".
fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

/// A scalar field as text (numbers, strings, booleans), or "".
fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
