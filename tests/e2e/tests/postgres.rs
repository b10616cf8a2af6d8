//! fgs on a PostgreSQL store (`--store postgres://...`): what a wrong URL or an unreachable
//! server says at start, and a single node serving from PostgreSQL. The tests that need a
//! server read `FGS_TEST_POSTGRES_URL` (scripts/test starts one) and skip without it.

use std::time::Duration;

use fgs_e2e::postgres::TestDatabase;
use fgs_e2e::*;

/// A port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn an_unreachable_postgres_is_named_at_start_and_fgs_exits_1() {
    // NATS is reached first (a PostgreSQL store needs it): a live one, so the store fails.
    let Some(nats) = fgs_e2e::cluster::nats_url() else {
        return;
    };
    let port = closed_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let url = format!("postgres://fgs:s3cret@127.0.0.1:{port}/fgs");
    let err = Server::try_start(
        ServerOpts::default()
            .data_dir(&data)
            .flag("--store", &url)
            .flag("--nats", nats),
    )
    .err()
    .expect("an unreachable store is refused");
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(
        err.contains(&format!("postgres://fgs@127.0.0.1:{port}/fgs")),
        "the URL is named: {err}"
    );
    assert!(err.to_lowercase().contains("connect"), "says what failed: {err}");
    assert!(!err.contains("s3cret"), "the password is not shown: {err}");
    assert!(!data.exists(), "nothing is created for an unreachable store");
}

#[test]
fn a_database_that_does_not_exist_is_named_at_start() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let url = format!("{}_missing", db.url);
    let err = Server::try_start(ServerOpts::default().postgres(&url))
        .err()
        .expect("a missing database is refused");
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains(&format!("{}_missing", db.name)), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

/// One node on PostgreSQL: the schema is made at start, a function is created and invoked
/// (sync and async), and a second start on the same database, with another data dir, sees
/// the function and its finished event.
#[test]
fn a_single_node_serves_from_postgres_and_a_restart_keeps_everything() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ServerOpts::default()
        .data_dir(&dir.path().join("data"))
        .postgres(&db.url);
    let s = Server::start(opts.clone());
    let name = unique("pg");
    s.create_fixture(&name, &name, &[], json!({}));
    let urn = s.urn(&name);
    let r = s.invoke(&urn, &json!({"hello": "pg"}));
    r.expect(200);
    assert_eq!(r.json()["hello"], "pg");
    let r = s.post(&format!("/functions/{name}/invocations-async"), &json!({"n": 1}));
    r.expect(202);
    let id = r.json()["request_id"].as_str().expect("request id").to_owned();
    let done = wait_until(Duration::from_secs(30), || {
        db.query(&format!(
            "SELECT status FROM async_invocations WHERE request_id = '{id}'"
        )) == "SUCCESS"
    });
    assert!(done, "the async event ran from the PostgreSQL queue");
    assert_eq!(db.query("SELECT COUNT(*) FROM functions"), "1");
    assert!(
        wait_until(Duration::from_secs(10), || {
            db.query("SELECT advertise_url FROM nodes") == s.base_url()
        }),
        "the node heartbeats its advertised URL into the store"
    );
    drop(s);

    let s = Server::start(opts);
    s.get(&format!("/functions/{name}/config")).expect(200);
    let r = s.invoke(&urn, &json!({"again": true}));
    r.expect(200);
    assert_eq!(r.json()["again"], true);
}

/// A PostgreSQL server of this test's own, to stop and start: `initdb` in a temporary
/// directory (as the `postgres` user when running as root), a free port, trust authentication.
struct OwnServer {
    dir: tempfile::TempDir,
    bindir: std::path::PathBuf,
    port: u16,
}

