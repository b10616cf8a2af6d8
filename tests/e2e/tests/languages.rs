//! Issue 21: PHP, Java and Go functions through the CLI (and the API where the CLI has no
//! flag), built in the test with the language's own toolchain: what the data-driven fixtures of
//! `runtimes.rs` cannot say (memory limits, timeouts, compiled code). A language's tests skip
//! only when its toolchain is not installed, and say so.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use fgs_e2e::fixture::zip_files;
use fgs_e2e::{b64, fgs_bin, json, unique, Server, ServerOpts};

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

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

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

/// A Java handler class using FunctionGraph's `com.huawei.services.runtime` names.
const JAVA_HUAWEI: &str = r#"package demo;

import com.huawei.services.runtime.Context;
import com.huawei.services.runtime.RuntimeLogger;
import java.util.List;

public class Handler {
    static int inits;

    public static class Person { public String name; public int age; public List<String> tags; }

    public static class Reply {
        private final String greeting; private final int nextAge;
        Reply(String greeting, int nextAge) { this.greeting = greeting; this.nextAge = nextAge; }
        public String getGreeting() { return greeting; }
        public int getNextAge() { return nextAge; }
    }

    public void init(Context context) { inits++; }

    public void initSlow(Context context) throws Exception { Thread.sleep(30000); }

    public void initBoom(Context context) { throw new IllegalStateException("init fails"); }

    public String text(String event, Context context) {
        RuntimeLogger log = context.getLogger();
        log.info("event " + event);
        return "inits=" + inits + " memory=" + context.getMemorySize() + " id=" + context.getRequestID()
            + " user=" + context.getUserData("GREETING");
    }

    public Reply pojo(Person p, Context context) {
        return new Reply("hi " + p.name + " " + p.tags, p.age + 1);
    }

    public String boom(String event, Context context) { return check(event); }

    static String check(String event) { throw new IllegalStateException("no " + event); }

    public String slow(String event, Context context) throws Exception { Thread.sleep(30000); return "late"; }

    public String hog(String event, Context context) {
        List<byte[]> keep = new java.util.ArrayList<>();
        while (true) { keep.add(new byte[1 << 20]); }
    }
}
"#;

/// The same through the Open Telekom Cloud variant's `com.opentelekomcloud.services.runtime`.
const JAVA_OTC: &str = r#"package otc;

import com.opentelekomcloud.services.runtime.Context;
import java.util.Map;

public class Fn {
    public static Map<String, Object> handle(Map<String, Object> event, Context context) {
        context.getLogger().warn("otc " + event.get("n"));
        event.put("fn", context.getFunctionName());
        event.put("traceparent", context.getTraceparent());
        return event;
    }
}
"#;

/// Compiles `sources` against fgs's FunctionGraph interfaces (`runtimes/java`, not shipped with
/// the code, as users compile against FunctionGraph's runtime jar) into a jar under `lib/`.
fn build_java(dir: &Path, sources: &[(&str, &str)]) -> std::path::PathBuf {
    let src = dir.join("src");
    let classes = dir.join("classes");
    let mut files = Vec::new();
    for (name, text) in sources {
        let p = src.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        files.push(p);
    }
    let interfaces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtimes/java");
    let o = Command::new("javac")
        .args(["--release", "8", "-Xlint:-options", "-implicit:none", "-sourcepath"])
        .arg(&interfaces)
        .arg("-d")
        .arg(&classes)
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "javac: {}", text(&o));
    let code = dir.join("code");
    std::fs::create_dir_all(code.join("lib")).unwrap();
    let o = Command::new("jar")
        .arg("cf")
        .arg(code.join("lib/app.jar"))
        .arg("-C")
        .arg(&classes)
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success(), "jar: {}", text(&o));
    code
}

