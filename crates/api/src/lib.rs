//! The REST surface of fgs: FunctionGraph's `/v2/{project_id}/fgs/...` API (SPEC.md 2) with
//! AK/SK authentication, the mapping of every typed error to FunctionGraph's
//! `{"error_code":"FSS.xxxx","error_msg":"..."}` shape, and `/healthz`. It owns the JSON wire
//! shapes and knows nothing of processes: invocations go through `fgs-invoke`.
#![forbid(unsafe_code)]

pub mod auth;
mod authn;
pub mod error;
mod functions;
mod invocation;
pub mod state;
mod wire;

use axum::extract::State;
use axum::middleware;
use axum::routing::{get, post, put};
use axum::{Json, Router};

pub use functions::create_demo_function;
pub use state::{AppState, SharedState, StoreSource};

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

/// The whole HTTP surface.
pub fn router(state: SharedState) -> Router {
    let v2 = Router::new()
        .route("/functions", post(functions::create).get(functions::list))
        .route(
            "/functions/reservedinstances",
            get(functions::list_reserved),
        )
        .route("/functions/{urn}", axum::routing::delete(functions::delete))
        .route(
            "/functions/{urn}/config",
            get(functions::get_config).put(functions::put_config),
        )
        .route(
            "/functions/{urn}/code",
            get(functions::get_code).put(functions::put_code),
        )
        .route("/functions/{urn}/invocations", post(invocation::invoke))
        .route(
            "/functions/{urn}/config-max-instance",
            put(functions::put_max_instances),
        )
        .route(
            "/functions/{urn}/reservedinstances",
            put(functions::put_reserved),
        )
        .route("/quotas", get(functions::quotas))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/v2/{project}/fgs", v2)
        .fallback(not_found)
        .with_state(state)
}
