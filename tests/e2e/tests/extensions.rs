//! The Extension API and Telemetry API (SPEC.md 5) through the real binary: extensions shipped in
//! a function's code and in dependencies, registered, told of every invocation, subscribed to
//! telemetry; and every way a start can fail.

use std::time::{Duration, Instant};

use fgs_e2e::fixture::{b64, zip_files};
use fgs_e2e::{json, Resp, Server, ServerOpts, Value};

const BOOTSTRAP: &[u8] = include_bytes!("../fixtures/extensions/bootstrap");
const EXT_PY: &[u8] = include_bytes!("../fixtures/extensions/ext.py");

/// `extension/<name>` running ext.py on `port`.
pub(crate) fn py_ext(name: &str, port: u16) -> (String, Vec<u8>) {
    (
        format!("extension/{name}"),
        format!("#!/bin/bash\nexec /usr/bin/python3.11 -u ./ext.py {name} {port}\n").into_bytes(),
    )
}

pub(crate) fn code(extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut files: Vec<(&str, &[u8], u32)> = vec![
        ("bootstrap", BOOTSTRAP, 0o755),
        ("extension/ext.py", EXT_PY, 0o644),
    ];
    for (n, c) in extra {
        files.push((n.as_str(), c.as_slice(), 0o755));
    }
    zip_files(&files)
}

pub(crate) fn create(s: &Server, name: &str, zip: &[u8], extra: Value) {
    let mut body = json!({
        "func_name": name, "runtime": "Custom", "handler": "bootstrap", "memory_size": 256,
        "timeout": 10, "code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(zip)},
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    s.post("/functions", &body).expect(200);
}

#[track_caller]
fn ok(r: &Resp) {
    r.expect_ok();
}

#[track_caller]
fn func_err(r: &Resp, code: u32) -> String {
    r.expect(200);
    assert_eq!(
        r.header("x-func-err-code"),
        Some(code.to_string()),
        "{}",
        r.text()
    );
    r.json()["errorMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The lines of one log file the fixture's `files` op returns.
fn lines(s: &Server, urn: &str, file: &str) -> Vec<String> {
    let r = s.invoke(urn, &json!({"op": "files"}));
    ok(&r);
    r.text()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{file} ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_invocation_reaches_every_extension_once() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "watched",
        &code(&[py_ext("extensionA.sh", 8081), py_ext("extensionB.sh", 8082)]),
        json!({}),
    );
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = s.invoke("watched", &json!({"n": i}));
        ok(&r);
        ids.push(r.header("x-cff-request-id").unwrap());
    }
    // The registrations answered 200 with the function's name and version.
    let reg = lines(&s, "watched", "register.log");
    assert_eq!(reg.len(), 2, "{reg:?}");
    for l in &reg {
        let (_, rest) = l.split_once(' ').unwrap();
        let (status, body) = rest.split_once(' ').unwrap();
        assert_eq!(status, "200", "{l}");
        let b: Value = serde_json::from_str(body).unwrap();
        assert_eq!(b["functionName"], "watched");
        assert_eq!(b["functionVersion"], "latest");
        assert_eq!(b["errorInfo"]["errorType"], "");
    }
    let urn = format!(
        "urn:fss:local:{}:function:default:watched:latest",
        s.cred.project_id
    );
    for ext in ["extensionA.sh", "extensionB.sh"] {
        let events: Vec<Value> = lines(&s, "watched", &format!("ext-{ext}.log"))
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for id in &ids {
            let n = events
                .iter()
                .filter(|e| e["traceId"] == id.as_str())
                .count();
            assert_eq!(n, 1, "{ext} got {id} {n} times: {events:?}");
        }
        assert!(
            events
                .iter()
                .all(|e| e["invokedFunctionUrn"] == urn.as_str()),
            "{events:?}"
        );
    }
}

#[test]
fn invoked_urn_names_the_version_and_the_alias() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "named",
        &code(&[py_ext("extensionA.sh", 8081)]),
        json!({}),
    );
    s.post("/functions/named/versions", &json!({"version": "v1"}))
        .expect(200);
    s.post(
        "/functions/named/aliases",
        &json!({"name": "live", "version": "v1"}),
    )
    .expect(200);
    let p = s.cred.project_id.clone();
    let v1 = format!("{p}:default:named:v1");
    let alias = format!("{p}:default:named:!live");
    let id_v = s
        .invoke(&v1, &json!({}))
        .header("x-cff-request-id")
        .unwrap();
    let id_a = s
        .invoke(&alias, &json!({}))
        .header("x-cff-request-id")
        .unwrap();
    let events: Vec<Value> = lines(&s, &v1, "ext-extensionA.sh.log")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let urn_of = |id: &str| {
        events
            .iter()
            .find(|e| e["traceId"] == id)
            .map(|e| e["invokedFunctionUrn"].clone())
    };
    let base = format!("urn:fss:local:{p}:function:default:named");
    assert_eq!(
        urn_of(&id_v),
        Some(json!(format!("{base}:v1"))),
        "{events:?}"
    );
    assert_eq!(
        urn_of(&id_a),
        Some(json!(format!("{base}:!live"))),
        "{events:?}"
    );
}

