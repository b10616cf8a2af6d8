//! A cluster for the end-to-end tests (docs/cluster.md): N `fgs serve` nodes on loopback, each
//! with its own (fresh) data dir and port, the same credential, on one PostgreSQL database
//! ([`TestDatabase`]) and one NATS: the one `FGS_TEST_NATS_URL` names (scripts/test starts
//! it), or a [`Nats`] of the test's own for tests that stop it. Without the engines the tests
//! say so and pass, unless `FGS_TEST_REQUIRE_ENGINES=1`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postgres::TestDatabase;
use crate::{Server, ServerOpts};

fn engines_required() -> bool {
    std::env::var("FGS_TEST_REQUIRE_ENGINES").as_deref() == Ok("1")
}

/// The shared NATS of the tests, or `None` (after saying why).
pub fn nats_url() -> Option<String> {
    match std::env::var("FGS_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !engines_required(),
                "FGS_TEST_REQUIRE_ENGINES=1 but FGS_TEST_NATS_URL is not set"
            );
            eprintln!("skipped: FGS_TEST_NATS_URL is not set (scripts/test starts NATS)");
            None
        }
    }
}

/// A `nats-server -js` of one test's own, on a free port with its own store, to stop and
/// start again.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// `None` when `nats-server` is not installed and engines are optional.
    pub fn start() -> Option<Nats> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            assert!(!engines_required(), "nats-server is not installed");
            eprintln!("skipped: nats-server is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut nats = Nats {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        nats.restart();
        Some(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// N nodes of one cluster. Node `i` is `node-<i>`; a killed node is `None`.
pub struct Cluster {
    pub db: TestDatabase,
    pub nats: String,
    nodes: Vec<Option<Server>>,
    opts: Box<dyn Fn(usize) -> ServerOpts + Send + Sync>,
}

impl Cluster {
    /// `n` nodes on a fresh database and the shared NATS, started at once (they race on the
    /// schema and the stream, as real nodes do); `None` when the engines are not there.
    pub fn start(n: usize) -> Option<Cluster> {
        let nats = nats_url()?;
        Cluster::start_on(n, &nats, |o| o)
    }

    /// `n` nodes on NATS at `nats`, each given `extra` flags on top of the cluster's.
    pub fn start_on(
        n: usize,
        nats: &str,
        extra: impl Fn(ServerOpts) -> ServerOpts + Send + Sync + 'static,
    ) -> Option<Cluster> {
        let db = TestDatabase::create()?;
        Some(Cluster::start_with(db, n, nats, extra))
    }

    /// `n` nodes on `db` as it is (e.g. what `fgs store copy` wrote into it) and NATS at
    /// `nats`, each given `extra` flags on top of the cluster's.
    pub fn start_with(
        db: TestDatabase,
        n: usize,
        nats: &str,
        extra: impl Fn(ServerOpts) -> ServerOpts + Send + Sync + 'static,
    ) -> Cluster {
        let (store, nats_url) = (db.url.clone(), nats.to_owned());
        let opts = Box::new(move |i: usize| {
            let o = extra(
                ServerOpts::default()
                    .flag("--store", store.clone())
                    .flag("--nats", nats_url.clone())
                    .flag("--node-id", format!("node-{i}"))
                    // Functions count their runs in the test's files; and a node's instances
                    // must not depend on another's sandbox.
                    .flag("--sandbox", "off"),
            );
            o
        });
        let nodes = std::thread::scope(|s| {
            let started: Vec<_> = (0..n)
                .map(|i| {
                    let o = opts(i);
                    s.spawn(move || Server::start(o))
                })
                .collect();
            started
                .into_iter()
                .map(|h| Some(h.join().expect("a node started")))
                .collect()
        });
        Cluster {
            db,
            nats: nats.to_owned(),
            nodes,
            opts,
        }
    }

    /// Node `i`; panics if it was killed.
    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("the node is running")
    }

    /// `kill -9` of node `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(s) = self.nodes[i].take() {
            s.kill9();
        }
    }

    /// Starts node `i` again, with a fresh data dir: what it needs is in the cluster.
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        self.nodes[i] = Some(Server::start((self.opts)(i)));
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
