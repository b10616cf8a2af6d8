//! FunctionGraph's statistics (SPEC.md 2): `GET /functions/statistics` and
//! `GET /functions/{urn}/statistics/{period}`, answered from the metrics registry's per-minute
//! history (crates/metrics), so they agree with `GET /metrics`; in a cluster, with every other
//! node's counts added from the store (crates/api/src/cluster_stats.rs, docs/cluster.md).
//!
//! [FGS] What is kept: per function version, one bucket per minute with events, for the last
//! 24 hours, and invocation and GB-s totals per UTC month; on a single node all in memory, so
//! a restart starts them from zero (docs/metrics.md). A period of N minutes (1-1440) is answered in steps of
//! `ceil(N / 60)` minutes, every step present (zeros included) so that charts need no gaps
//! logic; each point's `timestamp` is the step's start in ms. `reserved_instance_num` and
//! `concurrency_num` are not kept over time: they are one point, now: the configured reserved
//! instances (for the project: the instances started) and the busy instances.

use std::collections::BTreeMap;

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use fgs_core::Qualifier;
use fgs_metrics::{month_of, Minute};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::{function_ref, now_ms};
use crate::state::SharedState;

const MINUTE_MS: i64 = 60_000;

pub(crate) fn parse_period(s: Option<&str>, default: i64) -> ApiResult<i64> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    match s.parse::<i64>() {
        Ok(p) if (1..=fgs_metrics::MINUTES_KEPT).contains(&p) => Ok(p),
        _ => Err(ApiError::bad_request(format!(
            "period {s:?} is not a number of minutes from 1 to {}",
            fgs_metrics::MINUTES_KEPT
        ))),
    }
}

/// The window `[from, end)` of the last `period` minutes, the current one included.
fn window(period: i64, now: i64) -> (i64, i64) {
    let end = now - now.rem_euclid(MINUTE_MS) + MINUTE_MS;
    (end - period * MINUTE_MS, end)
}

/// The steps of the last `period` minutes, each merged from the minutes given (of the
/// window, [`window`]).
fn steps<'a>(minutes: impl Iterator<Item = &'a Minute>, period: i64, now: i64) -> Vec<Minute> {
    let step = (period + 59) / 60 * MINUTE_MS;
    let (from, end) = window(period, now);
    let n = ((end - from) + step - 1) / step;
    let mut out: Vec<Minute> = (0..n)
        .map(|i| Minute {
            start_ms: from + i * step,
            ..Minute::default()
        })
        .collect();
    for m in minutes {
        if m.start_ms < from {
            continue;
        }
        let i = ((m.start_ms - from) / step) as usize;
        if let Some(o) = out.get_mut(i) {
            o.merge(m);
        }
    }
    out
}

/// The `ListFunctionStatisticsResponseBody` shape: one `[{timestamp, value}]` list per metric.
fn body(points: &[Minute], reserved: u64, busy: u64, now: i64) -> Value {
    let list = |f: &dyn Fn(&Minute) -> f64| -> Value {
        points
            .iter()
            .map(|m| json!({"timestamp": m.start_ms, "value": f(m)}))
            .collect()
    };
    json!({
        "count": list(&|m| m.count as f64),
        "duration": list(&|m| if m.count == 0 { 0.0 } else { (m.duration_sum_ms / m.count as f64 * 1000.0).round() / 1000.0 }),
        "fail_count": list(&|m| (m.function_errors + m.system_errors) as f64),
        "max_duration": list(&|m| (m.duration_max_ms * 1000.0).round() / 1000.0),
        "min_duration": list(&|m| (m.duration_min_ms * 1000.0).round() / 1000.0),
        "reject_count": list(&|m| m.rejected as f64),
        "function_error_count": list(&|m| m.function_errors as f64),
        "system_error_count": list(&|m| m.system_errors as f64),
        "reserved_instance_num": [{"timestamp": now, "value": reserved as f64}],
        "concurrency_num": [{"timestamp": now, "value": busy as f64}],
    })
}

