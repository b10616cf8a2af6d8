//! The built-in runtimes on this host: the interpreters found once at start-up
//! ([`discover`]) and the shims that adapt them to the Runtime API ([`install_shims`]).
//!
//! Interpreters are resolved to their real binaries here, once: `python3` on a developer's PATH
//! is often a version-manager shim (pyenv's takes ~110 ms per start, measured), which no cold
//! start should pay.

use std::path::{Path, PathBuf};

use fgs_core::runtime::{Interpreter, Language, RuntimeTable};
use sha2::{Digest, Sha256};

/// The shims, embedded in the binary (ARCHITECTURE.md): `(path in the runtime dir, source)`.
const SHIMS: &[(&str, &str)] = &[
    (
        "python/bootstrap.py",
        include_str!("../../../runtimes/python/bootstrap.py"),
    ),
    (
        "nodejs/bootstrap.js",
        include_str!("../../../runtimes/nodejs/bootstrap.js"),
    ),
    (
        "extensions/supervisor.sh",
        include_str!("../../../runtimes/extensions/supervisor.sh"),
    ),
];

/// Where to look for interpreters.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Directories holding `python3.N` or `node` binaries, in order of preference. `None`:
    /// /usr/local/bin, /usr/bin, /bin, then pyenv and nvm installations.
    pub dirs: Option<Vec<PathBuf>>,
}

/// Directories searched, in order of preference: an interpreter of the same major.minor found
/// earlier wins.
fn search_dirs(opts: &DiscoverOptions) -> Vec<PathBuf> {
    if let Some(dirs) = &opts.dirs {
        return dirs.clone();
    }
    let mut dirs: Vec<PathBuf> = ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    // Version managers keep whole installations under one root; each `versions/*/bin` is an
    // ordinary interpreter once the shim in front of it is skipped.
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    let nvm = std::env::var_os("NVM_DIR")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".nvm")));
    for root in [
        pyenv.map(|p| p.join("versions")),
        nvm.map(|n| n.join("versions/node")),
    ]
    .into_iter()
    .flatten()
    {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        versions.sort();
        dirs.extend(versions);
    }
    dirs
}

/// Whether a file name is `python3.N` (not `python3.N-config`, not `python3.Nm`).
fn is_python_name(name: &str) -> bool {
    name.strip_prefix("python3.")
        .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
}

/// A real executable, not a script: version-manager shims are `#!` scripts.
fn is_binary(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    f.read_exact(&mut head).is_ok() && &head == b"\x7fELF"
}

fn candidates(opts: &DiscoverOptions) -> Vec<(Language, PathBuf)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for dir in search_dirs(opts) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<(Language, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_python_name(&name) {
                    Some((Language::Python, e.path()))
                } else if name == "node" {
                    Some((Language::NodeJs, e.path()))
                } else {
                    None
                }
            })
            .collect();
        names.sort_by(|a, b| a.1.cmp(&b.1));
        for (lang, path) in names {
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            if is_binary(&real) && seen.insert(real.clone()) {
                out.push((lang, real));
            }
        }
    }
    out
}

/// Asks one interpreter its exact version and prefix.
fn probe(lang: Language, path: &Path) -> Option<Interpreter> {
    let out = match lang {
        // -S: no site import, -E: no PYTHON* variables of the operator's shell.
        Language::Python => std::process::Command::new(path)
            .args([
                "-S",
                "-E",
                "-c",
                "import sys;print('%d.%d.%d'%sys.version_info[:3]);print(sys.base_prefix)",
            ])
            .output(),
        Language::NodeJs => std::process::Command::new(path)
            .args(["-e", "console.log(process.versions.node)"])
            .output(),
    }
    .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let mut nums = lines.next()?.trim().split('.').map(|n| n.parse::<u32>());
    let version = (
        nums.next()?.ok()?,
        nums.next()?.ok()?,
        nums.next().and_then(Result::ok).unwrap_or(0),
    );
    let prefix = match lang {
        Language::Python => PathBuf::from(lines.next()?.trim()),
        // `<prefix>/bin/node`
        Language::NodeJs => path.parent()?.parent()?.to_path_buf(),
    };
    Some(Interpreter {
        language: lang,
        path: path.to_path_buf(),
        version,
        prefix,
    })
}

/// Finds the interpreters installed on this host and maps every runtime name to one. Blocking:
/// runs each candidate once (in parallel), so call it once at start-up.
pub fn discover(opts: &DiscoverOptions) -> RuntimeTable {
    let found: Vec<Interpreter> = std::thread::scope(|s| {
        let handles: Vec<_> = candidates(opts)
            .into_iter()
            .map(|(lang, path)| s.spawn(move || probe(lang, &path)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok().flatten())
            .collect()
    });
    RuntimeTable::from_installed(found)
}

/// Writes the embedded shims into `<base>/<content hash>/` (read-only) unless an earlier start
/// already did, and returns that directory. Content-addressed, so instances of an older fgs that
/// still run keep their shims when a newer one starts.
pub fn install_shims(base: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    for (name, src) in SHIMS {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(src.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = base.join(&id);
    if dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(base)?;
    let tmp = base.join(format!(".tmp-{id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (name, src) in SHIMS {
        let path = tmp.join(name);
        let parent = path.parent().expect("shim paths have a directory");
        std::fs::create_dir_all(parent)?;
        std::fs::write(&path, src)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))?;
    }
    for sub in ["python", "nodejs", "extensions"] {
        std::fs::set_permissions(tmp.join(sub), std::fs::Permissions::from_mode(0o555))?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another fgs on the same data dir won the race with identical content.
        Err(_) if dir.is_dir() => {
            make_writable(&tmp);
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["", "python", "nodejs"] {
        let _ = std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names() {
        assert!(is_python_name("python3.11"));
        assert!(is_python_name("python3.9"));
        assert!(!is_python_name("python3.11-config"));
        assert!(!is_python_name("python3"));
        assert!(!is_python_name("python3.11m"));
    }

    #[test]
    fn shims_install_once_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let a = install_shims(tmp.path()).unwrap();
        let b = install_shims(tmp.path()).unwrap();
        assert_eq!(a, b);
        let py = a.join("python/bootstrap.py");
        assert!(std::fs::read_to_string(&py)
            .unwrap()
            .contains("getRemainingTimeInMilliSeconds"));
        assert_eq!(
            std::fs::metadata(&py).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert!(a.join("nodejs/bootstrap.js").is_file());
        make_writable(&a);
    }

    #[test]
    fn discovery_skips_scripts_and_resolves_links() {
        // Every interpreter found is a real binary whose version was asked, never a shim.
        let t = discover(&DiscoverOptions::default());
        for i in t.installed() {
            assert!(is_binary(&i.path), "{}", i.path.display());
            assert!(i.version.0 >= 3, "{i:?}");
        }
    }
}
