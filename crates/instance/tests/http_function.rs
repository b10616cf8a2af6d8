//! HTTP functions through a real instance: the server's start is awaited, an APIG event becomes
//! its request and the response the APIG result, and `concurrency` requests run at once.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use fgs_core::runtime::Availability;
use fgs_core::Runtime;
use fgs_instance::{FunctionEnv, Instance, InstanceConfig, InvokeType, Request};
use fgs_sandbox::{ResourceLimits, Sandbox};
use serde_json::{json, Value};

const SERVER: &str = include_str!("../../../tests/e2e/fixtures/http_fn/server.py");

fn config(code: &Path, concurrency: u32) -> InstanceConfig {
    InstanceConfig {
        id: "h".into(),
        runtime: Runtime::Http,
        code_dir: code.to_path_buf(),
        dependency_dir: None,
        dependencies: Vec::new(),
        function: FunctionEnv {
            project_id: String::new(),
            name: "web".into(),
            version: "latest".into(),
            package: "default".into(),
            handler: "bootstrap".into(),
            userdata: "{}".into(),
            initializer: None,
            pre_stop: None,
            user: vec![("PATH".into(), "/usr/bin:/bin".into())],
        },
        limits: ResourceLimits {
            memory_mb: 256,
            cpu_millicores: 400,
            pids: 1024,
        },
        timeout: Duration::from_secs(5),
        concurrency,
        start_timeout: Duration::from_secs(10),
        extension_init_timeout: Duration::from_secs(10),
        network: true,
        stop_grace: Duration::from_secs(3),
        runtime_dir: code.to_path_buf(),
        interpreter: Availability::Bootstrap,
        runtime_mounts: Default::default(),
        image: None,
    }
}

fn event(id: &str, ev: Value) -> Request {
    Request {
        request_id: id.into(),
        body: Bytes::from(ev.to_string()),
        invoke_type: InvokeType::Sync,
        invoked_urn: "urn:fss:local:p:function:default:web:latest".into(),
        alias: String::new(),
        traceparent: None,
        traced: false,
        timeout: Duration::from_secs(5),
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn http_function_round_trip_and_concurrency() {
    if !Sandbox::default().isolated() && std::net::TcpStream::connect("127.0.0.1:8000").is_ok() {
        eprintln!("skipped: 127.0.0.1:8000 is taken on the host and instances are not isolated");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    // Not executable on purpose: FunctionGraph runs bootstrap with bash.
    std::fs::write(
        dir.path().join("bootstrap"),
        "exec /usr/bin/python3 -u server.py\n",
    )
    .unwrap();
    let inst = Instance::start(&Sandbox::default(), config(dir.path(), 4))
        .await
        .expect("starts");

    let r = inst
        .invoke(event(
            "r1",
            json!({"httpMethod": "PUT", "path": "/echo", "headers": {"x-mine": "yes"},
                   "queryStringParameters": {"q": "a b"}, "body": "hello", "isBase64Encoded": false}),
        ))
        .await;
    let out: Value = serde_json::from_slice(&r.result.expect("answered")).unwrap();
    assert_eq!(out["statusCode"], 201);
    assert_eq!(out["isBase64Encoded"], false);
    assert_eq!(out["headers"]["x-answer"], "42");
    let echo: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (echo["method"].as_str(), echo["path"].as_str()),
        (Some("PUT"), Some("/echo"))
    );
    assert_eq!(echo["query"], "q=a%20b");
    assert_eq!(echo["body"], "hello");
    assert_eq!(echo["headers"]["x-mine"], "yes");
    assert_eq!(echo["headers"]["x-cff-request-id"], "r1");
    assert_eq!(echo["headers"]["x-cff-func-name"], "web");
    assert_eq!(echo["headers"]["x-cff-memory"], "256");
    assert_eq!(echo["headers"]["x-cff-region"], "local");
    assert!(
        String::from_utf8_lossy(&r.log).contains("http-fn"),
        "server output is in the log"
    );

    let bin: Vec<u8> = (0..=255u8).collect();
    let r = inst
        .invoke(event(
            "r2",
            json!({"httpMethod": "POST", "path": "/bytes", "body": b64(&bin), "isBase64Encoded": true}),
        ))
        .await;
    let out: Value = serde_json::from_slice(&r.result.unwrap()).unwrap();
    assert_eq!(out["isBase64Encoded"], true);
    assert_eq!(out["body"], b64(&bin));

    // Four requests of 0.5 s each into one instance of concurrency 4: together, not in turn.
    let t = Instant::now();
    let sleep = |i: u32| {
        event(
            &format!("c{i}"),
            json!({"httpMethod": "GET", "path": "/sleep"}),
        )
    };
    let (a, b, c, d) = tokio::join!(
        inst.invoke(sleep(0)),
        inst.invoke(sleep(1)),
        inst.invoke(sleep(2)),
        inst.invoke(sleep(3))
    );
    for r in [a, b, c, d] {
        let out: Value = serde_json::from_slice(&r.result.unwrap()).unwrap();
        assert_eq!(out["statusCode"], 200);
    }
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        t.elapsed()
    );
    inst.stop().await;
}
