//! FunctionGraph's interpreter paths inside an instance, and the `/bin/sh` it gets (issue 17).
//!
//! FunctionGraph documents its interpreters at `/opt/function/runtime/<name>/rtsp/<lang>/bin/<exe>`
//! (`/opt/function/runtime/nodejs12.13/rtsp/nodejs/bin/node` in HTTP functions' `bootstrap`,
//! `/opt/function/runtime/python3.9/rtsp/python/bin/python3` in extension scripts), and real
//! code starts them by those paths, whatever its own runtime is. fgs writes the same tree next to
//! its shims in the runtime dir (mounted at `/opt/function/runtime`): for every runtime name, links
//! to the interpreter that name resolved to here, and `lib` to that interpreter's library tree so
//! that paths in stack traces read as the function sees them.
//!
//! The official Custom-runtime example starts `#!/bin/sh` and then `set -o pipefail`, which
//! Debian's dash refuses; where the host's `/bin/sh` lacks `pipefail`, an instance sees bash (or
//! busybox) in its place. The host's own `/bin/sh` is never changed.

use std::path::{Path, PathBuf};

use fgs_core::runtime::{Interpreter, Language, RuntimeTable};
use fgs_core::Runtime;

/// Trees every sandbox shows read-only already (fgs-sandbox's minimal root).
pub(crate) const SYSTEM_TREES: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// The directory of `rt` under the runtime dir and its language folder, as FunctionGraph names
/// them: `Python3.9` is `python3.9/rtsp/python`, `Node.js12.13` is `nodejs12.13/rtsp/nodejs`.
pub(crate) fn runtime_home(rt: Runtime) -> Option<PathBuf> {
    let (lang, _) = rt.language()?;
    let name = rt
        .as_str()
        .to_ascii_lowercase()
        .replace("node.js", "nodejs");
    // FunctionGraph documents no such paths for its other languages.
    let sub = match lang {
        Language::Python => "python",
        Language::NodeJs => "nodejs",
        Language::Java | Language::Go | Language::Php | Language::CSharp | Language::Cangjie => {
            return None
        }
    };
    Some(PathBuf::from(format!("{name}/rtsp/{sub}")))
}

/// The executables of a runtime's `bin/`; the first is what fgs itself starts.
fn executables(rt: Runtime) -> &'static [&'static str] {
    match rt {
        Runtime::Python(fgs_core::runtime::PythonVersion::V2_7) => {
            &["python3", "python", "python2"]
        }
        Runtime::Python(_) => &["python3", "python"],
        Runtime::NodeJs(_) => &["node"],
        _ => &[],
    }
}

/// The interpreter of `rt` as the instance starts it, under `runtime_dir` (a host path: the
/// sandbox shows it under `/opt/function/runtime`).
pub(crate) fn interpreter_path(runtime_dir: &Path, rt: Runtime) -> Option<PathBuf> {
    let exe = executables(rt).first()?;
    Some(runtime_dir.join(runtime_home(rt)?).join("bin").join(exe))
}

/// What the runtime dir's tree holds for `table`, for its content hash: each name's interpreter.
pub(crate) fn fingerprint(table: &RuntimeTable) -> String {
    let mut out = String::new();
    for (rt, av) in table.entries() {
        if let Some(i) = av.interpreter() {
            out.push_str(&format!(
                "{rt}={}:{}\n",
                i.path.display(),
                i.prefix.display()
            ));
        }
    }
    out
}

/// Writes `<name>/rtsp/<lang>/bin/<exe>` and `<name>/rtsp/<lang>/lib` links under `dir` for every
/// runtime name with an interpreter.
pub(crate) fn write_tree(dir: &Path, table: &RuntimeTable) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    for (rt, av) in table.entries() {
        let (Some(i), Some(home)) = (av.interpreter(), runtime_home(*rt)) else {
            continue;
        };
        let home = dir.join(home);
        std::fs::create_dir_all(home.join("bin"))?;
        for exe in executables(*rt) {
            symlink(&i.path, home.join("bin").join(exe))?;
        }
        symlink(library_dir(i), home.join("lib"))?;
    }
    Ok(())
}

/// Where an interpreter's standard library lives: `<prefix>/lib`.
pub(crate) fn library_dir(i: &Interpreter) -> PathBuf {
    i.prefix.join("lib")
}

/// Where users' home directories are: an instance never sees them (docs/sandbox.md).
const HOME_TREES: &[&str] = &["/root", "/home"];

/// Read-only mounts `(host, inside)` every sandboxed instance needs for the runtime paths to lead
/// somewhere: each interpreter installation a runtime name resolved to outside the system trees
/// (under `/opt`, say), at its own path, and the shell shown at `/bin/sh`. An installation under
/// a home directory (pyenv, nvm) is left out: it cannot move (its binaries name their own
/// directory) and showing it would show that home to every instance, so only the functions of a
/// runtime that resolves to it see it (`adapters`).
pub fn runtime_mounts(table: &RuntimeTable) -> Vec<(PathBuf, PathBuf)> {
    let mut out: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (_, av) in table.entries() {
        let Some(i) = av.interpreter() else { continue };
        if SYSTEM_TREES
            .iter()
            .chain(HOME_TREES)
            .any(|t| i.prefix.starts_with(t))
            || out.iter().any(|(p, _)| *p == i.prefix)
        {
            continue;
        }
        out.push((i.prefix.clone(), i.prefix.clone()));
    }
    out.extend(instance_sh());
    out
}

