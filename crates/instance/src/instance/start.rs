//! Starting an instance, in named steps: [`plan`] what to run (no sandbox yet), [`prepare`]
//! the sandbox, build the [`command`], [`spawn`] it, [`serve`] the instance's APIs, then
//! [`Instance::wait_ready`] for the extensions and the runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_core::Runtime;
use fgs_sandbox::{
    ExecSpec, ImageRoot, Prepared, Running, Sandbox, Signal, DEPENDENCY_ROOT, RUNTIME_ROOT,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Instance;

use crate::adapters::{self, Launch};
use crate::config::InstanceConfig;
use crate::environment::{self, View};
use crate::error::StartError;
use crate::extensions::{self, Extensions, Gate, Script};
use crate::http_fn;
use crate::output::Output;
use crate::runtime_api::{self, ApiState, StartState};
use crate::telemetry::Telemetry;

/// How long a failed extension start waits for the reactor to see the lines the script wrote
/// before it exited; they are already in the pipe, so this is a bound, rarely a wait.
const EXIT_OUTPUT_WAIT: Duration = Duration::from_millis(100);

/// What the start knows before it touches the sandbox.
struct Plan {
    view: View,
    launch: Launch,
    scripts: Vec<Script>,
    extensions: Arc<Extensions>,
    telemetry: Arc<Telemetry>,
}

/// When each step of a cold start ended, from the sandbox's preparation on (the split
/// docs/sandbox.md reports).
struct Timings {
    t0: Instant,
    prepared: Duration,
    spawned: Duration,
}

impl Instance {
    /// Starts a runtime and waits until it is ready to take its first event.
    pub async fn start(sandbox: &Sandbox, cfg: InstanceConfig) -> Result<Instance, StartError> {
        if let (Runtime::Java(_), Some(i)) = (cfg.runtime, cfg.interpreter.interpreter()) {
            // fgs's Java runtime classes compile with the first Java instance (runtimes.rs).
            let (dir, jdk) = (cfg.runtime_dir.clone(), vec![Arc::clone(i)]);
            tokio::task::spawn_blocking(move || crate::runtimes::compile_java_shim(&dir, &jdk))
                .await
                .expect("compiling the Java runtime does not panic");
        }
        let plan = plan(sandbox, &cfg)?;
        let t0 = Instant::now();
        let (cfg, plan) = match prestarted(sandbox, cfg, plan, t0).await {
            Ok(started) => return started,
            Err(back) => back,
        };
        let (running, listener, function_env, prepared_at) = match sandbox.instance_api_addr() {
            Some(api_addr) => {
                // Every sandbox has the same Runtime API address: the command is known before
                // one is taken, and taking it and spawning are one trip off the executor.
                let (spec, function_env) = command(true, &cfg, &plan, api_addr.to_string());
                let (running, listener, prepared_at) = prepare_and_spawn(sandbox, spec, t0).await?;
                (running, listener, function_env, prepared_at)
            }
            None => {
                let (prepared, listener, api_addr) = prepare(sandbox).await?;
                let (spec, function_env) = command(false, &cfg, &plan, api_addr);
                let prepared_at = t0.elapsed();
                (
                    spawn(prepared, spec).await?,
                    listener,
                    function_env,
                    prepared_at,
                )
            }
        };
        let timings = Timings {
            t0,
            prepared: prepared_at,
            spawned: t0.elapsed(),
        };
        let (instance, start_rx) = serve(cfg, plan, running, listener, function_env)?;
        instance.wait_ready(start_rx, timings).await
    }

    /// Waits for the extensions to register (within their own deadline, SPEC.md 5), then for
    /// the runtime's first `next` (within the start timeout, counted from when they all have).
    async fn wait_ready(
        mut self,
        mut start_rx: watch::Receiver<StartState>,
        timings: Timings,
    ) -> Result<Instance, StartError> {
        let mut exited = self.exited.clone();
        let mut gate = self.api.extensions.gate.subscribe();
        let mut gate_open = !self.api.extensions.any();
        let first = if gate_open {
            self.cfg.start_timeout
        } else {
            self.cfg.extension_init_timeout
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
                            deadline.as_mut().reset(Instant::now() + self.cfg.start_timeout);
                        }
                        Gate::Failed(e) => {
                            // Lines the script wrote before it exited explain why. They
                            // are in the pipe before the exit report, but the reactor may not
                            // have seen them yet.
                            self.api.output.drain_written(EXIT_OUTPUT_WAIT).await;
                            let e = self.api.extensions.exit_failure().unwrap_or(e);
                            self.kill();
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
                            self.initializer = self.api.initializer_run();
                            self.ready(&timings);
                            return Ok(self);
                        }
                        StartState::InitFailed(e) => {
                            self.kill();
                            return Err(StartError::InitFailed(e, self.api.initializer_run()));
                        }
                    }
                }
                _ = exited.changed() => {
                    let status = exited.borrow().clone().unwrap_or_default();
                    return Err(self.exited_early(status));
                }
                _ = &mut deadline => {
                    self.kill();
                    if !gate_open {
                        return Err(self.extensions_late());
                    }
                    if self.cfg.image.is_some() {
                        // What the process printed says why it never listened.
                        self.api.output.drain_written(EXIT_OUTPUT_WAIT).await;
                        return Err(StartError::NotListening {
                            secs: self.cfg.start_timeout.as_secs(),
                            output: self.api.output.unattributed_tail(),
                        });
                    }
                    return Err(StartError::Timeout(
                        self.cfg.start_timeout.as_secs(),
                        self.api.initializer_run(),
                    ));
                }
            }
        }
    }

    /// The runtime is ready: its cpu share starts to hold, and telemetry says so.
    fn ready(&self, timings: &Timings) {
        // The start ran unthrottled; the function's cpu share holds from its first event on.
        self.process.apply_cpu_quota();
        let init_ms = timings.t0.elapsed().as_secs_f64() * 1000.0;
        let t = &self.api.telemetry;
        t.emit(
            "platform",
            "platform.initRuntimeDone",
            serde_json::json!({"initializationType": "on-demand", "phase": "init", "status": "success"}),
        );
        t.emit(
            "platform",
            "platform.initReport",
            serde_json::json!({"initializationType": "on-demand", "phase": "init", "status": "success", "metrics": {"durationMs": init_ms}}),
        );
        // The cold-start split docs/sandbox.md reports.
        tracing::debug!(
            id = %self.cfg.id,
            prepare_us = timings.prepared.as_micros() as u64,
            spawn_us = (timings.spawned - timings.prepared).as_micros() as u64,
            ready_us = (timings.t0.elapsed() - timings.spawned).as_micros() as u64,
            "instance ready"
        );
    }

    /// Why the runtime's main process exited before it was ready.
    fn exited_early(&self, status: String) -> StartError {
        self.api.output.drain();
        // A runtime that reported its init error and then exited failed to init.
        if let StartState::InitFailed(e) = self.api.start.borrow().clone() {
            return StartError::InitFailed(e, self.api.initializer_run());
        }
        // SPEC.md 6: memory beyond the limit is 4205, in the start as in an event.
        if self.process.oom_kills() > 0 {
            return StartError::MemoryLimit;
        }
        StartError::Exited {
            status,
            output: self.api.output.unattributed_tail(),
        }
    }

    /// The extensions that did not register in time, each with the tail of its output.
    fn extensions_late(&self) -> StartError {
        let ext = &self.api.extensions;
        let detail = ext
            .unregistered()
            .iter()
            .map(|n| {
                let tail = ext.tail(n);
                if tail.is_empty() {
                    n.clone()
                } else {
                    format!("{n} (output: {tail})")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let e = extensions::exec_failed(format!(
            "{detail} did not register within {}s",
            self.cfg.extension_init_timeout.as_secs_f64()
        ));
        ext.gate.send_replace(Gate::Failed(e.clone()));
        StartError::Extension(e)
    }
}

/// A cold start on a pre-started interpreter (prestart.rs), when the function may have one and
/// one is held; hands `cfg` and `plan` back otherwise, for a fresh start. The first start of a
/// kind asks the sandbox to hold interpreters of it from then on.
async fn prestarted(
    sandbox: &Sandbox,
    cfg: InstanceConfig,
    plan: Plan,
    t0: Instant,
) -> Result<Result<Instance, StartError>, (InstanceConfig, Plan)> {
    let Some(api_addr) = sandbox.instance_api_addr() else {
        return Err((cfg, plan));
    };
    let (spec, function_env) = command(true, &cfg, &plan, api_addr.to_string());
    let Some(c) = crate::prestart::candidate(sandbox, &cfg, &spec, !plan.scripts.is_empty()) else {
        return Err((cfg, plan));
    };
    sandbox.prestart(&c.key, c.class, || c.placeholder.clone());
    let Some(held) = sandbox
        .take_prestarted(&c.key)
        .filter(|h| h.api_addr == api_addr)
    else {
        return Err((cfg, plan));
    };
    let fgs_sandbox::Prestarted {
        mut running,
        listener,
        ..
    } = held;
    let specialization = c.specialization;
    let specialized =
        tokio::task::spawn_blocking(move || running.specialize(&specialization).map(|()| running))
            .await
            .expect("specializing does not panic");
    let running = match specialized {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "specializing a pre-started interpreter failed: starting a fresh one");
            return Err((cfg, plan));
        }
    };
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return Ok(Err(StartError::Api(e))),
    };
    let timings = Timings {
        t0,
        prepared: t0.elapsed(),
        spawned: t0.elapsed(),
    };
    tracing::debug!(id = %cfg.id, "instance on a pre-started interpreter");
    Ok(match serve(cfg, plan, running, listener, function_env) {
        Ok((instance, start_rx)) => instance.wait_ready(start_rx, timings).await,
        Err(e) => Err(e),
    })
}