impl OwnServer {
    fn start() -> Option<OwnServer> {
        // Needs the server programs scripts/test installs; the same rule as for the URL.
        fgs_e2e::postgres::postgres_url()?;
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("pg_ctl").exists())
            .expect("PostgreSQL's server programs (Debian's postgresql)");
        let dir = tempfile::Builder::new()
            .prefix("fgs-e2e-pg-")
            .tempdir()
            .expect("tempdir");
        let server = OwnServer {
            dir,
            bindir,
            port: closed_port(),
        };
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["postgres:", &server.dir.path().display().to_string()])
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let data = server.dir.path().join("data").display().to_string();
        server.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust"]);
        server.ctl("start");
        Some(server)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let bin = self.bindir.join(program).display().to_string();
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &bin]);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, what: &str) {
        let data = self.dir.path().join("data").display().to_string();
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        match what {
            "start" => self.run(
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            ),
            _ => self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]),
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let bin = self.bindir.join("pg_ctl").display().to_string();
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &bin]);
            c
        } else {
            std::process::Command::new(&bin)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL stopped for 5 s under a running node: calls that need it answer 503 FSS.0503
/// naming PostgreSQL, a warm function keeps answering, nothing is accepted meanwhile, and the
/// node recovers by itself when the server is back.
#[test]
fn postgres_down_for_5s_answers_503_and_the_node_recovers_by_itself() {
    let Some(pg) = OwnServer::start() else {
        return;
    };
    let s = Server::start(ServerOpts::default().postgres(&pg.url()));
    let name = unique("pgdown");
    s.create_fixture(&name, &name, &[], json!({}));
    let urn = s.urn(&name);
    s.invoke(&urn, &json!({"warm": 1})).expect(200);

    pg.ctl("stop");
    let stopped = std::time::Instant::now();
    let r = s.get("/functions");
    r.expect_fss(503, "FSS.0503");
    let msg = r.json()["error_msg"].as_str().unwrap_or_default().to_owned();
    assert!(
        msg.contains("PostgreSQL") && msg.contains("unavailable"),
        "{msg}"
    );
    s.post(&format!("/functions/{name}/invocations-async"), &json!({"n": 1}))
        .expect_fss(503, "FSS.0503");
    let warm = s.invoke(&urn, &json!({"warm": 2}));
    assert_eq!(warm.status, 200, "a warm function keeps answering: {}", warm.text());
    std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));

    pg.ctl("start");
    let back = wait_until(Duration::from_secs(20), || {
        s.get("/functions").status == 200
    });
    assert!(back, "the node recovered without a restart");
    let r = s.post(&format!("/functions/{name}/invocations-async"), &json!({"n": 2}));
    r.expect(202);
    let id = r.json()["request_id"].as_str().expect("request id").to_owned();
    let ran = wait_until(Duration::from_secs(30), || {
        let list = s.get(&format!(
            "/functions/{name}/async-invocations?request_id={id}"
        ));
        list.status == 200 && list.json()["invocations"][0]["status"] == "SUCCESS"
    });
    assert!(ran, "an event accepted after the outage runs");
}

/// A Custom function whose answer comes from `dep-hello`, a program only its dependency has.
const DEP_BOOTSTRAP: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
while :; do
  curl -sS -D /tmp/h -o /tmp/ev "$API/invocation/request" || exit 1
  ID=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' /tmp/h | tr -d '\r\n')
  printf '{"out":"%s"}' "$(dep-hello 2>&1)" > /tmp/out
  curl -sS -X POST --data-binary @/tmp/out "$API/invocation/response/$ID" >/dev/null || exit 1
done
"#;

/// Code everywhere: two nodes on one PostgreSQL with data dirs of their own. A function and a
/// dependency created on A run on B, which has neither package and gets both from the store
/// (checked against their sha256 and cached in its data dir).
#[test]
fn a_node_runs_code_another_node_uploaded() {
    use fgs_e2e::fixture::{b64, zip_files};
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let a = Server::start(ServerOpts::default().postgres(&db.url));
    let b = Server::start(ServerOpts::default().postgres(&db.url));

    let dep = zip_files(&[("bin/dep-hello", b"#!/bin/sh\necho from-the-dependency\n", 0o755)]);
    let r = a.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&dep), "depend_type": "zip", "runtime": "Custom", "name": "greeter"}),
    );
    r.expect(200);
    let dep_version = r.json()["id"].as_str().expect("id").to_owned();
    let code = zip_files(&[("bootstrap", DEP_BOOTSTRAP.as_bytes(), 0o755)]);
    let name = unique("everywhere");
    a.post(
        "/functions",
        &json!({
            "func_name": name, "runtime": "Custom", "handler": "bootstrap", "memory_size": 128,
            "timeout": 10, "code_type": "zip", "code_filename": "code.zip",
            "func_code": {"file": b64(&code)}, "depend_version_list": [dep_version],
        }),
    )
    .expect(200);
    assert_eq!(db.query("SELECT COUNT(*) FROM packages"), "2");

    let r = b.invoke(&b.urn(&name), &json!({}));
    r.expect(200);
    assert_eq!(r.json()["out"], "from-the-dependency", "{}", r.text());
    let cached = std::fs::read_dir(b.data_dir().join("packages"))
        .expect("B's package dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".zip"))
        })
        .count();
    assert_eq!(cached, 2, "B cached both packages in its data dir");
}
