//! What a function's environment says of it (SPEC.md 4), typed from its record; the instance
//! renders the strings, with the paths as it sees them.

use std::time::Duration;

use fgs_core::FunctionRecord;
use fgs_instance::{FunctionEnv, Hook};

/// The `RUNTIME_*` values and the user's variables of one version of a function.
pub(crate) fn function_env(rec: &FunctionRecord, version: &str) -> FunctionEnv {
    let spec = &rec.spec;
    let hook = |handler: &str, timeout: u32| {
        (!handler.is_empty()).then(|| Hook {
            handler: handler.to_string(),
            timeout: Duration::from_secs(u64::from(timeout)),
        })
    };
    FunctionEnv {
        project_id: rec.project.clone(),
        name: rec.name.clone(),
        version: version.to_string(),
        package: rec.package.clone(),
        handler: spec.handler.clone(),
        userdata: if spec.user_data.trim().is_empty() {
            "{}".to_string()
        } else {
            spec.user_data.clone()
        },
        initializer: hook(&spec.initializer_handler, spec.initializer_timeout),
        pre_stop: hook(&spec.pre_stop_handler, spec.pre_stop_timeout),
        user: spec.user_env(),
    }
}