/// What to run and the extensions to start with it; telemetry's `platform.initStart`.
fn plan(sandbox: &Sandbox, cfg: &InstanceConfig) -> Result<Plan, StartError> {
    let view = View::new(cfg, sandbox.isolated());
    let launch = adapters::command(cfg, &view)?;
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
    Ok(Plan {
        view,
        launch,
        scripts,
        extensions,
        telemetry,
    })
}

/// A sandbox and the instance's Runtime API listener in it. Set-up blocks for a few
/// milliseconds (less with a pre-warmed sandbox): off the executor.
async fn prepare(
    sandbox: &Sandbox,
) -> Result<(Prepared, tokio::net::TcpListener, String), StartError> {
    let sb = sandbox.clone();
    let mut prepared = tokio::task::spawn_blocking(move || sb.prepare())
        .await
        .expect("sandbox preparation does not panic")?;
    let api_addr = prepared.api_addr().to_string();
    let listener = prepared
        .take_listener()
        .expect("a fresh sandbox has its listener");
    let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Api)?;
    Ok((prepared, listener, api_addr))
}

/// Takes a sandbox (a pre-warmed one when there is one) and starts `spec` in it, in one
/// blocking call off the executor; also says when the sandbox was ready.
async fn prepare_and_spawn(
    sandbox: &Sandbox,
    spec: ExecSpec,
    t0: Instant,
) -> Result<(Running, tokio::net::TcpListener, Duration), StartError> {
    let sb = sandbox.clone();
    let (running, listener, prepared_at) = tokio::task::spawn_blocking(move || {
        let mut prepared = sb.prepare()?;
        let prepared_at = t0.elapsed();
        let listener = prepared
            .take_listener()
            .expect("a fresh sandbox has its listener");
        let running = prepared.spawn(&spec)?;
        Ok::<_, StartError>((running, listener, prepared_at))
    })
    .await
    .expect("sandbox preparation and spawn do not panic")?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Api)?;
    Ok((running, listener, prepared_at))
}

