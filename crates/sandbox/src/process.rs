//! Starting a runtime as the leader of its own process group and ending the whole group.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

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
}

/// What to run in a prepared sandbox.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment; nothing of fgs's own environment leaks in.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

/// Starts sandboxes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {}
    }

    /// Makes the place an instance will run in: a listener for its Runtime API that the instance
    /// reaches at [`Prepared::api_addr`].
    pub fn prepare(&self) -> Result<Prepared, SandboxError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SandboxError::Listen)?;
        listener
            .set_nonblocking(true)
            .map_err(SandboxError::Listen)?;
        let api_addr = listener.local_addr().map_err(SandboxError::Listen)?;
        Ok(Prepared {
            listener: Some(listener),
            api_addr,
        })
    }
}

/// A sandbox ready for a runtime.
#[derive(Debug)]
pub struct Prepared {
    listener: Option<TcpListener>,
    api_addr: SocketAddr,
}

impl Prepared {
    /// The address the instance's processes reach fgs's Runtime and Extension API at.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The listener fgs serves the instance's APIs on. Taken once.
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// Starts the runtime. Its stdout and stderr both go to the returned pipe, in the order they
    /// were written, so that log lines keep their order across the two streams.
    pub fn spawn(self, spec: &ExecSpec) -> Result<Running, SandboxError> {
        let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
        let writer2 = writer.try_clone().map_err(SandboxError::Pipe)?;
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer2))
            // Its own process group, so that ending the instance ends every process the
            // runtime started (SPEC.md 5: the process group gets SIGTERM, then SIGKILL).
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        // The command holds the write ends; drop it so the reader sees EOF when the tree exits.
        drop(cmd);
        let pid = child.id().expect("a just-spawned child has a pid");
        Ok(Running {
            child,
            pgid: Pid::from_raw(pid as i32),
            output: Some(reader),
        })
    }
}

/// A running runtime process tree.
#[derive(Debug)]
pub struct Running {
    child: tokio::process::Child,
    pgid: Pid,
    output: Option<std::io::PipeReader>,
}

/// A cheap, cloneable handle to signal a running process tree and read its usage.
#[derive(Debug, Clone, Copy)]
pub struct ProcessHandle {
    pgid: Pid,
}

impl ProcessHandle {
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// Sends a signal to the whole process group. A group that is already gone is not an error.
    pub fn signal(&self, sig: Signal) {
        let _ = killpg(self.pgid, sig);
    }

    /// Kills the whole process tree at once.
    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// Resident memory of the runtime's main process, in bytes (0 once it is gone).
    pub fn memory_used_bytes(&self) -> u64 {
        // statm's second field is the resident set in pages.
        std::fs::read_to_string(format!("/proc/{}/statm", self.pgid))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4096)
            .unwrap_or(0)
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    pub fn handle(&self) -> ProcessHandle {
        ProcessHandle { pgid: self.pgid }
    }

    /// The read end of the combined stdout/stderr pipe. Taken once.
    pub fn take_output(&mut self) -> Option<std::io::PipeReader> {
        self.output.take()
    }

    /// Waits for the runtime's main process to exit.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Sends a signal to the whole process group. A group that is already gone is not an error.
    pub fn signal(&self, sig: Signal) {
        let _ = killpg(self.pgid, sig);
    }

    /// Kills the whole process tree at once.
    pub fn kill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// SIGTERM to the group, then SIGKILL once `grace` has passed (SPEC.md 5 shutdown).
    pub async fn terminate(&mut self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill();
            let _ = self.child.wait().await;
        }
        // Children of the runtime may outlive it in the group; they go too.
        self.kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