#[test]
fn instances_each_own_their_extension_ports() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "one",
        &code(&[py_ext("extensionA.sh", 8081)]),
        json!({}),
    );
    create(
        &s,
        "two",
        &code(&[py_ext("extensionA.sh", 8081)]),
        json!({}),
    );
    ok(&s.invoke("one", &json!({})));
    ok(&s.invoke("two", &json!({})));
    // Two instances of one function at once: both extensions sit on 8081.
    std::thread::scope(|t| {
        let a = t.spawn(|| s.invoke("one", &json!({"op": "say", "text": "a"})));
        let b = t.spawn(|| s.invoke("one", &json!({"op": "say", "text": "b"})));
        ok(&a.join().unwrap());
        ok(&b.join().unwrap());
    });
}

const REFUSALS: &str = r#"#!/bin/bash
api="http://$EXTENSION_API_ADDR/extension/register"
r() { curl -s -o /tmp/body -w '%{http_code}' -X POST "$api" "$@"; echo " $(cat /tmp/body)"; }
n='FunctionGraph-Extension-Name'
a='FunctionGraph-Extension-Address'
{
  echo "missing $(r -H "$n: extensionR.sh")"
  echo "badaddr $(r -H "$n: extensionR.sh" -H "$a: 127.0.0.1:9000")"
  echo "wildcard $(r -H "$n: extensionR.sh" -H "$a: 0.0.0.0:8082")"
  echo "unknown $(r -H "$n: extensionX.sh" -H "$a: 127.0.0.1:8082")"
  echo "ok $(r -H "$n: extensionR.sh" -H "$a: 127.0.0.1:8082")"
  echo "again $(r -H "$n: extensionR.sh" -H "$a: 127.0.0.1:8082")"
  echo "moved $(r -H "$n: extensionR.sh" -H "$a: 127.0.0.1:8083")"
} > /tmp/reg.log
touch /tmp/r-done
sleep 3600
"#;

const PORT_TAKER: &str = r#"#!/bin/bash
api="http://$EXTENSION_API_ADDR/extension/register"
while [ ! -f /tmp/r-done ]; do sleep 0.05; done
s=$(curl -s -o /tmp/body2 -w '%{http_code}' -X POST "$api" -H 'FunctionGraph-Extension-Name: extensionS.sh' -H 'FunctionGraph-Extension-Address: 127.0.0.1:8082')
echo "taken $s $(cat /tmp/body2)" >> /tmp/reg.log
curl -s -o /dev/null -X POST "$api" -H 'FunctionGraph-Extension-Name: extensionS.sh' -H 'FunctionGraph-Extension-Address: 127.0.0.1:8084'
sleep 3600
"#;

