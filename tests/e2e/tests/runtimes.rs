//! The built-in Python, Node.js and PHP runtimes (SPEC.md 4) through the real binary, data-driven:
//! one folder per fixture function under `fixtures/runtimes/` (see its README), run for every
//! language folder it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fgs_e2e::fixture::zip_files;
use fgs_e2e::{b64, json, unb64, unique, Resp, Server, ServerOpts, Value};

const LANGS: &[(&str, &str, &str)] = &[
    // (folder, default runtime, inline file)
    ("python", "Python3.10", "index.py"),
    ("nodejs", "Node.js20.15", "index.js"),
    ("php", "PHP8.3", "index.php"),
];

/// Whether the host has the language's interpreter (scripts/test installs php-cli; a host
/// without it skips the PHP folders, and says so).
fn installed(lang: &str) -> bool {
    let exe = match lang {
        "php" => "php",
        _ => return true,
    };
    std::process::Command::new(exe)
        .arg("-v")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runtimes")
}

fn read_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

struct Vars<'a> {
    lang: &'a str,
    request_id: String,
    project_id: String,
    func_name: String,
}

/// The expected value with `$lang` picked and placeholders replaced.
fn resolve(expected: &Value, v: &Vars) -> Value {
    match expected {
        Value::Object(m) if m.contains_key("$lang") => resolve(&m["$lang"][v.lang], v),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), resolve(x, v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, v)).collect()),
        Value::String(s) => Value::String(
            s.replace("$REQUEST_ID", &v.request_id)
                .replace("$PROJECT_ID", &v.project_id)
                .replace("$FUNC_NAME", &v.func_name),
        ),
        other => other.clone(),
    }
}

