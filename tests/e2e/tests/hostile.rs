//! Hostile input (issue 8, docs/security.md): every refusal answers its status and FSS code,
//! writes nothing (no package, no unpacked tree, no row), and leaves the server serving: a
//! normal invocation works right after. Also the slow-client limits, authentication of every
//! route, and the isolation of projects over every route.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use fgs_e2e::fixture::{
    b64, bootstrap_zip, custom_zip_body, unique, user_data, zip_files, RUNTIME,
};
use fgs_e2e::{test_credential, Auth, Credential, Server, ServerOpts};
use serde_json::{json, Value};

/// Names in a directory of the data dir, sorted; empty when it does not exist.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What a refused request must not change.
#[derive(Debug, PartialEq)]
struct Written {
    packages: Vec<String>,
    unpacked: Vec<String>,
    functions: Value,
    dependencies: Value,
}

/// A function that works, to show after each refusal that the server still serves: its name
/// and URN.
fn good_function(s: &Server) -> (String, String) {
    let good = unique("good");
    let urn = s.urn(&good);
    s.create_fixture(&good, &unique("m"), &[], json!({}));
    s.invoke_pid(&urn);
    (good, urn)
}

fn written(s: &Server) -> Written {
    let functions = s.get("/functions");
    functions.expect(200);
    let dependencies = s.get("/dependencies");
    dependencies.expect(200);
    Written {
        packages: listing(&s.data_dir().join("packages")),
        unpacked: listing(&s.data_dir().join("unpacked")),
        functions: functions.json()["count"].clone(),
        dependencies: dependencies.json()["count"].clone(),
    }
}

/// Asserts the refusal's status and code, that nothing was written, and that `urn` still runs.
#[track_caller]
fn refused(s: &Server, before: &Written, r: &fgs_e2e::Resp, status: u16, code: &str, urn: &str) {
    r.expect_fss(status, code);
    assert_eq!(
        &written(s),
        before,
        "something was written by a refused request"
    );
    s.invoke_pid(urn);
}

/// A zip whose entry `name` has the unix mode `mode`, file type included (the zip crate masks
/// modes to permission bits, so the central directory is patched).
fn zip_with_mode(name: &str, mode: u32) -> Vec<u8> {
    let mut zip = zip_files(&[
        (name, b"x".as_slice(), 0o644),
        ("bootstrap", b"#!/bin/sh\n".as_slice(), 0o755),
    ]);
    let sig = [0x50, 0x4b, 0x01, 0x02];
    let at = (0..zip.len() - 46)
        .find(|&i| {
            zip[i..i + 4] == sig && {
                let len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
                zip.get(i + 46..i + 46 + len) == Some(name.as_bytes())
            }
        })
        .expect("entry in the central directory");
    zip[at + 5] = 3; // made by: unix
    zip[at + 38..at + 42].copy_from_slice(&(mode << 16).to_le_bytes());
    zip
}

fn zip_with_link(name: &str, target: &str) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file("bootstrap", opts.unix_permissions(0o755))
        .expect("file");
    w.write_all(b"#!/bin/sh\n").expect("write");
    w.add_symlink(name, target, opts).expect("symlink");
    w.finish().expect("finish").into_inner()
}

/// One entry of `size` zero bytes: compresses to about a thousandth of that.
fn zip_bomb(size: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("zeros", opts).expect("file");
    let block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        w.write_all(&block[..n]).expect("write");
        left -= n;
    }
    w.finish().expect("finish").into_inner()
}

fn many_files(n: usize) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..n {
        w.start_file(format!("f{i}"), opts).expect("file");
    }
    w.finish().expect("finish").into_inner()
}

