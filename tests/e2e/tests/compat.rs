//! FunctionGraph code that runs on fgs unchanged (issue 17): interpreters started by
//! FunctionGraph's documented paths, `#!/bin/sh` scripts with `set -o pipefail`, and Python stack
//! traces that name files as the function sees them. Each fixture under `fixtures/compat/` does what such published code does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fgs_e2e::fixture::{custom_zip_body, zip_files};
use fgs_e2e::*;
use serde_json::json;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/compat")
        .join(name)
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

/// `fgs runtimes` of this host (with `FGS_RUNTIME_PATH` when given): runtime name -> (status,
/// version, interpreter).
fn runtimes(runtime_path: Option<&str>) -> BTreeMap<String, (String, String, String)> {
    let mut cmd = std::process::Command::new(fgs_bin());
    cmd.arg("runtimes");
    if let Some(p) = runtime_path {
        cmd.env("FGS_RUNTIME_PATH", p);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let status = ["ok", "nearest", "missing", "builtin"];
            (f.len() >= 4 && status.contains(&f[1])).then(|| {
                (
                    f[0].to_string(),
                    (f[1].to_string(), f[2].to_string(), f[3].to_string()),
                )
            })
        })
        .collect()
}

/// FunctionGraph's directory name of a runtime: `Node.js12.13` -> `nodejs12.13`.
fn dir_name(runtime: &str) -> String {
    runtime.to_ascii_lowercase().replace("node.js", "nodejs")
}