/// Whether `actual` matches `expected`: objects as a subset, `{"$between": [a, b]}` for numbers.
fn matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match expected {
        Value::Object(m) if m.contains_key("$between") => {
            let (lo, hi) = (m["$between"][0].as_f64(), m["$between"][1].as_f64());
            match actual.as_f64() {
                Some(n) if Some(n) >= lo && Some(n) <= hi => Ok(()),
                _ => Err(format!("{at}: {actual} is not within {}", m["$between"])),
            }
        }
        Value::Object(m) => {
            let Value::Object(a) = actual else {
                return Err(format!("{at}: expected an object, got {actual}"));
            };
            for (k, x) in m {
                matches(x, a.get(k).unwrap_or(&Value::Null), &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {actual}")),
    }
}

fn log_tail(r: &Resp) -> String {
    let h = r
        .header("x-cff-function-log")
        .unwrap_or_else(|| panic!("no X-Cff-Function-Log; headers {:?}", r.headers));
    String::from_utf8_lossy(&unb64(&h)).into_owned()
}

/// Whether `line` is `<ISO-8601 UTC with ms> <request id> <text>` (FunctionGraph's logger).
fn is_logger_line(line: &str, request_id: &str, text: &str) -> bool {
    let Some((ts, rest)) = line.split_once(' ') else {
        return false;
    };
    let b = ts.as_bytes();
    let ts_ok = b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b[20..23].iter().all(u8::is_ascii_digit);
    ts_ok && rest == format!("{request_id} {text}")
}

fn check_invocation(s: &Server, name: &str, lang: &str, inv: &Value, what: &str) {
    let expect = &inv["expect"];
    let mut headers: Vec<(String, String)> = inv["headers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let wants_log = expect.get("log").is_some() || expect.get("log_contains").is_some();
    if wants_log
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-cff-log-type"))
    {
        headers.push(("X-Cff-Log-Type".into(), "tail".into()));
    }
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = s.invoke_with(name, &inv["event"], &hdrs);
    r.expect(200);
    let vars = Vars {
        lang,
        request_id: r.header("x-cff-request-id").unwrap_or_default(),
        project_id: s.cred.project_id.clone(),
        func_name: name.to_string(),
    };
    let expect = resolve(expect, &vars);
    let func_err = r.header("x-is-func-err").as_deref() == Some("true");
    if let Some(err) = expect.get("error") {
        assert!(
            func_err,
            "{what}: expected a function error, got {}",
            r.text()
        );
        let code = err["code"].as_u64().unwrap();
        assert_eq!(
            r.header("x-func-err-code"),
            Some(code.to_string()),
            "{what}: {}",
            r.text()
        );
        let body = r.json();
        assert_eq!(body["errorCode"], json!(code), "{what}: {body}");
        if let Some(t) = err.get("type") {
            assert_eq!(&body["errorType"], t, "{what}: {body}");
        }
        let msg = body["errorMessage"].as_str().unwrap_or_default();
        if let Some(m) = err.get("message") {
            assert_eq!(msg, m.as_str().unwrap(), "{what}: {body}");
        }
        if let Some(m) = err.get("message_contains") {
            assert!(msg.contains(m.as_str().unwrap()), "{what}: {body}");
        }
        if code == 4002 {
            let trace = body["stackTrace"]
                .as_array()
                .expect("stackTrace is an array");
            assert!(
                !trace.is_empty(),
                "{what}: a raised error has a stack: {body}"
            );
        }
    } else {
        assert!(!func_err, "{what}: function failed: {}", r.text());
    }
    if let Some(x) = expect.get("result") {
        if let Err(e) = matches(x, &r.json(), "result") {
            panic!("{what}: {e}\nbody: {}", r.text());
        }
    }
    if let Some(x) = expect.get("body") {
        assert_eq!(r.text(), x.as_str().unwrap(), "{what}");
    }
    if let Some(lines) = expect.get("log").and_then(Value::as_array) {
        let log = log_tail(&r);
        for want in lines {
            let want = want.as_str().unwrap();
            assert!(
                log.lines()
                    .any(|l| is_logger_line(l, &vars.request_id, want)),
                "{what}: no logger line `<ts> {} {want}` in the log tail:\n{log}",
                vars.request_id
            );
        }
    }
    if let Some(parts) = expect.get("log_contains").and_then(Value::as_array) {
        let log = log_tail(&r);
        for p in parts {
            assert!(
                log.contains(p.as_str().unwrap()),
                "{what}: {p} not in the log tail:\n{log}"
            );
        }
    }
}

fn run_case(case: &str) {
    let dir = fixtures().join(case);
    let spec: Value = serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap())
        .unwrap_or_else(|e| panic!("{case}/case.json: {e}"));
    let mut opts = ServerOpts::default();
    if let Some(env) = spec["server_env"].as_object() {
        for (k, v) in env {
            opts = opts.env(k, v.as_str().unwrap());
        }
    }
    let s = Server::start(opts);
    let mut ran = 0;
    for (lang, default_runtime, inline_file) in LANGS {
        let code_dir = dir.join(lang);
        if !code_dir.is_dir() {
            continue;
        }
        if !installed(lang) {
            eprintln!("skipped {case}/{lang}: its interpreter is not installed on this host");
            continue;
        }
        ran += 1;
        let name = unique(&format!("{}{}", &lang[..2], case.replace('_', "")));
        let runtime = spec["runtime"][lang].as_str().unwrap_or(default_runtime);
        let mut body = json!({
            "func_name": name,
            "package": "default",
            "runtime": runtime,
            "handler": spec["handler"].as_str().unwrap_or("index.handler"),
            "memory_size": 128,
            "timeout": 10,
        });
        if spec["code_type"] == "inline" {
            body["code_type"] = json!("inline");
            body["func_code"] =
                json!({"file": b64(&std::fs::read(code_dir.join(inline_file)).unwrap())});
        } else {
            let files = read_tree(&code_dir);
            let entries: Vec<(&str, &[u8], u32)> = files
                .iter()
                .map(|(n, c)| (n.as_str(), c.as_slice(), 0o644))
                .collect();
            body["code_type"] = json!("zip");
            body["code_filename"] = json!("code.zip");
            body["func_code"] = json!({"file": b64(&zip_files(&entries))});
        }
        if let Some(deps) = spec["dependencies"].as_array() {
            let ids: Vec<Value> = deps
                .iter()
                .map(|d| {
                    let files = read_tree(&dir.join(d.as_str().unwrap()));
                    let entries: Vec<(&str, &[u8], u32)> = files
                        .iter()
                        .map(|(n, c)| (n.as_str(), c.as_slice(), 0o644))
                        .collect();
                    let r = s.post(
                        "/dependencies/version",
                        &json!({"depend_file": b64(&zip_files(&entries)), "depend_type": "zip",
                                "runtime": runtime, "name": unique("dep")}),
                    );
                    r.expect(200);
                    r.json()["id"].clone()
                })
                .collect();
            body["depend_version_list"] = json!(ids);
        }
        if let Some(extra) = spec["create"].as_object() {
            for (k, v) in extra {
                body[k] = v.clone();
            }
        }
        let r = s.post("/functions", &body);
        r.expect(200);
        for (i, inv) in spec["invocations"].as_array().unwrap().iter().enumerate() {
            check_invocation(
                &s,
                &name,
                lang,
                inv,
                &format!("{case}/{lang} invocation {i}"),
            );
        }
    }
    assert!(ran > 0, "fixture {case} has no python/ or nodejs/ folder");
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        $( #[test] fn $case() { run_case(stringify!($case)); } )*
        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

cases!(
    context,
    dependency_import,
    initializer,
    logger,
    exception,
    missing_handler,
    callback,
    inline,
    string_result,
    module_paths,
    init_failure,
    init_timeout,
    nearest_warning,
    old_runtime_names,
    runtime_log_level,
    slash_handler,
);

#[test]
fn every_fixture_folder_is_a_case() {
    let mut dirs: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
    cases.sort();
    assert_eq!(dirs, cases, "add new fixture folders to cases!()");
}

#[test]
fn runtime_without_interpreter_is_refused_with_fss_1005() {
    let s = Server::start(ServerOpts::default().env("FGS_RUNTIME_PATH", "/nonexistent"));
    for (runtime, file) in [("Python3.10", "index.py"), ("Node.js20.15", "index.js")] {
        let r = s.post(
            "/functions",
            &json!({
                "func_name": unique("missing"),
                "runtime": runtime,
                "handler": "index.handler",
                "memory_size": 128,
                "timeout": 3,
                "code_type": "zip",
                "code_filename": "code.zip",
                "func_code": {"file": b64(&zip_files(&[(file, b"x", 0o644)]))},
            }),
        );
        r.expect_fss(400, "FSS.1005");
        let msg = r.json()["error_msg"].as_str().unwrap().to_string();
        assert!(
            msg.contains(runtime) && msg.contains("interpreter"),
            "{msg}"
        );
    }
}

/// Issue 21: FunctionGraph's C# and Cangjie names are known, and refused with a message naming
/// what this host lacks; `fgs runtimes` lists every name with what serves it.
#[test]
fn csharp_and_cangjie_are_refused_naming_what_is_missing() {
    let s = Server::start(ServerOpts::default());
    for (runtime, missing) in [
        ("C#(.NET Core 3.1)", ".NET Core runtime"),
        ("C#(.NET Core 6.0)", ".NET Core runtime"),
        ("Cangjie1.0", "Cangjie runtime"),
    ] {
        let r = s.post(
            "/functions",
            &json!({
                "func_name": unique("refused"),
                "runtime": runtime,
                "handler": "index.handler",
                "memory_size": 128,
                "timeout": 3,
                "code_type": "zip",
                "code_filename": "code.zip",
                "func_code": {"file": b64(&zip_files(&[("index.cs", b"x", 0o644)]))},
            }),
        );
        r.expect_fss(400, "FSS.1005");
        let msg = r.json()["error_msg"].as_str().unwrap().to_string();
        assert!(msg.contains(runtime) && msg.contains(missing), "{msg}");
    }
    let out = std::process::Command::new(fgs_e2e::fgs_bin())
        .arg("runtimes")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["Java17", "Go1.x", "PHP8.3", "C#(.NET Core 2.1)", "Cangjie1.0", "Python3.10"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} not listed:\n{text}"
        );
    }
}

/// Issue 17: a handler path with `..` is refused when the function is created or changed, with a
/// message saying why, so it is never resolved outside the code root.
#[test]
fn a_handler_path_with_dotdot_is_refused_with_fss_1003() {
    let s = Server::start(ServerOpts::default());
    for (runtime, file) in [("Python3.10", "index.py"), ("Node.js20.15", "index.js")] {
        let name = unique("dotdot");
        let body = |handler: &str| {
            json!({
                "func_name": name,
                "runtime": runtime,
                "handler": handler,
                "memory_size": 128,
                "timeout": 3,
                "code_type": "zip",
                "code_filename": "code.zip",
                "func_code": {"file": b64(&zip_files(&[(file, b"x", 0o644)]))},
            })
        };
        for bad in [
            "../index.handler",
            "src/../../etc/passwd.handler",
            "..index.handler",
        ] {
            let r = s.post("/functions", &body(bad));
            r.expect_fss(400, "FSS.1003");
            let msg = r.json()["error_msg"].as_str().unwrap().to_string();
            assert!(msg.contains("'..' is not allowed"), "{bad}: {msg}");
        }
        s.post("/functions", &body("index.handler")).expect(200);
        let r = s.put(
            &format!("/functions/{name}/config"),
            &json!({"handler": "../index.handler", "memory_size": 128, "timeout": 3, "runtime": runtime}),
        );
        r.expect_fss(400, "FSS.1003");
    }
}

/// Cold start and warm latency of hello world, median of `FGS_BENCH_N` (default 30) each, as
/// the client sees them (signing, HTTP, the platform and the runtime).
/// `cargo test -p fgs-e2e --test runtimes -- --ignored --nocapture bench`
#[test]
#[ignore = "a measurement, not a check"]
fn bench_hello_world() {
    let n: usize = std::env::var("FGS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let s = Server::start(ServerOpts::default());
    let node_server = "exec /usr/bin/node -e \"require('http').createServer((q, s) => s.end('hello')).listen(8000, '127.0.0.1')\"\n";
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "Python3.10",
            "index.handler",
            "index.py",
            "def handler(event, context):\n    return 'hello'\n",
        ),
        (
            "Node.js20.15",
            "index.handler",
            "index.js",
            "exports.handler = async () => 'hello';\n",
        ),
        ("http", "bootstrap", "bootstrap", node_server),
    ];
    let mut report = BTreeMap::new();
    for (runtime, handler, file, src) in cases {
        let name = unique("bench");
        let event = if runtime == "http" {
            json!({"httpMethod": "GET", "path": "/", "headers": {}, "body": "", "isBase64Encoded": false})
        } else {
            json!({})
        };
        let config = |d: &str| {
            json!({"func_name": name, "runtime": runtime, "handler": handler, "memory_size": 128,
                   "timeout": 10, "user_data": json!({"RUN": d}).to_string()})
        };
        let mut body = config("bench");
        body["code_type"] = json!("zip");
        body["code_filename"] = json!("c.zip");
        body["func_code"] = json!({"file": b64(&zip_files(&[(file, src.as_bytes(), 0o755)]))});
        s.post("/functions", &body).expect(200);
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for i in 0..n {
            // A changed environment retires the instances: the next invocation starts cold.
            s.put(
                &format!("/functions/{}/config", s.urn(&name)),
                &config(&format!("run {i}")),
            )
            .expect(200);
            let t = Instant::now();
            let r = s.invoke(&name, &event);
            cold.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(r.text().contains("hello"), "{}", r.text());
            let t = Instant::now();
            s.invoke(&name, &event);
            warm.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        report.insert(runtime, (med(&mut cold), med(&mut warm)));
    }
    for (rt, (c, w)) in report {
        println!("{rt}: cold start median {c:.1} ms, warm median {w:.1} ms (n={n})");
    }
}

/// An HTTP function (SPEC.md 4): APIG event in, APIG result out, with the platform's headers, a
/// binary body both ways, and `concurrent_num` requests served by one instance at once.
#[test]
fn http_function_round_trip_and_concurrency() {
    let s = Server::start(ServerOpts::default());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http_fn");
    let server_py = std::fs::read(dir.join("server.py")).unwrap();
    // Not executable, as FunctionGraph's console uploads it: fgs runs it with bash.
    let zip = zip_files(&[
        ("bootstrap", b"exec /usr/bin/python3 -u server.py\n", 0o644),
        ("server.py", &server_py, 0o644),
    ]);
    let name = unique("web");
    s.post(
        "/functions",
        &json!({
            "func_name": name, "runtime": "http", "handler": "bootstrap",
            "memory_size": 128, "timeout": 10, "code_type": "zip", "code_filename": "web.zip",
            "func_code": {"file": b64(&zip)},
            "strategy_config": {"concurrency": -1, "concurrent_num": 4},
        }),
    )
    .expect(200);

    let ev = json!({"httpMethod": "POST", "path": "/echo", "headers": {"x-mine": "yes"},
        "queryStringParameters": {"q": "1"}, "body": "{\"k\":1}", "isBase64Encoded": false,
        "pathParameters": {}, "requestContext": {}});
    let r = s.invoke(&name, &ev);
    r.expect_ok();
    let out = r.json();
    assert_eq!(out["statusCode"], 201, "{out}");
    assert_eq!(out["headers"]["x-answer"], "42", "{out}");
    let echo: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    let rid = r.header("x-cff-request-id").unwrap();
    assert_eq!(echo["headers"]["x-cff-request-id"], rid.as_str(), "{echo}");
    for h in [
        "x-cff-memory",
        "x-cff-timeout",
        "x-cff-func-version",
        "x-cff-func-name",
        "x-cff-project-id",
        "x-cff-package",
    ] {
        assert!(echo["headers"][h].is_string(), "{h} missing: {echo}");
    }
    assert_eq!(echo["headers"]["x-cff-func-name"], name.as_str());
    assert_eq!(echo["headers"]["x-mine"], "yes");
    assert_eq!(
        (
            echo["method"].as_str(),
            echo["query"].as_str(),
            echo["body"].as_str()
        ),
        (Some("POST"), Some("q=1"), Some("{\"k\":1}"))
    );

    let bin: Vec<u8> = (0..=255u8).rev().collect();
    let out = s
        .invoke(&name, &json!({"httpMethod": "PUT", "path": "/bytes", "body": b64(&bin), "isBase64Encoded": true}))
        .json();
    assert_eq!(out["isBase64Encoded"], true, "{out}");
    assert_eq!(unb64(out["body"].as_str().unwrap()), bin);

    let t = Instant::now();
    let pids: Vec<u64> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                sc.spawn(|| {
                    s.invoke(&name, &json!({"httpMethod": "GET", "path": "/sleep"}))
                        .json()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                let out = h.join().unwrap();
                let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
                body["pid"].as_u64().unwrap()
            })
            .collect()
    });
    assert!(
        pids.iter().all(|p| *p == pids[0]),
        "one instance served all four: {pids:?}"
    );
    assert!(
        t.elapsed().as_millis() < 1800,
        "four 0.5 s requests ran together, not in turn: {:?}",
        t.elapsed()
    );
}