/// Archives that must be refused, with what they try and the code of that kind of refusal.
fn bad_archives() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "dot-dot",
            zip_files(&[("../escape", b"x", 0o644)]),
            "FSS.1083",
        ),
        (
            "dot-dot inside",
            zip_files(&[("a/../../escape", b"x", 0o644)]),
            "FSS.1083",
        ),
        (
            "absolute",
            zip_files(&[("/etc/escape", b"x", 0o644)]),
            "FSS.1083",
        ),
        (
            "link out",
            zip_with_link("passwd", "../../../etc/passwd"),
            "FSS.1087",
        ),
        (
            "absolute link",
            zip_with_link("passwd", "/etc/passwd"),
            "FSS.1087",
        ),
        ("fifo", zip_with_mode("pipe", 0o010_644), "FSS.1084"),
        ("char device", zip_with_mode("dev", 0o020_644), "FSS.1084"),
        ("block device", zip_with_mode("disk", 0o060_644), "FSS.1084"),
        ("socket", zip_with_mode("sock", 0o140_644), "FSS.1084"),
        ("30,001 files", many_files(30_001), "FSS.1088"),
        (
            "unpacked over 250 MB",
            zip_bomb(250 * 1024 * 1024 + 1),
            "FSS.1089",
        ),
        (
            "not a zip",
            b"PK\x03\x04 this is not a zip".to_vec(),
            "FSS.1081",
        ),
    ]
}

#[test]
fn refused_packages_leave_nothing_behind() {
    let s = Server::start(ServerOpts::default());
    let (good, urn) = good_function(&s);
    let before = written(&s);
    let target = unique("bad");

    for (what, zip, code) in bad_archives() {
        eprintln!("archive: {what}");
        // As a new function, as new code of an existing one, and as a dependency; each kind of
        // refusal with its own code (issue 17).
        let r = s.post("/functions", &custom_zip_body(&target, &zip));
        refused(&s, &before, &r, 400, code, &urn);
        let r = s.put(
            &format!("/functions/{good}/code"),
            &json!({"code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(&zip)}}),
        );
        refused(&s, &before, &r, 400, code, &urn);
        let r = s.post(
            "/dependencies/version",
            &json!({"depend_file": b64(&zip), "depend_type": "zip", "runtime": "Custom", "name": "dep"}),
        );
        refused(&s, &before, &r, 400, code, &urn);
    }

    // A zip over 50 MB (checked before it is even read as a zip) and inline code over 10 KB.
    let huge = vec![0u8; 50 * 1024 * 1024 + 1];
    let r = s.post("/functions", &custom_zip_body(&target, &huge));
    refused(&s, &before, &r, 400, "FSS.1071", &urn);
    let r = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&huge), "depend_type": "zip", "runtime": "Custom", "name": "dep"}),
    );
    refused(&s, &before, &r, 400, "FSS.1071", &urn);
    drop(huge);
    let mut inline = custom_zip_body(&target, b"");
    inline["runtime"] = json!("Python3.9");
    inline["handler"] = json!("index.handler");
    inline["code_type"] = json!("inline");
    inline["func_code"] = json!({"file": b64(&vec![b'#'; 10 * 1024 + 1])});
    let r = s.post("/functions", &inline);
    refused(&s, &before, &r, 400, "FSS.1072", &urn);
}