/// Instances now of the matching pools: `(started, busy)`.
fn instances_now(
    state: &SharedState,
    pick: &dyn Fn(&fgs_invoke::FunctionKey, &str) -> bool,
) -> (u64, u64) {
    state
        .invoker
        .instance_counts()
        .into_iter()
        .filter(|(k, v, _)| pick(k, v))
        .fold((0, 0), |(r, b), (_, _, s)| {
            (r + s.instances as u64, b + s.busy as u64)
        })
}

/// `GET /functions/{urn}/statistics/{period}`. A URN with a version or `latest` counts that
/// version; an unqualified one or an alias counts every version of the function.
pub async fn function(
    State(state): State<SharedState>,
    Path((project, urn, period)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let period = parse_period(Some(&period), 60)?;
    Ok(Json(function_body(&state, &project, &urn, period).await?.0))
}

/// The statistics of the function `urn` names over the last `period` minutes, with the
/// instances its matching pools have started now.
pub(crate) async fn function_body(
    state: &SharedState,
    project: &str,
    urn: &str,
    period: i64,
) -> ApiResult<(Value, u64)> {
    let r = function_ref(project, urn)?;
    let Some(rec) = state
        .store
        .get_function(project, &r.package, &r.name)
        .await?
    else {
        return Err(fgs_invoke::ResolveError::FunctionNotFound(r.name.clone()).into());
    };
    let version = match &r.qualifier {
        Some(Qualifier::Latest) => Some(fgs_core::urn::LATEST.to_string()),
        Some(Qualifier::Version(v)) => Some(v.clone()),
        _ => None,
    };
    let matches = |p: &str, pk: &str, n: &str, v: &str| {
        p == project && pk == r.package && n == r.name && version.as_deref().is_none_or(|x| x == v)
    };
    let now = now_ms();
    let (from, end) = window(period, now);
    let minutes = crate::cluster_stats::minutes(state, project, from, end).await?;
    let mine = minutes
        .iter()
        .filter(|(k, _)| matches(&k.project, &k.package, &k.name, &k.version))
        .map(|(_, m)| m);
    let (started, busy) = instances_now(state, &|k, v| matches(&k.project, &k.package, &k.name, v));
    let reserved = u64::from(rec.reserved.count);
    Ok((
        body(&steps(mine, period, now), reserved, busy, now),
        started,
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    filter: Option<String>,
    period: Option<String>,
    option: Option<String>,
}

fn month_name(m: i64) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

/// `GET /functions/statistics?filter=monitor_data|monthly_report&period=&option=`: the
/// project's totals. `monitor_data` (the default) fills `statistics` for the last `period`
/// minutes (default 60); `monthly_report` fills `count` and `gbs` per month, for this month
/// (`option` 0), last month (1), the last three (2) or six (3) months.
pub async fn project(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let now = now_ms();
    if q.filter.as_deref() == Some("monthly_report") {
        let this = month_of(now);
        let (from, to) = match q.option.as_deref() {
            Some("1") => (this - 1, this - 1),
            Some("2") => (this - 2, this),
            Some("3") => (this - 5, this),
            _ => (this, this),
        };
        let mut months: BTreeMap<i64, (u64, u64)> = (from..=to).map(|m| (m, (0, 0))).collect();
        for (m, n, mb_ms) in crate::cluster_stats::months(&state, &project, from, to).await? {
            let e = months.entry(m).or_default();
            e.0 += n;
            e.1 += mb_ms;
        }
        let count: Vec<Value> = months
            .iter()
            .map(|(m, (n, _))| json!({"date": month_name(*m), "value": *n as f64}))
            .collect();
        // GB-s: billed ms x memory MB / 1024 / 1000.
        let gbs: Vec<Value> = months
            .iter()
            .map(|(m, (_, mb))| json!({"date": month_name(*m), "value": *mb as f64 / 1_024_000.0}))
            .collect();
        return Ok(Json(json!({"count": count, "gbs": gbs, "gpu_gbs": []})));
    }
    let period = parse_period(q.period.as_deref(), 60)?;
    let (from, end) = window(period, now);
    let minutes = crate::cluster_stats::minutes(&state, &project, from, end).await?;
    let (reserved, busy) = instances_now(&state, &|k, _| k.project == project);
    Ok(Json(json!({
        "count": [], "gbs": [], "gpu_gbs": [],
        "statistics": body(&steps(minutes.iter().map(|(_, m)| m), period, now), reserved, busy, now),
    })))
}
