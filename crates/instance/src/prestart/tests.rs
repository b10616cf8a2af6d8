use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fgs_core::runtime::Availability;
use fgs_core::Runtime;
use fgs_sandbox::{ExecSpec, ResourceLimits, DEPENDENCY_ROOT};

use super::*;
use crate::config::{FunctionEnv, InstanceConfig};

fn config(runtime: Runtime, user: &[(&str, &str)], dependency: Option<PathBuf>) -> InstanceConfig {
    InstanceConfig {
        id: "i".into(),
        runtime,
        code_dir: PathBuf::from("/data/code/abc"),
        dependency_dir: dependency,
        dependencies: Vec::new(),
        function: FunctionEnv {
            project_id: "p1".into(),
            name: "fn1".into(),
            version: "latest".into(),
            package: "default".into(),
            handler: "index.handler".into(),
            userdata: "{}".into(),
            initializer: None,
            pre_stop: None,
            user: user
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        limits: ResourceLimits {
            memory_mb: 512,
            cpu_millicores: 600,
            pids: 1024,
        },
        timeout: Duration::from_secs(30),
        concurrency: 1,
        network: false,
        start_timeout: Duration::from_secs(30),
        extension_init_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(3),
        runtime_dir: PathBuf::from("/data/runtime"),
        runtime_mounts: Arc::new(Vec::new()),
        interpreter: Availability::Bootstrap,
        image: None,
    }
}

/// A start as `command` makes it: the rendered environment with the user's variables last.
fn spec(cfg: &InstanceConfig, dependency: bool) -> ExecSpec {
    let mut env: Vec<(String, String)> = [
        ("PATH", crate::environment::SYSTEM_PATH),
        ("LANG", "C.UTF-8"),
        ("HOME", "/tmp"),
        ("RUNTIME_FUNC_NAME", "fn1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut mounts = vec![(
        PathBuf::from("/data/runtime"),
        PathBuf::from("/opt/function/runtime"),
    )];
    if dependency {
        env.push((
            "PYTHONPATH".into(),
            "/opt/function/dependency/python".into(),
        ));
        env.push((
            "NODE_PATH".into(),
            "/opt/function/dependency/node_modules".into(),
        ));
        env.push((
            "LD_LIBRARY_PATH".into(),
            "/opt/function/dependency/lib".into(),
        ));
        let dep = cfg.dependency_dir.clone().expect("a dependency dir");
        mounts.push((dep, PathBuf::from(DEPENDENCY_ROOT)));
    }
    for (k, v) in &cfg.function.user {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env.push(("FGS_RUNTIME_DIR".into(), "/opt/function/runtime".into()));
    ExecSpec {
        program: PathBuf::from("/usr/bin/python3.11"),
        args: vec!["-u".into(), "-B".into(), "-c".into(), "main".into()],
        env,
        cwd: PathBuf::from("/opt/function/code"),
        code_dir: cfg.code_dir.clone(),
        mounts,
        limits: cfg.limits,
        network: cfg.network,
        image: None,
    }
}

fn python() -> Runtime {
    Runtime::parse("Python3.10").expect("a runtime name")
}

#[test]
fn a_plain_function_gets_a_placeholder_without_its_code_env_or_limits() {
    let cfg = config(python(), &[("FOO", "bar"), ("TZ", "Asia/Shanghai")], None);
    let s = spec(&cfg, false);
    let c = kind(&cfg, &s).expect("eligible");
    assert_eq!(c.class, "python");
    let p = &c.placeholder;
    assert_eq!((&p.program, &p.args), (&s.program, &s.args));
    assert_eq!(p.cwd, PathBuf::from("/"));
    assert_eq!(p.code_dir, PathBuf::new());
    assert!(p.network);
    assert_eq!(p.limits.memory_mb, HOLD_MEMORY_MB);
    assert!(!p
        .env
        .iter()
        .any(|(k, _)| k == "FOO" || k == "RUNTIME_FUNC_NAME"));
    assert!(p
        .env
        .iter()
        .any(|(k, v)| k == "FGS_PLACEHOLDER" && v == "1"));
    // The specialization carries everything of the function.
    let sp = &c.specialization;
    assert_eq!(sp.code_dir, cfg.code_dir);
    assert_eq!(sp.limits, cfg.limits);
    assert!(!sp.network);
    let msg: serde_json::Value = serde_json::from_slice(&sp.message).unwrap();
    assert_eq!(msg["cwd"], "/opt/function/code");
    assert_eq!(msg["env"], serde_json::json!(s.env));
}

#[test]
fn functions_differing_only_in_what_is_specialized_share_a_kind() {
    let a = config(python(), &[("FOO", "a")], None);
    let mut b = config(python(), &[("BAR", "b")], None);
    b.limits.memory_mb = 2048;
    b.code_dir = PathBuf::from("/data/code/other");
    let ka = kind(&a, &spec(&a, false)).unwrap().key;
    let kb = kind(&b, &spec(&b, false)).unwrap().key;
    assert_eq!(ka, kb);
    let node = config(Runtime::parse("Node.js20.15").unwrap(), &[], None);
    let mut s = spec(&node, false);
    s.program = PathBuf::from("/usr/bin/node");
    assert_ne!(kind(&node, &s).unwrap().key, ka);
}

#[test]
fn dependencies_are_attached_at_specialization() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(python(), &[], Some(dir.path().to_path_buf()));
    let c = kind(&cfg, &spec(&cfg, true)).expect("a dependency without lib/ is eligible");
    assert!(!c
        .placeholder
        .mounts
        .iter()
        .any(|(_, inside)| inside == &PathBuf::from(DEPENDENCY_ROOT)));
    assert_eq!(
        c.specialization.mounts,
        vec![(dir.path().to_path_buf(), PathBuf::from(DEPENDENCY_ROOT))]
    );
    // Libraries for the loader must be known when the interpreter is exec'd.
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    assert!(kind(&cfg, &spec(&cfg, true)).is_none());
}

#[test]
fn variables_read_at_start_make_a_fresh_start() {
    for (k, v) in [
        ("PYTHONHASHSEED", "0"),
        ("PYTHONPATH", "/x"),
        ("LANG", "de_DE.UTF-8"),
        ("LC_ALL", "C"),
        ("HOME", "/home/x"),
        ("LD_PRELOAD", "/x.so"),
    ] {
        let cfg = config(python(), &[(k, v)], None);
        assert!(kind(&cfg, &spec(&cfg, false)).is_none(), "{k}");
    }
    let node = Runtime::parse("Node.js20.15").unwrap();
    for k in [
        "NODE_OPTIONS",
        "UV_THREADPOOL_SIZE",
        "SSL_CERT_FILE",
        "OPENSSL_CONF",
    ] {
        let cfg = config(node, &[(k, "1")], None);
        assert!(kind(&cfg, &spec(&cfg, false)).is_none(), "{k}");
    }
    // What the interpreter does not read at start is the function's own business.
    let cfg = config(python(), &[("NODE_OPTIONS", "x"), ("TZ", "UTC")], None);
    assert!(kind(&cfg, &spec(&cfg, false)).is_some());
}

#[test]
fn other_runtimes_are_never_prestarted() {
    for rt in ["Custom", "http", "Java17", "PHP8.3", "Go1.x"] {
        let cfg = config(Runtime::parse(rt).unwrap(), &[], None);
        assert!(kind(&cfg, &spec(&cfg, false)).is_none(), "{rt}");
    }
}