/// Pattern 1: an HTTP function's `bootstrap` starts `/opt/function/runtime/<name>/rtsp/...` of
/// every runtime name, and each leads to the interpreter `fgs runtimes` names for it. The
/// system's interpreters only, since installations under a home directory are shown only to
/// functions of their own runtime (docs/runtimes.md); those are covered by the stack-trace test,
/// whose shim starts by that path.
#[test]
fn documented_interpreter_paths_lead_to_the_resolved_interpreters() {
    let system = "/usr/local/bin:/usr/bin:/bin";
    let table = runtimes(Some(system));
    if table["Node.js12.13"].0 == "missing" || table["Python3.10"].0 == "missing" {
        eprintln!("skipped: no system Python or Node.js installed");
        return;
    }
    let s = Server::start(ServerOpts::default().env("FGS_RUNTIME_PATH", system));
    let dir = fixture("runtime_paths");
    let zip = zip_files(&[
        // Not executable, as FunctionGraph's console uploads it: a bare command line.
        ("bootstrap", &read(&dir, "bootstrap"), 0o644),
        ("index.js", &read(&dir, "index.js"), 0o644),
    ]);
    let name = unique("paths");
    s.post(
        "/functions",
        &json!({
            "func_name": name, "runtime": "http", "handler": "bootstrap",
            "memory_size": 256, "timeout": 30, "code_type": "zip", "code_filename": "web.zip",
            "func_code": {"file": b64(&zip)},
        }),
    )
    .expect(200);
    let r = s.invoke(
        &name,
        &json!({"httpMethod": "GET", "path": "/", "body": ""}),
    );
    r.expect_ok();
    let out = r.json();
    assert_eq!(out["statusCode"], 200, "{out}");
    let found: BTreeMap<String, String> = out["body"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut checked = 0;
    for (runtime, (status, version, _)) in &table {
        // FunctionGraph documents these paths for Python and Node.js only (runtime_paths.rs);
        // Java and PHP names resolve to interpreters too, with no such path.
        if status == "builtin" || !(runtime.starts_with("Python") || runtime.starts_with("Node.js"))
        {
            continue;
        }
        let got = found
            .get(&dir_name(runtime))
            .unwrap_or_else(|| panic!("{runtime}: not asked: {found:?}"));
        if status == "missing" {
            continue;
        }
        assert_eq!(got, version, "{runtime}: {found:?}");
        checked += 1;
    }
    assert_eq!(checked, 13, "every Python and Node.js name: {table:?}");
}

/// Pattern 2: FunctionGraph's own Custom-runtime example, `#!/bin/sh` then `set -o pipefail`.
#[test]
fn a_sh_bootstrap_with_pipefail_runs() {
    let s = Server::start(ServerOpts::default());
    let name = unique("sh");
    let zip = zip_files(&[(
        "bootstrap",
        &read(&fixture("custom_sh"), "bootstrap"),
        0o755,
    )]);
    s.post("/functions", &custom_zip_body(&name, &zip))
        .expect(200);
    let r = s.invoke(&name, &json!({"hello": "world"}));
    r.expect_ok();
    let text = r.text();
    assert!(text.starts_with("Echoing request: "), "{text}");
    assert!(text.contains("\"hello\""), "{text}");
    assert!(text.ends_with("pipefail=on"), "{text}");
}

/// Pattern 7: a Python error's `stackTrace` (and the traceback in the log) names the standard
/// library as the instance shows it, never the host's installation.
#[test]
fn python_stack_traces_show_paths_as_the_function_sees_them() {
    let table = runtimes(None);
    let s = Server::start(ServerOpts::default());
    let code = zip_files(&[(
        "index.py",
        &read(&fixture("stack_trace"), "index.py"),
        0o644,
    )]);
    let mut checked = 0;
    for runtime in ["Python3.10", "Python2.7"] {
        let (status, _, interpreter) = &table[runtime];
        if status == "missing" {
            continue;
        }
        // The installation, e.g. /root/.pyenv/versions/3.10.13 for .../bin/python3.10.
        let prefix = Path::new(interpreter).parent().unwrap().parent().unwrap();
        let name = unique("trace");
        s.post(
            "/functions",
            &json!({
                "func_name": name, "runtime": runtime, "handler": "index.handler",
                "memory_size": 128, "timeout": 10, "code_type": "zip",
                "code_filename": "code.zip", "func_code": {"file": b64(&code)},
            }),
        )
        .expect(200);
        let r = s.invoke_with(&name, &json!({}), &[("X-Cff-Log-Type", "tail")]);
        assert_eq!(
            r.header("x-func-err-code").as_deref(),
            Some("4002"),
            "{}",
            r.text()
        );
        let body = r.json();
        let trace: Vec<&str> = body["stackTrace"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let seen = format!(
            "/opt/function/runtime/{}/rtsp/python/lib/",
            dir_name(runtime)
        );
        assert!(
            trace
                .iter()
                .any(|l| l.contains(&seen) && l.contains("json")),
            "{runtime}: no frame under {seen}: {trace:#?}"
        );
        assert!(
            trace
                .iter()
                .any(|l| l.contains("/opt/function/code/index.py")),
            "{trace:#?}"
        );
        let host = format!("{}/", prefix.display());
        let log =
            String::from_utf8(unb64(&r.header("x-cff-function-log").expect("log tail"))).unwrap();
        // The traceback fgs's shim writes to the log (the platform's own lines before it may
        // name the host's interpreter: the nearest-version warning does).
        let traceback = &log[log.find("Traceback").expect("a traceback in the log")..];
        assert!(traceback.contains(&seen), "{runtime}: {log}");
        for text in trace.iter().copied().chain([traceback]) {
            assert!(
                !text.contains(&host),
                "{runtime}: host path {host} in {text}"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no Python installed: {table:?}");
}

/// Issue 17: a Node.js instance takes `concurrent_num` events at once, as HTTP functions do.
#[test]
fn a_nodejs_instance_serves_concurrent_num_events_at_once() {
    if runtimes(None)["Node.js20.15"].0 == "missing" {
        eprintln!("skipped: no Node.js installed");
        return;
    }
    let s = Server::start(ServerOpts::default());
    let code = zip_files(&[(
        "index.js",
        &read(&fixture("node_concurrency"), "index.js"),
        0o644,
    )]);
    let name = unique("nodeconc");
    s.post(
        "/functions",
        &json!({
            "func_name": name, "runtime": "Node.js20.15", "handler": "index.handler",
            "memory_size": 128, "timeout": 10, "code_type": "zip", "code_filename": "code.zip",
            "func_code": {"file": b64(&code)},
            "strategy_config": {"concurrency": -1, "concurrent_num": 4},
        }),
    )
    .expect(200);
    let warm = s.invoke(&name, &json!({"warm": true}));
    warm.expect_ok();
    let t = std::time::Instant::now();
    let pids: Vec<u64> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| sc.spawn(|| s.invoke(&name, &json!({})).json()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap()["pid"].as_u64().unwrap())
            .collect()
    });
    assert!(
        pids.iter().all(|p| *p == pids[0]),
        "one instance served all four: {pids:?}"
    );
    assert!(
        t.elapsed().as_millis() < 1800,
        "four 0.5 s events ran together, not in turn: {:?}",
        t.elapsed()
    );
}