/// What the sandbox runs, and the environment the function sees (an HTTP function's
/// headers are taken from it).
fn command(
    isolated: bool,
    cfg: &InstanceConfig,
    plan: &Plan,
    api_addr: String,
) -> (ExecSpec, Vec<(String, String)>) {
    let launch = &plan.launch;
    let mut env = environment::render(cfg, &plan.view);
    env.extend(launch.env.iter().cloned());
    if let Some(image) = &cfg.image {
        let env = crate::image_fn::environment(&image.env, env, &cfg.function.user);
        let spec = ExecSpec {
            program: launch.program.clone(),
            args: launch.args.clone(),
            cwd: PathBuf::from(crate::image_fn::cwd(image)),
            code_dir: cfg.code_dir.clone(),
            mounts: Vec::new(),
            limits: cfg.limits,
            network: cfg.network,
            env: env.clone(),
            image: Some(ImageRoot {
                rootfs: image.rootfs.clone(),
                uid: image.uid,
                gid: image.gid,
            }),
        };
        return (spec, env);
    }
    // A Go function's binary serves its own RPC at the address its launch set (go_fn).
    if !env.iter().any(|(k, _)| k == "RUNTIME_API_ADDR") {
        env.push(("RUNTIME_API_ADDR".into(), api_addr.clone()));
    }
    env.push(("EXTENSION_API_ADDR".into(), api_addr));
    let function_env = env.clone();
    let mut spec = exec_spec(
        isolated,
        cfg,
        &plan.view,
        &launch.program,
        launch.args.clone(),
        env,
    );
    if isolated {
        for m in &launch.mounts {
            if !spec.mounts.contains(m) {
                spec.mounts.push(m.clone());
            }
        }
    }
    if !plan.scripts.is_empty() {
        supervise(&plan.view, &plan.scripts, &mut spec);
    }
    (spec, function_env)
}

