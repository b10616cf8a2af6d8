//! What an instance's processes see (SPEC.md 4): the paths of its trees and its environment,
//! rendered once from the typed [`InstanceConfig`]. Without isolation the paths are the host's;
//! in a sandbox they are the `/opt/function` mounts. Nothing is parsed back from these strings:
//! limits and timeouts travel as numbers beside them.

use std::path::{Path, PathBuf};

use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_sandbox::{CODE_ROOT, DEPENDENCY_ROOT, RUNTIME_ROOT};

use crate::config::InstanceConfig;

/// The system paths an instance searches before the user changes `PATH`.
pub(crate) const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Where the instance sees each host tree of its function: `(host, inside)`.
#[derive(Debug, Clone)]
pub(crate) struct View {
    code: (PathBuf, PathBuf),
    dependency: Option<(PathBuf, PathBuf)>,
    runtime: (PathBuf, PathBuf),
}

impl View {
    pub fn new(cfg: &InstanceConfig, isolated: bool) -> View {
        let at = |host: &Path, root: &str| {
            let inside = if isolated {
                PathBuf::from(root)
            } else {
                host.to_path_buf()
            };
            (host.to_path_buf(), inside)
        };
        View {
            code: at(&cfg.code_dir, CODE_ROOT),
            dependency: cfg
                .dependency_dir
                .as_deref()
                .map(|d| at(d, DEPENDENCY_ROOT)),
            runtime: at(&cfg.runtime_dir, RUNTIME_ROOT),
        }
    }

    /// The code root as the instance sees it (`RUNTIME_CODE_ROOT`, its working directory).
    pub fn code(&self) -> &Path {
        &self.code.1
    }

    /// The merged dependencies as the instance sees them.
    pub fn dependency(&self) -> Option<&Path> {
        self.dependency.as_ref().map(|(_, inside)| inside.as_path())
    }

    /// The runtime shims as the instance sees them (`FGS_RUNTIME_DIR`).
    pub fn runtime(&self) -> &Path {
        &self.runtime.1
    }

    /// Where the instance sees a host path inside one of its trees; any other path (an
    /// interpreter, `/bin/bash`) is the same inside as on the host.
    pub fn inside(&self, host_path: &Path) -> PathBuf {
        for (host, inside) in self.dependency.iter().chain([&self.code, &self.runtime]) {
            match host_path.strip_prefix(host) {
                Ok(rest) if rest.as_os_str().is_empty() => return inside.clone(),
                Ok(rest) => return inside.join(rest),
                Err(_) => {}
            }
        }
        host_path.to_path_buf()
    }
}

/// The `RUNTIME_*` variables, the module paths of the merged dependencies and the user's own
/// variables, in this order. The runtime's launch variables and the API addresses follow them
/// (`Instance::start`).
pub(crate) fn render(cfg: &InstanceConfig, view: &View) -> Vec<(String, String)> {
    let f = &cfg.function;
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), SYSTEM_PATH.into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), "/tmp".into()),
        ("RUNTIME_PROJECT_ID".into(), f.project_id.clone()),
        ("RUNTIME_FUNC_NAME".into(), f.name.clone()),
        ("RUNTIME_FUNC_VERSION".into(), f.version.clone()),
        ("RUNTIME_PACKAGE".into(), f.package.clone()),
        ("RUNTIME_HANDLER".into(), f.handler.clone()),
        ("RUNTIME_TIMEOUT".into(), cfg.timeout.as_secs().to_string()),
        ("RUNTIME_CPU".into(), cfg.limits.cpu_millicores.to_string()),
        ("RUNTIME_MEMORY".into(), cfg.limits.memory_mb.to_string()),
        ("RUNTIME_CODE_ROOT".into(), path(view.code())),
        (
            "RUNTIME_MAX_RESP_BODY_SIZE".into(),
            SYNC_PAYLOAD_MAX.to_string(),
        ),
        ("RUNTIME_USERDATA".into(), f.userdata.clone()),
    ];
    if let Some(h) = &f.initializer {
        env.push(("RUNTIME_INITIALIZER_HANDLER".into(), h.handler.clone()));
        env.push((
            "RUNTIME_INITIALIZER_TIMEOUT".into(),
            h.timeout.as_secs().to_string(),
        ));
    }
    // [FGS] The built-in runtimes run the pre-stop handler on SIGTERM (runtimes/).
    if let Some(h) = &f.pre_stop {
        env.push(("RUNTIME_PRE_STOP_HANDLER".into(), h.handler.clone()));
        env.push((
            "RUNTIME_PRE_STOP_TIMEOUT".into(),
            h.timeout.as_secs().to_string(),
        ));
    }
    // SPEC.md 4: merged dependencies go on every module path.
    if let Some(dep) = view.dependency() {
        let dep = path(dep);
        env.push(("PYTHONPATH".into(), format!("{dep}/python:{dep}")));
        env.push((
            "NODE_PATH".into(),
            format!("{dep}/nodejs/node_modules:{dep}/node_modules"),
        ));
        env.push(("LD_LIBRARY_PATH".into(), format!("{dep}/lib")));
        env[0].1 = format!("{dep}/bin:{SYSTEM_PATH}");
    }
    // User variables last; their names were checked against the reserved ones at create time,
    // but PATH, LANG and HOME are theirs to override.
    for (k, v) in &f.user {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests;
