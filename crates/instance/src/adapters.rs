//! Runtime adapters: what process an instance of each runtime starts (SPEC.md 4).
//!
//! Python, Node.js, PHP and Java run fgs's shims (`runtimes/`), which speak the Runtime API like any Custom
//! runtime; the shim is found through `FGS_RUNTIME_DIR`, so the same command works on the host
//! and in a sandbox that mounts the runtime dir at `/opt/function/runtime`.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use fgs_core::Runtime;

use crate::config::InstanceConfig;
use crate::environment::View;
use crate::error::StartError;

/// How to start the runtime process of an instance.
pub(crate) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the function's environment.
    pub env: Vec<(String, String)>,
    /// Host directories an isolated instance must see read-only at the same path: an
    /// interpreter installed outside the system trees the sandbox shows (pyenv under a home).
    pub mounts: Vec<(PathBuf, PathBuf)>,
}

use crate::runtime_paths::SYSTEM_TREES;

/// Python: `-u` because stdout is a pipe whose lines fgs attributes to the invocation in flight
/// (block buffering would move them into the next one); `-B` because the code is read-only.
/// The shim runs as `__main__` from the bytecode fgs compiled at start-up
/// (`compile_python_shim`) when it matches (a plain script path would be compiled every time).
const PYTHON_MAIN: &str = "import os;from importlib.machinery import SourceFileLoader;__file__=os.environ['FGS_RUNTIME_DIR']+'/python/bootstrap.py';exec(SourceFileLoader('__main__',__file__).get_code('__main__'))";
const NODE_MAIN: &str = "require(process.env.FGS_RUNTIME_DIR+'/nodejs/bootstrap.js')";

/// The program, arguments and extra environment that start a runtime of `cfg`.
pub(crate) fn command(cfg: &InstanceConfig, view: &View) -> Result<Launch, StartError> {
    if let Some(image) = &cfg.image {
        return crate::image_fn::launch(image);
    }
    match cfg.runtime {
        Runtime::Custom => {
            // SPEC.md 4: an executable `bootstrap` at the code root.
            let bootstrap = cfg.code_dir.join("bootstrap");
            let executable = std::fs::metadata(&bootstrap)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            if !executable {
                return Err(StartError::BootstrapMissing(bootstrap));
            }
            Ok(bootstrap_launch(bootstrap, true))
        }
        Runtime::Http => {
            // FunctionGraph's HTTP-function `bootstrap` is a shell command line, often uploaded
            // without its executable bit.
            let bootstrap = cfg.code_dir.join("bootstrap");
            let executable = match std::fs::metadata(&bootstrap) {
                Ok(m) if m.is_file() => m.permissions().mode() & 0o111 != 0,
                _ => return Err(StartError::BootstrapMissing(bootstrap)),
            };
            Ok(bootstrap_launch(bootstrap, executable))
        }
        rt @ (Runtime::Python(_) | Runtime::NodeJs(_) | Runtime::Php(_) | Runtime::Java(_)) => {
            let Some(interp) = cfg.interpreter.interpreter() else {
                return Err(StartError::UnsupportedRuntime(rt));
            };
            let args = match rt {
                Runtime::Python(_) => {
                    vec!["-u".into(), "-B".into(), "-c".into(), PYTHON_MAIN.into()]
                }
                // No memory_limit of PHP's own: the function's memory is the sandbox's limit, and
                // going over it is 4205 as in every runtime, not a PHP fatal error; errors go to
                // stderr, as text, into the invocation's log.
                Runtime::Php(_) => vec![
                    "-d".into(),
                    "memory_limit=-1".into(),
                    "-d".into(),
                    "display_errors=stderr".into(),
                    "-d".into(),
                    "log_errors=0".into(),
                    "-d".into(),
                    "html_errors=0".into(),
                    view.runtime()
                        .join("php/bootstrap.php")
                        .to_string_lossy()
                        .into_owned(),
                ],
                Runtime::Java(_) => {
                    let classes = crate::runtimes::JAVA_CLASSES;
                    if !cfg.runtime_dir.join(classes).is_dir() {
                        return Err(StartError::RuntimeFiles(
                            rt,
                            format!(
                                "fgs's Java runtime classes are not compiled: {} has no javac (install a JDK, e.g. Debian's openjdk-17-jdk-headless)",
                                interp.prefix.display()
                            ),
                        ));
                    }
                    java_args(cfg.limits.memory_mb, &view.runtime().join(classes))
                }
                // The shim takes `concurrent_num` events at once (its one argument); the
                // Python shim takes one at a time.
                _ => vec![
                    "-e".into(),
                    NODE_MAIN.into(),
                    cfg.concurrency.max(1).to_string(),
                ],
            };
            let mut env = vec![(
                "FGS_RUNTIME_DIR".to_string(),
                view.runtime().to_string_lossy().into_owned(),
            )];
            if let (Runtime::Php(_) | Runtime::Java(_), Some(dep)) = (rt, view.dependency()) {
                // Put on PHP's include_path and Java's classpath by the shims, as PYTHONPATH and
                // NODE_PATH are.
                env.push((
                    "FGS_DEPENDENCY_DIR".into(),
                    dep.to_string_lossy().into_owned(),
                ));
            }
            if let Some(w) = cfg.interpreter.warning(rt) {
                // The shim writes it into the log of the instance's first invocation.
                env.push(("FGS_RUNTIME_WARNING".into(), w));
            }
            let mounts = if SYSTEM_TREES.iter().any(|t| interp.prefix.starts_with(t)) {
                Vec::new()
            } else {
                vec![(interp.prefix.clone(), interp.prefix.clone())]
            };
            // Started by its FunctionGraph path (runtime_paths), so that the interpreter knows
            // itself as the function sees it (`sys.executable`, stack traces); the real binary
            // when the runtime dir has no such link.
            let program = crate::runtime_paths::interpreter_path(&cfg.runtime_dir, rt)
                .filter(|p| p.symlink_metadata().is_ok())
                .unwrap_or_else(|| interp.path.clone());
            Ok(Launch {
                program,
                args,
                env,
                mounts,
            })
        }
        Runtime::Go => {
            // FunctionGraph's Go handler names the executable built with its SDK; that binary
            // serves the SDK's RPC on RUNTIME_API_ADDR (go_fn), extensions keep fgs's API.
            let binary = cfg.code_dir.join(&cfg.function.handler);
            let executable = std::fs::metadata(&binary)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            if !executable {
                return Err(StartError::BootstrapMissing(binary));
            }
            let mut launch = bootstrap_launch(binary, true);
            launch.env.push((
                "RUNTIME_API_ADDR".into(),
                format!("127.0.0.1:{}", crate::go_fn::PORT),
            ));
            Ok(launch)
        }
        // An image function without its image (a record fgs cannot run).
        rt @ (Runtime::CSharp(_) | Runtime::Cangjie | Runtime::CustomImage) => {
            Err(StartError::UnsupportedRuntime(rt))
        }
    }
}