#[test]
fn request_limits_answer_fss_codes() {
    let s = Server::start(ServerOpts::default());
    let (good, urn) = good_function(&s);
    let before = written(&s);

    // Payloads: 6 MB sync, 256 KB async (SPEC.md 6).
    let big = format!("\"{}\"", "x".repeat(6 * 1024 * 1024));
    let r = s
        .req("POST", &s.api(&format!("/functions/{good}/invocations")))
        .raw(big)
        .send();
    refused(&s, &before, &r, 413, "FSS.0413", &urn);
    let big = format!("\"{}\"", "x".repeat(256 * 1024));
    let r = s
        .req(
            "POST",
            &s.api(&format!("/functions/{good}/invocations-async")),
        )
        .raw(big)
        .send();
    refused(&s, &before, &r, 413, "FSS.0413", &urn);

    // Malformed JSON names the parser's position.
    for (path, body) in [
        ("/functions".to_owned(), "{\"func_name\": \"x\",\n  oops}"),
        (format!("/functions/{good}/versions"), "{\"version\": }"),
        (format!("/functions/{good}/aliases"), "[1, 2"),
        (format!("/triggers/{urn}"), "{"),
        ("/dependencies/version".to_owned(), "nope"),
    ] {
        let r = s.req("POST", &s.api(&path)).raw(body).send();
        refused(&s, &before, &r, 400, "FSS.0406", &urn);
        let msg = r.json()["error_msg"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            msg.contains("line") && msg.contains("column"),
            "{path}: no position in {msg:?}"
        );
    }

    // URNs with path tricks are refused as bad references or unknown paths, never served.
    for trick in [
        "..%2F..%2Fetc%2Fpasswd",
        "a%2F..%2Fb",
        "%2Fetc%2Fpasswd",
        "urn%3Afss%3Alocal%3A..%3Afunction%3Adefault%3Ahello%3Alatest",
        "hello%00",
        "..",
        "%2e%2e",
    ] {
        for rel in ["/config", "/code", "/invocations"] {
            let path = s.api(&format!("/functions/{trick}{rel}"));
            let method = if rel == "/invocations" { "POST" } else { "GET" };
            let (status, body) = raw_signed(&s, &s.cred, method, &path, b"{}");
            assert!(
                status == 400 || status == 404,
                "{method} {path}: {status} {body}"
            );
            assert!(body.contains("FSS."), "{path}: {body}");
        }
    }
    // A percent-encoded byte that is not UTF-8 cannot be a URN: 400 in FunctionGraph's shape,
    // on the sync call's own path as on the router's.
    for rel in ["/config", "/code", "/invocations"] {
        let path = s.api(&format!("/functions/%FF{rel}"));
        let method = if rel == "/invocations" { "POST" } else { "GET" };
        let (status, answer) = raw_signed(&s, &s.cred, method, &path, b"{}");
        assert_eq!(status, 400, "{method} {path}: {answer}");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
        assert_eq!(v["error_code"], "FSS.0400", "{method} {path}: {body}");
        assert!(
            v["error_msg"].as_str().is_some_and(|m| m.contains("UTF-8")),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(written(&s), before);

    // Header limits: too many headers, and a head over the byte limit, are 431.
    let mut req = format!("GET {} HTTP/1.1\r\nHost: x\r\n", s.api("/functions"));
    for i in 0..100 {
        req.push_str(&format!("X-Filler-{i}: a\r\n"));
    }
    req.push_str("\r\n");
    assert!(raw(&s, req.as_bytes()).starts_with("HTTP/1.1 431"));
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert!(raw(&s, req.as_bytes()).starts_with("HTTP/1.1 431"));
    // Issue 17: just over fgs's limits (65 headers; a 40 KiB head), the answer has the FSS shape.
    let mut req = format!("GET {} HTTP/1.1\r\nHost: x\r\n", s.api("/functions"));
    for i in 0..64 {
        req.push_str(&format!("X-Filler-{i}: a\r\n"));
    }
    req.push_str("\r\n");
    let out = raw(&s, req.as_bytes());
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    assert!(out.contains(r#""error_code":"FSS.0431""#), "{out}");
    assert!(out.contains("65 headers"), "{out}");
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let out = raw(&s, req.as_bytes());
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    assert!(out.contains(r#""error_code":"FSS.0431""#), "{out}");
    s.invoke_pid(&urn);
}

#[test]
fn environment_rules_are_fss_1009() {
    let s = Server::start(ServerOpts::default());
    let (good, urn) = good_function(&s);
    let before = written(&s);
    let name = unique("env");
    let big = "x".repeat(4 * 1024);
    for vars in [
        vec![("RUNTIME_FUNC_NAME", "x")],
        vec![("RUNTIME_HANDLER", "x")],
        vec![("RUNTIME_PRE_STOP_HANDLER", "x")],
        vec![("RUNTIME_LOG_DIR", "x")],
        vec![("EXTENSION_API_ADDR", "x")],
        vec![("FGS_RUNTIME_DIR", "/tmp")],
        vec![("FGS_EXTENSIONS", "/bin/sh")],
        vec![("A", big.as_str())],
        vec![("1ABC", "x")],
        vec![("A-B", "x")],
        vec![("A=B", "x")],
        vec![("", "x")],
        vec![("_A", "x")],
    ] {
        let mut body = custom_zip_body(&name, &bootstrap_zip(RUNTIME));
        body["user_data"] = json!(user_data(&vars));
        let r = s.post("/functions", &body);
        refused(&s, &before, &r, 400, "FSS.1009", &urn);
        let r = s.put(
            &format!("/functions/{good}/config"),
            &json!({"handler": "bootstrap", "memory_size": 128, "timeout": 30, "runtime": "Custom", "user_data": user_data(&vars)}),
        );
        refused(&s, &before, &r, 400, "FSS.1009", &urn);
    }
    // Not a JSON object of strings.
    for raw in ["[1]", "{\"A\": 1}", "not json"] {
        let mut body = custom_zip_body(&name, &bootstrap_zip(RUNTIME));
        body["user_data"] = json!(raw);
        let r = s.post("/functions", &body);
        refused(&s, &before, &r, 400, "FSS.1009", &urn);
    }
}

#[test]
fn per_function_limits_have_their_codes() {
    let s = Server::start(ServerOpts::default());
    let f = unique("lim");
    let urn = s.urn(&f);
    s.create_fixture(&f, &unique("m"), &[], json!({}));

    // 20 versions with latest: 19 published, the 20th refused.
    for i in 1..=19 {
        s.put(
            &format!("/functions/{f}/config"),
            &json!({"handler": "bootstrap", "memory_size": 128, "timeout": 30, "runtime": "Custom", "description": format!("d{i}")}),
        )
        .expect(200);
        s.post(
            &format!("/functions/{f}/versions"),
            &json!({"version": format!("v{i}")}),
        )
        .expect(200);
    }
    s.put(
        &format!("/functions/{f}/config"),
        &json!({"handler": "bootstrap", "memory_size": 128, "timeout": 30, "runtime": "Custom", "description": "d20"}),
    )
    .expect(200);
    let versions = s.get(&format!("/functions/{f}/versions")).text();
    let r = s.post(
        &format!("/functions/{f}/versions"),
        &json!({"version": "v20"}),
    );
    r.expect_fss(400, "FSS.1092");
    assert_eq!(s.get(&format!("/functions/{f}/versions")).text(), versions);

    // 10 aliases.
    for i in 0..10 {
        s.post(
            &format!("/functions/{f}/aliases"),
            &json!({"name": format!("a{i}"), "version": "v1"}),
        )
        .expect(200);
    }
    let r = s.post(
        &format!("/functions/{f}/aliases"),
        &json!({"name": "a10", "version": "v1"}),
    );
    r.expect_fss(400, "FSS.1093");
    let aliases = s.get(&format!("/functions/{f}/aliases")).json();
    assert_eq!(aliases.as_array().map(Vec::len), Some(10), "{aliases}");

    // 20 dependencies per function.
    let ids: Vec<String> = (0..21).map(|i| format!("dep-{i}")).collect();
    let r = s.put(
        &format!("/functions/{f}/code"),
        &json!({"code_type": "zip", "code_filename": "code.zip",
            "func_code": {"file": b64(&bootstrap_zip(RUNTIME))}, "depend_version_list": ids}),
    );
    r.expect_fss(400, "FSS.1095");
    s.invoke_pid(&urn);
}

#[test]
fn functions_per_project_are_400() {
    let s = Server::start(ServerOpts::default());
    let zip = bootstrap_zip(RUNTIME);
    let create = |name: &str| s.post("/functions", &custom_zip_body(name, &zip));
    for i in 0..400 {
        create(&format!("f{i}")).expect(200);
    }
    let before = written(&s);
    create("f400").expect_fss(400, "FSS.1091");
    assert_eq!(written(&s), before);
    // Deleting one makes room again.
    s.delete("/functions/f0").expect(204);
    create("f400").expect(200);
}

#[test]
fn uploads_are_refused_when_the_disk_is_short() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let s = Server::start(ServerOpts::default().data_dir(&data));
    let good = unique("good");
    let urn = s.urn(&good);
    s.create_fixture(&good, &unique("m"), &[], json!({}));
    drop(s);
    // A margin no disk has: every upload is refused, everything else keeps working.
    let s = Server::start(
        ServerOpts::default()
            .data_dir(&data)
            .flag("--min-free-disk", "1000000000"),
    );
    s.invoke_pid(&urn);
    let before = written(&s);
    let r = s.post(
        "/functions",
        &custom_zip_body(&unique("new"), &bootstrap_zip(RUNTIME)),
    );
    refused(&s, &before, &r, 507, "FSS.0507", &urn);
    let r = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&zip_files(&[("x", b"x", 0o644)])), "depend_type": "zip", "runtime": "Custom", "name": "dep"}),
    );
    refused(&s, &before, &r, 507, "FSS.0507", &urn);
    assert!(r.json()["error_msg"]
        .as_str()
        .unwrap_or_default()
        .contains("--min-free-disk"));
}

/// Sends `bytes` on a fresh connection and returns what comes back until the server closes.
fn raw(s: &Server, bytes: &[u8]) -> String {
    let mut c = TcpStream::connect(s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).ok();
    c.write_all(bytes).expect("send");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A signed request sent byte for byte as given (the HTTP client would normalise `..`).
fn raw_signed(
    s: &Server,
    cred: &Credential,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let mut headers = vec![
        ("Host".to_owned(), s.addr.to_string()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    fgs_api::auth::sign(
        &cred.access_key,
        &cred.secret_key,
        method,
        path,
        None,
        &mut headers,
        body,
        time::OffsetDateTime::now_utc(),
    );
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let text = raw(s, &bytes);
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[test]
fn slow_and_idle_clients_do_not_starve_a_normal_call() {
    let s = Server::start(
        ServerOpts::default()
            .flag("--max-connections", "256")
            .flag("--header-read-timeout", "2s")
            .flag("--body-read-timeout", "2s"),
    );
    let (good, urn) = good_function(&s);
    // A public APIG route: its bodies are read before any credential could be checked.
    s.post(
        &format!("/triggers/{urn}"),
        &json!({"trigger_type_code": "APIG", "trigger_status": "ACTIVE",
            "event_data": {"name": "open", "path": "/open", "req_method": "ANY",
                "match_mode": "NORMAL", "auth": "NONE"}}),
    )
    .expect(201);

    let connect = || {
        let c = TcpStream::connect(s.addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(20))).ok();
        c
    };
    // 150 idle, 50 with half a request head, 50 with a head and half a body (to the API and to
    // a public APIG route): 250 of 256.
    let mut idle: Vec<TcpStream> = (0..150).map(|_| connect()).collect();
    let mut half_head: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = connect();
            c.write_all(b"POST /v2/p/fgs/functions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .expect("send");
            c
        })
        .collect();
    let invoke_path = s.api(&format!("/functions/{good}/invocations"));
    let apig_path = format!("/apig/{}/open", s.cred.project_id);
    let mut half_body: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut c = connect();
            let body_path = if i % 2 == 0 { &invoke_path } else { &apig_path };
            let head = format!(
                "POST {body_path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{\"a\":"
            );
            c.write_all(head.as_bytes()).expect("send");
            c
        })
        .collect();

    let t = Instant::now();
    s.invoke_pid(&urn);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a normal call took {:?} beside 250 slow clients",
        t.elapsed()
    );

    // The server ends them all: idle and half-sent heads are closed, half-sent bodies get 408.
    let read_all = |c: &mut TcpStream| {
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let t = Instant::now();
    for c in idle.iter_mut().chain(half_head.iter_mut()) {
        let got = read_all(c);
        assert!(!got.starts_with("HTTP/1.1 2"), "{got}");
    }
    for c in &mut half_body {
        let got = read_all(c);
        assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
        assert!(got.contains("FSS.0408"), "{got:?}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "slow clients were kept {:?}",
        t.elapsed()
    );

    // More silent clients than --max-connections: the call waits at most one header timeout.
    let hogs: Vec<TcpStream> = (0..300).map(|_| connect()).collect();
    let t = Instant::now();
    s.invoke_pid(&urn);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "a normal call took {:?} behind 300 silent clients",
        t.elapsed()
    );
    drop(hogs);
}

/// Every `/v2` route of `fgs_api::router` (crates/api/src/lib.rs), with placeholders filled.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/functions"),
    ("GET", "/functions"),
    ("GET", "/functions/reservedinstances"),
    ("DELETE", "/functions/{urn}"),
    ("GET", "/functions/{urn}/config"),
    ("PUT", "/functions/{urn}/config"),
    ("GET", "/functions/{urn}/code"),
    ("PUT", "/functions/{urn}/code"),
    ("GET", "/functions/{urn}/code/files"),
    ("GET", "/functions/{urn}/code/files/content"),
    ("POST", "/functions/{urn}/invocations"),
    ("POST", "/functions/{urn}/invocations-async"),
    ("GET", "/functions/{urn}/async-invocations"),
    ("POST", "/functions/{urn}/cancel"),
    ("GET", "/functions/{urn}/logs"),
    ("GET", "/functions/{urn}/async-invoke-config"),
    ("PUT", "/functions/{urn}/async-invoke-config"),
    ("DELETE", "/functions/{urn}/async-invoke-config"),
    ("POST", "/functions/{urn}/versions"),
    ("GET", "/functions/{urn}/versions"),
    ("POST", "/functions/{urn}/aliases"),
    ("GET", "/functions/{urn}/aliases"),
    ("GET", "/functions/{urn}/aliases/{alias}"),
    ("PUT", "/functions/{urn}/aliases/{alias}"),
    ("DELETE", "/functions/{urn}/aliases/{alias}"),
    ("PUT", "/functions/{urn}/config-max-instance"),
    ("PUT", "/functions/{urn}/reservedinstances"),
    ("GET", "/quotas"),
    ("GET", "/functions/statistics"),
    ("GET", "/functions/{urn}/statistics/{period}"),
    ("GET", "/dependencies"),
    ("POST", "/dependencies/version"),
    ("GET", "/dependencies/{dep}/version"),
    ("GET", "/dependencies/{dep}/version/{version}"),
    ("DELETE", "/dependencies/{dep}/version/{version}"),
    ("POST", "/functions/{urn}/events"),
    ("GET", "/functions/{urn}/events"),
    ("GET", "/functions/{urn}/events/{id}"),
    ("PUT", "/functions/{urn}/events/{id}"),
    ("DELETE", "/functions/{urn}/events/{id}"),
    ("POST", "/triggers/{urn}"),
    ("GET", "/triggers/{urn}"),
    ("DELETE", "/triggers/{urn}"),
    ("GET", "/triggers/{urn}/{type}/{id}"),
    ("PUT", "/triggers/{urn}/{type}/{id}"),
    ("DELETE", "/triggers/{urn}/{type}/{id}"),
    // Not a route: the authenticated fallback.
    ("GET", "/no/such/route"),
];

