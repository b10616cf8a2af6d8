//! Tracing (issue 20, docs/api.md): `GET/PUT /functions/{urn}/tracing` turns a function's
//! tracing on and off, and `fgs serve --otlp-endpoint` exports a span per traced invocation.

use fgs_e2e::{json, Server, ServerOpts};

#[test]
fn tracing_is_turned_on_and_off_and_the_secret_is_not_shown() {
    let s = Server::start(ServerOpts::default());
    s.create_fixture("traced", "traced", &[], json!({}));
    let off = json!({"tracing_ak": "", "tracing_sk": ""});
    assert_eq!(s.get("/functions/traced/tracing").json(), off);

    s.put(
        "/functions/traced/tracing",
        &json!({"tracing_ak": "AK1", "tracing_sk": "secret"}),
    )
    .expect(200);
    let shown = s.get("/functions/traced/tracing").json();
    assert_eq!(shown["tracing_ak"], json!("AK1"));
    assert_ne!(shown["tracing_sk"], json!("secret"), "{shown}");

    s.put("/functions/traced/tracing", &json!({"tracing_sk": "x"}))
        .expect_fss(400, "FSS.0400");
    assert_eq!(s.get("/functions/traced/tracing").json()["tracing_ak"], json!("AK1"));
    s.put("/functions/traced/tracing", &off).expect(200);
    assert_eq!(s.get("/functions/traced/tracing").json(), off);
    s.get("/functions/nope/tracing").expect_fss(404, "FSS.1051");
    s.put("/functions/nope/tracing", &off).expect_fss(404, "FSS.1051");
}
