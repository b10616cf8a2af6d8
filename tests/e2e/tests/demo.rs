//! `fgs serve --demo`: the bundled `hello` function (examples/demo/hello/bootstrap) is ready.

use fgs_e2e::{json, unb64, Server, ServerOpts};

#[test]
fn demo_function_answers() {
    let s = Server::start(ServerOpts::default().arg("--demo"));
    let r = s.invoke_with(
        "hello",
        &json!({"name": "world"}),
        &[("X-Cff-Log-Type", "tail")],
    );
    r.expect_ok();
    let body = r.json();
    let rid = r.header("x-cff-request-id").expect("request id");
    assert_eq!(body["greeting"], "Hello, world!", "{body}");
    assert_eq!(body["event"], json!({"name": "world"}));
    assert_eq!(body["function"], "hello");
    assert_eq!(body["request_id"], json!(rid));
    let log = String::from_utf8_lossy(&unb64(&r.header("x-cff-function-log").expect("log tail")))
        .into_owned();
    assert!(
        log.contains(&format!("hello: greeting world (request {rid})")),
        "{log}"
    );

    let anonymous = s.invoke("hello", &json!({}));
    assert_eq!(
        anonymous.json()["greeting"],
        "Hello, stranger!",
        "{}",
        anonymous.text()
    );

    // The usage it prints names the function.
    assert!(
        s.stdout_lines().join("\n").contains("hello"),
        "{:?}",
        s.stdout_lines()
    );
}
