//! `GET/PUT /v2/{project}/fgs/functions/{urn}/tracing` (FunctionGraph's `ShowTracing` and
//! `UpdateTracing`): a function's tracing switch, kept on the function record's `meta` so that
//! it follows the change feed as any configuration change does. FunctionGraph names APM
//! credentials (`tracing_ak`, `tracing_sk`); fgs exports to the collector `fgs serve
//! --otlp-endpoint` names, so a non-empty `tracing_ak` turns tracing on and empty ones turn it
//! off. The secret key is never shown back: `GET` masks it.

use crate::extract::Path;
use axum::extract::State;
use axum::Json;
use bytes::Bytes;
use fgs_core::function::Tracing;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::records::{latest, save};
use crate::request::{function_ref, parse_json};
use crate::state::SharedState;

/// The longest key accepted, far above any real access key.
const KEY_LIMIT: usize = 256;
/// What `GET` shows in place of a set secret key.
const MASK: &str = "******";

/// `UpdateTracingRequestBody`.
#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    tracing_ak: String,
    #[serde(default)]
    tracing_sk: String,
}

/// The stored setting for a request body: `None` turns tracing off.
fn setting(b: Body) -> ApiResult<Option<Tracing>> {
    for (name, v) in [("tracing_ak", &b.tracing_ak), ("tracing_sk", &b.tracing_sk)] {
        if v.len() > KEY_LIMIT {
            return Err(ApiError::bad_request(format!(
                "{name} is longer than {KEY_LIMIT} bytes"
            )));
        }
    }
    if b.tracing_ak.is_empty() {
        if !b.tracing_sk.is_empty() {
            return Err(ApiError::bad_request(
                "tracing_sk is set without tracing_ak: set both to turn tracing on, neither to turn it off",
            ));
        }
        return Ok(None);
    }
    Ok(Some(Tracing {
        tracing_ak: b.tracing_ak,
        tracing_sk: b.tracing_sk,
    }))
}

/// `ShowTracingResponse` of a setting.
fn shown(t: Option<&Tracing>) -> Value {
    match t {
        Some(t) => json!({
            "tracing_ak": t.tracing_ak,
            "tracing_sk": if t.tracing_sk.is_empty() { "" } else { MASK },
        }),
        None => json!({"tracing_ak": "", "tracing_sk": ""}),
    }
}

pub async fn show(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let r = function_ref(&project, &urn)?;
    let rec = latest(&state, &project, &r).await?;
    Ok(Json(shown(rec.meta.tracing.as_ref())))
}

pub async fn update(
    State(state): State<SharedState>,
    Path((project, urn)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let wanted = setting(parse_json(&body)?)?;
    let r = function_ref(&project, &urn)?;
    let mut rec = latest(&state, &project, &r).await?;
    if rec.meta.tracing != wanted {
        rec.meta.tracing = wanted;
        save(&state, rec).await?;
    }
    Ok(Json(json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ak: &str, sk: &str) -> Body {
        Body {
            tracing_ak: ak.into(),
            tracing_sk: sk.into(),
        }
    }

    #[test]
    fn a_key_turns_tracing_on_and_empty_keys_turn_it_off() {
        let on = setting(body("AK", "SK")).expect("valid");
        assert_eq!(on.as_ref().map(|t| t.tracing_ak.as_str()), Some("AK"));
        assert_eq!(setting(body("", "")).expect("valid"), None);
    }

    #[test]
    fn a_secret_without_a_key_or_an_overlong_key_is_refused() {
        let e = setting(body("", "SK")).expect_err("sk alone");
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        let long = "k".repeat(KEY_LIMIT + 1);
        assert!(setting(body(&long, "")).is_err());
    }

    #[test]
    fn the_secret_is_masked_when_shown() {
        let t = Tracing {
            tracing_ak: "AK".into(),
            tracing_sk: "SK".into(),
        };
        assert_eq!(
            shown(Some(&t)),
            json!({"tracing_ak": "AK", "tracing_sk": MASK})
        );
        assert_eq!(shown(None), json!({"tracing_ak": "", "tracing_sk": ""}));
    }
}
