//! The CLI client (docs/cli.md) against a real server: `fgs function ...`, `fgs deploy` from an
//! `fgs.yaml` (and `--watch`), versions and aliases, `fgs logs`, JSON output, completions.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use fgs_e2e::fixture::{bootstrap_zip, RUNTIME};
use fgs_e2e::{fgs_bin, instances, json, unique, Server, ServerOpts, Value};

/// `fgs function <args>` with the server's endpoint and credential in the environment.
fn fgs(s: &Server, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut all = vec!["function"];
    all.extend_from_slice(args);
    fgs_any(s, &all, stdin)
}

/// `fgs <args>` with the server's endpoint and credential in the environment.
fn fgs_any(s: &Server, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = client_cmd(s);
    cmd.args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("fgs runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("fgs finishes")
}

fn client_cmd(s: &Server) -> Command {
    fgs_e2e::client_cmd(s)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "fgs failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        out(&o),
        err(&o)
    );
    o
}

fn code_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("code");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let boot = dir.join("bootstrap");
    std::fs::write(&boot, RUNTIME).expect("write bootstrap");
    std::fs::set_permissions(&boot, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.join("data/greeting.txt"), "hello from a file\n").expect("write data");
    dir
}

#[test]
fn create_list_invoke_delete_from_a_directory() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    let mark = unique("cli");
    let fx = format!("FX_MARK={mark}");
    ok(fgs(
        &s,
        &[
            "create",
            "clifn",
            "--code",
            dir.to_str().unwrap(),
            "--memory",
            "256",
            "--timeout",
            "10",
            "--env",
            &fx,
            "--env",
            "GREETING=hey there",
        ],
        None,
    ));
    let cfg = s.get("/functions/clifn/config").json();
    assert_eq!(
        (
            cfg["memory_size"].clone(),
            cfg["timeout"].clone(),
            cfg["runtime"].clone()
        ),
        (json!(256), json!(10), json!("Custom"))
    );

    let listed = ok(fgs(&s, &["list"], None));
    assert!(out(&listed).contains("clifn"), "{}", out(&listed));
    let listed = ok(fgs(&s, &["list", "--json"], None));
    let v: Value = serde_json::from_slice(&listed.stdout).expect("list --json is JSON");
    assert_eq!(v["functions"][0]["func_name"], "clifn", "{v}");

    let got = ok(fgs(&s, &["get", "clifn"], None));
    assert!(out(&got).contains("memory_size:"), "{}", out(&got));
    let got = ok(fgs(&s, &["get", "clifn", "--output", "json"], None));
    let v: Value = serde_json::from_slice(&got.stdout).expect("get -o json prints JSON");
    assert_eq!(v["func_name"], "clifn");

    // The directory was zipped with its modes (bootstrap ran) and its subdirectories.
    let inv = ok(fgs(
        &s,
        &[
            "invoke",
            "clifn",
            "--data",
            r#"{"op":"log","text":"from-cli"}"#,
            "--log-tail",
        ],
        None,
    ));
    let result: Value = serde_json::from_slice(&inv.stdout).expect("invoke prints the result");
    let rid = result["logged"]
        .as_str()
        .expect("logged request id")
        .to_owned();
    assert!(
        err(&inv).contains(&format!("fx-stdout {rid} from-cli")),
        "log tail on stderr:\n{}",
        err(&inv)
    );
    let env = ok(fgs(
        &s,
        &["invoke", "clifn", "--data", r#"{"op":"env"}"#],
        None,
    ));
    assert!(out(&env).contains("GREETING=hey there"), "{}", out(&env));
    assert_eq!(instances(&mark).len(), 1);

    // The event from stdin and from a file.
    let inv = ok(fgs(
        &s,
        &["invoke", "clifn", "--file", "-"],
        Some(br#"{"via":"stdin"}"#),
    ));
    assert_eq!(
        serde_json::from_slice::<Value>(&inv.stdout).expect("JSON"),
        json!({"via": "stdin"})
    );
    let ev = tmp.path().join("event.json");
    std::fs::write(&ev, r#"{"via":"file"}"#).expect("write event");
    let inv = ok(fgs(
        &s,
        &["invoke", "clifn", "--file", ev.to_str().unwrap()],
        None,
    ));
    assert_eq!(
        serde_json::from_slice::<Value>(&inv.stdout).expect("JSON"),
        json!({"via": "file"})
    );

    ok(fgs(&s, &["delete", "clifn"], None));
    let after = fgs(&s, &["get", "clifn"], None);
    assert!(!after.status.success());
    assert!(err(&after).contains("error: FSS.1051: "), "{}", err(&after));
}

#[test]
fn failures_exit_non_zero() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("fn.zip");
    std::fs::write(&zip, bootstrap_zip(RUNTIME)).expect("write zip");
    ok(fgs(
        &s,
        &["create", "zipped", "--code", zip.to_str().unwrap()],
        None,
    ));
    assert_eq!(
        s.get("/functions/zipped/code").json()["code_filename"],
        "fn.zip"
    );

    // A function error: the error JSON on stdout, exit 1.
    let o = fgs(
        &s,
        &["invoke", "zipped", "--data", r#"{"op":"error"}"#],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "stderr: {}", err(&o));
    let body: Value = serde_json::from_slice(&o.stdout).expect("the error JSON");
    assert_eq!(body["errorCode"], 4002, "{body}");

    // API errors: `error: FSS.xxxx: message`.
    let o = fgs(
        &s,
        &["create", "zipped", "--code", zip.to_str().unwrap()],
        None,
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("error: FSS.1061: "), "{}", err(&o));
    let o = fgs(
        &s,
        &[
            "create",
            "bad",
            "--code",
            zip.to_str().unwrap(),
            "--memory",
            "100",
        ],
        None,
    );
    assert!(err(&o).starts_with("error: FSS.1007: "), "{}", err(&o));
    let o = fgs(&s, &["invoke", "nosuch"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("error: FSS.1051: "), "{}", err(&o));

    // Wrong secret key.
    let mut cmd = Command::new(fgs_bin());
    let o = cmd
        .args([
            "function",
            "list",
            "--endpoint",
            &s.base_url(),
            "--access-key",
            &s.cred.access_key,
            "--secret-key",
            "wrong",
            "--project",
            &s.cred.project_id,
        ])
        .env_remove("FGS_CREDENTIALS")
        .output()
        .expect("fgs runs");
    assert!(!o.status.success());
    assert!(err(&o).contains("error: FSS.0401: "), "{}", err(&o));

    // Nobody listening.
    let o = Command::new(fgs_bin())
        .args([
            "function",
            "list",
            "--endpoint",
            "http://127.0.0.1:9",
            "--access-key",
            "a",
            "--secret-key",
            "b",
            "--project",
            "c",
        ])
        .output()
        .expect("fgs runs");
    assert!(!o.status.success());
    assert!(
        err(&o).starts_with(
            "error: could not reach fgs at http://127.0.0.1:9: is `fgs serve` running?"
        ),
        "{}",
        err(&o)
    );
}

#[test]
fn credentials_file_and_flags() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "{} {} {}\n",
            s.cred.access_key, s.cred.secret_key, s.cred.project_id
        ),
    )
    .expect("write");
    let o = Command::new(fgs_bin())
        .args([
            "function",
            "list",
            "--endpoint",
            &s.base_url(),
            "--credentials",
            file.to_str().unwrap(),
        ])
        .env_remove("FGS_ACCESS_KEY")
        .env_remove("FGS_SECRET_KEY")
        .env_remove("FGS_PROJECT_ID")
        .output()
        .expect("fgs runs");
    ok(o);
    // Options may also come after the subcommand's arguments, and the default credentials file
    // is ./fgs-data/credentials.
    std::fs::create_dir_all(tmp.path().join("fgs-data")).expect("mkdir");
    std::fs::copy(&file, tmp.path().join("fgs-data/credentials")).expect("copy");
    let o = Command::new(fgs_bin())
        .current_dir(tmp.path())
        .args(["function", "list", "--json", "--endpoint", &s.base_url()])
        .env_remove("FGS_ACCESS_KEY")
        .env_remove("FGS_SECRET_KEY")
        .env_remove("FGS_PROJECT_ID")
        .env_remove("FGS_CREDENTIALS")
        .output()
        .expect("fgs runs");
    let o = ok(o);
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).expect("JSON")["count"],
        0
    );
}

