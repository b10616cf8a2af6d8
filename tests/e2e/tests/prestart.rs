//! Pre-started interpreters (issue 19, docs/runtimes.md): a Python or Node.js cold start on an
//! interpreter started ahead with no function must look to the function exactly like a fresh
//! start. Each test runs its own fgs (root: the sandbox) with a 1 s idle timeout, so that one
//! function gets a fresh start (its first, which asks for held interpreters of its kind) and,
//! once reclaimed, one on a held interpreter; `fgs_interpreters_specialized_total` says which.

use std::time::Duration;

use fgs_e2e::fixture::{b64, unique, zip_files};
use fgs_e2e::{json, wait_until, Server, ServerOpts, Value};

/// Reports what a function can observe of how its interpreter started, runs `alloc` MB
/// allocations, and fails its initializer when `FAIL_INIT` is set.
const PY: &str = r#"
import json, os, resource, sys, time

def init(context):
    if os.environ.get("FAIL_INIT"):
        raise RuntimeError("initializer failed on purpose")

def status():
    keep = ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "CapEff", "CapBnd", "CapPrm")
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in keep:
            out[k] = v.strip()
    return out

def mounts():
    # mount point and options: ids differ between any two starts
    return sorted(" ".join(l.split()[4:6]) for l in open("/proc/self/mountinfo"))

def handler(event, context):
    if event.get("alloc"):
        x = bytearray(b"\x01") * (event["alloc"] << 20)
        return {"allocated": len(x) >> 20}
    mask = os.umask(0)
    os.umask(mask)
    return {
        "env": list(os.environ.items()),
        "cwd": os.getcwd(),
        "path": sys.path,
        "argv": sys.argv,
        "executable": sys.executable,
        "flags": str(sys.flags),
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "pid": os.getpid(), "ppid": os.getppid(),
        "status": status(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "umask": mask,
        "tz": list(time.tzname),
        "cgroup": open("/proc/self/cgroup").read(),
        "mounts": mounts(),
        "code": sorted(os.listdir(".")),
        "memory": context.getMemorySize(),
        "modules": sorted(m for m in sys.modules if m.startswith("index")),
        "routes": open("/proc/net/route").read().count("\n") - 1,
        "dep": __import__("deplib").X if event.get("dep") else None,
    }
"#;

const JS: &str = r#"
const fs = require('fs');
exports.init = async () => {
  if (process.env.FAIL_INIT) throw new Error('initializer failed on purpose');
};
function status() {
  const keep = ['Uid', 'Gid', 'Groups', 'NoNewPrivs', 'Seccomp', 'CapEff', 'CapBnd', 'CapPrm'];
  const out = {};
  for (const l of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (keep.includes(l.slice(0, i))) out[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return out;
}
function mounts() {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ').slice(4, 6).join(' ')).sort();
}
exports.handler = async (event, context) => {
  if (event.alloc) {
    const b = Buffer.alloc(event.alloc << 20, 1);
    return { allocated: b.length >> 20 };
  }
  const mask = process.umask();
  return {
    env: Object.entries(process.env),
    cwd: process.cwd(),
    paths: module.paths,
    resolve: require.resolve.paths('x'),
    globalPaths: require('module').globalPaths,
    argv: process.argv,
    execArgv: process.execArgv,
    execPath: process.execPath,
    uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
    pid: process.pid, ppid: process.ppid,
    status: status(),
    umask: mask,
    tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
    tzOffset: new Date(0).getTimezoneOffset(),
    cgroup: fs.readFileSync('/proc/self/cgroup', 'utf8'),
    mounts: mounts(),
    code: fs.readdirSync('.').sort(),
    memory: context.getMemorySize(),
    routes: fs.readFileSync('/proc/net/route', 'utf8').split('\n').filter(Boolean).length - 1,
    dep: event.dep ? require('deplib').X : null,
  };
};
"#;

struct Lang {
    class: &'static str,
    runtime: &'static str,
    file: &'static str,
    source: &'static str,
}

const PYTHON: Lang = Lang {
    class: "python",
    runtime: "Python3.10",
    file: "index.py",
    source: PY,
};
const NODE: Lang = Lang {
    class: "nodejs",
    runtime: "Node.js20.15",
    file: "index.js",
    source: JS,
};

fn is_root() -> bool {
    nix_uid() == Some(0)
}

fn nix_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn server(lang: &Lang, count: usize, temp: &tempfile::TempDir) -> Server {
    Server::start(
        ServerOpts::default()
            .idle_timeout("1s")
            .flag("--cgroup-parent", unique("fgs-e2e-pre-"))
            .flag(
                "--sandbox-run-dir",
                temp.path().join("run").display().to_string(),
            )
            .flag("--prestart", format!("{}={count}", lang.class)),
    )
}

/// Creates `name` with `vars` and `extra` fields; a second file makes its code its own.
fn create(s: &Server, lang: &Lang, name: &str, vars: &[(&str, &str)], extra: Value) {
    let own = format!("{name}.txt");
    let zip = zip_files(&[
        (lang.file, lang.source.as_bytes(), 0o644),
        (own.as_str(), name.as_bytes(), 0o644),
    ]);
    let user: serde_json::Map<String, Value> =
        vars.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let mut body = json!({
        "func_name": name, "runtime": lang.runtime, "handler": "index.handler",
        "memory_size": 256, "timeout": 30, "code_type": "zip", "code_filename": "c.zip",
        "func_code": {"file": b64(&zip)},
        "user_data": Value::Object(user).to_string(),
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            body[k] = v;
        }
    }
    s.post("/functions", &body).expect(200);
}

/// The sum of a metric's series whose labels contain `filter`.
fn metric(s: &Server, name: &str, filter: &str) -> f64 {
    s.req("GET", "/metrics")
        .send()
        .text()
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(filter))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn specialized(s: &Server) -> f64 {
    metric(s, "fgs_interpreters_specialized_total", "")
}

/// Waits until `name` has no instance left and an interpreter is held.
fn reclaimed_and_held(s: &Server, name: &str) {
    let f = format!("function=\"{name}\"");
    assert!(
        wait_until(Duration::from_secs(20), || {
            metric(s, "fgs_instances", &f) == 0.0
                && metric(s, "fgs_interpreters_prestarted", "") >= 1.0
        }),
        "{name} was not reclaimed, or no interpreter was held"
    );
}

/// A dependency with a module for each language (on `sys.path` and `NODE_PATH`), and no `lib/`.
fn dependency(s: &Server, lang: &Lang) -> Value {
    let zip = zip_files(&[
        ("python/deplib.py", b"X = 7\n", 0o644),
        ("node_modules/deplib/index.js", b"exports.X = 7;\n", 0o644),
    ]);
    let r = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&zip), "depend_type": "zip", "runtime": lang.runtime, "name": "deplib"}),
    );
    r.expect(200);
    r.json()
}

