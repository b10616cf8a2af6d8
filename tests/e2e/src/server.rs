//! Starting and stopping a real `fgs serve` process.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fgs_api::auth::Credential;

use crate::postgres::{store_is_postgres, TestDatabase};

/// How long a debug build may take to print its `listening on` line. Generous: CI runs two test
/// binaries at once on two cores.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The credential every test server is given through `FGS_ACCESS_KEY`/`FGS_SECRET_KEY`/
/// `FGS_PROJECT_ID`, unless the options say otherwise.
pub fn test_credential() -> Credential {
    Credential {
        access_key: "E2EACCESSKEY0000001".to_owned(),
        secret_key: "e2e-secret-key-0123456789abcdef".to_owned(),
        project_id: "0123456789abcdef0123456789abcdef".to_owned(),
    }
}

/// The `fgs` binary under test: `$FGS_BIN`, else `target/debug/fgs` of this workspace
/// (`scripts/test` builds it first; cargo gives no `CARGO_BIN_EXE_` across crates).
pub fn fgs_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FGS_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("debug/fgs");
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p fgs` first (scripts/test does), or set FGS_BIN",
        bin.display()
    );
    bin
}

/// How to start a server. `ServerOpts::default()` is a fresh temp data dir, the test
/// credential in the environment, and nothing else.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    /// Reuse this data dir (restart tests); a fresh temp dir when `None`.
    pub data_dir: Option<PathBuf>,
    /// Extra `fgs serve` flags.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Pass the test credential through `FGS_ACCESS_KEY`/...; off to test generated or file credentials.
    pub env_credential: bool,
    /// Start fgs in the temp dir with `--data-dir data`, as a user typing a relative path does.
    pub relative_data_dir: bool,
    /// Run this instead of [`fgs_bin`] (given the same arguments): a wrapper that starts fgs as
    /// another user, for the rootless sandbox tests.
    pub program: Option<PathBuf>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            data_dir: None,
            args: Vec::new(),
            env: Vec::new(),
            env_credential: true,
            relative_data_dir: false,
            program: None,
        }
    }
}

impl ServerOpts {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn flag(self, name: &str, value: impl Into<String>) -> Self {
        self.arg(name).arg(value)
    }
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_owned(), v.into()));
        self
    }
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }
    /// A node on the PostgreSQL database at `url`, following the test NATS
    /// (`FGS_TEST_NATS_URL`): fgs refuses a PostgreSQL store without `--nats`.
    pub fn postgres(self, url: &str) -> Self {
        self.flag("--store", url).flag("--nats", test_nats_url())
    }
    pub fn idle_timeout(self, d: &str) -> Self {
        self.flag("--instance-idle-timeout", d)
    }
    pub fn queue_limit(self, n: u32) -> Self {
        self.flag("--queue-limit", n.to_string())
    }
    pub fn relative_data_dir(mut self) -> Self {
        self.relative_data_dir = true;
        self
    }
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }
    pub fn without_env_credential(mut self) -> Self {
        self.env_credential = false;
        self
    }
    /// Only `creds` are accepted: written to `file` (one `AK SK project` line each) and passed
    /// as `--credentials`.
    pub fn credentials_file(self, file: &Path, creds: &[&crate::Credential]) -> Self {
        let lines: String = creds
            .iter()
            .map(|c| format!("{} {} {}\n", c.access_key, c.secret_key, c.project_id))
            .collect();
        std::fs::write(file, lines).expect("write the credentials file");
        self.without_env_credential()
            .flag("--credentials", file.display().to_string())
    }
}

/// The NATS a test node on PostgreSQL follows: `FGS_TEST_NATS_URL`, which scripts/test sets
/// together with `FGS_TEST_POSTGRES_URL`.
fn test_nats_url() -> String {
    std::env::var("FGS_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("a node on PostgreSQL needs NATS: set FGS_TEST_NATS_URL with FGS_TEST_POSTGRES_URL")
}

/// The `--store` (and `--nats`) of a server under `FGS_TEST_STORE=postgres` that names none itself: a fresh
/// database, owned by the server when its data dir is a fresh one. A data dir the test gives
/// (a restart) keeps its database across starts: its URL is written into the data dir, and the
/// database lives as long as the test process (the throwaway server goes after).
fn postgres_store(
    opts: &ServerOpts,
    fresh_dir: bool,
    data_dir: &Path,
) -> (Option<TestDatabase>, Vec<String>) {
    static KEPT: Mutex<Vec<TestDatabase>> = Mutex::new(Vec::new());
    if !store_is_postgres() || opts.args.iter().any(|a| a.starts_with("--store")) {
        return (None, Vec::new());
    }
    let admin = crate::postgres::postgres_url()
        .expect("FGS_TEST_STORE=postgres needs FGS_TEST_POSTGRES_URL");
    let url_file = data_dir.join("e2e-postgres-url");
    let mut args = Vec::new();
    if !opts.args.iter().any(|a| a.starts_with("--nats")) {
        args.extend(["--nats".to_owned(), test_nats_url()]);
    }
    if let Ok(url) = std::fs::read_to_string(&url_file) {
        args.extend(["--store".to_owned(), url]);
        return (None, args);
    }
    let db = TestDatabase::create_on(&admin);
    args.extend(["--store".to_owned(), db.url.clone()]);
    std::fs::create_dir_all(data_dir).expect("create the data dir");
    std::fs::write(&url_file, &db.url).expect("note the test database in the data dir");
    if fresh_dir {
        return (Some(db), args);
    }
    KEPT.lock().unwrap().push(db);
    (None, args)
}

/// A running `fgs serve`. Dropping it stops the server (SIGTERM, then SIGKILL after 10 s) and,
/// when the test is failing, prints the server's stderr.
pub struct Server {
    child: Mutex<Child>,
    pub addr: SocketAddr,
    pub cred: Credential,
    data_dir: PathBuf,
    /// Dropped after the process has stopped (field order): the database goes with the test.
    _db: Option<TestDatabase>,
    _temp: Option<tempfile::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    pub(crate) http: reqwest::blocking::Client,
}

impl Server {
    /// Starts the server and waits until it has printed `listening on http://...` and
    /// answers `GET /healthz`.
    pub fn start(opts: ServerOpts) -> Server {
        Self::try_start(opts).unwrap_or_else(|e| panic!("fgs serve did not start: {e}"))
    }

    /// Like [`Server::start`], but a server that exits or never gets ready is an `Err`
    /// carrying its stderr.
    pub fn try_start(opts: ServerOpts) -> Result<Server, String> {
        let (temp, data_dir) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("fgs-e2e-")
                    .tempdir()
                    .expect("can create a temp dir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let (db, store_args) = postgres_store(&opts, temp.is_some(), &data_dir);
        let program = opts.program.clone().unwrap_or_else(fgs_bin);
        let mut cmd = Command::new(&program);
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
        match (&temp, opts.relative_data_dir) {
            (Some(t), true) => cmd.current_dir(t.path()).arg("--data-dir").arg("data"),
            _ => cmd.arg("--data-dir").arg(&data_dir),
        };
        cmd.args(&store_args)
            .args(&opts.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The developer's own FGS_* settings must not leak into a test server.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FGS_") {
                cmd.env_remove(k);
            }
        }
        let cred = test_credential();
        if opts.env_credential {
            cmd.env("FGS_ACCESS_KEY", &cred.access_key)
                .env("FGS_SECRET_KEY", &cred.secret_key)
                .env("FGS_PROJECT_ID", &cred.project_id);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;

        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let out = child.stdout.take().expect("stdout is piped");
            let lines = stdout_lines.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(rest.trim().to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
            let mut err = child.stderr.take().expect("stderr is piped");
            let buf = stderr_buf.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
        }
        let stderr_text =
            |buf: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();

        let deadline = Instant::now() + START_DEADLINE;
        let addr = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(a) => break a,
                Err(_) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "no `listening on` line within {START_DEADLINE:?}; stderr:\n{}",
                        stderr_text(&stderr_buf)
                    ));
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        thread::sleep(Duration::from_millis(200));
                        return Err(format!(
                            "fgs exited with {status}; stderr:\n{}",
                            stderr_text(&stderr_buf)
                        ));
                    }
                }
            }
        };
        let addr: SocketAddr = addr
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("bad address in `listening on http://{addr}`: {e}"))?;
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("reqwest client builds");
        let server = Server {
            child: Mutex::new(child),
            addr,
            cred,
            data_dir,
            _db: db,
            _temp: temp,
            stdout: stdout_lines,
            stderr: stderr_buf,
            http,
        };
        let ready = crate::wait_until(Duration::from_secs(30), || {
            server
                .http
                .get(format!("{}/healthz", server.base_url()))
                .send()
                .map(|r| r.status().as_u16() == 200)
                .unwrap_or(false)
        });
        if !ready {
            return Err(format!(
                "GET /healthz never answered 200; stderr:\n{}",
                server.stderr()
            ));
        }
        Ok(server)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Everything the server printed on stdout so far, by line.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `INT`) to the server process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the server to exit, at most `limit`; `None` if it is still running.
    pub fn wait_exit(&self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .lock()
                .unwrap()
                .try_wait()
                .expect("try_wait works")
            {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill9(&self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let running = matches!(self.child.lock().unwrap().try_wait(), Ok(None));
        if running {
            // SIGTERM first so the server stops its instances; a test that leaves bootstraps
            // behind would slow every later test on two shared cores.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid().to_string())
                .status();
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                self.kill9();
            }
        }
        if thread::panicking() {
            let err = self.stderr();
            let mut start = err.len().saturating_sub(16 * 1024);
            while !err.is_char_boundary(start) {
                start += 1;
            }
            let tail = &err[start..];
            eprintln!(
                "----- fgs serve stderr (last 16 KB) -----\n{tail}\n----- end of fgs stderr -----"
            );
        }
    }
}