#[test]
fn java_handlers_with_functiongraphs_context() {
    let test = "java_handlers_with_functiongraphs_context";
    if !toolchain("javac", "-version", test) || !toolchain("jar", "--version", test) {
        return;
    }
    let s = Server::start(ServerOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let code = build_java(
        dir.path(),
        &[("demo/Handler.java", JAVA_HUAWEI), ("otc/Fn.java", JAVA_OTC)],
    );
    let run = |name: &str, data: &str, extra: &[&str]| {
        let mut args = vec!["function", "invoke", name, "--data", data];
        args.extend_from_slice(extra);
        fgs(&s, &args)
    };

    // A String event, the initializer (created through the API, as the SDK does: the CLI has
    // no initializer flag), user data and the logger's line in the log tail.
    let text_fn = unique("jtext");
    let jar = std::fs::read(code.join("lib/app.jar")).unwrap();
    let r = s.post(
        "/functions",
        &json!({
            "func_name": text_fn, "package": "default", "runtime": "Java17",
            "handler": "demo.Handler.text", "memory_size": 256, "timeout": 10,
            "initializer_handler": "demo.Handler.init", "initializer_timeout": 10,
            "user_data": r#"{"GREETING":"hi"}"#,
            "code_type": "zip", "code_filename": "code.zip",
            "func_code": {"file": b64(&zip_files(&[("lib/app.jar", &jar, 0o644)]))},
        }),
    );
    r.expect(200);
    for _ in 0..2 {
        let o = run(&text_fn, r#"{"a":1}"#, &["--log-tail"]);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains("inits=1 memory=256 id="), "{out}");
        assert!(out.contains(" user=hi"), "{out}");
        assert!(out.contains(r#" INFO event {"a":1}"#), "{out}");
    }

    // The event's JSON mapped onto a class; the result written from its getters.
    let pojo = unique("jpojo");
    create(&s, &pojo, "Java11", "demo.Handler.pojo", &code, &[]);
    let o = run(&pojo, r#"{"name":"ann","age":41,"tags":["x","y"]}"#, &[]);
    let out = text(&o);
    assert!(out.contains(r#""greeting":"hi ann [x, y]""#), "{out}");
    assert!(out.contains(r#""nextAge":42"#), "{out}");

    // The Open Telekom Cloud names, a static method, a Map event.
    let otc = unique("jotc");
    create(&s, &otc, "Java8", "otc.Fn.handle", &code, &[]);
    let o = run(&otc, r#"{"n":7}"#, &["--log-tail"]);
    let out = text(&o);
    assert!(out.contains(&format!(r#""fn":"{otc}""#)), "{out}");
    assert!(out.contains(" WARN otc 7"), "{out}");
    assert!(out.contains(r#""traceparent":"""#), "none without a caller's: {out}");
    // The caller's traceparent, as the function gets it when fgs does not trace it.
    let r = s.invoke_with(&otc, &json!({"n": 8}), &[("traceparent", TRACEPARENT)]);
    r.expect(200);
    assert_eq!(r.json()["traceparent"], TRACEPARENT, "{}", r.text());

    // A thrown exception: 4002 with the class, the message and the Java frames.
    let boom = unique("jboom");
    create(&s, &boom, "Java17", "demo.Handler.boom", &code, &[]);
    let o = run(&boom, r#""x""#, &[]);
    let out = text(&o);
    assert!(out.contains(r#""errorCode":4002"#), "{out}");
    assert!(
        out.contains(r#""errorType":"java.lang.IllegalStateException""#),
        "{out}"
    );
    assert!(out.contains(r#"no \"x\""#), "{out}");
    assert!(out.contains("at demo.Handler.check(Handler.java:"), "{out}");

    // A method that does not exist: 4001 naming it.
    let missing = unique("jmissing");
    create(&s, &missing, "Java17", "demo.Handler.nothere", &code, &[]);
    let out = text(&run(&missing, "{}", &[]));
    assert!(
        out.contains("4001") && out.contains("demo.Handler.nothere"),
        "{out}"
    );

    // The heap is sized from the function's memory: filling it is 4205.
    let hog = unique("jhog");
    create(&s, &hog, "Java17", "demo.Handler.hog", &code, &["--memory", "128"]);
    let out = text(&run(&hog, "{}", &[]));
    assert!(out.contains("4205"), "{out}");

    let slow = unique("jslow");
    create(&s, &slow, "Java17", "demo.Handler.slow", &code, &["--timeout", "3"]);
    let out = text(&run(&slow, "{}", &[]));
    assert!(out.contains("4010") && out.contains("timed out"), "{out}");

    // Initializers that fail (4201, with the Java exception) and that outlive their
    // initializer_timeout (4211).
    for (init, code_expected, said) in [
        ("demo.Handler.initBoom", "4201", "init fails"),
        ("demo.Handler.initSlow", "4211", ""),
    ] {
        let name = unique("jinit");
        s.post(
            "/functions",
            &json!({
                "func_name": name, "package": "default", "runtime": "Java17",
                "handler": "demo.Handler.text", "memory_size": 256, "timeout": 10,
                "initializer_handler": init, "initializer_timeout": 2,
                "code_type": "zip", "code_filename": "code.zip",
                "func_code": {"file": b64(&zip_files(&[("lib/app.jar", &jar, 0o644)]))},
            }),
        )
        .expect(200);
        let out = text(&run(&name, "{}", &[]));
        assert!(
            out.contains(code_expected) && out.contains(said),
            "{init}: {out}"
        );
    }
}

#[test]
fn go_binaries_speaking_the_sdks_rpc() {
    let test = "go_binaries_speaking_the_sdks_rpc";
    if !toolchain("go", "version", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/go/main.go");
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(code.join("handler"))
        .arg(&src)
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .output()
        .unwrap();
    assert!(o.status.success(), "go build: {}", text(&o));

    let s = Server::start(ServerOpts::default());
    let name = unique("gofn");
    create(&s, &name, "Go1.x", "handler", &code, &[]);
    for event in [r#"{"a":1}"#, r#"{"b":2}"#] {
        let o = fgs(&s, &["function", "invoke", &name, "--data", event, "--log-tail"]);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains(&format!(r#""event":{event}"#)), "{out}");
        assert!(out.contains(&format!(r#""func":"{name}""#)), "{out}");
        // The request id reached the SDK's context through the header, and the binary's output
        // is in the invocation's log.
        let id = out.split(r#""requestId":""#).nth(1).and_then(|r| r.split('"').next());
        let id = id.unwrap_or_else(|| panic!("no requestId: {out}"));
        assert!(id.len() > 8, "{out}");
        assert!(out.contains(&format!("{id} event {event}")), "{out}");
    }
    let o = fgs(&s, &["function", "invoke", &name, "--data", r#"{"do":"fail"}"#]);
    let out = text(&o);
    assert!(out.contains(r#""errorCode":4002"#), "{out}");
    assert!(out.contains(r#""errorType":"FunctionReturnError""#), "{out}");
    assert!(out.contains(r#""errorMessage":"went wrong""#), "{out}");
    let o = fgs(&s, &["function", "invoke", &name, "--data", r#"{"do":"panic"}"#]);
    let out = text(&o);
    assert!(out.contains(r#""errorType":"panic""#), "{out}");
    assert!(out.contains("assignment to entry in nil map"), "{out}");
    // The instance survives both: the next event succeeds.
    let o = fgs(&s, &["function", "invoke", &name, "--data", "{}"]);
    assert!(o.status.success(), "{}", text(&o));

    // The invocation's traceparent reaches the SDK in the call's header, as the request id does.
    let r = s.invoke_with(&name, &json!({}), &[("traceparent", TRACEPARENT)]);
    r.expect(200);
    assert_eq!(r.json()["traceparent"], TRACEPARENT, "{}", r.text());
    let r = s.invoke(&name, &json!({}));
    assert_eq!(r.json()["traceparent"], "", "{}", r.text());

    // A handler that names no executable in the code: 4202, as a missing bootstrap.
    let missing = unique("gomissing");
    create(&s, &missing, "Go1.x", "nothere", &code, &[]);
    let out = text(&fgs(&s, &["function", "invoke", &missing, "--data", "{}"]));
    assert!(out.contains("4202") && out.contains("nothere"), "{out}");
}
