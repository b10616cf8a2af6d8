//! The built-in runtimes on this host: the interpreters found once at start-up
//! ([`discover`]) and the shims that adapt them to the Runtime API ([`install_shims`]).
//!
//! Interpreters are resolved to their real binaries here, once: `python3` on a developer's PATH
//! is often a version-manager shim (pyenv's takes ~110 ms per start, measured), which no cold
//! start should pay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fgs_core::runtime::{Interpreter, Language, RuntimeTable};
use sha2::{Digest, Sha256};

use crate::binary::is_binary;

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
        "php/bootstrap.php",
        include_str!("../../../runtimes/php/bootstrap.php"),
    ),
    (
        "java/src/com/huawei/services/runtime/Context.java",
        include_str!("../../../runtimes/java/com/huawei/services/runtime/Context.java"),
    ),
    (
        "java/src/com/huawei/services/runtime/RuntimeLogger.java",
        include_str!("../../../runtimes/java/com/huawei/services/runtime/RuntimeLogger.java"),
    ),
    (
        "java/src/com/opentelekomcloud/services/runtime/Context.java",
        include_str!("../../../runtimes/java/com/opentelekomcloud/services/runtime/Context.java"),
    ),
    (
        "java/src/com/opentelekomcloud/services/runtime/RuntimeLogger.java",
        include_str!(
            "../../../runtimes/java/com/opentelekomcloud/services/runtime/RuntimeLogger.java"
        ),
    ),
    (
        "java/src/fgs/runtime/Bootstrap.java",
        include_str!("../../../runtimes/java/fgs/runtime/Bootstrap.java"),
    ),
    (
        "java/src/fgs/runtime/Ctx.java",
        include_str!("../../../runtimes/java/fgs/runtime/Ctx.java"),
    ),
    (
        "java/src/fgs/runtime/Ids.java",
        include_str!("../../../runtimes/java/fgs/runtime/Ids.java"),
    ),
    (
        "java/src/fgs/runtime/Json.java",
        include_str!("../../../runtimes/java/fgs/runtime/Json.java"),
    ),
    (
        "java/src/fgs/runtime/Logger.java",
        include_str!("../../../runtimes/java/fgs/runtime/Logger.java"),
    ),
    (
        "extensions/supervisor.sh",
        include_str!("../../../runtimes/extensions/supervisor.sh"),
    ),
];

/// Where to look for interpreters.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Directories holding `python3.N`, `node`, `php`/`phpN.N` or `java` binaries, in order of
    /// preference. `None`: /usr/local/bin, /usr/bin, /bin, every JDK under /usr/lib/jvm, then
    /// pyenv and nvm installations.
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
    // Debian installs every JDK there; `/usr/bin/java` leads to one of them only.
    let mut jdks: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .collect();
    jdks.sort();
    dirs.extend(jdks);
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

/// Whether a file name is `php` or Debian's `phpN.N` (not `php-config`, not `phpize`).
fn is_php_name(name: &str) -> bool {
    name == "php"
        || name.strip_prefix("php").is_some_and(|v| {
            v.split_once('.').is_some_and(|(a, b)| {
                [a, b]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            })
        })
}

/// The language of an interpreter's file name, if fgs looks for it.
fn language_of(name: &str) -> Option<Language> {
    if is_python_name(name) {
        Some(Language::Python)
    } else if name == "node" {
        Some(Language::NodeJs)
    } else if is_php_name(name) {
        Some(Language::Php)
    } else if name == "java" {
        Some(Language::Java)
    } else {
        None
    }
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
            .filter_map(|e| Some((language_of(&e.file_name().to_string_lossy())?, e.path())))
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
        // -n: no php.ini, whose extensions could fail to load and print.
        Language::Php => std::process::Command::new(path)
            .args(["-n", "-r", "echo PHP_VERSION, \"\\n\";"])
            .output(),
        Language::Java => return probe_java(path),
        Language::Go | Language::CSharp | Language::Cangjie => return None,
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
        // `<prefix>/bin/node`, `<prefix>/bin/php`
        _ => path.parent()?.parent()?.to_path_buf(),
    };
    Some(Interpreter {
        language: lang,
        path: path.to_path_buf(),
        version,
        prefix,
    })
}

/// A JDK's version from its `release` file (`JAVA_VERSION="17.0.9"`, Java 8's `"1.8.0_392"`):
/// starting a JVM only to ask costs ~100 ms.
fn probe_java(path: &Path) -> Option<Interpreter> {
    let prefix = path.parent()?.parent()?.to_path_buf();
    let release = std::fs::read_to_string(prefix.join("release")).ok()?;
    let version = parse_java_release(&release)?;
    Some(Interpreter {
        language: Language::Java,
        path: path.to_path_buf(),
        version,
        prefix,
    })
}

