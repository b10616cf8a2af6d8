//! One running instance: start, invoke, stop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::{FunctionError, Runtime};
use fgs_sandbox::{
    ExecSpec, ProcessHandle, Sandbox, SandboxError, Signal, DEPENDENCY_ROOT, RUNTIME_ROOT,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::config::{InstanceConfig, Request};
use crate::environment::{self, View};
use crate::extensions::{self, Extensions, Gate};
use crate::output::Output;
use crate::runtime_api::{self, ApiState, Pending, RuntimeReply, StartState};
use crate::telemetry::Telemetry;
use crate::{adapters, http_fn};

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
    /// The function error an invocation answers when its instance could not start; `None` for
    /// failures of the platform rather than of the function.
    pub fn to_function_error(&self) -> Option<FunctionError> {
        let (code, ty) = match self {
            StartError::BootstrapMissing(_) => (codes::BOOTSTRAP_MISSING, "BootstrapNotFound"),
            StartError::InitFailed(e) | StartError::Extension(e) => return Some(e.clone()),
            StartError::Exited { .. } => (codes::RUNTIME_EXITED, "RuntimeExited"),
            StartError::Timeout(_) => (codes::INIT_TIMEOUT, "InitTimeout"),
            StartError::MemoryLimit => return Some(FunctionError::memory_limit()),
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
    /// The cgroup's OOM kill count when the last event ended (at start: when it started).
    oom_seen: AtomicU64,
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

/// Runs the runtime under the extension supervisor (runtimes/extensions/supervisor.sh): `bash
/// supervisor.sh <runtime> <args>`, with the scripts to start in `FGS_EXTENSIONS`, one path per
/// line, as the instance sees them.
fn supervise(view: &View, scripts: &[extensions::Script], spec: &mut ExecSpec) {
    let list: Vec<String> = scripts
        .iter()
        .map(|s| view.inside(&s.host_path).to_string_lossy().into_owned())
        .collect();
    let supervisor = view.runtime().join("extensions/supervisor.sh");
    let program = std::mem::replace(&mut spec.program, PathBuf::from("/bin/bash"));
    let mut args = vec![
        supervisor.to_string_lossy().into_owned(),
        program.to_string_lossy().into_owned(),
    ];
    args.append(&mut spec.args);
    spec.args = args;
    spec.env.push(("FGS_EXTENSIONS".into(), list.join("\n")));
}

/// What the sandbox runs for `cfg`: the program as the instance sees it, the trees an isolated
/// instance mounts, and the function's limits as numbers.
fn exec_spec(
    isolated: bool,
    cfg: &InstanceConfig,
    view: &View,
    program: &Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
) -> ExecSpec {
    let mut mounts = Vec::new();
    if isolated && cfg.runtime_dir.is_dir() {
        mounts.push((cfg.runtime_dir.clone(), PathBuf::from(RUNTIME_ROOT)));
        // Issue 17: FunctionGraph's interpreter paths lead into these, whatever the runtime.
        mounts.extend(cfg.runtime_mounts.iter().cloned());
    }
    if let Some(dep) = cfg.dependency_dir.as_ref().filter(|_| isolated) {
        mounts.push((dep.clone(), PathBuf::from(DEPENDENCY_ROOT)));
    }
    ExecSpec {
        program: view.inside(program),
        args,
        limits: cfg.limits,
        cwd: view.code().to_path_buf(),
        code_dir: cfg.code_dir.clone(),
        mounts,
        network: cfg.network,
        env,
    }
}

impl Instance {
    /// Starts a runtime and waits until it is ready to take its first event.
    pub async fn start(sandbox: &Sandbox, cfg: InstanceConfig) -> Result<Instance, StartError> {
        let view = View::new(&cfg, sandbox.isolated());
        let launch = adapters::command(&cfg, &view)?;
        let scripts = extensions::discover(
            &cfg.dependencies,
            cfg.dependency_dir.as_deref(),
            &cfg.code_dir,
        )
        .map_err(StartError::Extension)?;
        let extensions = Arc::new(Extensions::new(
            scripts.iter().map(|s| s.name.clone()).collect(),
            cfg.function.name.clone(),
            cfg.function.version.clone(),
        ));
        let telemetry = Arc::new(Telemetry::new(extensions.any()));
        telemetry.emit(
            "platform",
            "platform.initStart",
            serde_json::json!({
                "initializationType": "on-demand",
                "phase": "init",
                "functionName": cfg.function.name,
                "functionVersion": cfg.function.version,
            }),
        );

        // Set-up blocks for a few milliseconds (less with a pre-warmed sandbox): off the executor.
        let t0 = tokio::time::Instant::now();
        let sb = sandbox.clone();
        let mut prepared = tokio::task::spawn_blocking(move || sb.prepare())
            .await
            .expect("sandbox preparation does not panic")?;
        let api_addr = prepared.api_addr().to_string();
        let listener = prepared
            .take_listener()
            .expect("a fresh sandbox has its listener");
        let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Api)?;

        let mut env = environment::render(&cfg, &view);
        env.extend(launch.env);
        env.push(("RUNTIME_API_ADDR".into(), api_addr.clone()));
        env.push(("EXTENSION_API_ADDR".into(), api_addr));
        let function_env = env.clone();
        let isolated = sandbox.isolated();
        let mut spec = exec_spec(isolated, &cfg, &view, &launch.program, launch.args, env);
        if isolated {
            for m in launch.mounts {
                if !spec.mounts.contains(&m) {
                    spec.mounts.push(m);
                }
            }
        }
        if !scripts.is_empty() {
            supervise(&view, &scripts, &mut spec);
        }
        let prepared_at = t0.elapsed();
        let mut running = tokio::task::spawn_blocking(move || prepared.spawn(&spec))
            .await
            .expect("sandbox spawn does not panic")?;
        let spawned_at = t0.elapsed();
        let process = running.handle();
        extensions.set_process(process.clone());
        let output = Output::start(
            running
                .take_output()
                .expect("a fresh process has its output"),
            Arc::clone(&extensions),
            Arc::clone(&telemetry),
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
            extensions: Arc::clone(&extensions),
            telemetry,
            deliveries: tokio::sync::Mutex::new(None),
            unhealthy: AtomicBool::new(false),
            exited: AtomicBool::new(false),
        });
        let server = tokio::spawn(runtime_api::serve(listener, Arc::clone(&api)));
        let mut tasks = vec![server.abort_handle()];
        if cfg.runtime == Runtime::Http {
            // fgs plays the runtime of an HTTP function: it forwards events to the server.
            let drive =
                http_fn::drive(Arc::clone(&api), process.clone(), concurrency, function_env);
            tasks.push(tokio::spawn(drive).abort_handle());
        }

        let (exit_tx, mut exited) = watch::channel(None);
        let api2 = Arc::clone(&api);
        tokio::spawn(async move {
            let status = describe(running.wait().await);
            // Whatever the runtime left in its group goes with it.
            running.kill();
            api2.abandon_all().await;
            api2.exited.store(true, Ordering::Release);
            let _ = exit_tx.send(Some(status));
        });

        let oom_seen = AtomicU64::new(process.oom_kills());
        let instance = Instance {
            cfg: Arc::new(cfg),
            queue_tx,
            api,
            process,
            exited: exited.clone(),
            dead: AtomicBool::new(false),
            oom_seen,
            tasks: Mutex::new(tasks),
        };

        // Extensions register first, within their own deadline (SPEC.md 5); the runtime's
        // start timeout counts from when they all have.
        let mut gate = extensions.gate.subscribe();
        let mut gate_open = !extensions.any();
        let first = if gate_open {
            instance.cfg.start_timeout
        } else {
            instance.cfg.extension_init_timeout
        };
        let deadline = tokio::time::sleep(first);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                changed = gate.changed(), if !gate_open => {
                    if changed.is_err() {
                        gate_open = true;
                        continue;
                    }
                    let g = gate.borrow_and_update().clone();
                    match g {
                        Gate::Waiting => {}
                        Gate::Open => {
                            gate_open = true;
                            deadline.as_mut().reset(tokio::time::Instant::now() + instance.cfg.start_timeout);
                        }
                        Gate::Failed(e) => {
                            // Lines the script wrote before it exited explain why.
                            instance.api.output.drain();
                            let e = instance.api.extensions.exit_failure().unwrap_or(e);
                            instance.kill();
                            return Err(StartError::Extension(e));
                        }
                    }
                }
                changed = start_rx.changed() => {
                    if changed.is_err() {
                        continue;
                    }
                    let state = start_rx.borrow_and_update().clone();
                    match state {
                        StartState::Starting => continue,
                        StartState::Ready => {
                            // The start ran unthrottled; the function's cpu share holds from
                            // its first event on.
                            instance.process.apply_cpu_quota();
                            let init_ms = t0.elapsed().as_secs_f64() * 1000.0;
                            instance.api.telemetry.emit("platform", "platform.initRuntimeDone", serde_json::json!({"initializationType": "on-demand", "phase": "init", "status": "success"}));
                            instance.api.telemetry.emit("platform", "platform.initReport", serde_json::json!({"initializationType": "on-demand", "phase": "init", "status": "success", "metrics": {"durationMs": init_ms}}));
                            // The cold-start split docs/sandbox.md reports.
                            tracing::debug!(
                                id = %instance.cfg.id,
                                prepare_us = prepared_at.as_micros() as u64,
                                spawn_us = (spawned_at - prepared_at).as_micros() as u64,
                                ready_us = (t0.elapsed() - spawned_at).as_micros() as u64,
                                "instance ready"
                            );
                            return Ok(instance);
                        }
                        StartState::InitFailed(e) => {
                            instance.kill();
                            return Err(StartError::InitFailed(e));
                        }
                    }
                }
                _ = exited.changed() => {
                    let status = exited.borrow().clone().unwrap_or_default();
                    instance.api.output.drain();
                    // A runtime that reported its init error and then exited failed to init.
                    if let StartState::InitFailed(e) = instance.api.start.borrow().clone() {
                        return Err(StartError::InitFailed(e));
                    }
                    // SPEC.md 6: memory beyond the limit is 4205, in the start as in an event.
                    if instance.process.oom_kills() > 0 {
                        return Err(StartError::MemoryLimit);
                    }
                    return Err(StartError::Exited {
                        status,
                        output: instance.api.output.unattributed_tail(),
                    });
                }
                _ = &mut deadline => {
                    instance.kill();
                    if !gate_open {
                        let missing = instance.api.extensions.unregistered();
                        let detail = missing
                            .iter()
                            .map(|n| {
                                let tail = instance.api.extensions.tail(n);
                                if tail.is_empty() { n.clone() } else { format!("{n} (output: {tail})") }
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        let e = extensions::exec_failed(format!(
                            "{detail} did not register within {}s",
                            instance.cfg.extension_init_timeout.as_secs_f64()
                        ));
                        instance.api.extensions.gate.send_replace(Gate::Failed(e.clone()));
                        return Err(StartError::Extension(e));
                    }
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
        !self.dead.load(Ordering::Acquire)
            && !self.api.unhealthy.load(Ordering::Acquire)
            && !self.api.exited.load(Ordering::Acquire)
    }

    /// Invoke events extensions did not take (non-200, refused, timed out), since start.
    pub fn extension_failures(&self) -> u64 {
        self.api.extensions.failures.load(Ordering::Relaxed)
    }

    /// Hands one event to the runtime and waits for its answer, at most `request.timeout`. A
    /// timeout ends the whole instance (its process tree may be anywhere in the user's code).
    pub async fn invoke(&self, request: Request) -> Reply {
        let id = request.request_id.clone();
        let timeout = request.timeout;
        let (tx, rx) = oneshot::channel();
        let started = tokio::time::Instant::now();
        // Reading the cgroup's counters is a kernfs read each, a visible part of fgs's own cpu
        // time on a warm call (perf, bench/): the count is read once per event, when it ends,
        // against the count the last event ended with. An OOM kill while
        // the instance idled is thus blamed on its next event, which the old runtime may not
        // survive anyway.
        let oom_before = self.oom_seen.load(Ordering::Acquire);
        let mut result = if self
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
                        let mut exited = self.exited.clone();
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
        let (memory_used_bytes, oom_now) = self.process.usage();
        self.oom_seen.fetch_max(oom_now, Ordering::AcqRel);
        if oom_now > oom_before {
            // The memory cgroup's OOM killer ended a process of this instance while the event
            // ran (SPEC.md 6): 4205, and the instance is replaced, since any of its processes
            // may be gone.
            self.dead.store(true, Ordering::Release);
            result = Err(FunctionError::memory_limit());
        }
        if let Err(e) = &result {
            if e.code == codes::RUNTIME_EXITED {
                self.dead.store(true, Ordering::Release);
            }
        }
        let log = self.api.output.finish(&id);
        if self.api.telemetry.enabled() {
            self.report(&id, &result, started.elapsed(), memory_used_bytes);
        }
        Reply {
            result,
            log,
            memory_used_bytes,
        }
    }

    /// Telemetry's `platform.runtimeDone` and `platform.report` of one invocation (SPEC.md 5).
    fn report(&self, id: &str, result: &Result<Bytes, FunctionError>, took: Duration, memory: u64) {
        let ms = took.as_secs_f64() * 1000.0;
        let status = match result {
            Ok(_) => "success",
            Err(e) if e.code == codes::TIMEOUT => "timeout",
            Err(_) => "error",
        };
        let memory_size = self.cfg.limits.memory_mb;
        let t = &self.api.telemetry;
        t.emit(
            "platform",
            "platform.runtimeDone",
            serde_json::json!({"requestId": id, "traceId": id, "status": status, "metrics": {"durationMs": ms}}),
        );
        t.emit(
            "platform",
            "platform.report",
            serde_json::json!({
                "requestId": id,
                "traceId": id,
                "status": status,
                "endTime": crate::telemetry::now_iso(),
                "metrics": {
                    "durationMs": ms,
                    "billedDurationMs": (ms.ceil() as u64).max(1),
                    "memorySizeMB": memory_size,
                    "maxMemoryUsedMB": memory.div_ceil(1024 * 1024),
                }
            }),
        );
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
