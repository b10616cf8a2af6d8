//! The Python and Node.js shims driven through a real instance (no API server): handler
//! styles, context, errors, initializer. The e2e tests cover the same through `fgs serve`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use fgs_core::runtime::{Availability, Language, NodeVersion, PythonVersion};
use fgs_core::Runtime;
use fgs_instance::{
    DiscoverOptions, FunctionEnv, Hook, Instance, InstanceConfig, InvokeType, Request,
};
use fgs_sandbox::{ResourceLimits, Sandbox};

fn config(rt: Runtime, code: &Path, env: &[(&str, &str)]) -> Option<InstanceConfig> {
    let table = fgs_instance::discover(&DiscoverOptions::default());
    let interpreter = table.get(rt).clone();
    if matches!(interpreter, Availability::Missing) {
        eprintln!("skipped: no interpreter for {rt}");
        return None;
    }
    let shims = tempfile::tempdir().unwrap().keep();
    let runtime_dir = fgs_instance::install_shims(&shims, &table).unwrap();
    // The variables fgs sets are typed; everything else is the user's.
    let value = |k: &str| {
        env.iter()
            .find(|(ek, _)| *ek == k)
            .map(|(_, v)| v.to_string())
    };
    let hook = |h: &str, t: &str| {
        value(h).map(|handler| Hook {
            handler,
            timeout: Duration::from_secs(value(t).and_then(|t| t.parse().ok()).unwrap_or(0)),
        })
    };
    let mut user: Vec<(String, String)> = vec![("PATH".into(), "/usr/bin:/bin".into())];
    user.extend(
        env.iter()
            .filter(|(k, _)| !k.starts_with("RUNTIME_"))
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Some(InstanceConfig {
        id: "t".into(),
        runtime: rt,
        code_dir: code.to_path_buf(),
        dependency_dir: None,
        dependencies: Vec::new(),
        function: FunctionEnv {
            project_id: String::new(),
            name: "fn1".into(),
            version: "latest".into(),
            package: "default".into(),
            handler: value("RUNTIME_HANDLER").unwrap_or_default(),
            userdata: r#"{"K":"v"}"#.into(),
            initializer: hook("RUNTIME_INITIALIZER_HANDLER", "RUNTIME_INITIALIZER_TIMEOUT"),
            pre_stop: hook("RUNTIME_PRE_STOP_HANDLER", "RUNTIME_PRE_STOP_TIMEOUT"),
            user,
        },
        limits: ResourceLimits {
            memory_mb: 256,
            cpu_millicores: 400,
            pids: 1024,
        },
        timeout: Duration::from_secs(5),
        concurrency: 1,
        start_timeout: Duration::from_secs(10),
        extension_init_timeout: Duration::from_secs(10),
        network: true,
        stop_grace: Duration::from_secs(3),
        runtime_mounts: std::sync::Arc::new(fgs_instance::runtime_mounts(&table)),
        image: None,
        runtime_dir,
        interpreter,
    })
}

fn request(id: &str, body: &str) -> Request {
    Request {
        request_id: id.into(),
        body: Bytes::from(body.to_string()),
        invoke_type: InvokeType::Sync,
        invoked_urn: String::new(),
        alias: String::new(),
        traceparent: None,
        traced: false,
        timeout: Duration::from_secs(5),
    }
}

const PY: &str = r#"
import json
COUNT = {"init": 0}
def init(context):
    COUNT["init"] += 1
def handler(event, context):
    if event.get("raise"):
        raise ValueError("bad " + event["raise"])
    if event.get("str"):
        return "plain"
    context.getLogger().info("hello %s", "log")
    print("printed")
    return {"rid": context.getRequestID(), "rem": context.getRemainingTimeInMilliSeconds(),
            "k": context.getUserData("K"), "name": context.getFunctionName(),
            "mem": context.getMemorySize(), "init": COUNT["init"], "ak": context.getAccessKey()}
"#;

const JS: &str = r#"
let inits = 0;
exports.init = async (context) => { inits += 1; };
exports.handler = async (event, context) => {
  if (event.raise) throw new TypeError('bad ' + event.raise);
  if (event.str) return 'plain';
  context.getLogger().info('hello %s', 'log');
  console.log('printed');
  return { rid: context.getRequestID(), rem: context.getRemainingTimeInMilliSeconds(),
           k: context.getUserData('K'), name: context.getFunctionName(),
           mem: context.getMemorySize(), init: inits, ak: context.getAccessKey() };
};
exports.cb = (event, context, callback) => { setTimeout(() => callback(null, { cb: true }), 5); };
"#;

async fn exercise(rt: Runtime, file: &str, src: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), src).unwrap();
    let Some(cfg) = config(
        rt,
        dir.path(),
        &[
            ("RUNTIME_HANDLER", "index.handler"),
            ("RUNTIME_INITIALIZER_HANDLER", "index.init"),
            ("RUNTIME_INITIALIZER_TIMEOUT", "3"),
        ],
    ) else {
        return;
    };
    let inst = Instance::start(&Sandbox::default(), cfg)
        .await
        .expect("starts");
    for n in 0..2 {
        let id = format!("req-{n}");
        let r = inst.invoke(request(&id, "{}")).await;
        let body = r.result.expect("handler succeeds");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["rid"], id.as_str());
        assert_eq!(v["k"], "v");
        assert_eq!(v["name"], "fn1");
        assert_eq!(v["mem"], 256);
        assert_eq!(v["init"], 1, "initializer runs once per instance");
        assert_eq!(v["ak"], "");
        let rem = v["rem"].as_u64().unwrap();
        assert!(rem > 4000 && rem <= 5000, "{rem}");
        let log = String::from_utf8_lossy(&r.log);
        assert!(log.contains(&format!(" {id} INFO hello log\n")), "{log}");
        assert!(log.contains("printed\n"), "{log}");
    }
    let r = inst.invoke(request("e", r#"{"raise":"x"}"#)).await;
    let e = r.result.unwrap_err();
    assert_eq!(e.code, 4002);
    assert!(e.error_type.ends_with("Error"), "{e:?}");
    assert_eq!(e.message, "bad x");
    assert!(!e.stack_trace.is_empty(), "{e:?}");
    let r = inst.invoke(request("s", r#"{"str":1}"#)).await;
    assert_eq!(r.result.unwrap(), Bytes::from_static(b"plain"));
    inst.stop().await;
}

#[tokio::test]
async fn python_handler() {
    exercise(Runtime::Python(PythonVersion::V3_10), "index.py", PY).await;
}

#[tokio::test]
async fn node_handler() {
    exercise(Runtime::NodeJs(NodeVersion::V20_15), "index.js", JS).await;
}

#[tokio::test]
async fn node_callback_and_missing_handler() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.js"), JS).unwrap();
    let rt = Runtime::NodeJs(NodeVersion::V20_15);
    let Some(cfg) = config(rt, dir.path(), &[("RUNTIME_HANDLER", "index.cb")]) else {
        return;
    };
    let inst = Instance::start(&Sandbox::default(), cfg)
        .await
        .expect("starts");
    let r = inst.invoke(request("a", "{}")).await;
    assert_eq!(r.result.unwrap(), Bytes::from_static(br#"{"cb":true}"#));
    inst.stop().await;

    for (lang, file, src) in [
        (Language::NodeJs, "index.js", JS),
        (Language::Python, "index.py", PY),
    ] {
        let rt = if lang == Language::NodeJs {
            rt
        } else {
            Runtime::Python(PythonVersion::V3_12)
        };
        let Some(cfg) = config(rt, dir.path(), &[("RUNTIME_HANDLER", "index.nope")]) else {
            continue;
        };
        std::fs::write(dir.path().join(file), src).unwrap();
        let inst = Instance::start(&Sandbox::default(), cfg)
            .await
            .expect("starts");
        let e = inst.invoke(request("m", "{}")).await.result.unwrap_err();
        assert_eq!(e.code, 4001, "{e:?}");
        assert!(e.message.contains("index.nope"), "{e:?}");
        inst.stop().await;
    }
}

#[tokio::test]
async fn initializer_failure_and_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.py"),
        "import time\ndef bad(ctx):\n    raise RuntimeError('init broke')\ndef slow(ctx):\n    time.sleep(30)\ndef handler(e, c):\n    return 1\n",
    )
    .unwrap();
    let rt = Runtime::Python(PythonVersion::V3_10);
    for (init, code) in [("index.bad", 4201), ("index.slow", 4211)] {
        let Some(cfg) = config(
            rt,
            dir.path(),
            &[
                ("RUNTIME_HANDLER", "index.handler"),
                ("RUNTIME_INITIALIZER_HANDLER", init),
                ("RUNTIME_INITIALIZER_TIMEOUT", "1"),
            ],
        ) else {
            return;
        };
        let err = match Instance::start(&Sandbox::default(), cfg).await {
            Ok(_) => panic!("{init} must fail the start"),
            Err(e) => e.to_function_error().expect("a function error"),
        };
        assert_eq!(err.code, code, "{err:?}");
    }
}

#[tokio::test]
async fn pre_stop_runs_on_stop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.py"),
        "import os\ndef handler(e, c):\n    return 1\ndef bye(ctx):\n    open(os.environ['MARK'], 'w').write('py ' + ctx.getFunctionName())\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("index.js"),
        "exports.handler = async () => 1;\nexports.bye = async (ctx) => { await new Promise((r) => setTimeout(r, 20)); require('fs').writeFileSync(process.env.MARK, 'js ' + ctx.getFunctionName()); };\n",
    )
    .unwrap();
    for (rt, lang) in [
        (Runtime::Python(PythonVersion::V3_10), "py"),
        (Runtime::NodeJs(NodeVersion::V20_15), "js"),
    ] {
        let mark = dir.path().join(format!("stopped-{lang}"));
        let mark_s = mark.display().to_string();
        let Some(cfg) = config(
            rt,
            dir.path(),
            &[
                ("RUNTIME_HANDLER", "index.handler"),
                ("RUNTIME_PRE_STOP_HANDLER", "index.bye"),
                ("RUNTIME_PRE_STOP_TIMEOUT", "2"),
                ("MARK", &mark_s),
            ],
        ) else {
            continue;
        };
        let inst = Instance::start(&Sandbox::default(), cfg)
            .await
            .expect("starts");
        assert!(inst.invoke(request("a", "{}")).await.result.is_ok());
        inst.stop().await;
        let got = std::fs::read_to_string(&mark).unwrap_or_default();
        assert_eq!(
            got,
            format!("{lang} fn1"),
            "the pre-stop handler ran before the exit"
        );
    }
}
