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
    let micros = (duration.as_nanos() + 500) / 1000;
    format!(
        "{} Finish invoke request '{request_id}'({}), duration: {}ms, billing duration: {billed_ms}ms, memory used: {}MB, billing memory: {memory_size}MB\n",
        now_iso(),
        if ok { "invoke Succeed" } else { "invoke Failed" },
        Thousandths(micros),
        Thousandths((memory_used_mb * 1000.0).round().max(0.0) as u128),
    )
}

/// `n / 1000` with three decimals, as `{:.3}` prints it, without float formatting (a large
/// part of a warm call's own formatting cost).
struct Thousandths(u128);

impl std::fmt::Display for Thousandths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_prints_three_decimals() {
        let l = finish("r", true, Duration::from_nanos(1_234_567), 2, 12.3456, 128);
        assert!(
            l.ends_with("Finish invoke request 'r'(invoke Succeed), duration: 1.235ms, billing duration: 2ms, memory used: 12.346MB, billing memory: 128MB\n"),
            "{l}"
        );
        let l = finish("r", false, Duration::from_micros(42), 1, 0.0, 256);
        assert!(l.contains("(invoke Failed), duration: 0.042ms,"), "{l}");
        assert!(l.contains("memory used: 0.000MB,"), "{l}");
    }
}
