use std::path::{Path, PathBuf};
use std::time::Duration;

use fgs_core::runtime::Availability;
use fgs_core::Runtime;
use fgs_sandbox::ResourceLimits;

use super::*;
use crate::config::{FunctionEnv, Hook};

fn config(dependency: bool, user: &[(&str, &str)]) -> InstanceConfig {
    InstanceConfig {
        id: "i".into(),
        runtime: Runtime::Custom,
        code_dir: PathBuf::from("/data/code/abc"),
        dependency_dir: dependency.then(|| PathBuf::from("/data/deps/merged")),
        dependencies: Vec::new(),
        function: FunctionEnv {
            project_id: "p1".into(),
            name: "fn1".into(),
            version: "latest".into(),
            package: "default".into(),
            handler: "index.handler".into(),
            userdata: r#"{"A":"1"}"#.into(),
            initializer: Some(Hook {
                handler: "index.init".into(),
                timeout: Duration::from_secs(7),
            }),
            pre_stop: None,
            user: user
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        limits: ResourceLimits {
            memory_mb: 256,
            cpu_millicores: 400,
            pids: 1024,
        },
        timeout: Duration::from_secs(30),
        concurrency: 1,
        network: true,
        start_timeout: Duration::from_secs(30),
        extension_init_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(3),
        runtime_dir: PathBuf::from("/data/runtime"),
        runtime_mounts: std::sync::Arc::new(Vec::new()),
        image: None,
        interpreter: Availability::Bootstrap,
    }
}

fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
    env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.as_str())
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn renders_every_runtime_variable_in_order() {
    let cfg = config(false, &[("A", "1")]);
    let env = render(&cfg, &View::new(&cfg, true));
    let max = SYNC_PAYLOAD_MAX.to_string();
    assert_eq!(
        env,
        pairs(&[
            ("PATH", SYSTEM_PATH),
            ("LANG", "C.UTF-8"),
            ("HOME", "/tmp"),
            ("RUNTIME_PROJECT_ID", "p1"),
            ("RUNTIME_FUNC_NAME", "fn1"),
            ("RUNTIME_FUNC_VERSION", "latest"),
            ("RUNTIME_PACKAGE", "default"),
            ("RUNTIME_HANDLER", "index.handler"),
            ("RUNTIME_TIMEOUT", "30"),
            ("RUNTIME_CPU", "400"),
            ("RUNTIME_MEMORY", "256"),
            ("RUNTIME_CODE_ROOT", "/opt/function/code"),
            ("RUNTIME_MAX_RESP_BODY_SIZE", &max),
            ("RUNTIME_USERDATA", r#"{"A":"1"}"#),
            ("RUNTIME_INITIALIZER_HANDLER", "index.init"),
            ("RUNTIME_INITIALIZER_TIMEOUT", "7"),
            ("A", "1"),
        ])
    );
}

#[test]
fn paths_are_the_hosts_without_isolation() {
    let cfg = config(true, &[]);
    let view = View::new(&cfg, false);
    let env = render(&cfg, &view);
    assert_eq!(get(&env, "RUNTIME_CODE_ROOT"), Some("/data/code/abc"));
    assert_eq!(
        get(&env, "PYTHONPATH"),
        Some("/data/deps/merged/python:/data/deps/merged")
    );
    assert_eq!(view.runtime(), Path::new("/data/runtime"));
    assert_eq!(
        view.inside(Path::new("/data/code/abc/bootstrap")),
        Path::new("/data/code/abc/bootstrap")
    );
}

#[test]
fn dependencies_go_on_every_module_path_at_their_mount() {
    let cfg = config(true, &[]);
    let env = render(&cfg, &View::new(&cfg, true));
    let d = DEPENDENCY_ROOT;
    assert_eq!(
        get(&env, "PATH").map(str::to_string),
        Some(format!("{d}/bin:{SYSTEM_PATH}"))
    );
    assert_eq!(
        get(&env, "PYTHONPATH").map(str::to_string),
        Some(format!("{d}/python:{d}"))
    );
    assert_eq!(
        get(&env, "NODE_PATH").map(str::to_string),
        Some(format!("{d}/nodejs/node_modules:{d}/node_modules"))
    );
    assert_eq!(
        get(&env, "LD_LIBRARY_PATH").map(str::to_string),
        Some(format!("{d}/lib"))
    );
    assert!(!env.iter().any(|(_, v)| v.contains("/data/")), "{env:?}");
}

#[test]
fn user_variables_come_last_and_may_replace_path() {
    let cfg = config(true, &[("PATH", "/mine"), ("Z", "z")]);
    let env = render(&cfg, &View::new(&cfg, true));
    assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    let tail: Vec<_> = env[env.len() - 2..].to_vec();
    assert_eq!(tail, pairs(&[("PATH", "/mine"), ("Z", "z")]));
}

#[test]
fn hooks_render_only_when_set() {
    let mut cfg = config(false, &[]);
    cfg.function.initializer = None;
    cfg.function.pre_stop = Some(Hook {
        handler: "index.bye".into(),
        timeout: Duration::from_secs(0),
    });
    let env = render(&cfg, &View::new(&cfg, true));
    assert_eq!(get(&env, "RUNTIME_INITIALIZER_HANDLER"), None);
    assert_eq!(get(&env, "RUNTIME_PRE_STOP_HANDLER"), Some("index.bye"));
    assert_eq!(get(&env, "RUNTIME_PRE_STOP_TIMEOUT"), Some("0"));
}

#[test]
fn host_paths_map_into_their_mounts() {
    let cfg = config(true, &[]);
    let view = View::new(&cfg, true);
    for (host, inside) in [
        ("/data/code/abc", "/opt/function/code"),
        ("/data/code/abc/bootstrap", "/opt/function/code/bootstrap"),
        (
            "/data/deps/merged/extensions/a.sh",
            "/opt/function/dependency/extensions/a.sh",
        ),
        (
            "/data/runtime/extensions/x",
            "/opt/function/runtime/extensions/x",
        ),
        ("/usr/bin/python3", "/usr/bin/python3"),
        // A sibling whose name merely starts like a tree is not inside it.
        ("/data/code/abcd/x", "/data/code/abcd/x"),
    ] {
        assert_eq!(view.inside(Path::new(host)), Path::new(inside), "{host}");
    }
    assert_eq!(view.code(), Path::new(CODE_ROOT));
    assert_eq!(view.dependency(), Some(Path::new(DEPENDENCY_ROOT)));
}