/// Waits until an interpreter is held (again, after a take).
fn held_again(s: &Server) {
    assert!(
        wait_until(Duration::from_secs(20), || metric(
            s,
            "fgs_interpreters_prestarted",
            ""
        ) >= 1.0),
        "no interpreter was held"
    );
}

#[track_caller]
fn report(s: &Server, name: &str) -> Value {
    report_of(s, name, &json!({}))
}

#[track_caller]
fn report_of(s: &Server, name: &str, event: &Value) -> Value {
    let r = s.invoke(name, event);
    r.expect(200);
    assert_eq!(
        r.header("x-is-func-err").as_deref(),
        Some("false"),
        "{name}: {}",
        r.text()
    );
    r.json()
}

fn observable_state_is_that_of_a_fresh_start(lang: &Lang) {
    if !is_root() {
        eprintln!("skipped: pre-started interpreters need the sandbox as root");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let vars = [("FOO", "bar"), ("TZ", "Asia/Shanghai")];
    let s = server(lang, 1, &temp);
    create(&s, lang, "rep", &vars, json!({}));
    let fresh = report(&s, "rep");
    assert_eq!(specialized(&s), 0.0, "the first start of a kind is fresh");
    reclaimed_and_held(&s, "rep");
    let held = report(&s, "rep");
    assert_eq!(specialized(&s), 1.0, "the second start took the held one");
    assert_eq!(held, fresh, "{}: pre-started differs from fresh", lang.runtime);
    assert!(
        !held["env"].to_string().contains("FGS_PLACEHOLDER"),
        "{}",
        held["env"]
    );
    assert_eq!(held["cwd"], "/opt/function/code");
    assert_eq!(held["uid"], 1003);
    assert_eq!(held["gid"], 1003);

    // With a dependency: its module paths are applied as the interpreter would at start.
    let dep = dependency(&s, lang);
    create(&s, lang, "withdep", &[], json!({"depend_version_list": [dep["id"]]}));
    held_again(&s);
    let before = specialized(&s);
    let with_dep = report_of(&s, "withdep", &json!({"dep": true}));
    assert_eq!(specialized(&s), before + 1.0, "withdep took a held interpreter");
    assert_eq!(with_dep["dep"], 7, "{with_dep}");

    // Memory: the function's 256 MB hold, not the held interpreter's 128 MB, and beyond them
    // is 4205.
    let r = s.invoke("rep", &json!({"alloc": 180}));
    r.expect(200);
    assert_eq!(r.json()["allocated"], 180, "{}", r.text());
    let r = s.invoke("rep", &json!({"alloc": 400}));
    r.expect(200);
    assert_eq!(r.json()["errorCode"], 4205, "{}", r.text());

    // With pre-start off, a fresh start reports the same.
    drop(s);
    let s = server(lang, 0, &temp);
    create(&s, lang, "rep", &vars, json!({}));
    let off = report(&s, "rep");
    assert_eq!(specialized(&s), 0.0);
    assert_eq!(off, fresh, "{}: --prestart 0 differs", lang.runtime);
    let dep = dependency(&s, lang);
    create(&s, lang, "withdep", &[], json!({"depend_version_list": [dep["id"]]}));
    let fresh_dep = report_of(&s, "withdep", &json!({"dep": true}));
    assert_eq!(with_dep, fresh_dep, "{}: with a dependency", lang.runtime);
}

fn failures_and_isolation_hold_after_specialization(lang: &Lang) {
    if !is_root() {
        eprintln!("skipped: pre-started interpreters need the sandbox as root");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let s = server(lang, 2, &temp);
    // The first start of the kind is fresh and asks for two held interpreters.
    create(&s, lang, "a", &[("SECRET_A", "a")], json!({}));
    report(&s, "a");
    assert!(
        wait_until(Duration::from_secs(20), || metric(
            &s,
            "fgs_interpreters_prestarted",
            ""
        ) >= 2.0),
        "no two interpreters were held"
    );
    let init = json!({"initializer_handler": "index.init", "initializer_timeout": 10});
    create(&s, lang, "b", &[("SECRET_B", "b")], json!({}));
    create(&s, lang, "boom", &[("FAIL_INIT", "1")], init);
    let b = report(&s, "b");
    let env = b["env"].to_string();
    assert!(env.contains("SECRET_B") && !env.contains("SECRET_A"), "{env}");
    assert_eq!(b["code"], json!(["b.txt", lang.file]), "{b}");
    let r = s.invoke("boom", &json!({}));
    r.expect(200);
    assert_eq!(r.json()["errorCode"], 4201, "{}", r.text());
    assert_eq!(specialized(&s), 2.0, "b and boom took held interpreters");
    // A function without network gets none, though its interpreter waited with egress.
    let off = json!({"network_controller": {"disable_public_network": true}});
    create(&s, lang, "closed", &[], off);
    held_again(&s);
    let closed = report(&s, "closed");
    assert_eq!(specialized(&s), 3.0, "closed took a held interpreter");
    assert_eq!(closed["routes"], 0, "{closed}");
    assert!(b["routes"].as_i64().unwrap_or(0) > 0, "{b}");
}

#[test]
fn python_on_a_prestarted_interpreter_observes_a_fresh_start() {
    observable_state_is_that_of_a_fresh_start(&PYTHON);
}

#[test]
fn nodejs_on_a_prestarted_interpreter_observes_a_fresh_start() {
    observable_state_is_that_of_a_fresh_start(&NODE);
}

#[test]
fn python_prestarted_failures_and_isolation() {
    failures_and_isolation_hold_after_specialization(&PYTHON);
}

#[test]
fn nodejs_prestarted_failures_and_isolation() {
    failures_and_isolation_hold_after_specialization(&NODE);
}
