//! The platform's own lines in an invocation's log, in FunctionGraph's wording.
//!
//! They are written straight into the log's buffer, the time included, rather than formatted
//! into strings of their own and copied: a warm call's log is one allocation.

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

impl Now {
    /// Appends the time to `log` (nothing if it cannot be formatted, e.g. past year 9999).
    fn push(log: &mut Vec<u8>) {
        let len = log.len();
        if Now::new().0.format_into(log, &Rfc3339).is_err() {
            log.truncate(len);
        }
    }
}

/// A new log holding the start line, with room for the finish line.
pub(crate) fn start(request_id: &str, version: &str) -> Vec<u8> {
    let mut log = Vec::with_capacity(LINES);
    Now::push(&mut log);
    for part in [
        " Start invoke request '",
        request_id,
        "', version: ",
        version,
        "\n",
    ] {
        log.extend_from_slice(part.as_bytes());
    }
    log
}

/// A platform line of the log: the time and `message`.
pub(crate) fn note(log: &mut Vec<u8>, message: &str) {
    Now::push(log);
    log.push(b' ');
    log.extend_from_slice(message.as_bytes());
    log.push(b'\n');
}

/// Appends the finish line to `log`. Its pieces are appended one by one rather than through
/// `write!`, whose formatting machinery was most of a warm call's cost in this module.
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
    Now::push(log);
    log.extend_from_slice(b" Finish invoke request '");
    log.extend_from_slice(request_id.as_bytes());
    log.extend_from_slice(if ok {
        b"'(invoke Succeed), duration: "
    } else {
        b"'(invoke Failed), duration: "
    });
    thousandths(log, micros);
    log.extend_from_slice(b"ms, billing duration: ");
    decimal(log, billed_ms);
    log.extend_from_slice(b"ms, memory used: ");
    thousandths(log, (memory_used_mb * 1000.0).round().max(0.0) as u64);
    log.extend_from_slice(b"MB, billing memory: ");
    decimal(log, u64::from(memory_size));
    log.extend_from_slice(b"MB\n");
}

/// `n` in decimal, as `{}` prints it.
fn decimal(log: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    log.extend_from_slice(&buf[at..]);
}

/// `n / 1000` with three decimals, as `{:.3}` prints it, without float formatting.
fn thousandths(log: &mut Vec<u8>, n: u64) {
    decimal(log, n / 1000);
    let r = n % 1000;
    log.extend_from_slice(&[
        b'.',
        b'0' + (r / 100) as u8,
        b'0' + (r / 10 % 10) as u8,
        b'0' + (r % 10) as u8,
    ]);
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
    fn numbers_print_as_format_does() {
        for n in [0, 7, 10, 999, 1000, 1001, 123_456_789, u64::MAX] {
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            let mut out = Vec::new();
            thousandths(&mut out, n);
            assert_eq!(out, format!("{}.{:03}", n / 1000, n % 1000).as_bytes());
        }
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
