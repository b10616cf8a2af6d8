//! The platform's own lines in an invocation's log, in FunctionGraph's wording.
//!
//! They are written straight into the log's buffer, the time included, rather than formatted
//! into strings of their own and copied: a warm call's log is one allocation.

use std::io::Write;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Room for the start and finish lines of a call (about 110 and 190 bytes with a UUID request
/// id), so that a log without output from the runtime never grows.
const LINES: usize = 384;

/// The current UTC time, RFC 3339 with milliseconds, as the log lines print it.
struct Now(OffsetDateTime);

impl Now {
    fn new() -> Now {
        let now = OffsetDateTime::now_utc();
        Now(now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now))
    }
}

impl std::fmt::Display for Now {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `2026-12-04T16:36:40.123Z` and at most a long offset and year: formatted on the stack.
        let mut buf = [0u8; 48];
        let mut w = &mut buf[..];
        self.0
            .format_into(&mut w, &Rfc3339)
            .map_err(|_| std::fmt::Error)?;
        let n = 48 - w.len();
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| std::fmt::Error)?)
    }
}

pub(crate) fn now_iso() -> String {
    Now::new().to_string()
}

/// A new log holding the start line, with room for the finish line.
pub(crate) fn start(request_id: &str, version: &str) -> Vec<u8> {
    let mut log = Vec::with_capacity(LINES);
    // Writing into a Vec cannot fail.
    let _ = writeln!(
        log,
        "{} Start invoke request '{request_id}', version: {version}",
        Now::new()
    );
    log
}

/// A platform line of the log: the time and `message`.
pub(crate) fn note(log: &mut Vec<u8>, message: &str) {
    let _ = writeln!(log, "{} {message}", Now::new());
}

/// Appends the finish line to `log`.
pub(crate) fn finish(
    log: &mut Vec<u8>,
    request_id: &str,
    ok: bool,
    duration: Duration,
    billed_ms: u64,
    memory_used_mb: f64,
    memory_size: u32,
) {
    // Rounded to the microsecond in 64 bits: a `u128` division is a call into a helper.
    let micros = duration
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from((duration.subsec_nanos() + 500) / 1000));
    let _ = writeln!(
        log,
        "{} Finish invoke request '{request_id}'({}), duration: {}ms, billing duration: {billed_ms}ms, memory used: {}MB, billing memory: {memory_size}MB",
        Now::new(),
        if ok { "invoke Succeed" } else { "invoke Failed" },
        Thousandths(micros),
        Thousandths((memory_used_mb * 1000.0).round().max(0.0) as u64),
    );
}

/// `n / 1000` with three decimals, as `{:.3}` prints it, without float formatting (a large
/// part of a warm call's own formatting cost).
struct Thousandths(u64);

impl std::fmt::Display for Thousandths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(ok: bool, d: Duration, billed: u64, used: f64, size: u32) -> String {
        let mut log = Vec::new();
        finish(&mut log, "r", ok, d, billed, used, size);
        String::from_utf8(log).expect("utf-8")
    }

    #[test]
    fn finish_prints_three_decimals() {
        let l = finished(true, Duration::from_nanos(1_234_567), 2, 12.3456, 128);
        assert!(
            l.ends_with("Finish invoke request 'r'(invoke Succeed), duration: 1.235ms, billing duration: 2ms, memory used: 12.346MB, billing memory: 128MB\n"),
            "{l}"
        );
        let l = finished(false, Duration::from_micros(42), 1, 0.0, 256);
        assert!(l.contains("(invoke Failed), duration: 0.042ms,"), "{l}");
        assert!(l.contains("memory used: 0.000MB,"), "{l}");
        // Rounded to the microsecond across the second.
        let l = finished(true, Duration::new(3, 999_999_600), 4000, 1.0, 128);
        assert!(l.contains(", duration: 4000.000ms,"), "{l}");
        let l = finished(true, Duration::new(3, 999_999_400), 4000, 1.0, 128);
        assert!(l.contains(", duration: 3999.999ms,"), "{l}");
    }

    #[test]
    fn lines_start_with_the_time_in_milliseconds() {
        let log = start("01a24149-46f6-77bb-8ddf-a9a12d58353b", "latest");
        let l = std::str::from_utf8(&log).expect("utf-8");
        let (time, rest) = l.split_once(' ').expect("a time first");
        assert_eq!(
            rest,
            "Start invoke request '01a24149-46f6-77bb-8ddf-a9a12d58353b', version: latest\n"
        );
        // e.g. 2026-12-04T16:36:40.123Z: RFC 3339 in UTC, at most milliseconds (the `time`
        // crate leaves out trailing zeros of the fraction, and a whole second's fraction).
        for t in [time.to_string(), now_iso()] {
            let parsed = OffsetDateTime::parse(&t, &Rfc3339).expect("RFC 3339");
            assert!(t.ends_with('Z') && t.len() <= 24, "{t}");
            assert_eq!(parsed.nanosecond() % 1_000_000, 0, "{t}");
        }
        let mut log = log;
        let before = log.capacity();
        finish(
            &mut log,
            "01a24149-46f6-77bb-8ddf-a9a12d58353b",
            true,
            Duration::from_millis(3),
            3,
            0.5,
            128,
        );
        assert_eq!(
            log.capacity(),
            before,
            "the finish line fits in the room left"
        );
        let mut log = Vec::new();
        note(&mut log, "boom");
        assert!(
            log.ends_with(b"Z boom\n"),
            "{:?}",
            String::from_utf8_lossy(&log)
        );
    }
}
