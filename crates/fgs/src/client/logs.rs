//! `fgs logs NAME [--follow] [--request-id ID] [--since WHEN]`: stored invocation logs
//! (docs/logs.md), read from `GET /functions/{urn}/logs`.

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{http, s, text, ClientOptions, Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub options: ClientOptions,
    /// Function name or URN.
    pub name: String,
    /// Only the invocation with this request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only invocations that started since then: a duration ago (`10m`, `2h`, `7d`) or an
    /// RFC 3339 time. Without it, the newest `--limit` invocations.
    #[arg(long)]
    pub since: Option<String>,
    /// How many invocations to show without `--since`.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: u32,
    /// Keep printing new invocations' logs as they arrive (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

/// How often `--follow` asks for new logs.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub(super) fn run(a: LogsArgs) -> Result<Outcome> {
    let ctx = Ctx::new(&a.options)?;
    let path = format!("/functions/{}/logs", http::segment(&a.name));
    let mut base = Vec::new();
    if let Some(r) = &a.request_id {
        base.push(format!("request_id={}", http::segment(r)));
    }
    let mut shown: Vec<Value> = Vec::new();
    let mut last_id: u64 = 0;
    if let Some(since) = &a.since {
        base.push(format!("since={}", since_ms(since)?));
        // Everything since then, oldest first, page after page.
        loop {
            let page = fetch(&ctx, &path, &base, &format!("limit=500&marker={last_id}"))?;
            let logs = page["logs"].as_array().cloned().unwrap_or_default();
            last_id = logs.last().map_or(last_id, id);
            shown.extend(logs);
            if s(&page, "next_marker").is_empty() {
                break;
            }
        }
    } else {
        let page = fetch(
            &ctx,
            &path,
            &base,
            &format!("order=desc&limit={}", a.limit.max(1)),
        )?;
        let mut logs = page["logs"].as_array().cloned().unwrap_or_default();
        logs.reverse();
        last_id = logs.last().map_or(0, id);
        shown = logs;
    }
    if a.follow {
        for l in &shown {
            print_one(&ctx, l);
        }
    } else {
        let v = serde_json::json!({"logs": shown, "count": shown.len()});
        ctx.show(&v, |_| {
            let mut out = String::new();
            for l in &shown {
                out.push_str(&render(l));
            }
            out
        })?;
        return Ok(Outcome::Done);
    }
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let page = fetch(&ctx, &path, &base, &format!("limit=500&marker={last_id}"))?;
        for l in page["logs"].as_array().into_iter().flatten() {
            last_id = last_id.max(id(l));
            print_one(&ctx, l);
        }
    }
}

fn fetch(ctx: &Ctx, path: &str, base: &[String], extra: &str) -> Result<Value> {
    let mut q = base.to_vec();
    q.push(extra.to_owned());
    ctx.api
        .call_query("GET", path, &q.join("&"), None, &[])?
        .json()
}

fn id(l: &Value) -> u64 {
    text(l, "id").parse().unwrap_or(0)
}

/// One record while following: a JSON line for scripts, the rendered log for people.
fn print_one(ctx: &Ctx, l: &Value) {
    if ctx.json {
        println!("{l}");
    } else {
        print!("{}", render(l));
    }
}

/// A header line (when, which version, request id, status, duration) and the log as stored.
fn render(l: &Value) -> String {
    let status = match l["error_code"].as_u64() {
        Some(0) | None => "ok".to_owned(),
        Some(c) => format!("error {c}"),
    };
    let mut out = format!(
        "=== {} {}:{} {} {} {:.1} ms ({})\n",
        s(l, "start_time"),
        s(l, "func_name"),
        s(l, "version"),
        s(l, "request_id"),
        status,
        l["duration"].as_f64().unwrap_or(0.0),
        s(l, "invoke_type"),
    );
    let log = s(l, "log");
    out.push_str(log);
    if !log.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `--since`: a duration ago, an RFC 3339 time, or Unix milliseconds.
fn since_ms(s: &str) -> Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    match humantime::parse_duration(s) {
        Ok(d) => {
            let now = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            Ok((now - d.as_millis() as i128) as i64)
        }
        Err(_) => bail!(
            "--since {s:?}: give a duration ago (10m, 2h, 7d) or an RFC 3339 time (2026-11-29T10:00:00Z)"
        ),
    }
}