/// The ids a project's objects got, to fill the placeholders of [`ROUTES`].
struct Ids {
    name: String,
    urn: String,
    dep: String,
    event: String,
    trigger: String,
    request: String,
}

fn fill(route: &str, ids: &Ids, urn_form: &str) -> String {
    let path = route
        .replace("{urn}", urn_form)
        .replace("{alias}", "live")
        .replace("{period}", "1h")
        .replace("{dep}", &ids.dep)
        .replace("{version}", "1")
        .replace("{type}/{id}", &format!("TIMER/{}", ids.trigger))
        .replace("{id}", &ids.event);
    if route.ends_with("/async-invocations") {
        format!("{path}?request_id={}", ids.request)
    } else if route.ends_with("/files/content") {
        format!("{path}?path=bootstrap")
    } else {
        path
    }
}

fn body_for(method: &str, route: &str, ids: &Ids) -> Value {
    if method == "GET" || method == "DELETE" {
        return Value::Null;
    }
    match route {
        "/functions" => custom_zip_body(&ids.name, &bootstrap_zip(RUNTIME)),
        r if r.ends_with("/cancel") => json!({"request_id": ids.request}),
        r if r.ends_with("/versions") => json!({"version": "stolen"}),
        r if r.ends_with("/aliases") => json!({"name": "stolen", "version": "v1"}),
        r if r.ends_with("/events") => json!({"name": "stolen", "content": b64(b"{}")}),
        _ => json!({}),
    }
}

