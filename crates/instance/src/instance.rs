//! One running instance: start, invoke, stop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::{FunctionError, Runtime};
use fgs_sandbox::{ExecSpec, ProcessHandle, Sandbox, SandboxError, Signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::adapters;
use crate::config::{InstanceConfig, Request};
use crate::output::Output;
use crate::runtime_api::{self, ApiState, Pending, RuntimeReply, StartState};

/// Why an instance could not start. Each becomes the function error of the invocation that
/// waited for the start ([`StartError::to_function_error`]).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bootstrap file {0} is missing or not executable")]
    BootstrapMissing(PathBuf),
    #[error("runtime {0} is not supported by this build")]
    UnsupportedRuntime(Runtime),
    #[error("preparing the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("serving the runtime API: {0}")]
    Api(#[source] std::io::Error),
    #[error("runtime initialization failed: {}", .0.message)]
    InitFailed(FunctionError),
    #[error("runtime process exited before it was ready ({status}){}", fmt_output(.output))]
    Exited { status: String, output: String },
    #[error("runtime did not become ready within {0}s")]
    Timeout(u64),
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
    /// The function error an invocation answers when its instance could not start; `None` for
    /// failures of the platform rather than of the function.
    pub fn to_function_error(&self) -> Option<FunctionError> {
        let (code, ty) = match self {
            StartError::BootstrapMissing(_) => (codes::BOOTSTRAP_MISSING, "BootstrapNotFound"),
            StartError::InitFailed(e) => return Some(e.clone()),
            StartError::Exited { .. } => (codes::RUNTIME_EXITED, "RuntimeExited"),
            StartError::Timeout(_) => (codes::INIT_TIMEOUT, "InitTimeout"),
            StartError::UnsupportedRuntime(_) | StartError::Sandbox(_) | StartError::Api(_) => {
                return None
            }
        };
        Some(FunctionError::new(code, ty, self.to_string()))
    }
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Reply {
    pub result: Result<Bytes, FunctionError>,
    /// The output the runtime wrote while it ran this invocation.
    pub log: Vec<u8>,
    pub memory_used_bytes: u64,
}

pub struct Instance {
    cfg: Arc<InstanceConfig>,
    queue_tx: mpsc::Sender<Pending>,
    api: Arc<ApiState>,
    process: ProcessHandle,
    /// `Some(description)` once the runtime's main process has exited.
    exited: watch::Receiver<Option<String>>,
    /// Set when the instance must not take more events (timed out, crashed, stopping).
    dead: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(sig) => format!("killed by {sig}"),
                Err(_) => format!("killed by signal {sig}"),
            },
            _ => "exited".to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    }
}

impl Instance {
    /// Starts a runtime and waits until it is ready to take its first event.
    pub async fn start(sandbox: &Sandbox, cfg: InstanceConfig) -> Result<Instance, StartError> {
        let (program, args) = adapters::command(&cfg)?;

        let mut prepared = sandbox.prepare()?;
        let api_addr = prepared.api_addr().to_string();
        let listener = prepared
            .take_listener()
            .expect("a fresh sandbox has its listener");
        let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Api)?;

        let mut env = cfg.env.clone();
        env.push(("RUNTIME_API_ADDR".into(), api_addr.clone()));
        env.push(("EXTENSION_API_ADDR".into(), api_addr));
        let mut running = prepared.spawn(&ExecSpec {
            program,
            args,
            env,
            cwd: cfg.code_dir.clone(),
        })?;
        let process = running.handle();
        let output = Output::start(
            running
                .take_output()
                .expect("a fresh process has its output"),
        )
        .map_err(StartError::Api)?;

        let concurrency = cfg.concurrency.max(1) as usize;
        let (queue_tx, queue_rx) = mpsc::channel(concurrency);
        let (start_tx, mut start_rx) = watch::channel(StartState::Starting);
        let api = Arc::new(ApiState {
            queue: tokio::sync::Mutex::new(queue_rx),
            inflight: Mutex::new(HashMap::new()),
            start: start_tx,
            output,
        });
        let server = tokio::spawn(runtime_api::serve(listener, Arc::clone(&api)));

