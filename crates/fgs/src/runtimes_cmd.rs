//! The built-in runtimes of this host: `fgs runtimes` lists which interpreter each runtime name
//! runs on, and `fgs serve` discovers them once at start through [`prepare`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use fgs_core::runtime::{Availability, RuntimeTable};
use fgs_instance::DiscoverOptions;

/// Where fgs looks for interpreters; shared by `fgs serve` and `fgs runtimes`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Directories holding `python3.N` and `node` binaries, in order of preference
    /// (colon-separated in the environment). Default: /usr/local/bin, /usr/bin, /bin, then
    /// pyenv and nvm installations.
    #[arg(long = "runtime-path", env = "FGS_RUNTIME_PATH", value_delimiter = ':')]
    pub runtime_path: Option<Vec<PathBuf>>,
}

impl RuntimeArgs {
    fn discover(&self) -> RuntimeTable {
        fgs_instance::discover(&DiscoverOptions {
            dirs: self.runtime_path.clone(),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct RuntimesCmd {
    #[command(flatten)]
    pub runtimes: RuntimeArgs,
}

/// Discovers the interpreters, reports the runtime names that fall back or are missing, and
/// writes the shims into `<data_dir>/runtime/`.
pub fn prepare(data_dir: &Path, args: &RuntimeArgs) -> Result<(Arc<RuntimeTable>, PathBuf)> {
    let table = args.discover();
    for (rt, av) in table.entries() {
        match av {
            Availability::Nearest(_) => {
                tracing::warn!("{}", av.warning(*rt).unwrap_or_default());
            }
            Availability::Missing => {
                tracing::warn!(runtime = %rt, "no interpreter installed: functions of this runtime are refused");
            }
            Availability::Exact(i) => {
                tracing::debug!(runtime = %rt, interpreter = %i.path.display(), "runtime available");
            }
            Availability::Unserved(why) => {
                tracing::debug!(runtime = %rt, "{why}");
            }
            Availability::Bootstrap | Availability::Native => {}
        }
    }
    let base = data_dir.join("runtime");
    let dir = fgs_instance::install_shims(&base, &table)
        .with_context(|| format!("writing the runtime shims under {}", data_dir.display()))?;
    fgs_instance::compile_python_shim(&dir, table.installed());
    // A stable name for this start's tree: with `--sandbox off` an operator may link
    // /opt/function/runtime to it once (docs/runtimes.md).
    if let Err(e) = link_current(&base, &dir) {
        tracing::warn!(error = %e, "could not point runtime/current at this start's runtime dir");
    }
    Ok((Arc::new(table), dir))
}

/// Points `<base>/current` at `dir`, replacing an older link at once (a rename).
fn link_current(base: &Path, dir: &Path) -> std::io::Result<()> {
    let name = dir.file_name().unwrap_or_default();
    let tmp = base.join(format!(".current-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, base.join("current"))
}

/// `fgs runtimes`: one line per runtime name.
pub fn run(cmd: RuntimesCmd) -> Result<()> {
    let table = cmd.runtimes.discover();
    println!(
        "{:<18} {:<9} {:<9} SERVED BY",
        "RUNTIME", "STATUS", "VERSION"
    );
    for (rt, av) in table.entries() {
        let (status, version, path) = match av {
            Availability::Bootstrap => (
                "builtin",
                "-".to_string(),
                "bootstrap (the function's own)".to_string(),
            ),
            Availability::Exact(i) => ("ok", i.version_string(), i.path.display().to_string()),
            Availability::Nearest(i) => {
                ("nearest", i.version_string(), i.path.display().to_string())
            }
            Availability::Missing => (
                "missing",
                "-".to_string(),
                format!(
                    "refused at create (FSS.1005): no {} installed",
                    rt.language()
                        .map(|(l, _)| fgs_core::runtime::lang_name(l))
                        .unwrap_or("interpreter")
                ),
            ),
            Availability::Native => (
                "builtin",
                "-".to_string(),
                "the function's own binary".to_string(),
            ),
            Availability::Unserved(why) => (
                "refused",
                "-".to_string(),
                format!("refused at create (FSS.1005): {why}"),
            ),
        };
        println!("{:<18} {status:<9} {version:<9} {path}", rt.as_str());
    }
    let warnings: Vec<String> = table
        .entries()
        .iter()
        .filter_map(|(rt, av)| av.warning(*rt))
        .collect();
    if !warnings.is_empty() {
        println!();
        for w in warnings {
            println!("warning: {w}");
        }
    }
    Ok(())
}
