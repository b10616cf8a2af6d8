//! End-to-end harness for fgs: starts the real `fgs serve` binary on a free port with a temp
//! data dir ([`Server`]), talks to it over HTTP signed exactly as the official SDK signs
//! ([`Req`], built on `fgs_api::auth::sign`), and builds fixture functions in memory
//! ([`fixture`]). It builds nothing itself: `scripts/test` runs `cargo build -p fgs` first, and
//! `FGS_BIN` points at another binary.
//!
//! The tests live in `tests/*.rs`, one file per area of the API, each a module of the one test
//! binary `e2e` (`build.rs` lists them): `cargo nextest run -p fgs-e2e restart::` runs one file.

mod client;
pub mod cluster;
pub mod fixture;
pub mod images;
pub mod postgres;
mod server;
mod sink;

use std::time::{Duration, Instant};

pub use client::{Auth, Req, Resp};
pub use fixture::{b64, unb64, unique};
pub use server::{fgs_bin, test_credential, Server, ServerOpts};
pub use sink::http_sink;

pub use fgs_api::auth::Credential;
pub use serde_json::{json, Value};

/// Polls `cond` every 50 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PIDs of processes whose command line contains `pattern` (`pgrep -f`).
pub fn pgrep(pattern: &str) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .arg("-f")
        .arg("--")
        .arg(pattern)
        .output()
        .expect("pgrep runs (procps is installed)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether `pid` is a live process (a zombie counts as gone: it runs nothing).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The host PID of the fixture instance that answered `r` (an answer to `pid` or `sleep`),
/// found by the instance id in its command line.
#[track_caller]
pub fn host_pid(r: &Resp) -> u32 {
    let body = r.json();
    let id = body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance id in {body}"));
    let pids = topmost(pgrep(&format!("-{id}$")));
    assert_eq!(pids.len(), 1, "instance {id} has host PIDs {pids:?}");
    pids[0]
}

/// The parent PID of a live process.
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Drops the PIDs whose parent is in the set: a shell's forked subshells (and its children
/// between fork and exec) carry the shell's command line, so `pgrep -f` finds them too.
fn topmost(pids: Vec<u32>) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| !ppid(*p).is_some_and(|pp| pids.contains(&pp)))
        .collect()
}

/// The host PIDs of the instances of a fixture function started with this `FX_MARK`.
pub fn instances(mark: &str) -> Vec<u32> {
    topmost(pgrep(&format!("fxmark-{mark}-")))
}

/// The `fgs` binary as a client of `s`: its endpoint and the test credential in the
/// environment (no other `FGS_` variable), output piped.
pub fn client_cmd(s: &Server) -> std::process::Command {
    let mut cmd = std::process::Command::new(fgs_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FGS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("FGS_ENDPOINT", s.base_url())
        .env("FGS_ACCESS_KEY", &s.cred.access_key)
        .env("FGS_SECRET_KEY", &s.cred.secret_key)
        .env("FGS_PROJECT_ID", &s.cred.project_id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}
