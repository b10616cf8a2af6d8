//! The CLI client, `fgs function ...`, against a real server.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use fgs_e2e::fixture::{bootstrap_zip, RUNTIME};
use fgs_e2e::{fgs_bin, instances, json, unique, Server, ServerOpts, Value};

/// `fgs function <args>` with the server's endpoint and credential in the environment.
fn fgs(s: &Server, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(fgs_bin());
    cmd.arg("function").args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FGS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("FGS_ENDPOINT", s.base_url())
        .env("FGS_ACCESS_KEY", &s.cred.access_key)
        .env("FGS_SECRET_KEY", &s.cred.secret_key)
        .env("FGS_PROJECT_ID", &s.cred.project_id)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    let v: Value = serde_json::from_slice(&got.stdout).expect("get prints JSON");
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
    assert!(err(&o).starts_with("error: "), "{}", err(&o));
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
