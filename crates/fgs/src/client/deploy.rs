//! `fgs deploy DIR [--watch]`: create or update a function from the `fgs.yaml` beside its code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use super::function::{self, ConfigFlags};
use super::http::ApiError;
use super::{b64, code, http, s, ClientOptions, Ctx, Outcome};

/// The manifest's file name, in the deployed directory.
pub const MANIFEST: &str = "fgs.yaml";

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    /// The directory holding `fgs.yaml` (and, unless it says `code:`, the code).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Keep running and redeploy whenever a file under DIR changes.
    #[arg(long)]
    pub watch: bool,
    /// How often `--watch` looks for changes (humantime; 200ms to 1m).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Keep the function's triggers that fgs.yaml does not name (by default they are deleted).
    #[arg(long)]
    pub keep_triggers: bool,
}

/// What a deploy does with the function's triggers that the manifest does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamed {
    Delete,
    Keep,
}

/// `fgs.yaml` (docs/cli.md "fgs deploy").
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default = "default_package")]
    pub package: String,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory: Option<u32>,
    pub timeout: Option<u32>,
    pub description: Option<String>,
    /// The code directory or .zip, relative to the manifest; default the manifest's directory.
    pub code: Option<PathBuf>,
    /// A container image instead of code (`host[:port]/repo:tag`, docs/images.md): each deploy
    /// pulls the tag again.
    pub image: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Dependency names, newest version, or `name:version`.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub triggers: Vec<TriggerSpec>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// `TIMER` or `APIG`.
    #[serde(rename = "type")]
    pub type_code: String,
    /// `ACTIVE` (default) or `DISABLED`.
    pub status: Option<String>,
    /// The trigger's `event_data`, as the trigger API takes it (docs/triggers.md).
    pub event_data: serde_json::Value,
}

fn default_package() -> String {
    "default".to_owned()
}

pub fn load_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {}: `fgs deploy DIR` needs an {MANIFEST} in DIR (see docs/cli.md)",
            path.display()
        )
    })?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("{} is invalid", path.display()))
}

pub(super) fn run(a: DeployArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    let unnamed = if a.keep_triggers {
        Unnamed::Keep
    } else {
        Unnamed::Delete
    };
    if !a.watch {
        let f = deploy(&ctx, &a.dir, unnamed)?;
        if ctx.json {
            ctx.done(&f, "");
        }
        return Ok(Outcome::Done);
    }
    let interval = a
        .interval
        .clamp(Duration::from_millis(200), Duration::from_secs(60));
    let mut seen = snapshot(&a.dir);
    if let Err(e) = deploy(&ctx, &a.dir, unnamed) {
        eprintln!("error: {e:#}");
    }
    eprintln!("watching {} for changes (Ctrl-C stops)", a.dir.display());
    loop {
        std::thread::sleep(interval);
        let now = snapshot(&a.dir);
        if now == seen {
            continue;
        }
        // Let an editor or a build finish writing before deploying what it wrote.
        std::thread::sleep(interval.min(Duration::from_millis(300)));
        seen = snapshot(&a.dir);
        match deploy(&ctx, &a.dir, unnamed) {
            Ok(_) => {}
            Err(e) => match e.downcast_ref::<ApiError>() {
                Some(api) => eprintln!("error: {api}"),
                None => eprintln!("error: {e:#}"),
            },
        }
    }
}

/// Every file's path, size and modification time under `dir`: what `--watch` compares.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), meta.len(), meta.modified().ok()));
            }
        }
    }
    out.sort();
    out
}

