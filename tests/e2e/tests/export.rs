//! Exporting a function and importing it (issue 20, docs/api.md): the export is a zip a user
//! keeps; importing it creates the same function, here and in another fgs process.

use fgs_e2e::fixture::{user_data, RUNTIME};
use fgs_e2e::{b64, json, Server, ServerOpts, Value};

fn export(s: &Server, name: &str, query: &str) -> Vec<u8> {
    let r = s
        .req("GET", &format!("{}?{query}", s.api(&format!("/functions/{name}/export"))))
        .send();
    r.expect(200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/zip"));
    r.body
}

fn import(s: &Server, name: &str, zip: &[u8]) -> Value {
    let body = json!({"func_name": name, "file_name": "f.zip", "file_type": "zip",
                      "file_code": b64(zip), "package": "default"});
    let r = s.post("/functions/import", &body);
    r.expect(200);
    r.json()
}

/// The fields an import must carry over.
fn same(a: &Value, b: &Value) {
    for k in [
        "runtime", "handler", "memory_size", "timeout", "user_data", "description",
        "code_type", "code_filename", "digest", "code_size", "initializer_handler",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
}

#[test]
fn an_export_imports_here_and_in_another_fgs() {
    let a = Server::start(ServerOpts::default());
    let created = a.create_fixture(
        "exported",
        "exp",
        &[("GREETING", "hi")],
        json!({"description": "to keep", "memory_size": 256, "tags": {"team": "blue"}}),
    );
    let zip = export(&a, "exported", "code=true&config=true");

    // Into another process with its own data dir.
    let b = Server::start(ServerOpts::default());
    let imported = import(&b, "exported", &zip);
    same(&created, &imported);
    let r = b.invoke("exported", &json!({"op": "env"}));
    r.expect(200);
    assert!(r.text().contains("GREETING=hi"), "{}", r.text());
    let tags = b
        .req("GET", &format!("/v2/{}/functions/exported/tags", b.cred.project_id))
        .send();
    tags.expect(200);
    assert_eq!(tags.json()["tags"], json!([{"key": "team", "value": "blue"}]));

    // Here, under another name; inline code comes back as inline code.
    let inline = json!({
        "func_name": "inline-exp", "package": "default", "runtime": "Custom",
        "handler": "bootstrap", "memory_size": 128, "timeout": 30, "code_type": "inline",
        "func_code": {"file": b64(RUNTIME.as_bytes())}, "user_data": user_data(&[("A", "1")]),
    });
    let orig = a.post("/functions", &inline);
    orig.expect(200);
    let copy = import(&a, "inline-copy", &export(&a, "inline-exp", "code=true&config=true"));
    same(&orig.json(), &copy);
    assert_eq!(copy["func_name"], "inline-copy");
    a.invoke("inline-copy", &json!({"op": "pid"})).expect(200);
}

#[test]
fn exports_and_imports_refuse_what_they_cannot_do() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("exp2", "exp2", &[], json!({}));
    let only_config = export(&s, "exp2", "type=config");
    let only_code = export(&s, "exp2", "type=code");
    for bad in [&only_config, &only_code] {
        let body = json!({"func_name": "nope", "file_code": b64(bad), "file_type": "zip"});
        s.post("/functions/import", &body).expect_fss(400, "FSS.0400");
    }
    s.post("/functions/import", &json!({"func_name": "nope", "file_code": b64(b"not a zip")}))
        .expect_fss(400, "FSS.1081");
    s.get("/functions/nope/config").expect_fss(404, "FSS.1051");
    // The name is taken.
    let full = export(&s, "exp2", "code=true&config=true");
    let body = json!({"func_name": "exp2", "file_code": b64(&full)});
    s.post("/functions/import", &body).expect_fss(409, "FSS.1061");
    s.req("GET", &s.api("/functions/exp2/export"))
        .send()
        .expect_fss(400, "FSS.0400");
    s.req("GET", &format!("{}?type=code&code=true", s.api("/functions/exp2/export")))
        .send()
        .expect_fss(400, "FSS.0400");
    s.req("GET", &format!("{}?type=code", s.api("/functions/gone/export")))
        .send()
        .expect_fss(404, "FSS.1051");
}