/// Starts the runtime in the prepared sandbox, off the executor.
async fn spawn(prepared: Prepared, spec: ExecSpec) -> Result<Running, StartError> {
    Ok(tokio::task::spawn_blocking(move || prepared.spawn(&spec))
        .await
        .expect("sandbox spawn does not panic")?)
}

/// Serves the instance's Runtime, Extension and Telemetry APIs (and drives an HTTP
/// function's server), and watches the runtime's exit.
fn serve(
    cfg: InstanceConfig,
    plan: Plan,
    mut running: Running,
    listener: tokio::net::TcpListener,
    function_env: Vec<(String, String)>,
) -> Result<(Instance, watch::Receiver<StartState>), StartError> {
    let Plan {
        extensions,
        telemetry,
        ..
    } = plan;
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
    let (start_tx, start_rx) = watch::channel(StartState::Starting);
    let api = Arc::new(ApiState {
        queue: tokio::sync::Mutex::new(queue_rx),
        inflight: Mutex::new(Default::default()),
        start: start_tx,
        output,
        extensions,
        telemetry,
        deliveries: tokio::sync::Mutex::new(None),
        initializer_started: Mutex::new(None),
        unhealthy: AtomicBool::new(false),
        exited: AtomicBool::new(false),
        event_headers: Default::default(),
    });
    let server = tokio::spawn(runtime_api::serve(listener, Arc::clone(&api)));
    let mut tasks = vec![server.abort_handle()];
    if cfg.image.as_ref().is_some_and(|i| !i.http) {
        // fgs plays the platform of an image's server: `/init`, then `/invoke` per event.
        let drive = crate::image_fn::drive(
            Arc::clone(&api),
            process.clone(),
            concurrency,
            function_env,
            cfg.function.initializer.clone(),
        );
        tasks.push(tokio::spawn(drive).abort_handle());
    } else if cfg.runtime == Runtime::Http {
        // fgs plays the runtime of an HTTP function: it forwards events to the server.
        let drive = http_fn::drive(Arc::clone(&api), process.clone(), concurrency, function_env);
        tasks.push(tokio::spawn(drive).abort_handle());
    }
    if cfg.runtime == Runtime::Go {
        // fgs plays FunctionGraph's side of the Go SDK's RPC: it calls the binary per event.
        let drive = crate::go_fn::drive(Arc::clone(&api), process.clone(), concurrency);
        tasks.push(tokio::spawn(drive).abort_handle());
    }

    let (exit_tx, exited) = watch::channel(None);
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
        exited,
        dead: AtomicBool::new(false),
        oom_seen,
        tasks: Mutex::new(tasks),
        initializer: None,
    };
    Ok((instance, start_rx))
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
        image: None,
    }
}
