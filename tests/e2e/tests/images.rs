//! Image functions (issue 18, docs/images.md): images built here (`fgs_e2e::images`), pushed to
//! a real registry on a loopback port, created as `Custom Image` (event) and `http` functions
//! and invoked in the sandbox. Needs root (the overlay root), gcc, skopeo and docker-registry;
//! skipped without them unless FGS_TEST_REQUIRE_ENGINES=1.

use fgs_e2e::images::{self, Registry};
use fgs_e2e::{json, unique, Auth, Resp, Server, ServerOpts, Value};

/// The registry, and an fgs that may speak plain HTTP to it; `None` (skipped) where the host
/// lacks what the tests need.
fn setup() -> Option<(Registry, Server)> {
    let missing = if !is_root() {
        Some("an image function's root is an overlay: needs root".to_string())
    } else {
        images::available().err()
    };
    if let Some(why) = missing {
        if std::env::var("FGS_TEST_REQUIRE_ENGINES").as_deref() == Ok("1") {
            panic!("image tests cannot run: {why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    let reg = Registry::start();
    let s = Server::start(ServerOpts::default().flag("--insecure-registry", reg.addr.clone()));
    Some((reg, s))
}

fn config() -> Value {
    json!({"Env": ["PATH=/bin", "FOO=from-image"], "Cmd": ["/bin/srv"], "WorkingDir": "/"})
}

fn create(s: &Server, name: &str, extra: Value) -> Resp {
    let mut body = json!({
        "func_name": name, "package": "default", "runtime": "Custom Image",
        "handler": "-", "memory_size": 128, "timeout": 10,
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        body[k] = v.clone();
    }
    s.post("/functions", &body)
}

fn info(s: &Server, name: &str) -> Value {
    let r = s.invoke(name, &json!({"op": "info"}));
    r.expect(200);
    assert_ne!(r.header("x-is-func-err").as_deref(), Some("true"), "{}", r.text());
    r.json()
}

fn func_err(r: &Resp, code: u32) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-func-err-code"), Some(code.to_string()), "{}", r.text());
    r.text()
}

#[test]
fn event_image_functions_run_with_and_without_an_initializer() {
    let Some((reg, s)) = setup() else { return };
    let image = reg.push_image("fgs/event", "v1", "v1", config());
    let plain = unique("img");
    let r = create(&s, &plain, json!({"custom_image": {"enabled": true, "image": image}}));
    r.expect(200);
    let f = r.json();
    assert_eq!(f["runtime"], "Custom Image");
    assert_eq!(f["code_type"], "Custom-Image-Swr");
    assert_eq!(f["custom_image"]["image"], json!(image));
    assert_eq!(f["custom_image"]["uid"], "1003");
    assert!(f["custom_image"]["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")), "{f}");

    let v = info(&s, &plain);
    assert_eq!((v["uid"].clone(), v["gid"].clone()), (json!(1003), json!(1003)), "{v}");
    assert_eq!(v["version"], "v1");
    assert_eq!(v["inited"], false);
    assert_eq!(v["foo"], "from-image", "the image's environment");
    assert_eq!(v["func"], json!(plain), "fgs's RUNTIME_* variables");
    assert!(v["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    // The upper layer's whiteout and opaque directory hide the lower layer's files.
    assert_eq!((v["gone"].clone(), v["old"].clone(), v["new"].clone()), (json!(false), json!(false), json!(true)), "{v}");
    // The private writable layer takes writes where the image allows them.
    assert_eq!(v["root_writable"], true, "{v}");
    // A non-2xx answer is a function error.
    let e = func_err(&s.invoke(&plain, &json!({"op": "fail"})), 4002);
    assert!(e.contains("asked to fail"), "{e}");

    let with_init = unique("img");
    create(
        &s,
        &with_init,
        json!({"custom_image": {"enabled": true, "image": image},
               "initializer_handler": "init", "initializer_timeout": 10}),
    )
    .expect(200);
    assert_eq!(info(&s, &with_init)["inited"], true, "POST /init ran before the event");
}

#[test]
fn overrides_environment_and_ids_apply() {
    let Some((reg, s)) = setup() else { return };
    let image = reg.push_image("fgs/override", "v1", "v1", config());
    let name = unique("img");
    create(
        &s,
        &name,
        json!({"custom_image": {"enabled": true, "image": image, "command": "/bin/srv",
                                 "args": "first,second", "working_dir": "/data",
                                 "uid": "1500", "gid": "1600"},
               "user_data": "{\"FOO\":\"from-function\"}"}),
    )
    .expect(200);
    let v = info(&s, &name);
    assert_eq!(v["args"], "first second", "{v}");
    assert_eq!(v["cwd"], "/data", "{v}");
    assert_eq!((v["uid"].clone(), v["gid"].clone()), (json!(1500), json!(1600)), "{v}");
    assert_eq!(v["foo"], "from-function", "the function's variables win");
    // uid 0 is refused.
    let r = create(&s, &unique("img"), json!({"custom_image": {"enabled": true, "image": image, "uid": "0"}}));
    r.expect_fss(400, "FSS.0400");
}

#[test]
fn a_tag_pushed_again_runs_after_an_update() {
    let Some((reg, s)) = setup() else { return };
    let image = reg.push_image("fgs/retag", "latest", "v1", config());
    let name = unique("img");
    create(&s, &name, json!({"custom_image": {"enabled": true, "image": image}})).expect(200);
    assert_eq!(info(&s, &name)["version"], "v1");
    reg.push_image("fgs/retag", "latest", "v2", config());
    // The function runs the digest it resolved until it is updated.
    assert_eq!(info(&s, &name)["version"], "v1");
    let r = s.put(
        &format!("/functions/{name}/config"),
        &json!({"custom_image": {"enabled": true, "image": image}}),
    );
    r.expect(200);
    assert_eq!(info(&s, &name)["version"], "v2", "new instances run the new digest");
}

#[test]
fn memory_beyond_the_limit_in_an_image_is_4205() {
    let Some((reg, s)) = setup() else { return };
    let image = reg.push_image("fgs/mem", "v1", "v1", config());
    let name = unique("img");
    create(&s, &name, json!({"custom_image": {"enabled": true, "image": image}})).expect(200);
    func_err(&s.invoke(&name, &json!({"op": "alloc"})), 4205);
    assert_eq!(info(&s, &name)["version"], "v1", "the next call gets a fresh instance");
}

#[test]
fn bad_images_are_refused_clearly() {
    let Some((reg, s)) = setup() else { return };
    let missing = format!("{}/fgs/nothing:v9", reg.addr);
    let r = create(&s, &unique("img"), json!({"custom_image": {"enabled": true, "image": missing}}));
    r.expect_fss(400, "FSS.0400");
    assert!(r.text().contains("MANIFEST_UNKNOWN") || r.text().contains("NAME_UNKNOWN"), "{}", r.text());
    // A registry that is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let down = format!("127.0.0.1:{port}/fgs/x:v1");
    let r = create(&s, &unique("img"), json!({"custom_image": {"enabled": true, "image": down}}));
    r.expect_fss(502, "FSS.0502");
    assert!(r.text().contains("cannot be reached"), "{}", r.text());
    // A runtime without an image, and an image on a code runtime.
    create(&s, &unique("img"), json!({})).expect_fss(400, "FSS.0400");
    let image = reg.push_image("fgs/bad", "v1", "v1", config());
    let r = s.post("/functions", &json!({"func_name": unique("img"), "runtime": "Python3.9",
        "handler": "index.handler", "code_type": "inline", "func_code": {"file": fgs_e2e::b64(b"x")},
        "custom_image": {"enabled": true, "image": image}}));
    r.expect_fss(400, "FSS.0400");
    // A process that never listens: the call fails with its output's tail.
    let name = unique("img");
    create(&s, &name, json!({"timeout": 3,
        "custom_image": {"enabled": true, "image": image, "command": "/bin/srv", "args": "--never-listen"}}))
    .expect(200);
    let e = func_err(&s.invoke(&name, &json!({})), 4204);
    assert!(e.contains("port 8000") && e.contains("told never to listen"), "{e}");
}

#[test]
fn an_http_function_from_an_image_serves_apig() {
    let Some((reg, s)) = setup() else { return };
    let image = reg.push_image("fgs/http", "v1", "v1", config());
    let name = unique("img");
    let r = s.post("/functions", &json!({"func_name": name, "runtime": "http", "handler": "-",
        "memory_size": 128, "timeout": 10, "custom_image": {"enabled": true, "image": image}}));
    r.expect(200);
    let urn = r.json()["func_urn"].as_str().expect("func_urn").to_string();
    let t = s.post(&format!("/triggers/{urn}"), &json!({
        "trigger_type_code": "APIG", "trigger_status": "ACTIVE",
        "event_data": {"name": "img", "path": "/img/{p}", "req_method": "ANY", "match_mode": "NORMAL",
            "auth": "NONE", "type": 1, "protocol": "HTTPS", "group_id": "g1", "env_name": "RELEASE",
            "env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "func_info": {"timeout": 5000}},
    }));
    t.expect(201);
    let project = s.cred.project_id.clone();
    let r = s.req("GET", &format!("/apig/{project}/img/hello")).auth(Auth::None).send();
    r.expect(200);
    let v = r.json();
    assert_eq!(v["http_path"], "/img/hello", "{v}");
    assert_eq!(v["uid"], 1003);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The numbers docs/images.md reports: the first pull and unpack of a 5 MB image from the
/// loopback registry (the create that pulls it), cold starts of functions whose image is
/// unpacked already (pre-warmed sandboxes), and warm calls. Run with
/// `cargo nextest run -p fgs-e2e images::measure --run-ignored only --no-capture`.
#[test]
#[ignore]
fn measure_image_pull_cold_start_and_warm_calls() {
    let Some((reg, s)) = setup() else { return };
    // 5 MB that gzip cannot shrink, beside the server.
    let mut noise = vec![0u8; 5 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let dir = tempfile::tempdir().unwrap();
    let big = images::layer(&[images::Entry::File("noise", &noise, 0o644)]);
    images::write_layout(dir.path(), "v1", &[images::base_layer("v1"), big], config());
    let image = reg.push(dir.path(), "v1", "fgs/big");
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
    let t = std::time::Instant::now();
    create(&s, &unique("img"), json!({"custom_image": {"enabled": true, "image": image}})).expect(200);
    println!("first pull and unpack of a 6 MB image (create): {:.1} ms", ms(t));
    let mut cold = Vec::new();
    for _ in 0..10 {
        let name = unique("img");
        create(&s, &name, json!({"custom_image": {"enabled": true, "image": image}})).expect(200);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let t = std::time::Instant::now();
        info(&s, &name);
        cold.push(ms(t));
    }
    let name = unique("img");
    create(&s, &name, json!({"custom_image": {"enabled": true, "image": image}})).expect(200);
    info(&s, &name);
    let mut warm: Vec<f64> = (0..200)
        .map(|_| {
            let t = std::time::Instant::now();
            info(&s, &name);
            ms(t)
        })
        .collect();
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    // The same server as a code HTTP function (its zip's bootstrap), called the same way.
    let zip = fgs_e2e::fixture::zip_files(&[("bootstrap", images::server_binary(), 0o755)]);
    let http = unique("http");
    s.post("/functions", &json!({"func_name": http, "runtime": "http", "handler": "bootstrap",
        "memory_size": 128, "timeout": 10, "code_type": "zip", "code_filename": "c.zip",
        "func_code": {"file": fgs_e2e::b64(&zip)}}))
    .expect(200);
    s.invoke(&http, &json!({})).expect(200);
    let mut warm_http: Vec<f64> = (0..200)
        .map(|_| {
            let t = std::time::Instant::now();
            s.invoke(&http, &json!({})).expect(200);
            ms(t)
        })
        .collect();
    println!("cold call of a cached image, median of 10: {:.1} ms", p50(&mut cold));
    println!("warm call, p50 of 200: {:.2} ms", p50(&mut warm));
    println!("warm call of the same server as a code HTTP function, p50 of 200: {:.2} ms", p50(&mut warm_http));
}

/// `fgs function create NAME --image REF` and `fgs deploy` with `image:` in `fgs.yaml`; a
/// deploy after the tag was pushed again moves the function to the new digest.
#[test]
fn the_cli_creates_and_deploys_image_functions() {
    let Some((reg, s)) = setup() else { return };
    let run = |args: &[&str]| {
        let o = fgs_e2e::client_cmd(&s)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("fgs runs");
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "fgs {args:?}: {out}{err}");
        format!("{out}{err}")
    };
    let image = reg.push_image("fgs/cli", "v1", "v1", config());
    let name = unique("img");
    let out = run(&["function", "create", &name, "--image", &image]);
    assert!(out.contains("image sha256:"), "{out}");
    assert_eq!(info(&s, &name)["version"], "v1");

    let deployed = unique("img");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fgs.yaml"),
        format!("name: {deployed}\nimage: {image}\nenv:\n  FOO: from-yaml\n"),
    )
    .unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    assert!(run(&["deploy", dir_arg]).contains("created"));
    let v = info(&s, &deployed);
    assert_eq!((v["version"].clone(), v["foo"].clone()), (json!("v1"), json!("from-yaml")));
    reg.push_image("fgs/cli", "v1", "v2", config());
    assert!(run(&["deploy", dir_arg]).contains("updated (image sha256:"));
    assert_eq!(info(&s, &deployed)["version"], "v2");
}

/// `fgs image import` of an OCI layout tar, for a machine without a registry: a function whose
/// image names it runs it when the registry does not answer.
#[test]
fn an_imported_image_runs_without_a_registry() {
    let Some((_reg, _)) = setup() else { return };
    let data = tempfile::tempdir().unwrap();
    let layout = tempfile::tempdir().unwrap();
    images::write_layout(
        layout.path(),
        "v1",
        &[images::base_layer("imported"), images::whiteout_layer()],
        config(),
    );
    let tar_path = data.path().join("image.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    b.append_dir_all(".", layout.path()).unwrap();
    b.finish().unwrap();
    drop(b);
    // A registry address nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name_ref = format!("127.0.0.1:{port}/offline/app:v1");
    let data_dir = data.path().join("d");
    let o = std::process::Command::new(fgs_e2e::fgs_bin())
        .args(["image", "import"])
        .arg(&tar_path)
        .args(["--name", &name_ref, "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("fgs image import");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("sha256:"));
    let s = Server::start(ServerOpts {
        data_dir: Some(data_dir),
        ..ServerOpts::default()
    }
    .flag("--insecure-registry", format!("127.0.0.1:{port}")));
    let name = unique("img");
    create(&s, &name, json!({"custom_image": {"enabled": true, "image": name_ref}})).expect(200);
    assert_eq!(info(&s, &name)["version"], "imported");
}

/// Images nothing uses any more are removed at the next start (docs/images.md), like code
/// packages; the image of a function that remains stays.
#[test]
fn unused_images_are_collected_at_start() {
    let Some((reg, s)) = setup() else { return };
    let data = tempfile::tempdir().unwrap();
    let opts = || {
        ServerOpts::default()
            .data_dir(data.path())
            .flag("--insecure-registry", reg.addr.clone())
    };
    drop(s);
    let s = Server::start(opts());
    let kept = reg.push_image("fgs/gc", "kept", "kept", config());
    let gone = reg.push_image("fgs/gc", "gone", "gone", config());
    create(&s, "keeps", json!({"custom_image": {"enabled": true, "image": kept}})).expect(200);
    create(&s, "drops", json!({"custom_image": {"enabled": true, "image": gone}})).expect(200);
    let digest = |name: &str| {
        let f = s.get(&format!("/functions/{name}/config"));
        f.expect(200);
        f.json()["custom_image"]["digest"].as_str().unwrap().to_string()
    };
    let (kept_d, gone_d) = (digest("keeps"), digest("drops"));
    let dir = |d: &str| data.path().join("images/images").join(&d["sha256:".len()..]);
    assert!(dir(&kept_d).is_dir() && dir(&gone_d).is_dir());
    s.delete("/functions/drops").expect(204);
    drop(s);
    let s = Server::start(opts());
    assert!(!dir(&gone_d).exists(), "the unused image was collected");
    assert!(dir(&kept_d).is_dir());
    assert_eq!(info(&s, "keeps")["version"], "kept");
}
