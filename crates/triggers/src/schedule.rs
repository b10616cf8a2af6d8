//! Timer schedules (SPEC.md 4): `Rate` (`3m`, `1h`, `1d`) and `Cron` (6 fields
//! `sec min hour dom month dow`, 5 without `dow`, 7 with a year, descriptors such as `@daily`
//! and `@every 1h30m`), and the computation of the next firing.
//!
//! FunctionGraph's cron dialect is robfig/cron's parser with seconds, an optional day-of-week
//! and descriptors; the rules here follow it: `?` is `*`, day-of-week 0-6 (or 7) with 0 = Sunday,
//! a restricted day-of-month and day-of-week match when either does, and `@every` durations are
//! Go durations truncated to whole seconds with a minimum of one second. Schedules run in UTC
//! [FGS]: FunctionGraph does not say which zone its cron uses.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// The longest any schedule may wait between firings; a schedule whose next firing is further
/// away (a year field in the past, `30 2 31 2 *`) is refused.
const SEARCH_YEARS: i32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule_type {0:?} is invalid: use Rate or Cron")]
    Type(String),
    #[error("Rate schedule {0:?} is invalid: use 1m to 60m, 1h to 24h, or 1d to 30d")]
    Rate(String),
    #[error("Cron schedule {0:?} is invalid: {1}")]
    Cron(String, String),
    #[error("@every schedule {0:?} is invalid: {1}")]
    Every(String, String),
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A fixed period, kept in phase with the trigger's first firing.
    Rate(Duration),
    /// `@every`: a fixed period, like `Rate` but with Go durations.
    Every(Duration),
    /// A cron pattern, optionally restricted to some years.
    Cron {
        cron: Box<croner::Cron>,
        years: Option<Vec<(i32, i32)>>,
    },
}

impl Schedule {
    /// Parses `schedule` of `schedule_type` as the TIMER trigger's `event_data` gives them.
    pub fn parse(schedule_type: &str, schedule: &str) -> Result<Schedule, ScheduleError> {
        match schedule_type {
            "Rate" => parse_rate(schedule),
            "Cron" => parse_cron(schedule),
            other => Err(ScheduleError::Type(other.to_string())),
        }
    }

    /// The first firing strictly after `now_ms` (Unix milliseconds). `prev_ms` is the firing
    /// before it, if any, which keeps periodic schedules in phase: a `Rate` trigger created at
    /// 10:00:20 with `1m` fires at 10:01:20, 10:02:20, ... and, after a pause, at the next of
    /// those instants rather than one period after the pause. Missed firings are skipped: this is
    /// what makes a restart fire at most once for everything it missed. `None` when the
    /// schedule never fires again.
    pub fn next_after(&self, now_ms: i64, prev_ms: Option<i64>) -> Option<i64> {
        match self {
            Schedule::Rate(period) | Schedule::Every(period) => {
                let p = i64::try_from(period.as_millis()).ok()?.max(1);
                match prev_ms {
                    Some(prev) if prev <= now_ms => {
                        let k = (now_ms - prev) / p + 1;
                        prev.checked_add(k.checked_mul(p)?)
                    }
                    Some(prev) => Some(prev),
                    None => now_ms.checked_add(p),
                }
            }
            Schedule::Cron { cron, years } => next_cron(cron, years.as_deref(), now_ms),
        }
    }
}

fn parse_rate(s: &str) -> Result<Schedule, ScheduleError> {
    let err = || ScheduleError::Rate(s.to_string());
    let unit = s.chars().last().ok_or_else(err)?;
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 3 {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    // FunctionGraph's ranges: minutes 1-60, hours 1-24, days 1-30.
    let (max, secs) = match unit {
        'm' => (60, 60),
        'h' => (24, 3600),
        'd' => (30, 86_400),
        _ => return Err(err()),
    };
    if !(1..=max).contains(&n) {
        return Err(err());
    }
    Ok(Schedule::Rate(Duration::from_secs(n * secs)))
}

/// robfig/cron's descriptors, as 6-field patterns.
const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
];

fn parse_cron(s: &str) -> Result<Schedule, ScheduleError> {
    let trimmed = s.trim();
    if let Some(rest) = trimmed.strip_prefix("@every") {
        if rest.starts_with(|c: char| c.is_whitespace()) {
            return parse_every(trimmed, rest.trim());
        }
    }
    let cron_err = |m: String| ScheduleError::Cron(s.to_string(), m);
    let pattern = match DESCRIPTORS.iter().find(|(d, _)| *d == trimmed) {
        Some((_, p)) => p.to_string(),
        None if trimmed.starts_with('@') => {
            return Err(cron_err(
                "unknown descriptor: use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>".into(),
            ))
        }
        None => trimmed.to_string(),
    };
    let mut fields: Vec<&str> = pattern.split_whitespace().collect();
    let years = match fields.len() {
        5 => {
            // The day-of-week is optional (FunctionGraph's user guide).
            fields.push("*");
            None
        }
        6 => None,
        7 => {
            let y = parse_years(fields[6]).map_err(cron_err)?;
            fields.truncate(6);
            y
        }
        n => {
            return Err(cron_err(format!(
                "{n} fields: use `sec min hour day-of-month month [day-of-week [year]]`"
            )))
        }
    };
    let six = fields.join(" ");
    let cron = croner::Cron::new(&six)
        .with_seconds_required()
        .parse()
        .map_err(|e| cron_err(e.to_string()))?;
    let sched = Schedule::Cron {
        cron: Box::new(cron),
        years,
    };
    // A pattern that can never match (31 February, a past year) is refused now rather than
    // silently never firing.
    let probe_from = Utc::now().timestamp_millis();
    if sched.next_after(probe_from, None).is_none() {
        return Err(cron_err(format!(
            "it never fires within the next {SEARCH_YEARS} years"
        )));
    }
    Ok(sched)
}