/// `(shell, the file /bin/sh leads to)` when the host's `/bin/sh` has no `set -o pipefail`:
/// bash, else busybox (whose `sh` is ash, which has it), bind-mounted over the file `/bin/sh`
/// leads to, inside the sandbox only. `None` when the host's already has it or none is there.
pub(crate) fn instance_sh() -> Option<(PathBuf, PathBuf)> {
    let sh = std::fs::canonicalize("/bin/sh").ok()?;
    let has_pipefail = |shell: &Path| {
        std::process::Command::new(shell)
            .args(["-c", "set -o pipefail"])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_pipefail(&sh) {
        return None;
    }
    [
        "/bin/bash",
        "/usr/bin/bash",
        "/bin/busybox",
        "/usr/bin/busybox",
    ]
    .iter()
    .filter_map(|c| std::fs::canonicalize(c).ok())
    .find(|c| *c != sh && crate::binary::is_binary(c) && has_pipefail(c))
    .map(|shell| (shell, sh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_functiongraphs() {
        let home =
            |n: &str| runtime_home(Runtime::parse(n).unwrap()).map(|p| p.display().to_string());
        assert_eq!(home("Python3.9").as_deref(), Some("python3.9/rtsp/python"));
        assert_eq!(
            home("Python3.10").as_deref(),
            Some("python3.10/rtsp/python")
        );
        assert_eq!(home("Python2.7").as_deref(), Some("python2.7/rtsp/python"));
        assert_eq!(
            home("Node.js12.13").as_deref(),
            Some("nodejs12.13/rtsp/nodejs")
        );
        assert_eq!(
            home("Node.js6.10").as_deref(),
            Some("nodejs6.10/rtsp/nodejs")
        );
        assert_eq!(home("Custom"), None);
        assert_eq!(home("http"), None);
        let p = interpreter_path(Path::new("/r"), Runtime::parse("Node.js20.15").unwrap());
        assert_eq!(
            p,
            Some(PathBuf::from("/r/nodejs20.15/rtsp/nodejs/bin/node"))
        );
    }

    #[test]
    fn the_tree_leads_to_each_names_interpreter() {
        let tmp = tempfile::tempdir().unwrap();
        let i = Interpreter {
            language: Language::Python,
            path: PathBuf::from("/opt/py/bin/python3.11"),
            version: (3, 11, 2),
            prefix: PathBuf::from("/opt/py"),
        };
        let table = RuntimeTable::from_installed(vec![i]);
        write_tree(tmp.path(), &table).unwrap();
        for name in ["python3.9", "python3.12", "python2.7"] {
            let bin = tmp.path().join(name).join("rtsp/python/bin");
            assert_eq!(
                std::fs::read_link(bin.join("python3")).unwrap(),
                PathBuf::from("/opt/py/bin/python3.11"),
                "{name}"
            );
            assert!(std::fs::symlink_metadata(bin.join("python")).is_ok());
            let lib = tmp.path().join(name).join("rtsp/python/lib");
            assert_eq!(
                std::fs::read_link(lib).unwrap(),
                PathBuf::from("/opt/py/lib")
            );
        }
        assert!(tmp
            .path()
            .join("python2.7/rtsp/python/bin/python2")
            .symlink_metadata()
            .is_ok());
        assert!(
            !tmp.path().join("nodejs20.15").exists(),
            "no Node.js installed"
        );
        // An installation outside the system trees is mounted once, at its own path.
        let mounts = runtime_mounts(&table);
        let py: Vec<_> = mounts
            .iter()
            .filter(|(h, _)| h.starts_with("/opt/py"))
            .collect();
        assert_eq!(
            py,
            vec![&(PathBuf::from("/opt/py"), PathBuf::from("/opt/py"))]
        );
        // One under a home directory is not: every instance would see that home.
        let home = Interpreter {
            language: Language::Python,
            path: PathBuf::from("/root/.pyenv/versions/3.10.13/bin/python3.10"),
            version: (3, 10, 13),
            prefix: PathBuf::from("/root/.pyenv/versions/3.10.13"),
        };
        let table = RuntimeTable::from_installed(vec![home]);
        assert!(runtime_mounts(&table)
            .iter()
            .all(|(h, _)| !h.starts_with("/root")));
    }

    #[test]
    fn the_instance_sh_has_pipefail() {
        let Some((shell, target)) = instance_sh() else {
            // The host's /bin/sh has it already (or no other shell is installed).
            return;
        };
        let ok = std::process::Command::new(&shell)
            .args(["-c", "set -o pipefail"])
            .status()
            .unwrap();
        assert!(ok.success(), "{}", shell.display());
        assert_eq!(target, std::fs::canonicalize("/bin/sh").unwrap());
    }
}
