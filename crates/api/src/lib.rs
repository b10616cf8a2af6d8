//! The REST surface of fgs, HTTP in and HTTP out: FunctionGraph's `/v2/{project_id}/fgs/...`
//! API (SPEC.md 2) with AK/SK authentication, the APIG listener's HTTP side, `/healthz`,
//! `/metrics` and the console. It owns the JSON wire shapes and the one table of FSS codes
//! (`error.rs`), to which every typed error of the crates below maps by an exhaustive `match`.
//!
//! It does no work of its own below HTTP: it reads through `fgs_store::Store`, writes functions,
//! versions, aliases and triggers through `fgs_store::Catalog` (which publishes each change on
//! the feed), resolves and invokes through `fgs-invoke`, and reads APIG routes from
//! `fgs_triggers::TriggerHub`.
#![forbid(unsafe_code)]

mod aliases;
mod apig;
mod async_invoke;
mod async_views;
pub mod auth;
mod authn;
#[cfg(test)]
mod catalog_only;
pub mod cluster_stats;
mod code_files;
mod console;
mod dependencies;
pub mod error;
mod export;
mod extract;
pub mod forward;
mod function_code;
mod functions;
mod invocation;
mod limits;
mod logs;
mod metrics;
mod not_provided;
mod query;
mod records;
mod reports;
mod request;
pub mod reserved_policies;
mod serve;
pub mod state;
mod statistics;
mod tags;
mod templates;
mod test_events;
mod trace_config;
mod triggers;
mod versions;
mod wire;

use axum::extract::State;
use axum::middleware;
use axum::routing::{any, get, post, put};
use axum::{Json, Router};

pub use authn::{BodyReadTimeout, BODY_READ_TIMEOUT};
pub use functions::create_demo_function;
pub use serve::Api;
pub use state::{AppState, SharedState};

async fn healthz(State(state): State<SharedState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "region": state.region,
        "isolation": state.isolation,
    }))
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("no such API path")
}

/// A path that exists with another method: FunctionGraph's error shape rather than axum's
/// empty 405.
async fn wrong_method(method: axum::http::Method) -> error::ApiError {
    error::ApiError::method_not_allowed(format!("{method} is not allowed on this path"))
}