/// The JVM's flags for a function of `memory_mb`: the heap takes what the JVM's own memory
/// (metaspace, code cache, thread stacks: about 40 MB measured with the serial collector) leaves
/// of the limit, so that a handler that fills it gets `OutOfMemoryError` (4205, reported by the
/// shim) before the sandbox's OOM killer ends the instance. Serial GC and C1 only: an instance
/// is one event at a time on a fraction of a core, where they start fastest and use least.
fn java_args(memory_mb: u32, classes: &std::path::Path) -> Vec<String> {
    let heap = memory_mb.saturating_sub(48).max(memory_mb / 2).max(16);
    vec![
        format!("-Xmx{heap}m"),
        format!("-Xms{}m", heap.min(16)),
        "-XX:+UseSerialGC".into(),
        "-XX:TieredStopAtLevel=1".into(),
        "-XX:-UsePerfData".into(),
        "-Xss512k".into(),
        "-Xshare:auto".into(),
        "-cp".into(),
        classes.to_string_lossy().into_owned(),
        "fgs.runtime.Bootstrap".into(),
    ]
}

/// Starts `bootstrap` itself when the kernel can (executable, and a binary or `#!` script);
/// otherwise runs it with bash, as a shell would: FunctionGraph's bootstraps are often a bare
/// command line such as `node $RUNTIME_CODE_ROOT/index.js`, which `execve` refuses (ENOEXEC).
fn bootstrap_launch(bootstrap: PathBuf, executable: bool) -> Launch {
    use std::io::Read;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(&bootstrap)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let direct = executable && (head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF");
    let (program, args) = if direct {
        (bootstrap, Vec::new())
    } else {
        // Relative: the cwd is the code root, wherever the sandbox shows it.
        (PathBuf::from("/bin/bash"), vec!["./bootstrap".to_string()])
    };
    Launch {
        program,
        args,
        env: Vec::new(),
        mounts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_java_heap_leaves_the_jvm_its_own_memory() {
        let heap = |mb| {
            java_args(mb, std::path::Path::new("/c"))
                .into_iter()
                .find_map(|a| a.strip_prefix("-Xmx").map(str::to_string))
                .unwrap()
        };
        assert_eq!(heap(128), "80m");
        assert_eq!(heap(256), "208m");
        assert_eq!(heap(1024), "976m");
        let args = java_args(
            128,
            std::path::Path::new("/opt/function/runtime/java/classes"),
        );
        assert_eq!(
            args.last().map(String::as_str),
            Some("fgs.runtime.Bootstrap")
        );
        assert!(args.contains(&"/opt/function/runtime/java/classes".to_string()));
    }
}