/// A year field: `*`, `?`, `Y`, `A-B`, or a comma list of these.
fn parse_years(field: &str) -> Result<Option<Vec<(i32, i32)>>, String> {
    if field == "*" || field == "?" {
        return Ok(None);
    }
    let bad = || format!("year field {field:?} is invalid: use *, YYYY, YYYY-YYYY or a list");
    let year = |t: &str| -> Result<i32, String> {
        let y: i32 = t.parse().map_err(|_| bad())?;
        if (1970..=2199).contains(&y) {
            Ok(y)
        } else {
            Err(bad())
        }
    };
    let mut out = Vec::new();
    for part in field.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (year(a)?, year(b)?),
            None => {
                let y = year(part)?;
                (y, y)
            }
        };
        if a > b {
            return Err(bad());
        }
        out.push((a, b));
    }
    Ok(Some(out))
}

fn year_ok(years: Option<&[(i32, i32)]>, y: i32) -> bool {
    years.is_none_or(|r| r.iter().any(|(a, b)| (*a..=*b).contains(&y)))
}

fn next_cron(cron: &croner::Cron, years: Option<&[(i32, i32)]>, now_ms: i64) -> Option<i64> {
    // Cron has whole-second resolution: the next match is after the current second.
    let now = Utc.timestamp_opt(now_ms.div_euclid(1000), 0).single()?;
    let limit_year = now.year() + SEARCH_YEARS;
    let mut from: DateTime<Utc> = now;
    let mut inclusive = false;
    loop {
        let t = cron.find_next_occurrence(&from, inclusive).ok()?;
        if t.year() > limit_year {
            return None;
        }
        if year_ok(years, t.year()) {
            return Some(t.timestamp_millis());
        }
        // Jump to the start of the next year rather than stepping through every match.
        from = Utc.with_ymd_and_hms(t.year() + 1, 1, 1, 0, 0, 0).single()?;
        inclusive = true;
    }
}

/// A Go duration (`1h30m`, `1.5h`, `90s`, `500ms`), as `@every` takes it.
fn parse_every(whole: &str, d: &str) -> Result<Schedule, ScheduleError> {
    let err = |m: &str| ScheduleError::Every(whole.to_string(), m.to_string());
    if d.is_empty() {
        return Err(err("a duration is required, e.g. @every 1h30m"));
    }
    let mut nanos: f64 = 0.0;
    let mut rest = d;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("a unit is missing: use ns, us, ms, s, m or h"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| err("a number is malformed"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err("unknown unit: use ns, us, ms, s, m or h")),
        };
        rest = &rest[unit_len..];
        nanos += n * scale;
    }
    // A year is far beyond any sensible period and keeps the arithmetic in range.
    if !nanos.is_finite() || nanos > 366.0 * 86_400e9 {
        return Err(err("the duration is longer than a year"));
    }
    // robfig/cron truncates to whole seconds and fires at least once a second.
    let secs = ((nanos / 1e9).floor() as u64).max(1);
    Ok(Schedule::Every(Duration::from_secs(secs)))
}