        let (exit_tx, mut exited) = watch::channel(None);
        let api2 = Arc::clone(&api);
        tokio::spawn(async move {
            let status = describe(running.wait().await);
            // Whatever the runtime left in its group goes with it.
            running.kill();
            api2.abandon_all().await;
            let _ = exit_tx.send(Some(status));
        });

        let instance = Instance {
            cfg: Arc::new(cfg),
            queue_tx,
            api,
            process,
            exited: exited.clone(),
            dead: AtomicBool::new(false),
            tasks: Mutex::new(vec![server.abort_handle()]),
        };

        let deadline = tokio::time::sleep(instance.cfg.start_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                changed = start_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let state = start_rx.borrow_and_update().clone();
                    match state {
                        StartState::Starting => continue,
                        StartState::Ready => return Ok(instance),
                        StartState::InitFailed(e) => {
                            instance.kill();
                            return Err(StartError::InitFailed(e));
                        }
                    }
                }
                _ = exited.changed() => {
                    let status = exited.borrow().clone().unwrap_or_default();
                    instance.api.output.drain().await;
                    // A runtime that reported its init error and then exited failed to init.
                    if let StartState::InitFailed(e) = instance.api.start.borrow().clone() {
                        return Err(StartError::InitFailed(e));
                    }
                    return Err(StartError::Exited {
                        status,
                        output: instance.api.output.unattributed_tail(),
                    });
                }
                _ = &mut deadline => {
                    instance.kill();
                    return Err(StartError::Timeout(instance.cfg.start_timeout.as_secs()));
                }
            }
        }
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Whether the instance can take events: its runtime runs and nothing marked it for
    /// replacement.
    pub fn is_healthy(&self) -> bool {
        !self.dead.load(Ordering::Acquire) && self.exited.borrow().is_none()
    }

    /// Hands one event to the runtime and waits for its answer, at most `request.timeout`. A
    /// timeout ends the whole instance (its process tree may be anywhere in the user's code).
    pub async fn invoke(&self, request: Request) -> Reply {
        let id = request.request_id.clone();
        let timeout = request.timeout;
        let (tx, rx) = oneshot::channel();
        let mut exited = self.exited.clone();
        let result = if self
            .queue_tx
            .send(Pending { request, reply: tx })
            .await
            .is_err()
        {
            Err(self.runtime_gone())
        } else {
            tokio::select! {
                r = rx => match r {
                    Ok(RuntimeReply::Response(b)) => Ok(b),
                    Ok(RuntimeReply::Error(e)) => Err(e),
                    Err(_) => {
                        // The sender was dropped because the runtime exited; wait for the
                        // watcher's description of how.
                        let _ = tokio::time::timeout(Duration::from_secs(1), exited.wait_for(Option::is_some)).await;
                        Err(self.runtime_gone())
                    }
                },
                _ = tokio::time::sleep(timeout) => {
                    self.kill();
                    Err(FunctionError::timeout(timeout.as_secs()))
                }
            }
        };
        let memory_used_bytes = self.process.memory_used_bytes();
        if let Err(e) = &result {
            if e.code == codes::RUNTIME_EXITED {
                self.dead.store(true, Ordering::Release);
            }
        }
        let log = self.api.output.finish(&id).await;
        Reply {
            result,
            log,
            memory_used_bytes,
        }
    }

    fn runtime_gone(&self) -> FunctionError {
        self.dead.store(true, Ordering::Release);
        let status = self
            .exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "exited".to_string());
        FunctionError::new(
            codes::RUNTIME_EXITED,
            "RuntimeExited",
            format!("runtime process exited: {status}"),
        )
    }

    /// Ends the process tree at once and marks the instance dead.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.process.kill();
    }

    /// Stops the instance: SIGTERM to its process group, SIGKILL after the grace period.
    pub async fn stop(&self) {
        self.dead.store(true, Ordering::Release);
        self.process.signal(Signal::SIGTERM);
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(self.cfg.stop_grace, exited.wait_for(Option::is_some)).await;
        self.process.kill();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.process.kill();
        for t in self
            .tasks
            .lock()
            .expect("task list lock is never poisoned")
            .drain(..)
        {
            // The exit watcher is left to reap the killed process.
            t.abort();
        }
    }
}
