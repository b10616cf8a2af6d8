//! The platform's own lines in an invocation's log, in FunctionGraph's wording.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub(crate) fn now_iso() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn start(request_id: &str, version: &str) -> String {
    format!(
        "{} Start invoke request '{request_id}', version: {version}\n",
        now_iso()
    )
}

pub(crate) fn finish(
    request_id: &str,
    ok: bool,
    duration: Duration,
    billed_ms: u64,
    memory_used_mb: f64,
    memory_size: u32,
) -> String {
    format!(
        "{} Finish invoke request '{request_id}'({}), duration: {:.3}ms, billing duration: {billed_ms}ms, memory used: {memory_used_mb:.3}MB, billing memory: {memory_size}MB\n",
        now_iso(),
        if ok { "invoke Succeed" } else { "invoke Failed" },
        duration.as_secs_f64() * 1000.0,
    )
}