fn parse_java_release(release: &str) -> Option<(u32, u32, u32)> {
    let line = release
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?;
    let v = line.trim().trim_matches('"');
    let v = v.strip_prefix("1.").unwrap_or(v);
    let mut nums = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    Some((
        nums.next()??,
        nums.next().flatten().unwrap_or(0),
        nums.next().flatten().unwrap_or(0),
    ))
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

/// Writes the embedded shims and FunctionGraph's interpreter paths for `table`
/// ([`crate::runtime_paths`]) into `<base>/<content hash>/` (read-only) unless an earlier start
/// already did, and returns that directory. Content-addressed, so instances of an older fgs that
/// still run keep their shims and paths when a newer one starts.
pub fn install_shims(base: &Path, table: &RuntimeTable) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    for (name, src) in SHIMS {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(src.as_bytes());
        h.update([0]);
    }
    h.update(crate::runtime_paths::fingerprint(table).as_bytes());
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
    for sub in ["python", "nodejs", "php", "java", "extensions"] {
        std::fs::set_permissions(tmp.join(sub), std::fs::Permissions::from_mode(0o555))?;
    }
    crate::runtime_paths::write_tree(&tmp, table)?;
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

/// Compiles the Python shim once per installed CPython into `python/__pycache__`, so that no
/// instance compiles it again (about 4 ms of each Python cold start; the adapters load it through
/// `SourceFileLoader`, which reads the cache). A compile that fails costs only that: the shim is
/// then compiled in memory at each start.
pub fn compile_python_shim(runtime_dir: &Path, interpreters: &[Arc<Interpreter>]) {
    use std::os::unix::fs::PermissionsExt;
    let py_dir = runtime_dir.join("python");
    let cache = py_dir.join("__pycache__");
    let missing: Vec<&Arc<Interpreter>> = interpreters
        .iter()
        .filter(|i| i.language == Language::Python)
        .filter(|i| !cache.join(python_pyc_name(i.version)).is_file())
        .collect();
    if missing.is_empty() {
        return;
    }
    let mode = |p: &Path, m: u32| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    };
    mode(&py_dir, 0o755);
    mode(&cache, 0o755);
    for i in missing {
        let out = std::process::Command::new(&i.path)
            .args([
                "-I",
                "-c",
                "import py_compile,sys;py_compile.compile(sys.argv[1],doraise=True)",
            ])
            .arg(py_dir.join("bootstrap.py"))
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => tracing::warn!(
                interpreter = %i.path.display(),
                error = %String::from_utf8_lossy(&o.stderr).trim(),
                "compiling the Python runtime shim failed"
            ),
            Err(e) => tracing::warn!(
                interpreter = %i.path.display(),
                error = %e,
                "compiling the Python runtime shim failed"
            ),
        }
    }
    if let Ok(entries) = std::fs::read_dir(&cache) {
        for e in entries.flatten() {
            mode(&e.path(), 0o444);
        }
    }
    mode(&cache, 0o555);
    mode(&py_dir, 0o555);
}

/// Where fgs's Java runtime classes are, under the runtime dir.
pub(crate) const JAVA_CLASSES: &str = "java/classes";

/// Compiles fgs's Java runtime (`java/src`: FunctionGraph's `Context` and `RuntimeLogger` in both
/// packages, and the shim) into `java/classes` once per runtime dir, with the newest of these
/// JDKs' `javac` for Java 8 bytecode, so every installed JVM runs it. Lazily, when the first Java
/// instance starts, rather than at build time: a clean clone builds with no JDK, an fgs with no
/// Java functions never pays it, and a host with no `javac` has no Java functions (their
/// instances fail to start saying so). Blocking, about 2 s once per runtime dir.
pub fn compile_java_shim(runtime_dir: &Path, interpreters: &[Arc<Interpreter>]) {
    use std::os::unix::fs::PermissionsExt;
    // One compile at a time: instances of one fgs start in parallel.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let java_dir = runtime_dir.join("java");
    let classes = java_dir.join("classes");
    if classes.join("fgs/runtime/Bootstrap.class").is_file() {
        return;
    }
    let Some(javac) = interpreters
        .iter()
        .filter(|i| i.language == Language::Java)
        .filter_map(|i| Some((i.version, javac_of(i)?)))
        .max_by_key(|(v, _)| *v)
        .map(|(_, j)| j)
    else {
        return;
    };
    let mut sources = Vec::new();
    collect_sources(&java_dir.join("src"), &mut sources);
    let mode = |p: &Path, m: u32| {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    };
    mode(&java_dir, 0o755);
    let tmp = java_dir.join(format!(".classes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = std::process::Command::new(&javac)
        .args(["--release", "8", "-Xlint:-options", "-nowarn", "-d"])
        .arg(&tmp)
        .args(&sources)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            if std::fs::rename(&tmp, &classes).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
        }
        Ok(o) => tracing::warn!(
            javac = %javac.display(),
            error = %String::from_utf8_lossy(&o.stderr).trim(),
            "compiling the Java runtime failed: Java functions cannot start"
        ),
        Err(e) => tracing::warn!(
            javac = %javac.display(),
            error = %e,
            "compiling the Java runtime failed: Java functions cannot start"
        ),
    }
    let _ = std::fs::remove_dir_all(&tmp);
    mode(&java_dir, 0o555);
}