/// Creates the function, or brings it in line with the manifest: code (uploaded only when its
/// digest changed), configuration, dependencies, then triggers: those the manifest names that
/// the function lacks are created, those it does not name are deleted (or, `Unnamed::Keep`,
/// left alone), and the output says which.
pub(super) fn deploy(ctx: &Ctx, dir: &Path, unnamed: Unnamed) -> Result<Value> {
    let m = load_manifest(dir)?;
    let code_path = match &m.code {
        Some(c) => dir.join(c),
        None => dir.to_path_buf(),
    };
    let reference = format!("{}:{}", m.package, m.name);
    let deps = resolve_dependencies(ctx, &m.dependencies)?;
    let config = ConfigFlags {
        runtime: m.runtime.clone(),
        handler: m.handler.clone(),
        memory: m.memory,
        timeout: m.timeout,
        env: m.env.clone().into_iter().collect(),
        description: m.description.clone(),
        image: m.image.clone(),
    };
    let existing = match function::get(ctx, &reference) {
        Ok(f) => Some(f),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e),
    };
    let (f, what) = match existing {
        None => {
            let code = m.image.is_none().then_some(code_path.as_path());
            let f = function::create(ctx, &m.name, &m.package, code, &config)?;
            if !deps.is_empty() {
                set_dependencies(ctx, &reference, &deps)?;
            }
            (f, "created".to_owned())
        }
        Some(_) if m.image.is_some() => {
            // The config update pulls the image's tag again.
            let f = function::update_config(ctx, &reference, &config, true)?;
            let image = format!("image {}", s(&f["custom_image"], "digest"));
            (f, format!("updated ({image})"))
        }
        Some(cur) => {
            let code = code::load(&code_path)?;
            let digest = hex::encode(Sha512::digest(&code.zip));
            let uploaded = if digest != s(&cur, "digest") {
                let body = json!({
                    "code_type": "zip",
                    "code_filename": code.filename,
                    "func_code": {"file": b64(&code.zip)},
                });
                let path = format!("/functions/{}/code", http::segment(&reference));
                ctx.api.call("PUT", &path, Some(&body), &[])?;
                format!("new code, {} bytes", code.zip.len())
            } else {
                "code unchanged".to_owned()
            };
            let mut f = function::update_config(ctx, &reference, &config, true)?;
            let cur_deps: Vec<String> =
                serde_json::from_value(cur["depend_version_list"].clone()).unwrap_or_default();
            if cur_deps != deps {
                f = set_dependencies(ctx, &reference, &deps)?;
            }
            (f, format!("updated ({uploaded})"))
        }
    };
    let sync = sync_triggers(ctx, &reference, &m.triggers, unnamed)?;
    let mut triggers = String::new();
    if sync.added > 0 {
        triggers.push_str(&format!(", {} trigger(s) added", sync.added));
    }
    if !sync.removed.is_empty() {
        triggers.push_str(&format!(
            ", {} trigger(s) fgs.yaml does not name deleted ({})",
            sync.removed.len(),
            sync.removed.join(", ")
        ));
    }
    if !sync.kept.is_empty() {
        triggers.push_str(&format!(
            ", {} trigger(s) fgs.yaml does not name kept ({})",
            sync.kept.len(),
            sync.kept.join(", ")
        ));
    }
    if !ctx.json {
        eprintln!("{what} {}{triggers}", s(&f, "func_urn"));
    }
    Ok(f)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.code.as_deref() == Some("FSS.1051"))
}

fn set_dependencies(ctx: &Ctx, reference: &str, deps: &[String]) -> Result<Value> {
    let cur = function::get(ctx, reference)?;
    let body = json!({
        "func_name": cur["func_name"],
        "runtime": cur["runtime"],
        "handler": cur["handler"],
        "memory_size": cur["memory_size"],
        "timeout": cur["timeout"],
        "depend_version_list": deps,
    });
    let path = format!("/functions/{}/config", http::segment(reference));
    ctx.api.call("PUT", &path, Some(&body), &[])?.json()
}

