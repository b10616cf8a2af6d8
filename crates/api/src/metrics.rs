//! `GET /metrics`: the Prometheus text format (docs/metrics.md).
//!
//! [FGS] Scrapers cannot sign SDK-HMAC-SHA256, so the endpoint takes the static `X-Auth-Token`
//! (Prometheus' `authorization`/`http_headers` settings send it) or a signed request, and with
//! `--metrics-public` nothing at all. fgs listens on loopback by default, so an operator who
//! opens it decides who can reach it.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use fgs_metrics::{Gauges, InstanceGauge, SeriesKey};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::request::now_ms;
use crate::state::SharedState;

/// The values read at scrape time: pools, the async queue, the sandbox pre-warm pool.
pub(crate) async fn gauges(state: &SharedState) -> ApiResult<Gauges> {
    let instances = state
        .invoker
        .instance_counts()
        .into_iter()
        .map(|(k, version, s)| InstanceGauge {
            key: SeriesKey {
                project: k.project,
                package: k.package,
                name: k.name,
                version,
            },
            starting: s.starting,
            busy: s.busy,
            idle: s.instances.saturating_sub(s.busy),
        })
        .collect();
    let (async_depth, oldest) = state.store.async_queue_stats().await?;
    Ok(Gauges {
        instances,
        async_depth,
        async_oldest_age_secs: oldest.map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1000.0),
        sandbox_prewarmed: state.invoker.prewarmed_sandboxes(),
        interpreters_prestarted: state.invoker.prestarted_interpreters().0,
        interpreters_specialized: state.invoker.prestarted_interpreters().1,
        node: state.node.clone(),
    })
}

/// [FGS] The token (and `--metrics-public`) sees every project; an access key sees the
/// per-function series of its own project only (SPEC.md 2: an AK maps to one project), plus
/// the platform-wide gauges.
pub async fn scrape(State(state): State<SharedState>, req: Request) -> Response {
    let principal = if state.metrics_public {
        Principal::Token
    } else {
        let (parts, _) = req.into_parts();
        match state.keyring.verify(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query(),
            &parts.headers,
            b"",
            time::OffsetDateTime::now_utc(),
        ) {
            Ok(p) => p,
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    match gauges(&state).await {
        Ok(g) => (
            [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            fgs_metrics::encode(fgs_metrics::global(), &g, &|k| {
                principal.may_access(&k.project)
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
