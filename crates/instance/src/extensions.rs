//! Extensions (SPEC.md 5): scripts found in a function's dependencies and code, started before
//! the runtime, registered over the instance's Extension API, and told of every invocation.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use fgs_core::func_error::codes;
use fgs_core::FunctionError;
use fgs_sandbox::ProcessHandle;
use http::StatusCode;
use tokio::sync::watch;

use crate::loopback::LoopbackClient;

mod invoke;

pub(crate) use invoke::timings;
pub use invoke::{ExtensionSpan, ExtensionTimings};

/// At most 10 extensions per instance, on 127.0.0.1:8081-8090 (SPEC.md 5).
pub const MAX_EXTENSIONS: usize = 10;
const PORTS: std::ops::RangeInclusive<u16> = 8081..=8090;
/// Lines of an extension's output kept to explain its failure.
const TAIL_LINES: usize = 20;

/// One extension script to start: its file name and where it is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub host_path: PathBuf,
}

/// Finds `extension/extension*.sh` in each dependency (in list order) and then in the code, by
/// name within a folder; a later script of the same name replaces an earlier one, as a later
/// dependency's file does in the merged tree. Dependency scripts run from the merged tree.
pub(crate) fn discover(
    dependencies: &[PathBuf],
    merged: Option<&Path>,
    code_dir: &Path,
) -> Result<Vec<Script>, FunctionError> {
    let mut folders: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(merged) = merged {
        for dep in dependencies {
            folders.push((dep.join("extension"), merged.join("extension")));
        }
    }
    folders.push((code_dir.join("extension"), code_dir.join("extension")));
    let mut scripts: Vec<Script> = Vec::new();
    for (probe, run_from) in folders {
        if !probe.is_dir() {
            continue;
        }
        let mut names: Vec<String> = std::fs::read_dir(&probe)
            .map_err(|e| missing(&probe, &e.to_string()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with("extension") && n.ends_with(".sh"))
            .collect();
        if names.is_empty() {
            return Err(missing(&probe, "no extension*.sh in it"));
        }
        names.sort();
        for name in names {
            scripts.retain(|s| s.name != name);
            scripts.push(Script {
                host_path: run_from.join(&name),
                name,
            });
        }
    }
    Ok(scripts)
}

fn missing(folder: &Path, why: &str) -> FunctionError {
    FunctionError::new(
        codes::EXTENSION_MISSING,
        "ExtensionNotFound",
        format!(
            "extension shell file is not found: {} ({why})",
            folder.display()
        ),
    )
}

pub(crate) fn exec_failed(detail: String) -> FunctionError {
    FunctionError::new(
        codes::EXTENSION_FAILED,
        "ExtensionExecFailed",
        format!("extension exec failed, error: {detail}"),
    )
}

/// Whether the runtime may start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Gate {
    Waiting,
    Open,
    Failed(FunctionError),
}

struct Registered {
    name: String,
    port: u16,
    client: Arc<LoopbackClient>,
}

#[derive(Default)]
struct State {
    registered: Vec<Registered>,
    /// The script whose exit failed the start, and its status.
    failed: Option<(String, i32)>,
    /// Output tails by script name.
    tails: Vec<(String, VecDeque<String>)>,
}

/// The extensions of one instance.
pub(crate) struct Extensions {
    expected: Vec<String>,
    state: Mutex<State>,
    pub gate: watch::Sender<Gate>,
    process: Mutex<Option<ProcessHandle>>,
    /// Invoke events that failed (non-200, refused, timed out), for metrics.
    pub failures: AtomicU64,
    function_name: String,
    function_version: String,
}

/// The outcome of a registration: status and `errorInfo` (SPEC.md 5).
pub(crate) struct Registration {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
}

impl Registration {
    fn refuse(status: StatusCode, error_type: &'static str, message: String) -> Registration {
        Registration {
            status,
            error_type,
            message,
        }
    }
}