/// `{dir}/fgs.yaml` for the fixture runtime with these extra manifest lines.
fn manifest(dir: &Path, mark: &str, greeting: &str, extra: &str) {
    std::fs::write(
        dir.join("fgs.yaml"),
        format!(
            "name: deployed\nmemory: 256\ntimeout: 10\ndescription: from fgs.yaml\n\
             env:\n  FX_MARK: {mark}\n  GREETING: {greeting}\n{extra}"
        ),
    )
    .expect("write fgs.yaml");
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", out(o), err(o)))
}

#[test]
fn deploy_from_fgs_yaml_then_redeploy() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    let mark = unique("deploy");
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::write(lib.join("helper.txt"), "help\n").expect("write");
    ok(fgs_any(
        &s,
        &[
            "dependency",
            "create",
            "deplib",
            "--code",
            lib.to_str().unwrap(),
        ],
        None,
    ));
    let timer = "dependencies:\n  - deplib\ntriggers:\n  - type: TIMER\n    status: DISABLED\n    \
                 event_data:\n      name: tick\n      schedule_type: Rate\n      schedule: 1m\n";
    manifest(&dir, &mark, "first", timer);
    let o = ok(fgs_any(&s, &["deploy", dir.to_str().unwrap()], None));
    assert!(err(&o).contains("created "), "{}", err(&o));
    assert!(err(&o).contains("1 trigger(s) added"), "{}", err(&o));
    let cfg = s.get("/functions/deployed/config").json();
    assert_eq!(
        (cfg["memory_size"].clone(), cfg["timeout"].clone()),
        (json!(256), json!(10))
    );
    assert_eq!(cfg["description"], "from fgs.yaml");
    assert_eq!(
        cfg["depend_version_list"].as_array().map(Vec::len),
        Some(1),
        "{cfg}"
    );
    let env = ok(fgs(
        &s,
        &["invoke", "deployed", "--data", r#"{"op":"env"}"#],
        None,
    ));
    assert!(out(&env).contains("GREETING=first"), "{}", out(&env));

    // Same directory again: nothing to upload, the trigger is not duplicated.
    let o = ok(fgs_any(&s, &["deploy", dir.to_str().unwrap()], None));
    assert!(err(&o).contains("updated (code unchanged)"), "{}", err(&o));
    let triggers = json_out(&ok(fgs_any(
        &s,
        &["trigger", "list", "deployed", "-o", "json"],
        None,
    )));
    assert_eq!(triggers.as_array().map(Vec::len), Some(1), "{triggers}");

    // A change to the code and to the manifest: both land.
    std::fs::write(dir.join("data/greeting.txt"), "changed\n").expect("write");
    manifest(&dir, &mark, "second", timer);
    let o = ok(fgs_any(
        &s,
        &["deploy", dir.to_str().unwrap(), "--output", "json"],
        None,
    ));
    assert_eq!(json_out(&o)["func_name"], "deployed");
    let env = ok(fgs(
        &s,
        &["invoke", "deployed", "--data", r#"{"op":"env"}"#],
        None,
    ));
    assert!(out(&env).contains("GREETING=second"), "{}", out(&env));
    assert_ne!(
        s.get("/functions/deployed/config").json()["digest"],
        cfg["digest"]
    );

    // A manifest with a typo says where.
    std::fs::write(dir.join("fgs.yaml"), "name: deployed\nmemroy: 256\n").expect("write");
    let o = fgs_any(&s, &["deploy", dir.to_str().unwrap()], None);
    assert!(!o.status.success());
    assert!(err(&o).contains("fgs.yaml is invalid"), "{}", err(&o));
    assert!(err(&o).contains("memroy"), "{}", err(&o));
    let o = fgs_any(&s, &["deploy", tmp.path().to_str().unwrap()], None);
    assert!(err(&o).contains("needs an fgs.yaml"), "{}", err(&o));
}

/// Issue 17: a trigger fgs.yaml stopped naming is deleted at the next deploy, which says so;
/// `--keep-triggers` keeps it, and says that instead.
#[test]
fn deploy_deletes_the_triggers_the_manifest_stopped_naming() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    let mark = unique("untrig");
    let timer = |name: &str| {
        format!(
            "  - type: TIMER\n    status: DISABLED\n    event_data:\n      name: {name}\n      \
             schedule_type: Rate\n      schedule: 1m\n"
        )
    };
    let names = |s: &Server| -> Vec<String> {
        let list = json_out(&ok(fgs_any(
            s,
            &["trigger", "list", "deployed", "-o", "json"],
            None,
        )));
        let mut n: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["event_data"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        err(&ok(fgs_any(&s, &args, None)))
    };
    manifest(
        &dir,
        &mark,
        "a",
        &format!("triggers:\n{}{}", timer("tick"), timer("tock")),
    );
    let said = deploy(&[]);
    assert!(said.contains("2 trigger(s) added"), "{said}");
    assert_eq!(names(&s), ["tick", "tock"]);

    // `tock` is no longer named: kept on request, deleted otherwise.
    manifest(&dir, &mark, "a", &format!("triggers:\n{}", timer("tick")));
    let said = deploy(&["--keep-triggers"]);
    assert!(
        said.contains("1 trigger(s) fgs.yaml does not name kept (TIMER tock"),
        "{said}"
    );
    assert_eq!(names(&s), ["tick", "tock"]);
    let said = deploy(&[]);
    assert!(
        said.contains("1 trigger(s) fgs.yaml does not name deleted (TIMER tock"),
        "{said}"
    );
    assert_eq!(names(&s), ["tick"]);
    // Named triggers are neither duplicated nor touched.
    let said = deploy(&[]);
    assert!(!said.contains("trigger(s)"), "{said}");
    assert_eq!(names(&s), ["tick"]);
}

#[test]
fn deploy_watch_redeploys_on_change() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    let mark = unique("watch");
    manifest(&dir, &mark, "one", "");
    let mut child = client_cmd(&s)
        .args([
            "deploy",
            dir.to_str().unwrap(),
            "--watch",
            "--interval",
            "200ms",
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("fgs runs");
    let env_of = |s: &Server| s.get("/functions/deployed/config").json()["user_data"].to_string();
    let deployed = fgs_e2e::wait_until(std::time::Duration::from_secs(20), || {
        env_of(&s).contains("one")
    });
    if deployed {
        manifest(&dir, &mark, "two", "");
    }
    let redeployed = deployed
        && fgs_e2e::wait_until(std::time::Duration::from_secs(20), || {
            env_of(&s).contains("two")
        });
    child.kill().expect("kill the watcher");
    let o = child.wait_with_output().expect("watcher output");
    assert!(deployed && redeployed, "stderr: {}", err(&o));
    assert!(err(&o).contains("watching "), "{}", err(&o));
}

#[test]
fn versions_aliases_async_and_logs() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    let mark = unique("flows");
    let fx = format!("FX_MARK={mark}");
    ok(fgs(
        &s,
        &[
            "create",
            "vfn",
            "--code",
            dir.to_str().unwrap(),
            "--env",
            &fx,
            "--env",
            "STAGE=one",
        ],
        None,
    ));
    let o = ok(fgs_any(
        &s,
        &[
            "version",
            "publish",
            "vfn",
            "--version",
            "1",
            "--description",
            "first",
        ],
        None,
    ));
    assert!(
        err(&o).contains("published version 1 of vfn"),
        "{}",
        err(&o)
    );
    ok(fgs(
        &s,
        &["update", "vfn", "--env", "STAGE=two", "--memory", "256"],
        None,
    ));
    let cfg = s.get("/functions/vfn/config").json();
    assert_eq!(cfg["memory_size"], 256);
    assert!(
        cfg["user_data"].as_str().unwrap_or("").contains(&mark),
        "env merged: {cfg}"
    );
    let versions = json_out(&ok(fgs_any(
        &s,
        &["version", "list", "vfn", "-o", "json"],
        None,
    )));
    assert_eq!(versions["versions"][1]["version"], "1", "{versions}");
    let table = ok(fgs_any(&s, &["version", "list", "vfn"], None));
    assert!(out(&table).starts_with("VERSION"), "{}", out(&table));

    ok(fgs_any(
        &s,
        &["alias", "create", "vfn", "live", "--version", "1"],
        None,
    ));
    let aliases = json_out(&ok(fgs_any(
        &s,
        &["alias", "list", "vfn", "-o", "json"],
        None,
    )));
    assert_eq!(aliases[0]["name"], "live", "{aliases}");
    let stage = |args: &[&str]| {
        let mut all = vec!["invoke", "vfn", "--data", r#"{"op":"env"}"#];
        all.extend_from_slice(args);
        let text = out(&ok(fgs(&s, &all, None)));
        if text.contains("STAGE=one") {
            "one"
        } else if text.contains("STAGE=two") {
            "two"
        } else {
            "?"
        }
    };
    assert_eq!(stage(&[]), "two");
    assert_eq!(stage(&["--version", "1"]), "one");
    assert_eq!(stage(&["--alias", "live"]), "one");
    ok(fgs_any(
        &s,
        &["alias", "update", "vfn", "live", "--version", "latest"],
        None,
    ));
    assert_eq!(stage(&["--alias", "live"]), "two");

    // Async: the request id on stdout, its log found by it.
    let o = ok(fgs(
        &s,
        &[
            "invoke",
            "vfn",
            "--async",
            "--data",
            r#"{"op":"log","text":"async-cli"}"#,
        ],
        None,
    ));
    let rid = out(&o).trim().to_owned();
    assert_eq!(rid.len(), 36, "{rid}");
    let found = fgs_e2e::wait_until(std::time::Duration::from_secs(20), || {
        let o = fgs_any(
            &s,
            &["logs", "vfn", "--request-id", &rid, "-o", "json"],
            None,
        );
        o.status.success() && json_out(&o)["count"] == 1
    });
    assert!(found, "no log for {rid}");
    let o = ok(fgs_any(&s, &["logs", "vfn", "--request-id", &rid], None));
    assert!(
        out(&o).contains(&format!("fx-stdout {rid} async-cli")),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("(async)"), "{}", out(&o));
    // All of them, newest last, and --since.
    let all = ok(fgs_any(&s, &["logs", "vfn", "-o", "json"], None));
    assert!(json_out(&all)["count"].as_u64() >= Some(5), "{}", out(&all));
    let since = ok(fgs_any(
        &s,
        &["logs", "vfn", "--since", "1h", "-n", "1"],
        None,
    ));
    assert!(out(&since).contains("=== "), "{}", out(&since));
    let none = ok(fgs_any(
        &s,
        &[
            "logs",
            "vfn",
            "--since",
            "2999-01-01T00:00:00Z",
            "-o",
            "json",
        ],
        None,
    ));
    assert_eq!(json_out(&none)["count"], 0);

    ok(fgs_any(&s, &["alias", "delete", "vfn", "live"], None));
    ok(fgs_any(&s, &["version", "delete", "vfn", "1"], None));
    let versions = json_out(&ok(fgs_any(
        &s,
        &["version", "list", "vfn", "-o", "json"],
        None,
    )));
    assert_eq!(versions["count"], 1, "{versions}");
}

#[test]
fn triggers_dependencies_and_big_uploads() {
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    // Incompressible, so the zip stays over 1 MB and the upload shows its progress.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..1_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.join("data/noise.bin"), noise).expect("write");
    let o = ok(fgs(
        &s,
        &["create", "tfn", "--code", dir.to_str().unwrap()],
        None,
    ));
    assert!(err(&o).contains("uploading 1."), "{}", err(&o));
    assert!(err(&o).contains("100%"), "{}", err(&o));

    let o = ok(fgs_any(
        &s,
        &[
            "trigger",
            "create",
            "tfn",
            "--type",
            "TIMER",
            "--event-data",
            r#"{"name":"tick","schedule_type":"Rate","schedule":"1m"}"#,
            "-o",
            "json",
        ],
        None,
    ));
    let id = json_out(&o)["trigger_id"]
        .as_str()
        .expect("trigger id")
        .to_owned();
    ok(fgs_any(&s, &["trigger", "disable", "tfn", &id], None));
    let t = json_out(&ok(fgs_any(
        &s,
        &["trigger", "get", "tfn", &id, "-o", "json"],
        None,
    )));
    assert_eq!(t["trigger_status"], "DISABLED");
    ok(fgs_any(&s, &["trigger", "enable", "tfn", &id], None));
    let list = ok(fgs_any(&s, &["trigger", "list", "tfn"], None));
    assert!(out(&list).contains("ACTIVE"), "{}", out(&list));
    ok(fgs_any(&s, &["trigger", "delete", "tfn", &id], None));
    let o = fgs_any(&s, &["trigger", "delete", "tfn", &id], None);
    assert!(err(&o).contains("has no trigger"), "{}", err(&o));

    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::write(lib.join("helper.txt"), "help\n").expect("write");
    ok(fgs_any(
        &s,
        &[
            "dependency",
            "create",
            "mylib",
            "--code",
            lib.to_str().unwrap(),
        ],
        None,
    ));
    ok(fgs_any(
        &s,
        &[
            "dependency",
            "create",
            "mylib",
            "--code",
            lib.to_str().unwrap(),
        ],
        None,
    ));
    let deps = json_out(&ok(fgs_any(
        &s,
        &["dependency", "list", "mylib", "-o", "json"],
        None,
    )));
    assert_eq!(deps["count"], 2, "{deps}");
    ok(fgs_any(&s, &["dependency", "delete", "mylib", "1"], None));
    let list = ok(fgs_any(&s, &["dependency", "list"], None));
    assert!(out(&list).contains("mylib"), "{}", out(&list));
}

#[test]
fn completions_generate() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(fgs_bin())
            .args(["completions", shell])
            .output()
            .expect("fgs runs");
        assert!(o.status.success(), "{shell}: {}", err(&o));
        let script = out(&o);
        assert!(
            script.contains("deploy") && script.contains("logs"),
            "{shell}: {script}"
        );
    }
}

#[test]
fn logs_follow_prints_new_invocations() {
    use std::io::BufRead;
    let s = Server::start(ServerOpts::default());
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = code_dir(tmp.path());
    ok(fgs(
        &s,
        &["create", "followed", "--code", dir.to_str().unwrap()],
        None,
    ));
    let mut child = client_cmd(&s)
        .args(["logs", "followed", "--follow", "-o", "json"])
        .stdin(Stdio::null())
        .spawn()
        .expect("fgs runs");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let r = s.invoke("followed", &json!({"op": "log", "text": "followed-line"}));
    r.expect(200);
    let rid = r.header("x-cff-request-id").expect("request id");
    let line = rx.recv_timeout(std::time::Duration::from_secs(20));
    child.kill().expect("kill the follower");
    let _ = child.wait();
    let line = line.expect("a JSON line for the new invocation");
    let v: Value = serde_json::from_str(&line).expect("one JSON record per line");
    assert_eq!(v["request_id"], rid.as_str(), "{v}");
    assert!(
        v["log"].as_str().unwrap_or("").contains("followed-line"),
        "{v}"
    );
}
