//! FunctionGraph's reports, from the same per-minute history as the statistics API
//! (statistics.rs, docs/metrics.md):
//!
//! - `GET /functions/{urn}/slareports/{period}`: the function's statistics over `period`
//!   (minutes, or `Nm`/`Nh`/`Nd`, at most a day) with `instance_num`, the instances started now.
//! - `GET /functions/{urn}/instancereports`: the instances started now and the reserved
//!   instances configured; fgs keeps no history of instance counts, so each is one point, now.
//! - `GET /function/report?type=&start_time=&end_time=&limit=`: the project's top functions by
//!   one metric over a window of the last day (default: the most errors, top 10).

use std::collections::{BTreeMap, HashMap};

use crate::extract::Path;
use axum::extract::{Query, State};
use axum::Json;
use fgs_core::urn::qualified_urn;
use fgs_core::Qualifier;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;
use crate::request::now_ms;
use crate::state::SharedState;
use crate::statistics::{function_body, parse_period};

const DAY_MS: i64 = 24 * 60 * 60_000;

/// A period as minutes: `15`, `15m`, `2h`, `1d`.
fn minutes(period: &str) -> ApiResult<i64> {
    let (n, unit) = match period.char_indices().last() {
        Some((i, 'm')) => (&period[..i], 1),
        Some((i, 'h')) => (&period[..i], 60),
        Some((i, 'd')) => (&period[..i], 1440),
        _ => (period, 1),
    };
    let total = n.parse::<i64>().ok().map(|n| n * unit);
    parse_period(
        Some(&total.map_or_else(|| period.to_string(), |t| t.to_string())),
        60,
    )
}

pub async fn sla(
    State(state): State<SharedState>,
    Path((project, urn, period)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let (mut body, started) = function_body(&state, &project, &urn, minutes(&period)?).await?;
    body["instance_num"] = json!([{"timestamp": now_ms(), "value": started as f64}]);
    Ok(Json(body))
}

pub async fn instances(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (body, started) = function_body(&state, &project, &urn, 1).await?;
    Ok(Json(json!({
        "instance_num": [{"timestamp": now_ms(), "value": started as f64}],
        "reserved_instance_num": body["reserved_instance_num"],
    })))
}

/// One metric of a function's minutes, summed (or averaged, for `duration`) over a window.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    count: u64,
    failures: u64,
    function_errors: u64,
    system_errors: u64,
    rejected: u64,
    duration_sum_ms: f64,
    duration_max_ms: f64,
}

impl Totals {
    fn value(&self, metric: &str) -> Option<i64> {
        Some(match metric {
            "failcount" => self.failures as i64,
            "count" => self.count as i64,
            "rejectcount" => self.rejected as i64,
            "functionerror" => self.function_errors as i64,
            "systemerror" => self.system_errors as i64,
            "duration" if self.count == 0 => 0,
            "duration" => (self.duration_sum_ms / self.count as f64).round() as i64,
            "maxduration" => self.duration_max_ms.round() as i64,
            _ => return None,
        })
    }
}

const METRICS: &str =
    "failcount, count, duration, maxduration, rejectcount, functionerror or systemerror";

pub async fn top(
    State(state): State<SharedState>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let q = ListParams(&q);
    let metric = q.get("type").map_or("failcount", String::as_str);
    if (Totals::default()).value(metric).is_none() {
        return Err(ApiError::bad_request(format!(
            "type {metric:?} is invalid: use {METRICS}"
        )));
    }
    let now = now_ms();
    // `0` or nothing: the last day, the history fgs keeps.
    let end = q.time("end_time")?.filter(|t| *t > 0).unwrap_or(now);
    let start = q
        .time("start_time")?
        .filter(|t| *t > 0)
        .unwrap_or(end - DAY_MS);
    if start > end {
        return Err(ApiError::bad_request("start_time is after end_time"));
    }
    let limit = q.num("limit", 10)?.clamp(1, 400) as usize;
    let mut by_function: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for (key, m) in crate::cluster_stats::minutes(&state, &project, start, end).await? {
        let t = by_function.entry((key.package, key.name)).or_default();
        {
            t.count += m.count;
            t.failures += m.function_errors + m.system_errors;
            t.function_errors += m.function_errors;
            t.system_errors += m.system_errors;
            t.rejected += m.rejected;
            t.duration_sum_ms += m.duration_sum_ms;
            t.duration_max_ms = t.duration_max_ms.max(m.duration_max_ms);
        }
    }
    let mut values: Vec<(String, i64)> = by_function
        .into_iter()
        .filter_map(|((package, name), t)| {
            let v = t.value(metric)?;
            let urn = qualified_urn(&state.region, &project, &package, &name, &Qualifier::Latest);
            Some((urn, v))
        })
        .collect();
    // Highest first; ties by URN, so that the order is stable.
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let count = values.len().min(limit);
    let values: Vec<Value> = values
        .into_iter()
        .take(limit)
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    Ok(Json(
        json!({"values": values, "next_marker": count, "count": count}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_a_unit() {
        assert_eq!(minutes("15").unwrap(), 15);
        assert_eq!(minutes("15m").unwrap(), 15);
        assert_eq!(minutes("2h").unwrap(), 120);
        assert_eq!(minutes("1d").unwrap(), 1440);
        for bad in ["0", "2d", "x", "h", "-5m"] {
            assert!(minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_metric_reads_its_totals() {
        let t = Totals {
            count: 4,
            failures: 3,
            function_errors: 2,
            system_errors: 1,
            rejected: 5,
            duration_sum_ms: 10.0,
            duration_max_ms: 6.4,
        };
        let got: Vec<Option<i64>> = [
            "failcount",
            "count",
            "duration",
            "maxduration",
            "rejectcount",
            "functionerror",
            "systemerror",
            "nope",
        ]
        .iter()
        .map(|m| t.value(m))
        .collect();
        assert_eq!(
            got,
            [
                Some(3),
                Some(4),
                Some(3),
                Some(6),
                Some(5),
                Some(2),
                Some(1),
                None
            ]
        );
    }
}