#[test]
fn every_route_needs_credentials() {
    let s = Server::start(ServerOpts::default());
    let ids = Ids {
        name: "f".into(),
        urn: "f".into(),
        dep: "d".into(),
        event: "e".into(),
        trigger: "t".into(),
        request: "r".into(),
    };
    for (method, route) in ROUTES {
        let path = s.api(&fill(route, &ids, &ids.urn));
        let body = body_for(method, route, &ids);
        for auth in [
            Auth::None,
            Auth::Tampered(test_credential()),
            Auth::Token("guess".into()),
        ] {
            let mut req = s.req(method, &path).auth(auth);
            if !body.is_null() {
                req = req.json(&body);
            }
            let r = req.send();
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
            assert_eq!(r.error_code(), "FSS.0401", "{method} {path}");
        }
    }
    // Only these answer without credentials.
    s.req("GET", "/healthz").auth(Auth::None).send().expect(200);
}

#[test]
fn projects_never_see_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("creds");
    let a = test_credential();
    let b = Credential {
        access_key: "E2EOTHERPROJECT0001".into(),
        secret_key: "e2e-other-secret".into(),
        project_id: "fedcba9876543210fedcba9876543210".into(),
    };
    let s = Server::start(ServerOpts::default().credentials_file(&file, &[&a, &b]));

    // Project A owns one of everything.
    let name = unique("secret");
    let urn = s.urn(&name);
    s.create_fixture(&name, &unique("m"), &[], json!({}));
    s.post(
        &format!("/functions/{name}/versions"),
        &json!({"version": "v1"}),
    )
    .expect(200);
    s.post(
        &format!("/functions/{name}/aliases"),
        &json!({"name": "live", "version": "v1"}),
    )
    .expect(200);
    let dep = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&zip_files(&[("x", b"x", 0o644)])), "depend_type": "zip", "runtime": "Custom", "name": "dep"}),
    );
    dep.expect(200);
    let event = s.post(
        &format!("/functions/{urn}/events"),
        &json!({"name": "ev", "content": b64(b"{}")}),
    );
    event.expect(200);
    let trigger = s.post(
        &format!("/triggers/{urn}"),
        &json!({"trigger_type_code": "TIMER", "trigger_status": "DISABLED",
            "event_data": {"name": "t", "schedule_type": "Rate", "schedule": "1d"}}),
    );
    trigger.expect(201);
    let request = s
        .req(
            "POST",
            &s.api(&format!("/functions/{name}/invocations-async")),
        )
        .json(&json!({}))
        .send();
    request.expect(202);
    let ids = Ids {
        name: name.clone(),
        urn: urn.clone(),
        dep: dep.json()["dep_id"].as_str().expect("dep_id").to_owned(),
        event: event.json()["id"].as_str().expect("event id").to_owned(),
        trigger: trigger.json()["trigger_id"]
            .as_str()
            .expect("trigger id")
            .to_owned(),
        request: request.json()["request_id"]
            .as_str()
            .expect("request id")
            .to_owned(),
    };
    let secret_texts = [
        ids.name.as_str(),
        &ids.dep,
        &ids.event,
        &ids.trigger,
        &ids.request,
    ];

    let in_b = |rel: &str| format!("/v2/{}/fgs{rel}", b.project_id);
    for (method, route) in ROUTES {
        let body = body_for(method, route, &ids);
        // B names A's objects by A's full URN, by the short name, and by a URN naming B's
        // own project (the function does not exist there).
        let forms = [
            urn.clone(),
            name.clone(),
            format!("{}:default:{name}", a.project_id),
            format!(
                "urn:fss:local:{}:function:default:{name}:latest",
                b.project_id
            ),
        ];
        for form in forms {
            // Creating B's own function of the same name is B's right, and would make the
            // short forms name it: not sent.
            if *route == "/functions" && *method == "POST" {
                continue;
            }
            let path = in_b(&fill(route, &ids, &form));
            let mut req = s.req(method, &path).auth(Auth::Signed(b.clone()));
            if !body.is_null() {
                req = req.json(&body);
            }
            let r = req.send();
            let text = r.text();
            // No answer carries A's ids, and nothing addressed by A's ids succeeds: only B's
            // own lists (empty) and B's own new dependency may.
            let sent = format!("{path} {body}");
            for secret in secret_texts.iter().filter(|t| !sent.contains(*t)) {
                assert!(
                    !text.contains(secret),
                    "{method} {path} showed A's {secret}: {text}"
                );
            }
            if r.status < 300 {
                assert!(
                    !route.contains('{'),
                    "{method} {path} answered {}: {text}",
                    r.status
                );
            }
        }
        // B's credential on A's path is 403 on every route.
        let path = s.api(&fill(route, &ids, &urn));
        let mut req = s.req(method, &path).auth(Auth::Signed(b.clone()));
        if !body.is_null() {
            req = req.json(&body);
        }
        req.send().expect_fss(403, "FSS.0403");
    }

    // Everything of A is still there and still runs.
    s.get(&format!("/functions/{name}/config")).expect(200);
    s.get(&format!("/functions/{name}/aliases/live"))
        .expect(200);
    s.get(&format!("/dependencies/{}/version/1", ids.dep))
        .expect(200);
    s.get(&format!("/functions/{urn}/events/{}", ids.event))
        .expect(200);
    s.get(&format!("/triggers/{urn}/TIMER/{}", ids.trigger))
        .expect(200);
    s.invoke_pid(&urn);
}
