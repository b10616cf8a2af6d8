//! What an instance is started with and what one invocation carries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fgs_core::runtime::Availability;
use fgs_core::Runtime;
use fgs_sandbox::ResourceLimits;

/// A handler fgs's runtimes call at one point of an instance's life (SPEC.md 5): the
/// initializer before the first event, the pre-stop handler on SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub handler: String,
    pub timeout: Duration,
}

/// Who the function is, as its `RUNTIME_*` variables tell it (SPEC.md 4), and the user's own
/// variables. Typed here; [`crate::environment`] renders the strings once, with the paths
/// as the instance sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionEnv {
    pub project_id: String,
    pub name: String,
    pub version: String,
    pub package: String,
    pub handler: String,
    /// `RUNTIME_USERDATA`: the user's variables as the JSON object they were given in.
    pub userdata: String,
    pub initializer: Option<Hook>,
    pub pre_stop: Option<Hook>,
    /// The user's variables, rendered last: PATH, LANG and HOME are theirs to override.
    pub user: Vec<(String, String)>,
}

/// Everything needed to start one instance of a function version.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// A unique id, used in logs and scratch paths.
    pub id: String,
    pub runtime: Runtime,
    /// The unpacked, read-only code tree on the host.
    pub code_dir: PathBuf,
    /// The function's dependencies merged into one read-only tree (SPEC.md 4), if any.
    pub dependency_dir: Option<PathBuf>,
    /// Each dependency's own unpacked tree, in the function's list order.
    pub dependencies: Vec<PathBuf>,
    /// What the function's environment says of it; the API addresses and paths are added by
    /// the instance, which alone knows them.
    pub function: FunctionEnv,
    /// Memory, cpu and processes (`RUNTIME_MEMORY` and `RUNTIME_CPU` show the first two).
    pub limits: ResourceLimits,
    /// The function's timeout (`RUNTIME_TIMEOUT`).
    pub timeout: Duration,
    /// Events one instance takes at once (`strategy_config.concurrent_num`).
    pub concurrency: u32,
    /// Whether the instance may reach beyond its own loopback (FunctionGraph's
    /// `disable_public_network` turns it off).
    pub network: bool,
    /// How long the runtime may take to become ready.
    pub start_timeout: Duration,
    /// How long the extensions may take to register, before the runtime starts (SPEC.md 5).
    pub extension_init_timeout: Duration,
    /// Grace between SIGTERM and SIGKILL at shutdown.
    pub stop_grace: Duration,
    /// The host directory the runtime shims were written to ([`crate::install_shims`]); an
    /// instance sees it at `FGS_RUNTIME_DIR` (in a sandbox, `/opt/function/runtime`).
    pub runtime_dir: PathBuf,
    /// What `runtime` runs on here, from the host's [`fgs_core::runtime::RuntimeTable`].
    pub interpreter: Availability,
    /// Read-only mounts `(host, inside)` every sandboxed instance gets whatever its runtime
    /// ([`crate::runtime_mounts`]): the interpreters FunctionGraph's runtime paths lead to, and
    /// the `/bin/sh` with `pipefail`.
    pub runtime_mounts: Arc<Vec<(PathBuf, PathBuf)>>,
    /// An image function's image; `None` for code functions.
    pub image: Option<ImageRun>,
}

/// How an image function's instance starts (docs/images.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRun {
    /// The image's unpacked root on the host (read-only; the instance writes to its own layer).
    pub rootfs: PathBuf,
    /// The digest the function resolved its image to.
    pub digest: String,
    /// The command: the image's entrypoint and cmd, or the function's overrides.
    pub argv: Vec<String>,
    /// The image's own environment.
    pub env: Vec<(String, String)>,
    /// The function's working dir, else the image's; empty for `/`.
    pub working_dir: String,
    pub uid: u32,
    pub gid: u32,
    /// An HTTP function (`runtime: "http"`): requests go to the server as they came; otherwise
    /// an event function served through `POST /invoke`.
    pub http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeType {
    Sync,
    Async,
}

impl InvokeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            InvokeType::Sync => "sync",
            InvokeType::Async => "async",
        }
    }
}

/// One event for the runtime.
#[derive(Debug, Clone)]
pub struct Request {
    pub request_id: String,
    pub body: Bytes,
    pub invoke_type: InvokeType,
    /// The URN as the caller invoked it, version or `!alias` included (SPEC.md 5
    /// `invokedFunctionUrn`).
    pub invoked_urn: String,
    /// The alias the caller invoked through, or empty (`context.getAlias()`).
    pub alias: String,
    /// The W3C `traceparent` the function gets (a `traceparent` header on its event): the
    /// invocation's span when fgs traces it, else the caller's own.
    pub traceparent: Option<String>,
    /// Whether fgs traces this invocation: the instance then reports when its parts ran
    /// ([`crate::Reply::extensions`]); nothing is timed otherwise.
    pub traced: bool,
    /// The function's timeout: the runtime must answer within it.
    pub timeout: Duration,
}