/// `time` of the timer event: RFC 3339 in UTC with whole seconds, like FunctionGraph's
/// `2018-06-01T08:30:00+08:00`.
pub fn event_time(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid test date")
            .timestamp_millis()
    }

    fn cron(s: &str) -> Schedule {
        Schedule::parse("Cron", s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn rates_follow_functiongraph_ranges() {
        for (s, secs) in [
            ("1m", 60),
            ("3m", 180),
            ("60m", 3600),
            ("1h", 3600),
            ("24h", 86_400),
            ("1d", 86_400),
            ("30d", 2_592_000),
        ] {
            match Schedule::parse("Rate", s) {
                Ok(Schedule::Rate(d)) => assert_eq!(d.as_secs(), secs, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
        for bad in [
            "", "0m", "61m", "25h", "31d", "1s", "m", "1", "1.5h", "-1m", " 1m", "1M", "1000m",
        ] {
            assert!(
                matches!(Schedule::parse("Rate", bad), Err(ScheduleError::Rate(_))),
                "{bad:?} must be refused"
            );
        }
        assert!(matches!(
            Schedule::parse("Interval", "1m"),
            Err(ScheduleError::Type(_))
        ));
    }

    #[test]
    fn rate_keeps_its_phase_and_skips_a_backlog() {
        let s = Schedule::parse("Rate", "3m").unwrap();
        let t0 = ms(2024, 5, 1, 10, 0, 20);
        // First firing: one period after creation.
        assert_eq!(s.next_after(t0, None), Some(t0 + 180_000));
        // Just fired at t1: the next is one period later.
        let t1 = t0 + 180_000;
        assert_eq!(s.next_after(t1, Some(t1)), Some(t1 + 180_000));
        // Down for an hour after t1: the next firing is the next in phase, not a backlog.
        let back = t1 + 3_600_000 + 5_000;
        let next = s.next_after(back, Some(t1)).unwrap();
        assert!(next > back && next - back <= 180_000);
        assert_eq!((next - t1) % 180_000, 0);
        // A planned firing still in the future stays.
        assert_eq!(s.next_after(t0, Some(t1)), Some(t1));
    }

    #[test]
    fn cron_with_seconds() {
        let s = cron("*/1 * * * * *");
        let now = ms(2024, 5, 1, 10, 0, 20) + 300;
        assert_eq!(s.next_after(now, None), Some(ms(2024, 5, 1, 10, 0, 21)));
        let s = cron("0 30 8 * * *");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 9, 0, 0), None),
            Some(ms(2024, 5, 2, 8, 30, 0))
        );
        // 15 s past every minute.
        let s = cron("15 * * * * ?");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 9, 0, 15), None),
            Some(ms(2024, 5, 1, 9, 1, 15))
        );
    }

    #[test]
    fn cron_without_day_of_week_and_with_names() {
        // 5 fields are `sec min hour dom month`, not the classic `min hour dom month dow`.
        let s = cron("0 0 12 1 *");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 13, 0, 0), None),
            Some(ms(2024, 6, 1, 12, 0, 0))
        );
        // 2024-05-01 is a Wednesday; the next Monday is 05-06.
        let s = cron("0 0 9 * * Mon");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 0, 0, 0), None),
            Some(ms(2024, 5, 6, 9, 0, 0))
        );
        let s = cron("0 0 0 1 Jan,Jul *");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 0, 0, 0), None),
            Some(ms(2024, 7, 1, 0, 0, 0))
        );
        // 0 is Sunday: 2024-05-05.
        let s = cron("0 0 0 * * 0");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 0, 0, 0), None),
            Some(ms(2024, 5, 5, 0, 0, 0))
        );
    }

    #[test]
    fn cron_with_a_year() {
        let s = cron("0 0 0 1 1 * 2030");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 0, 0, 0), None),
            Some(ms(2030, 1, 1, 0, 0, 0))
        );
        let s = cron("0 0 0 1 6 ? 2025-2026,2029");
        let t = ms(2026, 6, 1, 0, 0, 0);
        assert_eq!(
            s.next_after(t, None),
            Some(ms(2029, 6, 1, 0, 0, 0)),
            "skips the years outside the list"
        );
        assert!(matches!(
            Schedule::parse("Cron", "0 0 0 1 1 * 1999"),
            Err(ScheduleError::Cron(..))
        ));
    }

    #[test]
    fn descriptors_and_every() {
        let s = cron("@daily");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 13, 0, 0), None),
            Some(ms(2024, 5, 2, 0, 0, 0))
        );
        let s = cron("@hourly");
        assert_eq!(
            s.next_after(ms(2024, 5, 1, 13, 0, 1), None),
            Some(ms(2024, 5, 1, 14, 0, 0))
        );
        for (e, secs) in [
            ("@every 1h30m", 5400),
            ("@every 1.5h", 5400),
            ("@every 30m", 1800),
            ("@every 2h30m", 9000),
            ("@every 90s", 90),
            ("@every 1500ms", 1),
            ("@every 10ns", 1),
        ] {
            match Schedule::parse("Cron", e) {
                Ok(Schedule::Every(d)) => assert_eq!(d.as_secs(), secs, "{e}"),
                other => panic!("{e}: {other:?}"),
            }
        }
        let s = cron("@every 1h30m");
        let t0 = ms(2024, 5, 1, 10, 0, 0);
        assert_eq!(s.next_after(t0, None), Some(t0 + 5_400_000));
    }

    #[test]
    fn cron_refusals() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * * *",
            "61 * * * * *",
            "* 60 * * * *",
            "* * 24 * * *",
            "* * * 32 * *",
            "* * * * 13 *",
            "0 0 0 31 2 *",
            "@often",
            "@every",
            "@every 1x",
            "@every h",
            "@every 100000h",
            "abc",
        ] {
            assert!(
                Schedule::parse("Cron", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn event_time_is_rfc3339_utc() {
        assert_eq!(
            event_time(ms(2018, 6, 1, 0, 30, 0) + 999),
            "2018-06-01T00:30:00+00:00"
        );
    }
}
