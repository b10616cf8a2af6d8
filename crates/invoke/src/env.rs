//! The environment of an instance (SPEC.md 4).

use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::FunctionRecord;

/// The `RUNTIME_*` variables and the user's own, for one version of a function. The API
/// addresses are added by the instance, which alone knows them.
pub(crate) fn function_env(
    rec: &FunctionRecord,
    version: &str,
    code_root: &str,
    dependency_root: Option<&str>,
) -> Vec<(String, String)> {
    let spec = &rec.spec;
    let user = spec.user_env();
    let userdata = if spec.user_data.trim().is_empty() {
        "{}".to_string()
    } else {
        spec.user_data.clone()
    };
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin".into(),
        ),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), "/tmp".into()),
        ("RUNTIME_PROJECT_ID".into(), rec.project.clone()),
        ("RUNTIME_FUNC_NAME".into(), rec.name.clone()),
        ("RUNTIME_FUNC_VERSION".into(), version.to_string()),
        ("RUNTIME_PACKAGE".into(), rec.package.clone()),
        ("RUNTIME_HANDLER".into(), spec.handler.clone()),
        ("RUNTIME_TIMEOUT".into(), spec.timeout.to_string()),
        ("RUNTIME_CPU".into(), spec.cpu().to_string()),
        ("RUNTIME_MEMORY".into(), spec.memory_size.to_string()),
        ("RUNTIME_CODE_ROOT".into(), code_root.to_string()),
        (
            "RUNTIME_MAX_RESP_BODY_SIZE".into(),
            SYNC_PAYLOAD_MAX.to_string(),
        ),
        ("RUNTIME_USERDATA".into(), userdata),
    ];
    if !spec.initializer_handler.is_empty() {
        env.push((
            "RUNTIME_INITIALIZER_HANDLER".into(),
            spec.initializer_handler.clone(),
        ));
        env.push((
            "RUNTIME_INITIALIZER_TIMEOUT".into(),
            spec.initializer_timeout.to_string(),
        ));
    }
    // [FGS] The built-in runtimes run the pre-stop handler on SIGTERM (runtimes/).
    if !spec.pre_stop_handler.is_empty() {
        env.push((
            "RUNTIME_PRE_STOP_HANDLER".into(),
            spec.pre_stop_handler.clone(),
        ));
        env.push((
            "RUNTIME_PRE_STOP_TIMEOUT".into(),
            spec.pre_stop_timeout.to_string(),
        ));
    }
    // SPEC.md 4: merged dependencies go on every module path.
    if let Some(dep) = dependency_root {
        for (k, v) in [
            ("PYTHONPATH", format!("{dep}/python:{dep}")),
            (
                "NODE_PATH",
                format!("{dep}/nodejs/node_modules:{dep}/node_modules"),
            ),
            ("LD_LIBRARY_PATH", format!("{dep}/lib")),
        ] {
            env.push((k.into(), v));
        }
        if let Some((_, path)) = env.iter_mut().find(|(k, _)| k == "PATH") {
            *path = format!("{dep}/bin:{path}");
        }
    }
    // User variables last; their names were checked against the reserved ones at create time,
    // but PATH, LANG and HOME are theirs to override.
    for (k, v) in user {
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    }
    env
}
