//! Dependencies (SPEC.md 2, 4): CRUD, use by functions, and the merged tree on the module paths.

use fgs_e2e::fixture::{b64, zip_files};
use fgs_e2e::{json, Server, ServerOpts};

/// A Custom runtime that answers every event with the output of `dep-hello`, a program that only
/// a dependency provides (on PATH through its `bin/`).
const BOOTSTRAP: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
while :; do
  curl -sS -D /tmp/h -o /tmp/ev "$API/invocation/request" || exit 1
  ID=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' /tmp/h | tr -d '\r\n')
  out=$(dep-hello 2>&1)
  printf '{"out":"%s","pythonpath":"%s"}' "$out" "$PYTHONPATH" > /tmp/out
  curl -sS -X POST --data-binary @/tmp/out "$API/invocation/response/$ID" >/dev/null || exit 1
done
"#;

fn dependency(s: &Server, name: &str, greeting: &str) -> serde_json::Value {
    let script = format!("#!/bin/sh\necho {greeting}\n");
    let zip = zip_files(&[
        ("bin/dep-hello", script.as_bytes(), 0o755),
        ("python/deplib.py", b"X = 1\n", 0o644),
    ]);
    let r = s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(&zip), "depend_type": "zip", "runtime": "Custom", "name": name, "description": "test"}),
    );
    r.expect(200);
    r.json()
}

#[test]
fn dependencies_are_versioned_used_and_guarded() {
    let s = Server::start(ServerOpts::default());
    let v1 = dependency(&s, "greeter", "hello-v1");
    assert_eq!(v1["version"], 1);
    let v2 = dependency(&s, "greeter", "hello-v2");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["dep_id"], v1["dep_id"]);
    let dep_id = v1["dep_id"].as_str().unwrap();

    let list = s.get("/dependencies").json();
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["dependencies"][0]["version"], 2);
    let versions = s.get(&format!("/dependencies/{dep_id}/version")).json();
    assert_eq!(versions["count"], 2);
    s.get(&format!("/dependencies/{dep_id}/version/1"))
        .expect(200);
    s.get(&format!("/dependencies/{dep_id}/version/9"))
        .expect_fss(404, "FSS.0404");

    s.post(
        "/dependencies/version",
        &json!({"depend_file": "!!", "runtime": "Custom", "name": "x"}),
    )
    .expect_fss(400, "FSS.0400");
    s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(b"not a zip"), "runtime": "Custom", "name": "x"}),
    )
    .expect_fss(400, "FSS.1081");
    s.post(
        "/dependencies/version",
        &json!({"depend_file": b64(b"x"), "runtime": "Cobol", "name": "x"}),
    )
    .expect_fss(400, "FSS.1005");

    let code = zip_files(&[("bootstrap", BOOTSTRAP.as_bytes(), 0o755)]);
    let mut body = json!({
        "func_name": "withdep", "runtime": "Custom", "handler": "bootstrap", "memory_size": 128,
        "timeout": 10, "code_type": "zip", "code_filename": "code.zip",
        "func_code": {"file": b64(&code)}, "depend_version_list": ["no-such-id"],
    });
    s.post("/functions", &body).expect_fss(404, "FSS.0404");
    s.get("/functions/withdep/config")
        .expect_fss(404, "FSS.1051");
    body["depend_version_list"] = json!([v1["id"]]);
    s.post("/functions", &body).expect(200);

    let r = s.invoke("withdep", &json!({}));
    r.expect(200);
    let out = r.json();
    assert_eq!(out["out"], "hello-v1", "{out}");
    assert!(
        out["pythonpath"].as_str().unwrap().contains("/python"),
        "{out}"
    );

    // A dependency in use stays; the code update switches to v2 and frees v1.
    s.delete(&format!("/dependencies/{dep_id}/version/1"))
        .expect_fss(400, "FSS.0400");
    s.put(
        "/functions/withdep/code",
        &json!({"code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(&code)}, "depend_version_list": [v2["id"]]}),
    )
    .expect(200);
    let out = s.invoke("withdep", &json!({})).json();
    assert_eq!(out["out"], "hello-v2", "{out}");
    s.delete(&format!("/dependencies/{dep_id}/version/1"))
        .expect(204);
    assert_eq!(
        s.get(&format!("/dependencies/{dep_id}/version")).json()["count"],
        1
    );
}
