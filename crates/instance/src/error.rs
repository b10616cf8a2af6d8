//! Why an instance could not start, and the function error an invocation answers for it.

use std::path::PathBuf;

use fgs_core::func_error::codes;
use fgs_core::{FunctionError, Runtime};
use fgs_sandbox::SandboxError;

use crate::instance::InitializerRun;

/// Why an instance could not start. Each becomes the function error of the invocation that
/// waited for the start ([`StartError::to_function_error`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bootstrap file {0} is missing or not executable")]
    BootstrapMissing(PathBuf),
    #[error("runtime {0} is not supported by this build")]
    UnsupportedRuntime(Runtime),
    /// fgs's own runtime files for the language are not there (the Java classes compile at
    /// start-up only where a JDK's `javac` is installed).
    #[error("runtime {0} cannot start: {1}")]
    RuntimeFiles(Runtime, String),
    #[error("preparing the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("serving the runtime API: {0}")]
    Api(#[source] std::io::Error),
    /// The runtime reported its init error; with the initializer's run when it had started.
    #[error("runtime initialization failed: {}", .0.message)]
    InitFailed(FunctionError, Option<InitializerRun>),
    #[error("runtime process exited before it was ready ({status}){}", fmt_output(.output))]
    Exited { status: String, output: String },
    /// With the initializer's run when it had started (a blocked one never reports).
    #[error("runtime did not become ready within {0}s")]
    Timeout(u64, Option<InitializerRun>),
    /// An image function's command cannot be started.
    #[error("the image's command cannot start: {0}")]
    ImageCommand(String),
    /// An image function's process never accepted a connection on port 8000.
    #[error("the image's process did not listen on port 8000 within {secs}s{}", fmt_output(.output))]
    NotListening { secs: u64, output: String },
    #[error("{}", .0.message)]
    Extension(FunctionError),
    /// The memory cgroup's OOM killer ended a process of the instance before it was ready.
    #[error("runtime memory limit exceeded while the instance started")]
    MemoryLimit,
}

fn fmt_output(output: &str) -> String {
    let t = output.trim_end();
    if t.is_empty() {
        String::new()
    } else {
        // The tail is what a user needs to see why their bootstrap died.
        let start = t.len().saturating_sub(1024);
        let start = (start..t.len())
            .find(|&i| t.is_char_boundary(i))
            .unwrap_or(0);
        format!(": {}", &t[start..])
    }
}

impl StartError {
    /// When the function's initializer ran before the start failed, if it had started.
    pub fn initializer(&self) -> Option<InitializerRun> {
        match self {
            StartError::InitFailed(_, run) | StartError::Timeout(_, run) => *run,
            _ => None,
        }
    }

    /// The function error an invocation answers when its instance could not start; `None` for
    /// failures of the platform rather than of the function.
    pub fn to_function_error(&self) -> Option<FunctionError> {
        let (code, ty) = match self {
            StartError::BootstrapMissing(_) => (codes::BOOTSTRAP_MISSING, "BootstrapNotFound"),
            StartError::InitFailed(e, _) | StartError::Extension(e) => return Some(e.clone()),
            StartError::Exited { .. } | StartError::NotListening { .. } => {
                (codes::RUNTIME_EXITED, "RuntimeExited")
            }
            StartError::ImageCommand(_) => (codes::BOOTSTRAP_MISSING, "BootstrapNotFound"),
            StartError::Timeout(..) => (codes::INIT_TIMEOUT, "InitTimeout"),
            StartError::MemoryLimit => return Some(FunctionError::memory_limit()),
            StartError::UnsupportedRuntime(_)
            | StartError::RuntimeFiles(..)
            | StartError::Sandbox(_)
            | StartError::Api(_) => return None,
        };
        Some(FunctionError::new(code, ty, self.to_string()))
    }
}