#[test]
fn registration_refusals_have_their_status_and_error_type() {
    let s = Server::start(ServerOpts::default());
    let zip = code(&[
        (
            "extension/extensionR.sh".into(),
            REFUSALS.as_bytes().to_vec(),
        ),
        (
            "extension/extensionS.sh".into(),
            PORT_TAKER.as_bytes().to_vec(),
        ),
    ]);
    create(&s, "refused", &zip, json!({}));
    let reg = lines(&s, "refused", "reg.log");
    let find = |k: &str| -> (String, Value) {
        let l = reg
            .iter()
            .find(|l| l.starts_with(&format!("{k} ")))
            .unwrap_or_else(|| panic!("{k}: {reg:?}"));
        let rest = &l[k.len() + 1..];
        let (code, body) = rest.split_once(' ').unwrap();
        (
            code.to_string(),
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    };
    for (k, code, ty) in [
        ("missing", "400", "MissingHeader"),
        ("badaddr", "400", "InvalidAddress"),
        ("wildcard", "400", "InvalidAddress"),
        ("unknown", "403", "UnknownExtension"),
        ("ok", "200", ""),
        ("again", "200", ""),
        ("moved", "409", "AlreadyRegistered"),
        ("taken", "409", "PortInUse"),
    ] {
        let (c, body) = find(k);
        assert_eq!(c, code, "{k}: {body}");
        assert_eq!(body["errorInfo"]["errorType"], ty, "{k}: {body}");
        assert_eq!(body["functionName"], "refused", "{k}: {body}");
    }
}

#[test]
fn an_eleventh_extension_is_refused_and_the_start_fails() {
    let s = Server::start(ServerOpts::default().flag("--extension-init-timeout", "3s"));
    let mut files = Vec::new();
    for i in 1..=11u16 {
        let name = format!("extension{i:02}.sh");
        let script = if i <= 10 {
            format!(
                "#!/bin/bash\ncurl -s -o /dev/null -X POST http://$EXTENSION_API_ADDR/extension/register -H 'FunctionGraph-Extension-Name: {name}' -H 'FunctionGraph-Extension-Address: 127.0.0.1:{}' && touch /tmp/reg-{i}\nsleep 3600\n",
                8080 + i
            )
        } else {
            format!(
                "#!/bin/bash\nwhile [ $(ls /tmp/reg-* 2>/dev/null | wc -l) -lt 10 ]; do sleep 0.05; done\ncurl -s -w ' %{{http_code}}\\n' -X POST http://$EXTENSION_API_ADDR/extension/register -H 'FunctionGraph-Extension-Name: {name}' -H 'FunctionGraph-Extension-Address: 127.0.0.1:8081'\nsleep 3600\n"
            )
        };
        files.push((format!("extension/{name}"), script.into_bytes()));
    }
    create(&s, "crowded", &code(&files), json!({}));
    let msg = func_err(&s.invoke("crowded", &json!({})), 4217);
    assert!(
        msg.contains("extension11.sh (output:") && msg.contains("did not register within 3s"),
        "{msg}"
    );
    assert!(
        msg.contains("TooManyExtensions") && msg.contains("429"),
        "{msg}"
    );
}

#[test]
fn start_failures_are_4216_and_4217() {
    let s = Server::start(ServerOpts::default().flag("--extension-init-timeout", "2s"));
    // An extension folder without any extension*.sh.
    let zip = zip_files(&[
        ("bootstrap", BOOTSTRAP, 0o755),
        ("extension/README.md", b"none here", 0o644),
    ]);
    create(&s, "noscript", &zip, json!({}));
    let msg = func_err(&s.invoke("noscript", &json!({})), 4216);
    assert!(
        msg.starts_with("extension shell file is not found"),
        "{msg}"
    );

    let boom = (
        "extension/extensionBoom.sh".to_string(),
        b"#!/bin/bash\necho boom-reason >&2\nexit 3\n".to_vec(),
    );
    create(&s, "crashing", &code(&[boom]), json!({}));
    let msg = func_err(&s.invoke("crashing", &json!({})), 4217);
    assert!(msg.starts_with("extension exec failed, error:"), "{msg}");
    assert!(
        msg.contains("extensionBoom.sh exited with status 3") && msg.contains("boom-reason"),
        "{msg}"
    );

    let silent = (
        "extension/extensionQuiet.sh".to_string(),
        b"#!/bin/bash\nsleep 600\n".to_vec(),
    );
    create(&s, "silent", &code(&[silent]), json!({}));
    let t0 = Instant::now();
    let msg = func_err(&s.invoke("silent", &json!({})), 4217);
    let took = t0.elapsed();
    assert!(
        msg.contains("extensionQuiet.sh did not register within 2s"),
        "{msg}"
    );
    assert!(
        took < Duration::from_secs(8),
        "bounded by the deadline, took {took:?}"
    );
    // The failures leave nothing running: the tree is killed by a signal, so it is gone
    // shortly after the answer, not necessarily before it (as in invoke.rs's timeout test).
    assert!(
        fgs_e2e::wait_until(Duration::from_secs(10), || fgs_e2e::pgrep(
            "extensionQuiet.sh"
        )
        .is_empty()),
        "extensionQuiet.sh still runs: {:?}",
        fgs_e2e::pgrep("extensionQuiet.sh")
    );
}

#[test]
fn dependency_extensions_start_before_the_code_s() {
    let s = Server::start(ServerOpts::default());
    let dep = zip_files(&[
        ("extension/ext.py", EXT_PY, 0o644),
        (
            "extension/extensionDep.sh",
            b"#!/bin/bash\nexec /usr/bin/python3.11 -u ./ext.py extensionDep.sh 8085\n",
            0o755,
        ),
    ]);
    let d = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&dep), "runtime": "Custom", "name": "extdep"}),
    );
    d.expect(200);
    create(
        &s,
        "withdep",
        &code(&[py_ext("extensionA.sh", 8081)]),
        json!({"depend_version_list": [d.json()["id"]]}),
    );
    let r = s.invoke("withdep", &json!({}));
    ok(&r);
    let id = r.header("x-cff-request-id").unwrap();
    let dep_events = lines(&s, "withdep", "ext-extensionDep.sh.log");
    assert!(dep_events.iter().any(|l| l.contains(&id)), "{dep_events:?}");
}

