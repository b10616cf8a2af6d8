//! Where the invoker gets instances from: [`Sandboxed`] starts real ones in fgs; the invoker's
//! unit tests start fakes. Everything else of the invoker (resolution, pools, recording) is the
//! same for both.

use std::fmt::Display;
use std::future::Future;

use fgs_core::FunctionError;
use fgs_instance::{InitializerRun, InstanceConfig, Reply, Request, StartError};
use fgs_pool::Launcher;
use fgs_sandbox::Sandbox;

use crate::launcher::{InstanceLauncher, InstanceWorker};

/// An instance that runs invocations.
pub trait Runs {
    fn run(&self, request: Request) -> impl Future<Output = Reply> + Send;

    /// When the function's initializer ran while this instance started, if it did.
    fn initializer(&self) -> Option<InitializerRun> {
        None
    }
}

/// Why an instance did not start.
pub trait StartFailure: Display + Send {
    /// The function error the waiting invocation answers; `None` when the platform failed.
    fn to_function_error(&self) -> Option<FunctionError>;

    /// When the function's initializer ran before the start failed, if it had started.
    fn initializer(&self) -> Option<InitializerRun> {
        None
    }
}

/// Makes one pool's launcher from its instance template.
pub trait Instances: Send + Sync + 'static {
    type Launcher: Launcher<Worker: Runs, Error: StartFailure>;

    fn launcher(&self, template: InstanceConfig) -> Self::Launcher;

    /// The template a launcher starts instances from.
    fn template(launcher: &Self::Launcher) -> &InstanceConfig;

    /// Sandboxes prepared ahead of cold starts.
    fn prewarmed(&self) -> usize;

    /// Interpreters held ahead of cold starts, and cold starts that took one so far.
    fn prestarted(&self) -> (usize, u64) {
        (0, 0)
    }
}

/// Instances in fgs's sandbox.
pub struct Sandboxed(pub Sandbox);

impl Instances for Sandboxed {
    type Launcher = InstanceLauncher;

    fn launcher(&self, template: InstanceConfig) -> InstanceLauncher {
        InstanceLauncher {
            sandbox: self.0.clone(),
            template,
        }
    }

    fn template(launcher: &InstanceLauncher) -> &InstanceConfig {
        &launcher.template
    }

    fn prewarmed(&self) -> usize {
        self.0.prewarmed()
    }

    fn prestarted(&self) -> (usize, u64) {
        (self.0.prestarted(), self.0.specialized())
    }
}

impl Runs for InstanceWorker {
    fn run(&self, request: Request) -> impl Future<Output = Reply> + Send {
        self.0.invoke(request)
    }

    fn initializer(&self) -> Option<InitializerRun> {
        self.0.initializer()
    }
}

impl StartFailure for StartError {
    fn to_function_error(&self) -> Option<FunctionError> {
        StartError::to_function_error(self)
    }

    fn initializer(&self) -> Option<InitializerRun> {
        StartError::initializer(self)
    }
}
