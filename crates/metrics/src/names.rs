//! Every metric name fgs exports, with its type (docs/metrics.md describes each one).

/// counter `{project,package,function,version,outcome,error_code}`: invocations that ran or were
/// refused. `outcome` is `success`, `error` (the function failed; `error_code` says how),
/// `throttled` (429: no instance and the queue full, or the function disabled) or
/// `system_error` (fgs could not start an instance).
pub const INVOCATIONS: &str = "fgs_invocations_total";
/// histogram (seconds) `{project,package,function,version}`: time the function ran.
pub const DURATION: &str = "fgs_invocation_duration_seconds";
/// histogram (seconds) `{project,package,function,version}`: time a cold start took to give
/// its invocation an instance.
pub const COLD_START: &str = "fgs_cold_start_duration_seconds";
/// gauge `{project,package,function,version,state}`: instances `starting`, `busy`, `idle`.
pub const INSTANCES: &str = "fgs_instances";
/// gauge: async invocations waiting (status WAIT) in the durable queue.
pub const ASYNC_QUEUE_DEPTH: &str = "fgs_async_queue_depth";
/// gauge (seconds): age of the oldest waiting async invocation, 0 when none waits.
pub const ASYNC_OLDEST_AGE: &str = "fgs_async_queue_oldest_age_seconds";
/// counter: invoke events an extension did not answer with 200.
pub const EXTENSION_FAILURES: &str = "fgs_extension_invoke_failures_total";
/// counter: telemetry events dropped because a subscriber did not keep up.
pub const TELEMETRY_DROPPED: &str = "fgs_telemetry_dropped_events_total";
/// gauge: pre-warmed sandboxes ready for a cold start.
pub const SANDBOX_PREWARMED: &str = "fgs_sandbox_prewarmed";
/// gauge: interpreters started ahead, waiting to become a function's instance.
pub const INTERPRETERS_PRESTARTED: &str = "fgs_interpreters_prestarted";
/// counter: cold starts that took a pre-started interpreter.
pub const INTERPRETERS_SPECIALIZED: &str = "fgs_interpreters_specialized_total";