impl Extensions {
    pub(crate) fn new(
        expected: Vec<String>,
        function_name: String,
        function_version: String,
    ) -> Extensions {
        let gate = if expected.is_empty() {
            Gate::Open
        } else {
            Gate::Waiting
        };
        Extensions {
            expected,
            state: Mutex::new(State::default()),
            gate: watch::channel(gate).0,
            process: Mutex::new(None),
            failures: AtomicU64::new(0),
            function_name,
            function_version,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("extension state lock is never poisoned")
    }

    pub(crate) fn any(&self) -> bool {
        !self.expected.is_empty()
    }

    pub(crate) fn set_process(&self, p: ProcessHandle) {
        *self.process.lock().expect("process lock is never poisoned") = Some(p);
    }

    pub(crate) fn function(&self) -> (&str, &str) {
        (&self.function_name, &self.function_version)
    }

    pub(crate) fn is_registered(&self, name: &str) -> bool {
        self.lock().registered.iter().any(|r| r.name == name)
    }

    /// The registered extension listening at `port`, if one is.
    pub(crate) fn name_at_port(&self, port: u16) -> Option<String> {
        self.lock()
            .registered
            .iter()
            .find(|r| r.port == port)
            .map(|r| r.name.clone())
    }

    /// `POST /extension/register` with its two headers (SPEC.md 5).
    pub(crate) fn register(&self, name: Option<&str>, address: Option<&str>) -> Registration {
        let (Some(name), Some(address)) = (
            name.filter(|n| !n.is_empty()),
            address.filter(|a| !a.is_empty()),
        ) else {
            return Registration::refuse(
                StatusCode::BAD_REQUEST,
                "MissingHeader",
                "both FunctionGraph-Extension-Name and FunctionGraph-Extension-Address are required".into(),
            );
        };
        if !self.expected.iter().any(|e| e == name) {
            return Registration::refuse(
                StatusCode::FORBIDDEN,
                "UnknownExtension",
                format!("no extension script named {name:?} was started in this instance"),
            );
        }
        let port = address
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| PORTS.contains(p));
        let Some(port) = port else {
            return Registration::refuse(
                StatusCode::BAD_REQUEST,
                "InvalidAddress",
                format!("address {address:?} is invalid: use 127.0.0.1:8081 to 127.0.0.1:8090"),
            );
        };
        let mut st = self.lock();
        if let Some(r) = st.registered.iter().find(|r| r.name == name) {
            if r.port == port {
                return Registration::refuse(StatusCode::OK, "", String::new());
            }
            return Registration::refuse(
                StatusCode::CONFLICT,
                "AlreadyRegistered",
                format!("{name} is already registered at 127.0.0.1:{}", r.port),
            );
        }
        if st.registered.len() >= MAX_EXTENSIONS {
            return Registration::refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyExtensions",
                format!("an instance takes at most {MAX_EXTENSIONS} extensions"),
            );
        }
        if let Some(r) = st.registered.iter().find(|r| r.port == port) {
            return Registration::refuse(
                StatusCode::CONFLICT,
                "PortInUse",
                format!("port {port} is already used by extension {}", r.name),
            );
        }
        let Some(process) = self
            .process
            .lock()
            .expect("process lock is never poisoned")
            .clone()
        else {
            return Registration::refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "NotReady",
                "the instance is still starting: retry".into(),
            );
        };
        st.registered.push(Registered {
            name: name.to_string(),
            port,
            client: Arc::new(LoopbackClient::new(process, port)),
        });
        let all = self
            .expected
            .iter()
            .all(|e| st.registered.iter().any(|r| &r.name == e));
        drop(st);
        if all {
            self.gate.send_if_modified(|g| {
                if *g == Gate::Waiting {
                    *g = Gate::Open;
                    true
                } else {
                    false
                }
            });
        }
        Registration::refuse(StatusCode::OK, "", String::new())
    }

    /// A script ended (reported by the supervisor). Before the gate opened, a non-zero status
    /// fails the start (4217); after, it marks the instance for replacement. Returns whether
    /// the instance must be replaced.
    pub(crate) fn exited(&self, name: &str, code: i32) -> bool {
        if code == 0 {
            tracing::debug!(extension = name, "extension script exited with status 0");
            return false;
        }
        let detail = self.exit_detail(name, code);
        let mut failed_start = false;
        self.gate.send_if_modified(|g| {
            if *g == Gate::Waiting {
                *g = Gate::Failed(exec_failed(detail.clone()));
                failed_start = true;
                true
            } else {
                false
            }
        });
        if failed_start {
            self.lock().failed = Some((name.to_string(), code));
        } else {
            tracing::warn!(
                extension = name,
                code,
                "extension died; the instance will be replaced"
            );
        }
        true
    }

    fn exit_detail(&self, name: &str, code: i32) -> String {
        let tail = self.tail(name);
        if tail.is_empty() {
            format!("{name} exited with status {code}")
        } else {
            format!("{name} exited with status {code}: {tail}")
        }
    }

    /// The start failure of a script that exited, with the output read since it was reported.
    pub(crate) fn exit_failure(&self) -> Option<FunctionError> {
        let (name, code) = self.lock().failed.clone()?;
        Some(exec_failed(self.exit_detail(&name, code)))
    }

    /// The scripts that have not registered, for the deadline's message.
    pub(crate) fn unregistered(&self) -> Vec<String> {
        let st = self.lock();
        self.expected
            .iter()
            .filter(|e| !st.registered.iter().any(|r| &r.name == *e))
            .cloned()
            .collect()
    }

    pub(crate) fn record_line(&self, name: &str, line: &str) {
        let mut st = self.lock();
        let i = match st.tails.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                st.tails.push((name.to_string(), VecDeque::new()));
                st.tails.len() - 1
            }
        };
        let t = &mut st.tails[i].1;
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }

    pub(crate) fn tail(&self, name: &str) -> String {
        let st = self.lock();
        st.tails
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default()
    }

    /// A client for a port of the instance, for telemetry delivery.
    pub(crate) fn client_for_port(&self, port: u16) -> Option<Arc<LoopbackClient>> {
        let process = self
            .process
            .lock()
            .expect("process lock is never poisoned")
            .clone()?;
        Some(Arc::new(LoopbackClient::new(process, port)))
    }

    pub(crate) fn port_in_range(port: u16) -> bool {
        PORTS.contains(&port)
    }
}

#[cfg(test)]
mod tests;
