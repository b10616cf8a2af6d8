//! Built-in templates (issue 20, docs/api.md): listed and shown through the API, and
//! `fgs function create --template` making working functions with their triggers.

use fgs_e2e::{client_cmd, json, Server, ServerOpts, Value};

fn cli_create(s: &Server, name: &str, template: &str) -> Value {
    let o = client_cmd(s)
        .args(["function", "create", name, "--template", template, "--output", "json"])
        .output()
        .expect("fgs runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON out")
}

#[test]
fn templates_are_listed_shown_and_filtered() {
    let s = Server::start(ServerOpts::default());
    let all = s.get("/templates");
    all.expect(200);
    let ids: Vec<String> = all.json()["func_templates"]
        .as_array()
        .expect("func_templates")
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    for id in ["hello-custom", "hello-python", "hello-nodejs", "apig-python", "timer-python", "extension-custom"] {
        assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
    }
    let py = s.get("/templates?runtime=Python3.10");
    py.expect(200);
    assert!(py.json()["func_templates"]
        .as_array()
        .expect("list")
        .iter()
        .all(|t| t["runtime"] == "Python3.10"));
    let timer = s.get("/templates/timer-python");
    timer.expect(200);
    let timer = timer.json();
    assert_eq!(timer["trigger_metadata_list"][0]["trigger_type"], "TIMER");
    assert_eq!(timer["code_type"], "inline");
    s.get("/templates/nope").expect_fss(404, "FSS.0404");
}

#[test]
fn functions_created_from_templates_run_with_their_triggers() {
    let s = Server::start(ServerOpts::default());
    cli_create(&s, "from-custom", "hello-custom");
    let r = s.invoke("from-custom", &json!({}));
    r.expect(200);
    assert_eq!(r.json()["message"], "hello world", "{}", r.text());

    let ext = cli_create(&s, "from-ext", "extension-custom");
    assert_eq!(ext["code_type"], "zip");
    let r = s.invoke("from-ext", &json!({}));
    r.expect(200);
    assert!(r.text().contains("invocations_seen_by_extension"), "{}", r.text());

    // The hello worlds of the interpreted runtimes (PHP where the host has php).
    let php = std::process::Command::new("php")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    for t in ["hello-python", "hello-nodejs", "hello-http", "hello-php"] {
        if t == "hello-php" && !php {
            eprintln!("no php on this host: hello-php not run");
            continue;
        }
        let name = format!("from-{t}");
        cli_create(&s, &name, t);
        let r = s.invoke(&name, &json!({"httpMethod": "GET", "path": "/x", "headers": {}, "body": "", "isBase64Encoded": false}));
        r.expect(200);
        assert!(r.text().contains("hello world"), "{t}: {}", r.text());
    }

    cli_create(&s, "from-timer", "timer-python");
    let triggers = s.get("/triggers/from-timer");
    triggers.expect(200);
    assert_eq!(triggers.json()[0]["trigger_type_code"], "TIMER", "{}", triggers.text());

    cli_create(&s, "from-apig", "apig-python");
    let url = format!("/apig/{}/hello?name=fgs", s.cred.project_id);
    let r = s.req("GET", &url).auth(fgs_e2e::Auth::None).send();
    r.expect(200);
    assert_eq!(r.json()["message"], "hello fgs", "{}", r.text());
}
