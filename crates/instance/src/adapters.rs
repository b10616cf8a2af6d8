//! Runtime adapters: what process an instance of each runtime starts (SPEC.md 4).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use fgs_core::Runtime;

use crate::config::InstanceConfig;
use crate::instance::StartError;

/// The program and arguments that start a runtime of `cfg`.
pub(crate) fn command(cfg: &InstanceConfig) -> Result<(PathBuf, Vec<String>), StartError> {
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
            Ok((bootstrap, Vec::new()))
        }
        other => Err(StartError::UnsupportedRuntime(other)),
    }
}