/// `name` or `name:version` to dependency version ids.
fn resolve_dependencies(ctx: &Ctx, names: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for spec in names {
        let (name, version) = match spec.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (spec.as_str(), None),
        };
        let list = ctx
            .api
            .call_query(
                "GET",
                "/dependencies",
                &format!("name={}", http::segment(name)),
                None,
                &[],
            )?
            .json()?;
        let Some(newest) = list["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| s(d, "name") == name)
        else {
            bail!("dependency {name:?} does not exist: create it with `fgs dependency create {name} --code DIR`");
        };
        let id = match version {
            None => s(newest, "id").to_owned(),
            Some(v) => {
                let path = format!(
                    "/dependencies/{}/version/{}",
                    http::segment(s(newest, "dep_id")),
                    http::segment(v)
                );
                let dv = ctx.api.call("GET", &path, None, &[])?.json()?;
                s(&dv, "id").to_owned()
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// What [`sync_triggers`] did: how many it created, and the triggers the manifest does not name,
/// as `TYPE key (id)`, deleted or kept.
struct TriggerSync {
    added: usize,
    removed: Vec<String>,
    kept: Vec<String>,
}

/// A trigger's identity in a manifest: its type and `event_data.name` (APIG: `path`).
fn trigger_key(type_code: &str, ed: &Value) -> (String, String) {
    let id = if type_code.eq_ignore_ascii_case("APIG") {
        ed["path"].as_str().unwrap_or("")
    } else {
        ed["name"].as_str().unwrap_or("")
    };
    (type_code.to_uppercase(), id.to_owned())
}

/// Creates the manifest's triggers the function lacks (same type and `event_data.name`, or for
/// APIG the same `path`), and deletes those it does not name unless told to keep them.
fn sync_triggers(
    ctx: &Ctx,
    reference: &str,
    specs: &[TriggerSpec],
    unnamed: Unnamed,
) -> Result<TriggerSync> {
    let path = format!("/triggers/{}", http::segment(reference));
    let existing = ctx.api.call("GET", &path, None, &[])?.json()?;
    let existing = existing.as_array().cloned().unwrap_or_default();
    let wanted: Vec<(String, String)> = specs
        .iter()
        .map(|t| trigger_key(&t.type_code, &t.event_data))
        .collect();
    let mut sync = TriggerSync {
        added: 0,
        removed: Vec::new(),
        kept: Vec::new(),
    };
    for e in &existing {
        let k = trigger_key(s(e, "trigger_type_code"), &e["event_data"]);
        if wanted.contains(&k) {
            continue;
        }
        let id = s(e, "trigger_id");
        let what = format!("{} {} ({id})", k.0, k.1);
        match unnamed {
            Unnamed::Keep => sync.kept.push(what),
            Unnamed::Delete => {
                let one = format!(
                    "{path}/{}/{}",
                    http::segment(s(e, "trigger_type_code")),
                    http::segment(id)
                );
                ctx.api.call("DELETE", &one, None, &[])?;
                sync.removed.push(what);
            }
        }
    }
    for (t, k) in specs.iter().zip(&wanted) {
        if existing
            .iter()
            .any(|e| trigger_key(s(e, "trigger_type_code"), &e["event_data"]) == *k)
        {
            continue;
        }
        let body = json!({
            "trigger_type_code": t.type_code.to_uppercase(),
            "trigger_status": t.status.as_deref().unwrap_or("ACTIVE"),
            "event_data": t.event_data,
        });
        ctx.api.call("POST", &path, Some(&body), &[])?;
        sync.added += 1;
    }
    Ok(sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_with_defaults() {
        let m: Manifest = serde_yaml_ng::from_str(
            "name: hello\nruntime: Python3.10\nhandler: index.handler\nmemory: 256\n\
             env:\n  GREETING: hi\ntriggers:\n  - type: TIMER\n    event_data:\n      \
             name: nightly\n      schedule_type: Rate\n      schedule: 1m\n",
        )
        .expect("parses");
        assert_eq!(m.package, "default");
        assert_eq!(m.memory, Some(256));
        assert_eq!(m.env["GREETING"], "hi");
        assert_eq!(m.triggers[0].event_data["schedule"], "1m");
        assert!(serde_yaml_ng::from_str::<Manifest>("name: x\nmemroy: 1\n").is_err());
    }

    #[test]
    fn triggers_match_by_type_and_name_or_path() {
        let timer = json!({"name": "tick", "schedule": "1m"});
        assert_eq!(
            trigger_key("timer", &timer),
            ("TIMER".into(), "tick".into())
        );
        let apig = json!({"name": "ignored", "path": "/hello"});
        assert_eq!(trigger_key("APIG", &apig), ("APIG".into(), "/hello".into()));
        assert_ne!(trigger_key("APIG", &apig), trigger_key("TIMER", &apig));
    }
}
