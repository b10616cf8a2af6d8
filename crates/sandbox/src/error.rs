//! What can go wrong preparing or starting a sandbox.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("binding the runtime API listener: {0}")]
    Listen(#[source] std::io::Error),
    #[error("starting {program:?}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the output pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("creating cgroups of sandbox {id}: {source}")]
    Cgroup {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the sandbox shim: {0}")]
    Shim(#[source] std::io::Error),
    #[error("sandbox set-up failed: {0}")]
    Setup(String),
    #[error("egress of sandbox {id}: {message}")]
    Egress { id: String, message: String },
}
