//! Pre-started interpreters (docs/runtimes.md): which Python and Node.js starts may take a
//! runtime the sandbox started ahead with no function, and what makes it the function's.
//!
//! A held interpreter started with the function's program and arguments, in a sandbox with the
//! same trees but the code and dependencies, with an environment of its own. It may stand in
//! for a fresh start only where nothing the interpreter did while starting depends on what it
//! did not know yet: so a function whose own variables name one the interpreter reads at start
//! (`PYTHON*`, `NODE_OPTIONS`, the locale, `HOME`...), whose dependencies bring libraries for
//! the dynamic loader (`LD_LIBRARY_PATH` is read once, at exec) or that has extensions (the
//! supervisor runs first) starts as before. What the shims redo after the message (the
//! environment, cwd, `sys.path` from `PYTHONPATH`, the module paths from `NODE_PATH`, the time
//! zone) is in runtimes/*/bootstrap.*.

use std::path::PathBuf;

use fgs_core::Runtime;
use fgs_sandbox::{ExecSpec, ResourceLimits, Sandbox, Specialization, DEPENDENCY_ROOT};
use serde::Serialize;

use crate::config::InstanceConfig;

/// The memory limit of a held interpreter: FunctionGraph's smallest function size, so that
/// specializing never lowers a limit below what the interpreter took while it waited.
const HOLD_MEMORY_MB: u32 = 128;

/// What a held runtime of the function's kind is, and what makes it the function's.
pub(crate) struct Candidate {
    pub key: String,
    pub class: &'static str,
    pub placeholder: ExecSpec,
    pub specialization: Specialization,
}

/// The placeholder's own environment: the locale and home every function has unless it sets
/// them, the shims' directory, and the mark that makes the shim wait on fd 3.
fn placeholder_env(runtime_dir: &str) -> Vec<(String, String)> {
    [
        ("PATH", crate::environment::SYSTEM_PATH),
        ("LANG", "C.UTF-8"),
        ("HOME", "/tmp"),
        ("FGS_RUNTIME_DIR", runtime_dir),
        ("FGS_PLACEHOLDER", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The class of a runtime that can be pre-started (`--prestart` counts are per class).
pub(crate) fn class(rt: Runtime) -> Option<&'static str> {
    match rt {
        Runtime::Python(_) => Some("python"),
        Runtime::NodeJs(_) => Some("nodejs"),
        _ => None,
    }
}

/// Whether the interpreter of `class` reads `name` while it starts (before the shim runs).
pub(crate) fn read_at_start(class: &str, name: &str) -> bool {
    let locale = name == "LANG" || name == "LANGUAGE" || name.starts_with("LC_");
    let ours = name == "HOME" || name == "LD_PRELOAD" || name == "LD_LIBRARY_PATH";
    locale
        || ours
        || match class {
            "python" => name.starts_with("PYTHON"),
            _ => {
                name.starts_with("NODE_")
                    || name.starts_with("UV_")
                    || name.starts_with("OPENSSL_")
                    || name.starts_with("SSL_CERT_")
            }
        }
}

/// Variables read at start that may differ from the placeholder's: the shims apply the module
/// paths again after the message, as the interpreter would have at start, and the loader's
/// path can only name the dependencies' `lib`, which a candidate has not.
const REAPPLIED: &[&str] = &["PYTHONPATH", "NODE_PATH", "LD_LIBRARY_PATH"];

#[derive(Serialize)]
struct Message<'a> {
    env: &'a [(String, String)],
    cwd: &'a std::path::Path,
}

/// The held kind `spec` (the function's start, as [`crate::instance`] computed it) can use, or
/// `None` when this start must be a fresh one (see the module docs).
pub(crate) fn candidate(
    sandbox: &Sandbox,
    cfg: &InstanceConfig,
    spec: &ExecSpec,
    extensions: bool,
) -> Option<Candidate> {
    let c = class(cfg.runtime)?;
    if extensions || !sandbox.isolated() || sandbox.prestart_count(c) == 0 {
        return None;
    }
    kind(cfg, spec)
}

/// [`candidate`] without the sandbox's part: whether `spec` may run on a held interpreter, and
/// which.
pub(crate) fn kind(cfg: &InstanceConfig, spec: &ExecSpec) -> Option<Candidate> {
    let class = class(cfg.runtime)?;
    if cfg
        .function
        .user
        .iter()
        .any(|(k, _)| read_at_start(class, k))
    {
        return None;
    }
    if let Some(dep) = &cfg.dependency_dir {
        // The loader took LD_LIBRARY_PATH when the placeholder started; libraries there would
        // not be found by it.
        if dep.join("lib").exists() {
            return None;
        }
    }
    let runtime_dir = spec
        .env
        .iter()
        .find(|(k, _)| k == "FGS_RUNTIME_DIR")
        .map(|(_, v)| v.as_str())?;
    let env = placeholder_env(runtime_dir);
    // Everything read at start that the shim does not redo must be what the placeholder had.
    let same = |k: &str, v: &str| env.iter().any(|(pk, pv)| pk == k && pv == v);
    let differs = spec
        .env
        .iter()
        .any(|(k, v)| read_at_start(class, k) && !REAPPLIED.contains(&k.as_str()) && !same(k, v));
    let missing = env
        .iter()
        .filter(|(k, _)| read_at_start(class, k))
        .any(|(k, v)| !spec.env.iter().any(|(fk, fv)| fk == k && fv == v));
    if differs || missing {
        return None;
    }
    let (extra, common): (Vec<_>, Vec<_>) = spec
        .mounts
        .iter()
        .cloned()
        .partition(|(_, inside)| inside == &PathBuf::from(DEPENDENCY_ROOT));
    let placeholder = ExecSpec {
        program: spec.program.clone(),
        args: spec.args.clone(),
        env,
        cwd: PathBuf::from("/"),
        code_dir: PathBuf::new(),
        mounts: common,
        limits: ResourceLimits {
            memory_mb: HOLD_MEMORY_MB,
            cpu_millicores: spec.limits.cpu_millicores,
            pids: spec.limits.pids,
        },
        network: true,
        image: None,
    };
    let key = format!(
        "{class} {:?} {:?} {:?} {}",
        placeholder.program, placeholder.args, placeholder.mounts, placeholder.limits.pids
    );
    let message = serde_json::to_vec(&Message {
        env: &spec.env,
        cwd: &spec.cwd,
    })
    .expect("the specialization message serializes");
    Some(Candidate {
        key,
        class,
        placeholder,
        specialization: Specialization {
            code_dir: spec.code_dir.clone(),
            mounts: extra,
            limits: spec.limits,
            network: spec.network,
            message,
        },
    })
}

#[cfg(test)]
#[path = "prestart/tests.rs"]
mod tests;