/// The whole HTTP surface.
pub fn router(state: SharedState) -> Router {
    let mut v2 = Router::new()
        .route("/functions", post(functions::create).get(functions::list))
        .route("/functions/reservedinstances", get(limits::list_reserved))
        .route(
            "/functions/reservedinstanceconfigs",
            get(limits::list_reserved_configs),
        )
        .route("/functions/{urn}", axum::routing::delete(functions::delete))
        .route(
            "/functions/{urn}/config",
            get(functions::get_config).put(functions::put_config),
        )
        .route(
            "/functions/{urn}/code",
            get(function_code::get_code).put(function_code::put_code),
        )
        .route("/functions/{urn}/invocations", post(invocation::invoke))
        .route("/functions/{urn}/export", get(export::export))
        .route("/functions/{urn}/collect/{state}", put(functions::collect))
        .route(
            "/functions/{urn}/tracing",
            get(trace_config::show).put(trace_config::update),
        )
        .route("/functions/import", post(export::import))
        .route(
            "/functions/{urn}/invocations-async",
            post(async_invoke::invoke),
        )
        .route(
            "/functions/{urn}/async-invocations",
            get(async_invoke::list),
        )
        .route("/functions/{urn}/cancel", post(async_invoke::cancel))
        .route(
            "/functions/{urn}/active-async-invocations",
            get(async_views::active),
        )
        .route(
            "/functions/{urn}/async-invoke-configs",
            get(async_views::configs),
        )
        .route(
            "/functions/enable-async-status-logs",
            post(async_views::enable_async_status_logs),
        )
        .route(
            "/functions/async-status-log-detail",
            get(async_views::async_status_log_detail),
        )
        .route(
            "/functions/enable-lts-logs",
            post(async_views::enable_lts_logs),
        )
        .route(
            "/functions/{urn}/lts-log-detail",
            get(async_views::lts_log_detail),
        )
        // [FGS] stored invocation logs (docs/logs.md).
        .route("/functions/{urn}/logs", get(logs::list))
        .route(
            "/functions/{urn}/async-invoke-config",
            get(async_invoke::get_config)
                .put(async_invoke::put_config)
                .delete(async_invoke::delete_config),
        )
        .route(
            "/functions/{urn}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/functions/{urn}/aliases",
            post(aliases::create).get(aliases::list),
        )
        .route(
            "/functions/{urn}/aliases/{alias}",
            get(aliases::get)
                .put(aliases::update)
                .delete(aliases::delete),
        )
        .route(
            "/functions/{urn}/config-max-instance",
            put(limits::put_max_instances),
        )
        .route(
            "/functions/{urn}/reservedinstances",
            put(limits::put_reserved),
        )
        .route("/quotas", get(limits::quotas))
        .route("/templates", get(templates::list))
        .route("/templates/{id}", get(templates::get))
        .route("/functions/statistics", get(statistics::project))
        .route("/function/report", get(reports::top))
        .route("/functions/{urn}/slareports/{period}", get(reports::sla))
        .route("/functions/{urn}/instancereports", get(reports::instances))
        .route(
            "/functions/{urn}/statistics/{period}",
            get(statistics::function),
        )
        .route("/functions/{urn}/code/files", get(code_files::list))
        .route("/functions/{urn}/code/files/content", get(code_files::read))
        .route("/dependencies", get(dependencies::list))
        .route("/dependencies/version", post(dependencies::create))
        .route(
            "/dependencies/{dep}/version",
            get(dependencies::list_versions),
        )
        .route(
            "/dependencies/{dep}/version/{version}",
            get(dependencies::get).delete(dependencies::delete),
        )
        .route(
            "/functions/{urn}/events",
            post(test_events::create).get(test_events::list),
        )
        .route(
            "/functions/{urn}/events/{id}",
            get(test_events::get)
                .put(test_events::update)
                .delete(test_events::delete),
        )
        .route(
            "/triggers/{urn}",
            post(triggers::create)
                .get(triggers::list)
                .delete(triggers::delete_all),
        )
        .route(
            "/triggers/{urn}/{type}/{id}",
            get(triggers::get)
                .put(triggers::update)
                .delete(triggers::delete),
        );
    // The tag API lies outside `/fgs`: routed from the top, behind the same layers.
    let mut outside = Router::new()
        .route(
            "/v2/{project}/{resource_type}/{resource_id}/tags",
            get(tags::list),
        )
        .route(
            "/v2/{project}/{resource_type}/{resource_id}/tags/create",
            post(tags::create),
        )
        .route(
            "/v2/{project}/{resource_type}/{resource_id}/tags/delete",
            axum::routing::delete(tags::delete),
        )
        .route(
            "/v2/{project}/{resource_type}/tags",
            get(tags::project_tags),
        )
        .route(
            "/v2/{project}/{resource_type}/resource-instances/{action}",
            post(tags::filter),
        );
    for (path, route) in not_provided::routes() {
        match path.strip_prefix("/fgs") {
            Some(p) => v2 = v2.route(p, route),
            None => outside = outside.route(&format!("/v2/{{project}}{path}"), route),
        }
    }
    let v2 = authenticated(
        v2.fallback(not_found)
            .method_not_allowed_fallback(wrong_method),
        &state,
    );
    let outside = authenticated(outside.method_not_allowed_fallback(wrong_method), &state);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/console", get(console::redirect))
        .route("/console/", get(console::index))
        .route("/console/{file}", get(console::file))
        .nest("/v2/{project}/fgs", v2)
        .merge(outside)
        // APIG routes answer outside the /v2 authentication layer: each route checks its own
        // `auth` (docs/triggers.md).
        .route("/apig/{project}", any(apig::serve))
        .route("/apig/{project}/{*path}", any(apig::serve))
        .fallback(not_found)
        .with_state(state)
}

/// Every `/v2` route is authenticated and bounds its own body.
fn authenticated(routes: Router<SharedState>, state: &SharedState) -> Router<SharedState> {
    routes
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ))
        // `authn` bounds every body by its route (SPEC.md 6); axum's own 2 MB default would
        // refuse, with a plain-text 413, zips well within FunctionGraph's 50 MB.
        .layer(axum::extract::DefaultBodyLimit::disable())
}
