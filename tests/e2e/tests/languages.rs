//! Issue 21: the PHP runtime (and, as they land, Go and Java) through the CLI, what the
//! data-driven fixtures of `runtimes.rs` cannot say: the memory limit and the timeout. A
//! language's tests skip only when its toolchain is not installed, and say so.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use fgs_e2e::{fgs_bin, unique, Server, ServerOpts};

/// Whether `exe` runs here; prints why the caller skips when it does not.
fn toolchain(exe: &str, arg: &str, test: &str) -> bool {
    let ok = Command::new(exe)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped {test}: `{exe}` is not installed on this host");
    }
    ok
}

/// `fgs <args>` against `s` with its credential, output captured.
fn fgs(s: &Server, args: &[&str]) -> Output {
    let mut cmd = Command::new(fgs_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FGS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("FGS_ENDPOINT", s.base_url())
        .env("FGS_ACCESS_KEY", &s.cred.access_key)
        .env("FGS_SECRET_KEY", &s.cred.secret_key)
        .env("FGS_PROJECT_ID", &s.cred.project_id)
        .args(args)
        .output()
        .expect("fgs runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn create(s: &Server, name: &str, runtime: &str, handler: &str, code: &Path, extra: &[&str]) {
    let code = code.to_string_lossy();
    let mut args = vec![
        "function", "create", name, "--runtime", runtime, "--handler", handler, "--code", &code,
    ];
    args.extend_from_slice(extra);
    let o = fgs(s, &args);
    assert!(o.status.success(), "create {name}: {}", text(&o));
}

const PHP: &str = r#"<?php
function handler($event, $context) {
    $context->getLogger()->info('php ' . PHP_MAJOR_VERSION);
    return ['sum' => array_sum($event['n']), 'memory' => $context->getMemorySize()];
}
function hog($event, $context) {
    $keep = [];
    while (true) { $keep[] = str_repeat('x', 1 << 20); }
}
function slow($event, $context) { sleep(30); return 'late'; }
"#;

#[test]
fn php_through_the_cli_with_its_memory_limit_and_timeout() {
    if !toolchain("php", "-v", "php_through_the_cli_with_its_memory_limit_and_timeout") {
        return;
    }
    let s = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.php"), PHP).unwrap();

    let ok = unique("phpok");
    create(&s, &ok, "PHP7.3", "index.handler", dir.path(), &["--memory", "256"]);
    let o = fgs(
        &s,
        &["function", "invoke", &ok, "--data", r#"{"n":[1,2,3]}"#, "--log-tail"],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains(r#"{"sum":6,"memory":256}"#), "{out}");
    assert!(out.contains(" INFO php "), "the logger's line in the tail: {out}");

    // Memory over the function's limit is 4205, as in every runtime: PHP's own memory_limit
    // does not stop it first.
    let hog = unique("phphog");
    create(&s, &hog, "PHP8.3", "index.hog", dir.path(), &["--memory", "128"]);
    let o = fgs(&s, &["function", "invoke", &hog, "--data", "{}"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("4205"), "{out}");

    let slow = unique("phpslow");
    create(&s, &slow, "PHP8.3", "index.slow", dir.path(), &["--timeout", "3"]);
    let t = std::time::Instant::now();
    let o = fgs(&s, &["function", "invoke", &slow, "--data", "{}"]);
    let out = text(&o);
    assert!(out.contains("4010") && out.contains("timed out"), "{out}");
    assert!(t.elapsed().as_secs() < 20, "stopped at its timeout");
}