#[test]
fn telemetry_delivers_platform_events_and_log_lines() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "observed",
        &code(&[py_ext("extensionT.sh", 8086)]),
        json!({"user_data": json!({"EXT_TELEMETRY": "1"}).to_string()}),
    );
    let r = s.invoke("observed", &json!({"op": "say"}));
    ok(&r);
    let id = r.header("x-cff-request-id").unwrap();
    let mut events = Vec::new();
    let found = fgs_e2e::wait_until(Duration::from_secs(10), || {
        events = lines(&s, "observed", "telemetry.log")
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect();
        events
            .iter()
            .any(|e| e["type"] == "platform.report" && e["record"]["traceId"] == id.as_str())
    });
    assert!(found, "{events:#?}");
    let of = |ty: &str| {
        events
            .iter()
            .filter(|e| e["type"] == ty)
            .collect::<Vec<_>>()
    };
    assert!(
        !of("platform.initStart").is_empty(),
        "initStart is kept for a late subscriber"
    );
    assert!(!of("platform.initReport").is_empty());
    let start = of("platform.start")
        .into_iter()
        .find(|e| e["record"]["traceId"] == id.as_str())
        .expect("platform.start");
    assert!(start["time"].is_string());
    let report = of("platform.report")
        .into_iter()
        .find(|e| e["record"]["traceId"] == id.as_str())
        .unwrap();
    let m = &report["record"]["metrics"];
    assert!(m["durationMs"].as_f64().unwrap() > 0.0, "{report}");
    assert!(m["billedDurationMs"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(m["memorySizeMB"], 256, "{report}");
    assert!(m["maxMemoryUsedMB"].is_u64(), "{report}");
    assert_eq!(report["record"]["status"], "success");
    let said = of("function").into_iter().find(|e| {
        e["record"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("function says {id}")))
    });
    let said = said.unwrap_or_else(|| panic!("no function line: {events:#?}"));
    assert_eq!(said["record"]["traceId"], id.as_str());
    assert!(
        of("extension")
            .iter()
            .any(|e| e["record"]["extensionName"] == "extensionT.sh"),
        "{events:#?}"
    );
}

#[test]
fn a_hanging_subscriber_does_not_slow_invocations() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "stuck",
        &code(&[py_ext("extensionH.sh", 8087)]),
        json!({"user_data": json!({"EXT_TELEMETRY": "1", "EXT_HANG_TELEMETRY": "1"}).to_string()}),
    );
    ok(&s.invoke("stuck", &json!({})));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t0 = Instant::now();
        ok(&s.invoke("stuck", &json!({"op": "say"})));
        slowest = slowest.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        slowest < Duration::from_secs(2),
        "slowest call took {slowest:?}"
    );
}

