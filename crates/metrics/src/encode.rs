//! The Prometheus text exposition format (version 0.0.4), written by hand: fgs exports a few
//! fixed families, and a hand-written encoder keeps the hot path free of a metrics framework.

use std::fmt::Write;

use crate::names;
use crate::series::{SeriesKey, DURATION_BUCKETS};
use crate::Registry;

/// Instances of one function version by state, read from the pools at scrape time.
#[derive(Debug, Clone)]
pub struct InstanceGauge {
    pub key: SeriesKey,
    pub starting: usize,
    pub busy: usize,
    pub idle: usize,
}

/// Values read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub instances: Vec<InstanceGauge>,
    pub async_depth: u64,
    pub async_oldest_age_secs: f64,
    pub sandbox_prewarmed: usize,
    pub interpreters_prestarted: usize,
    pub interpreters_specialized: u64,
    /// In a cluster, the node these values are of: a `node` label on every series, since each
    /// node's `/metrics` counts only what ran there (Prometheus scrapes each).
    pub node: Option<String>,
}

/// A label value escaped as the format asks: backslash, double quote and newline.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A series' labels; `node` is `,node="..."` or empty.
fn labels(k: &SeriesKey, node: &str) -> String {
    format!(
        "project=\"{}\",package=\"{}\",function=\"{}\",version=\"{}\"{node}",
        esc(&k.project),
        esc(&k.package),
        esc(&k.name),
        esc(&k.version)
    )
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes every family, series sorted by labels; per-function series only where `visible`
/// says so (an access key sees its own project's functions).
pub fn encode(reg: &Registry, g: &Gauges, visible: &dyn Fn(&SeriesKey) -> bool) -> String {
    let mut out = String::with_capacity(4096);
    let node = g
        .node
        .as_deref()
        .map_or_else(String::new, |n| format!(",node=\"{}\"", esc(n)));
    let series: Vec<_> = reg
        .all_series()
        .into_iter()
        .filter(|s| visible(&s.key))
        .collect();

    header(
        &mut out,
        names::INVOCATIONS,
        "counter",
        "Invocations by function version and outcome.",
    );
    for s in &series {
        let l = labels(&s.key, &node);
        for (outcome, code, n) in s.outcomes() {
            let code = code.map(|c| c.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "{}{{{l},outcome=\"{outcome}\",error_code=\"{code}\"}} {n}",
                names::INVOCATIONS
            );
        }
    }
    for (name, help, pick) in [
        (
            names::DURATION,
            "Time the function ran, in seconds.",
            0usize,
        ),
        (
            names::COLD_START,
            "Time a cold start took to give its invocation an instance, in seconds.",
            1,
        ),
    ] {
        header(&mut out, name, "histogram", help);
        for s in &series {
            let h = if pick == 0 {
                &s.duration
            } else {
                &s.cold_start
            };
            let (cum, sum) = h.snapshot();
            let l = labels(&s.key, &node);
            for (i, n) in cum.iter().enumerate() {
                let le = DURATION_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_sum{{{l}}} {sum}");
            let _ = writeln!(
                out,
                "{name}_count{{{l}}} {}",
                cum.last().copied().unwrap_or(0)
            );
        }
    }
    header(
        &mut out,
        names::INSTANCES,
        "gauge",
        "Instances by function version and state.",
    );
    let mut inst: Vec<_> = g
        .instances
        .iter()
        .filter(|i| visible(&i.key))
        .cloned()
        .collect();
    inst.sort_by(|a, b| a.key.cmp(&b.key));
    for i in &inst {
        let l = labels(&i.key, &node);
        for (state, n) in [("starting", i.starting), ("busy", i.busy), ("idle", i.idle)] {
            let _ = writeln!(out, "{}{{{l},state=\"{state}\"}} {n}", names::INSTANCES);
        }
    }
    let plain: [(&str, &str, &str, String); 7] = [
        (
            names::ASYNC_QUEUE_DEPTH,
            "gauge",
            "Async invocations waiting in the durable queue.",
            g.async_depth.to_string(),
        ),
        (
            names::ASYNC_OLDEST_AGE,
            "gauge",
            "Age of the oldest waiting async invocation, in seconds.",
            g.async_oldest_age_secs.to_string(),
        ),
        (
            names::EXTENSION_FAILURES,
            "counter",
            "Invoke events an extension did not answer with 200.",
            reg.extension_failures().to_string(),
        ),
        (
            names::TELEMETRY_DROPPED,
            "counter",
            "Telemetry events dropped because a subscriber did not keep up.",
            reg.telemetry_dropped().to_string(),
        ),
        (
            names::SANDBOX_PREWARMED,
            "gauge",
            "Pre-warmed sandboxes ready for a cold start.",
            g.sandbox_prewarmed.to_string(),
        ),
        (
            names::INTERPRETERS_PRESTARTED,
            "gauge",
            "Interpreters started ahead, waiting to become a function's instance.",
            g.interpreters_prestarted.to_string(),
        ),
        (
            names::INTERPRETERS_SPECIALIZED,
            "counter",
            "Cold starts that took a pre-started interpreter.",
            g.interpreters_specialized.to_string(),
        ),
    ];
    for (name, kind, help, v) in plain {
        header(&mut out, name, kind, help);
        match &g.node {
            Some(n) => {
                let _ = writeln!(out, "{name}{{node=\"{}\"}} {v}", esc(n));
            }
            None => {
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
    out
}
