//! Function CRUD over the REST API (SPEC.md 1 and 2): create, list, config, code, delete, every
//! refusal with its status and FSS code, and URNs in every accepted form.

use std::collections::BTreeSet;

use fgs_e2e::fixture::{self, bootstrap_zip, custom_zip_body, RUNTIME};
use fgs_e2e::{b64, json, unique, Server, ServerOpts, Value};

fn server() -> Server {
    Server::start(ServerOpts::default())
}

fn inline_body(name: &str) -> Value {
    json!({
        "func_name": name,
        "package": "default",
        "runtime": "Custom",
        "handler": "bootstrap",
        "memory_size": 128,
        "timeout": 30,
        "code_type": "inline",
        "func_code": {"file": b64(RUNTIME.as_bytes())},
    })
}

fn sha512_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(bytes))
}

fn names(list: &Value) -> Vec<String> {
    list["functions"]
        .as_array()
        .unwrap_or_else(|| panic!("no functions array in {list}"))
        .iter()
        .map(|f| {
            f["func_name"]
                .as_str()
                .expect("func_name is a string")
                .to_owned()
        })
        .collect()
}

#[test]
fn create_zip_returns_the_function_object() {
    let s = server();
    let zip = bootstrap_zip(RUNTIME);
    let mut body = custom_zip_body("zipfn", &zip);
    body["description"] = json!("made by e2e");
    body["user_data"] = json!(r#"{"A":"1"}"#);
    let r = s.post("/functions", &body);
    r.expect(200);
    let f = r.json();
    let p = &s.cred.project_id;
    assert_eq!(
        f["func_urn"],
        json!(format!("urn:fss:local:{p}:function:default:zipfn:latest")),
        "{f}"
    );
    assert_eq!(f["func_name"], "zipfn");
    assert_eq!(f["package"], "default");
    assert_eq!(f["runtime"], "Custom");
    assert_eq!(f["handler"], "bootstrap");
    assert_eq!(f["memory_size"], 128);
    assert_eq!(f["timeout"], 30);
    assert_eq!(f["code_type"], "zip");
    assert_eq!(f["namespace"], json!(p));
    assert_eq!(f["version"], "latest");
    assert_eq!(f["description"], "made by e2e");
    assert_eq!(f["user_data"], r#"{"A":"1"}"#);
    // SPEC.md 2: cpu = memory/128*100+200 millicores; digest = sha512 hex of the package.
    assert_eq!(f["cpu"], 300);
    assert_eq!(f["code_size"], json!(zip.len()));
    assert_eq!(f["digest"], json!(sha512_hex(&zip)));
    assert!(
        f["func_id"].as_str().is_some_and(|id| !id.is_empty()),
        "func_id: {f}"
    );
    assert!(!f["last_modified"].is_null(), "last_modified: {f}");

    // GET config answers the same object.
    let g = s.get("/functions/zipfn/config");
    g.expect(200);
    let g = g.json();
    for k in [
        "func_urn",
        "func_name",
        "runtime",
        "memory_size",
        "timeout",
        "digest",
        "code_size",
        "cpu",
    ] {
        assert_eq!(g[k], f[k], "field {k}");
    }
}

#[test]
fn create_inline_custom_function_runs() {
    let s = server();
    let r = s.post("/functions", &inline_body("inl"));
    r.expect(200);
    assert_eq!(r.json()["code_type"], "inline");
    let inv = s.invoke("inl", &json!({"ping": "pong"}));
    inv.expect_ok();
    assert_eq!(inv.json(), json!({"ping": "pong"}));
}

#[test]
fn list_pages_with_marker_and_maxitems() {
    let s = server();
    let mut want = BTreeSet::new();
    for i in 0..5 {
        let name = format!("page{i}");
        s.post("/functions", &inline_body(&name)).expect(200);
        want.insert(name);
    }
    let mut other = inline_body("elsewhere");
    other["package"] = json!("pkg2");
    s.post("/functions", &other).expect(200);
    want.insert("elsewhere".to_owned());

    let all = s.get("/functions");
    all.expect(200);
    let all = all.json();
    assert_eq!(names(&all).into_iter().collect::<BTreeSet<_>>(), want);
    assert_eq!(all["count"], 6, "{all}");

    // Page through two at a time.
    let mut seen = Vec::new();
    let mut marker = 0u64;
    for _ in 0..10 {
        let page = s.get(&format!("/functions?marker={marker}&maxitems=2"));
        page.expect(200);
        let page = page.json();
        let got = names(&page);
        assert!(got.len() <= 2, "maxitems=2 gave {got:?}");
        assert_eq!(page["count"], 6, "count is the total: {page}");
        seen.extend(got.clone());
        let next = page["next_marker"]
            .as_u64()
            .unwrap_or_else(|| panic!("next_marker is a number: {page}"));
        if got.is_empty() || next >= 6 {
            break;
        }
        assert_eq!(
            next,
            marker + got.len() as u64,
            "next_marker after marker {marker}: {page}"
        );
        marker = next;
    }
    assert_eq!(seen.len(), 6, "pages overlap or miss functions: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), want);

    let first = s.get("/functions?maxitems=2").json();
    assert_eq!(first["next_marker"], 2, "{first}");

    let pkg = s.get("/functions?package_name=pkg2");
    pkg.expect(200);
    assert_eq!(names(&pkg.json()), vec!["elsewhere".to_owned()]);
}

#[test]
fn update_config_changes_what_is_stored_and_run() {
    let s = server();
    let mark = unique("cfg");
    s.create_fixture("cfgfn", &mark, &[("GREETING", "before")], json!({}));
    let env = s.invoke("cfgfn", &json!({"op": "env"})).text();
    assert!(env.contains("GREETING=before"), "{env}");

    let ud = fixture::user_data(&[("FX_MARK", &mark), ("GREETING", "after")]);
    let r = s.put(
        "/functions/cfgfn/config",
        &json!({
            "func_name": "cfgfn",
            "runtime": "Custom",
            "handler": "bootstrap",
            "memory_size": 256,
            "timeout": 60,
            "user_data": ud,
            "description": "updated",
        }),
    );
    r.expect(200);
    let f = r.json();
    assert_eq!(f["memory_size"], 256, "{f}");
    assert_eq!(f["timeout"], 60);
    assert_eq!(f["cpu"], 400);
    assert_eq!(f["description"], "updated");

    let g = s.get("/functions/cfgfn/config").json();
    assert_eq!(g["memory_size"], 256);
    assert_eq!(g["timeout"], 60);
    assert_eq!(g["user_data"], json!(ud));

    // The next invocation sees the new configuration.
    let env = s.invoke("cfgfn", &json!({"op": "env"})).text();
    assert!(
        env.contains("GREETING=after"),
        "new user_data not applied: {env}"
    );
    assert!(env.contains("RUNTIME_MEMORY=256"), "{env}");
    assert!(env.contains("RUNTIME_TIMEOUT=60"), "{env}");
}

#[test]
fn get_and_update_code_serves_the_new_code() {
    let s = server();
    let zip1 = bootstrap_zip(RUNTIME);
    s.post("/functions", &custom_zip_body("codefn", &zip1))
        .expect(200);

    let c = s.get("/functions/codefn/code");
    c.expect(200);
    let c = c.json();
    assert_eq!(c["code_type"], "zip", "{c}");
    assert_eq!(c["code_filename"], "code.zip", "{c}");
    assert_eq!(c["digest"], json!(sha512_hex(&zip1)));
    assert_eq!(c["code_size"], json!(zip1.len()));
    assert!(c["func_code"].is_object(), "func_code: {c}");

    // Warm an instance of the old code, then replace the code.
    assert_eq!(s.invoke("codefn", &json!({"v": 1})).json(), json!({"v": 1}));
    let v2 = RUNTIME.replace("*) cat \"$T.ev\" ;;", "*) printf '{\"code\":\"v2\"}' ;;");
    assert_ne!(
        v2, RUNTIME,
        "the fixture's default branch moved; fix this test"
    );
    let zip2 = bootstrap_zip(&v2);
    let r = s.put(
        "/functions/codefn/code",
        &json!({"code_type": "zip", "code_filename": "v2.zip", "func_code": {"file": b64(&zip2)}}),
    );
    r.expect(200);
    assert_eq!(r.json()["digest"], json!(sha512_hex(&zip2)), "{}", r.text());

    let c = s.get("/functions/codefn/code").json();
    assert_eq!(c["digest"], json!(sha512_hex(&zip2)));
    assert_eq!(c["code_filename"], "v2.zip");
    let cfg = s.get("/functions/codefn/config").json();
    assert_eq!(
        cfg["digest"],
        json!(sha512_hex(&zip2)),
        "config digest follows the code"
    );
    assert_eq!(cfg["code_size"], json!(zip2.len()));

    let inv = s.invoke("codefn", &json!({"v": 1}));
    assert_eq!(
        inv.json(),
        json!({"code": "v2"}),
        "the old code is still served"
    );
}

#[test]
fn delete_then_everything_is_404() {
    let s = server();
    s.post("/functions", &inline_body("gone")).expect(200);
    s.delete("/functions/gone").expect(204);
    s.get("/functions/gone/config").expect_fss(404, "FSS.1051");
    s.get("/functions/gone/code").expect_fss(404, "FSS.1051");
    s.invoke("gone", &json!({})).expect_fss(404, "FSS.1051");
    s.delete("/functions/gone").expect_fss(404, "FSS.1051");
    assert_eq!(s.get("/functions").json()["count"], 0);
    // The name is free again.
    s.post("/functions", &inline_body("gone")).expect(200);
}

#[test]
fn bad_create_requests_are_refused_and_change_nothing() {
    let s = server();
    s.post("/functions", &inline_body("exists")).expect(200);
    let before = s.get("/functions").json();

    let with = |k: &str, v: Value| {
        let mut b = inline_body("newfn");
        b[k] = v;
        b
    };
    let user_data = |ud: &str| with("user_data", json!(ud));
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "name starts with digit",
            with("func_name", json!("1abc")),
            400,
            "FSS.1002",
        ),
        (
            "name with dot",
            with("func_name", json!("a.b")),
            400,
            "FSS.1002",
        ),
        (
            "name ends with dash",
            with("func_name", json!("abc-")),
            400,
            "FSS.1002",
        ),
        (
            "name too long",
            with("func_name", json!("a".repeat(61))),
            400,
            "FSS.1002",
        ),
        ("empty name", with("func_name", json!("")), 400, "FSS.1002"),
        (
            "handler with a space",
            with("handler", json!("boot strap")),
            400,
            "FSS.1003",
        ),
        (
            "handler too long",
            with("handler", json!("b".repeat(129))),
            400,
            "FSS.1003",
        ),
        // Names FunctionGraph never had; real ones the host cannot run are refused the same way.
        (
            "foreign runtime",
            with("runtime", json!("Node.js4.3")),
            400,
            "FSS.1005",
        ),
        (
            "unknown runtime",
            with("runtime", json!("Cobol9")),
            400,
            "FSS.1005",
        ),
        (
            "bad code_type",
            with("code_type", json!("tarball")),
            400,
            "FSS.1006",
        ),
        (
            "memory 100",
            with("memory_size", json!(100)),
            400,
            "FSS.1007",
        ),
        (
            "memory 20000",
            with("memory_size", json!(20000)),
            400,
            "FSS.1007",
        ),
        ("timeout 2", with("timeout", json!(2)), 400, "FSS.1008"),
        (
            "timeout 259201",
            with("timeout", json!(259201)),
            400,
            "FSS.1008",
        ),
        ("user_data not JSON", user_data("not json"), 400, "FSS.1009"),
        (
            "user_data reserved name",
            user_data(r#"{"RUNTIME_FUNC_NAME":"x"}"#),
            400,
            "FSS.1009",
        ),
        (
            "user_data RUNTIME_API_ADDR",
            user_data(r#"{"RUNTIME_API_ADDR":"x"}"#),
            400,
            "FSS.1009",
        ),
        (
            "duplicate",
            with("func_name", json!("exists")),
            409,
            "FSS.1061",
        ),
        (
            "inline over 10 KB",
            with(
                "func_code",
                json!({"file": b64(&vec![b'#'; 10 * 1024 + 1])}),
            ),
            400,
            "FSS.1072",
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, status, code) in &cases {
        let r = s.post("/functions", body);
        let got = (
            r.status,
            serde_json::from_slice::<Value>(&r.body)
                .ok()
                .map(|v| v["error_code"].clone()),
        );
        if got != (*status, Some(json!(code))) {
            failures.push(format!(
                "{what}: want {status} {code}, got {} {}",
                r.status,
                r.text()
            ));
        }
    }
    // Not JSON at all.
    let r = s
        .req("POST", &s.api("/functions"))
        .raw("{\"func_name\": ")
        .send();
    if (r.status, r.error_code().as_str()) != (400, "FSS.0406") {
        failures.push(format!(
            "truncated JSON: want 400 FSS.0406, got {} {}",
            r.status,
            r.text()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} refusals wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    assert_eq!(
        s.get("/functions").json(),
        before,
        "a refused create changed the list"
    );
    s.get("/functions/newfn/config").expect_fss(404, "FSS.1051");
}

#[test]
fn bad_updates_change_nothing() {
    let s = server();
    s.post("/functions", &inline_body("keep")).expect(200);
    let cfg = s.get("/functions/keep/config").json();
    let code = s.get("/functions/keep/code").json();

    let mut bad = json!({"func_name": "keep", "runtime": "Custom", "handler": "bootstrap", "memory_size": 100, "timeout": 30});
    s.put("/functions/keep/config", &bad)
        .expect_fss(400, "FSS.1007");
    bad["memory_size"] = json!(256);
    bad["timeout"] = json!(1);
    s.put("/functions/keep/config", &bad)
        .expect_fss(400, "FSS.1008");
    bad["timeout"] = json!(30);
    bad["user_data"] = json!(r#"{"RUNTIME_PROJECT_ID":"x"}"#);
    s.put("/functions/keep/config", &bad)
        .expect_fss(400, "FSS.1009");
    s.req("PUT", &s.api("/functions/keep/config"))
        .raw("[")
        .send()
        .expect_fss(400, "FSS.0406");
    s.put(
        "/functions/keep/code",
        &json!({"code_type": "tarball", "func_code": {"file": b64(b"x")}}),
    )
    .expect_fss(400, "FSS.1006");
    let big =
        json!({"code_type": "inline", "func_code": {"file": b64(&vec![b'#'; 10 * 1024 + 1])}});
    s.put("/functions/keep/code", &big)
        .expect_fss(400, "FSS.1072");
    s.put("/functions/nosuch/config", &json!({"func_name": "nosuch", "runtime": "Custom", "handler": "bootstrap", "memory_size": 128, "timeout": 30}))
        .expect_fss(404, "FSS.1051");
    s.put(
        "/functions/nosuch/code",
        &json!({"code_type": "inline", "func_code": {"file": b64(b"x")}}),
    )
    .expect_fss(404, "FSS.1051");

    assert_eq!(
        s.get("/functions/keep/config").json(),
        cfg,
        "a refused update changed the config"
    );
    assert_eq!(
        s.get("/functions/keep/code").json(),
        code,
        "a refused update changed the code"
    );
}

/// Every form of SPEC.md 1, raw and percent-encoded, for GET config and for invoke.
#[test]
fn urn_in_every_form() {
    let s = server();
    s.create_fixture("urnfn", &unique("urn"), &[], json!({}));
    let p = s.cred.project_id.clone();
    let forms = [
        "urnfn".to_owned(),
        "default:urnfn".to_owned(),
        format!("{p}:default:urnfn"),
        format!("{p}:default:urnfn:latest"),
        format!("urn:fss:local:{p}:function:default:urnfn:latest"),
        format!("urn:fss:local:{p}:function:default:urnfn"),
    ];
    let mut failures = Vec::new();
    for form in &forms {
        for seg in [
            form.clone(),
            form.replace(':', "%3A"),
            form.replace(':', "%3a"),
        ] {
            let r = s.get(&format!("/functions/{seg}/config"));
            if r.status != 200 || r.json()["func_name"] != "urnfn" {
                failures.push(format!("GET config {seg}: {} {}", r.status, r.text()));
            }
            let r = s.invoke(&seg, &json!({"form": seg}));
            if r.status != 200 || r.json() != json!({"form": seg}) {
                failures.push(format!("invoke {seg}: {} {}", r.status, r.text()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A function outside package `default` needs its package named.
    let mut other = custom_zip_body("inpkg", &bootstrap_zip(RUNTIME));
    other["package"] = json!("pkg2");
    s.post("/functions", &other).expect(200);
    s.get("/functions/pkg2:inpkg/config").expect(200);
    s.get(&format!(
        "/functions/urn%3Afss%3Alocal%3A{p}%3Afunction%3Apkg2%3Ainpkg%3Alatest/config"
    ))
    .expect(200);
    s.get("/functions/inpkg/config").expect_fss(404, "FSS.1051");

    // Malformed references are 400.
    for bad in [
        "a:b:c:d:e:f",
        "urn:fss:local:x:function:default:urnfn:latest:extra",
        "urn%3Afss%3A%3A%3A",
    ] {
        let r = s.get(&format!("/functions/{bad}/config"));
        assert_eq!(r.status, 400, "GET config {bad}: {}", r.text());
        let r = s.invoke(bad, &json!({}));
        assert_eq!(r.status, 400, "invoke {bad}: {}", r.text());
    }
}

#[test]
fn region_flag_names_the_urn() {
    let s = Server::start(ServerOpts::default().flag("--region", "eu-test-1"));
    let f = s.post("/functions", &inline_body("regfn"));
    f.expect(200);
    let urn = f.json()["func_urn"].as_str().unwrap_or_default().to_owned();
    assert!(urn.starts_with("urn:fss:eu-test-1:"), "{urn}");
    s.get(&format!("/functions/{urn}/config")).expect(200);
}

#[test]
fn max_instances_reserved_and_quotas_routes() {
    let s = server();
    s.post("/functions", &inline_body("lim")).expect(200);
    s.put(
        "/functions/lim/config-max-instance",
        &json!({"max_instance_num": 5}),
    )
    .expect(200);
    s.put(
        "/functions/nosuch/config-max-instance",
        &json!({"max_instance_num": 5}),
    )
    .expect_fss(404, "FSS.1051");
    s.put(
        "/functions/lim/config-max-instance",
        &json!({"max_instance_num": 5000}),
    )
    .expect_fss(400, "FSS.0400");
    s.put(
        "/functions/lim/reservedinstances",
        &json!({"count": 0, "idle_mode": false}),
    )
    .expect(200);
    s.get("/functions/reservedinstances").expect(200);
    let q = s.get("/quotas");
    q.expect(200);
    assert!(
        q.text().contains("fgs_func_num") || q.json().is_object(),
        "{}",
        q.text()
    );
}