#[test]
fn an_extension_that_dies_gets_its_instance_replaced() {
    let s = Server::start(ServerOpts::default());
    create(
        &s,
        "fragile",
        &code(&[py_ext("extensionD.sh", 8088)]),
        json!({"user_data": json!({"EXT_DIE_AFTER_INVOKE": "1"}).to_string()}),
    );
    let first = s.invoke("fragile", &json!({"op": "iid"}));
    ok(&first);
    // The extension exits after taking that event; the supervisor reports it.
    std::thread::sleep(Duration::from_millis(800));
    let second = s.invoke("fragile", &json!({"op": "iid"}));
    ok(&second);
    assert_ne!(
        first.text(),
        second.text(),
        "the instance whose extension died was replaced"
    );
}

const SUBSCRIBER: &str = r#"#!/bin/bash
api="http://$EXTENSION_API_ADDR"
n='FunctionGraph-Extension-Name: extensionW.sh'
curl -s -o /dev/null -X POST "$api/extension/register" -H "$n" -H 'FunctionGraph-Extension-Address: 127.0.0.1:8082'
t() { curl -s -o /dev/null -w '%{http_code}' -X POST "$api/telemetry" "$@"; }
ok='{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:8082/t"},"types":["platform"]}'
{
  echo "stranger $(t -H 'FunctionGraph-Extension-Name: extensionX.sh' -d "$ok")"
  echo "get $(t -H "$n" -d '{"subscriber":{"protocol":"GET","uri":"http://127.0.0.1:8082/t"},"types":["platform"]}')"
  echo "port $(t -H "$n" -d '{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:9000/t"},"types":["platform"]}')"
  echo "port8080 $(t -d '{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:8080"},"types":["platform"]}')"
  echo "port8091 $(t -d '{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:8091"},"types":["platform"]}')"
  echo "remote $(t -H "$n" -d '{"subscriber":{"protocol":"POST","uri":"http://10.0.0.1:8082/t"},"types":["platform"]}')"
  echo "types $(t -H "$n" -d '{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:8082/t"},"types":["bogus"]}')"
  echo "json $(t -H "$n" -d 'not json')"
  echo "good $(t -H "$n" -d "$ok")"
  echo "second $(t -H "$n" -d "$ok")"
  # A second subscriber with only the documented body, on another port.
  echo "second_noname $(curl -s -o /tmp/second.json -w '%{http_code}' -X POST "$api/telemetry" -d '{"subscriber":{"protocol":"POST","uri":"http://127.0.0.1:8083"},"types":["platform"]}')"
  echo "second_body $(cat /tmp/second.json)"
} > /tmp/reg.log
sleep 3600
"#;

#[test]
fn telemetry_subscriptions_are_validated() {
    let s = Server::start(ServerOpts::default());
    let zip = code(&[(
        "extension/extensionW.sh".into(),
        SUBSCRIBER.as_bytes().to_vec(),
    )]);
    create(&s, "subscribed", &zip, json!({}));
    // The script goes on after it registered, while the function already runs.
    let mut got = Vec::new();
    fgs_e2e::wait_until(Duration::from_secs(10), || {
        got = lines(&s, "subscribed", "reg.log");
        got.iter().any(|l| l.starts_with("second_body "))
    });
    for (k, code) in [
        ("stranger", "400"),
        ("get", "400"),
        ("port", "400"),
        ("port8080", "400"),
        ("port8091", "400"),
        ("remote", "400"),
        ("types", "400"),
        ("json", "400"),
        ("good", "200"),
        ("second", "400"),
        ("second_noname", "400"),
    ] {
        assert!(got.contains(&format!("{k} {code}")), "{k}: {got:?}");
    }
    // Issue 17: the refusal of a second subscriber is the Extension API's error shape.
    let body = got
        .iter()
        .find_map(|l| l.strip_prefix("second_body "))
        .expect("second_body line");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["errorType"], "InvalidSubscription", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("only one is allowed"),
        "{body}"
    );
}