/// The `javac` of a JDK whose `java` this is, if it has one (a JRE has none).
fn javac_of(i: &Interpreter) -> Option<PathBuf> {
    let javac = i.prefix.join("bin/javac");
    is_binary(&javac).then_some(javac)
}

fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "java") {
            out.push(p);
        }
    }
}

/// The cached bytecode CPython `major.minor` reads for `bootstrap.py`.
fn python_pyc_name((major, minor, _): (u32, u32, u32)) -> String {
    format!("bootstrap.cpython-{major}{minor}.pyc")
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for sub in ["", "python", "python/__pycache__", "nodejs", "php", "java"] {
        let _ = std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_and_java_names() {
        assert!(is_php_name("php"));
        assert!(is_php_name("php8.2"));
        assert!(!is_php_name("php-config8.2"));
        assert!(!is_php_name("phpize"));
        assert!(!is_php_name("php8."));
        assert_eq!(language_of("java"), Some(Language::Java));
        assert_eq!(language_of("javac"), None);
    }

    #[test]
    fn java_versions_from_release_files() {
        let r = "IMPLEMENTOR=\"Debian\"\nJAVA_VERSION=\"17.0.9\"\nOS_NAME=\"Linux\"\n";
        assert_eq!(parse_java_release(r), Some((17, 0, 9)));
        assert_eq!(
            parse_java_release("JAVA_VERSION=\"1.8.0_392\"\n"),
            Some((8, 0, 392))
        );
        assert_eq!(parse_java_release("JAVA_VERSION=\"21\""), Some((21, 0, 0)));
        assert_eq!(parse_java_release("OS_NAME=\"Linux\""), None);
    }

    #[test]
    fn python_names() {
        assert!(is_python_name("python3.11"));
        assert!(is_python_name("python3.9"));
        assert!(!is_python_name("python3.11-config"));
        assert!(!is_python_name("python3"));
        assert!(!is_python_name("python3.11m"));
    }

    #[test]
    fn the_python_shim_is_compiled_once_per_interpreter() {
        use std::os::unix::fs::PermissionsExt;
        let table = discover(&DiscoverOptions::default());
        let pythons: Vec<Arc<Interpreter>> = table
            .installed()
            .iter()
            .filter(|i| i.language == Language::Python)
            .cloned()
            .collect();
        let Some(py) = pythons.first() else {
            eprintln!("skipped: no Python interpreter installed");
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = install_shims(tmp.path(), &table).unwrap();
        compile_python_shim(&dir, &pythons);
        let pyc = dir
            .join("python/__pycache__")
            .join(python_pyc_name(py.version));
        assert!(pyc.is_file(), "{} is missing", pyc.display());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pyc), 0o444);
        assert_eq!(mode(&dir.join("python")), 0o555);
        // The interpreter takes it: loading through the cache gives the shim's code.
        let out = std::process::Command::new(&py.path)
            .args([
                "-B",
                "-c",
                "import sys;from importlib.machinery import SourceFileLoader as L;\
                 import importlib.util as u;print(u.cache_from_source(sys.argv[1]));\
                 print(L('m',sys.argv[1]).get_code('m').co_filename)",
            ])
            .arg(dir.join("python/bootstrap.py"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(&*pyc.to_string_lossy()), "{text}");
        make_writable(&dir);
    }

    #[test]
    fn the_java_runtime_compiles_once_with_a_jdks_javac() {
        let table = discover(&DiscoverOptions::default());
        let jdks: Vec<Arc<Interpreter>> = table
            .installed()
            .iter()
            .filter(|i| i.language == Language::Java && javac_of(i).is_some())
            .cloned()
            .collect();
        if jdks.is_empty() {
            eprintln!("skipped: no JDK with javac installed");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = install_shims(tmp.path(), &table).unwrap();
        assert!(!dir.join(JAVA_CLASSES).exists(), "compiled only when asked");
        compile_java_shim(&dir, &jdks);
        for class in [
            "fgs/runtime/Bootstrap.class",
            "com/huawei/services/runtime/Context.class",
            "com/opentelekomcloud/services/runtime/RuntimeLogger.class",
        ] {
            assert!(dir.join(JAVA_CLASSES).join(class).is_file(), "{class}");
        }
        // Java 8 bytecode (major version 52), so that every installed JVM runs it.
        let bytes =
            std::fs::read(dir.join(JAVA_CLASSES).join("fgs/runtime/Bootstrap.class")).unwrap();
        assert_eq!(&bytes[..4], &[0xca, 0xfe, 0xba, 0xbe]);
        assert_eq!(u16::from_be_bytes([bytes[6], bytes[7]]), 52);
        make_writable(&dir);
    }

    #[test]
    fn shims_install_once_read_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let table = RuntimeTable::default();
        let a = install_shims(tmp.path(), &table).unwrap();
        let b = install_shims(tmp.path(), &table).unwrap();
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
            if i.language == Language::Python {
                assert!(i.version.0 >= 3, "{i:?}");
            }
        }
    }
}
