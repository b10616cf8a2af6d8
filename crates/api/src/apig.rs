//! APIG routes on fgs's own listener (SPEC.md 4): `ANY /apig/{project_id}/{path}`. The route is
//! found in the in-memory table (no database on this path), the request is checked like an API
//! call when the route's auth is `IAM`, becomes the APIG event, and is invoked synchronously;
//! the function's `{"statusCode","headers","body","isBase64Encoded"}` is the response.
//!
//! These routes sit outside the `/v2` authentication layer: a route with `auth: NONE` is
//! public by design.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::Qualifier;
use fgs_invoke::{FunctionKey, InvokeError, InvokeOptions, ResolveError};
use fgs_triggers::apig::{self, Auth, HttpRequest, Miss};

use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;

/// Headers of the function's answer that the listener sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

fn bad_gateway(message: impl Into<String>) -> ApiError {
    ApiError::bad_gateway(message)
}

pub async fn serve(State(state): State<SharedState>, req: Request) -> Response {
    match answer(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &SharedState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let full_path = parts.uri.path().to_string();
    // `/apig/<project>/<rest>`; the router sends nothing else here.
    let after = full_path.strip_prefix("/apig/").unwrap_or("");
    let (project, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, ""),
    };
    let method = parts.method.as_str().to_ascii_uppercase();
    let table = state.triggers.routes();
    let m = match table.lookup(project, &method, rest) {
        Ok(m) => m,
        Err(Miss::NoMethod) => {
            return Err(ApiError::method_not_allowed(format!(
                "no APIG route answers {method} {rest}"
            )))
        }
        Err(Miss::NoPath) => {
            return Err(ApiError::not_found(format!(
                "no APIG route of project {project} answers {}",
                if rest.is_empty() { "/" } else { rest }
            )))
        }
    };
    // Public routes are read by anyone: bounded in size and in time (docs/security.md).
    let bytes = crate::authn::read_body(
        &parts.extensions,
        body,
        SYNC_PAYLOAD_MAX,
        "the request body",
    )
    .await?;
    if m.route.auth == Auth::Iam {
        let principal = state.keyring.verify(
            parts.method.as_str(),
            &full_path,
            parts.uri.query(),
            &parts.headers,
            &bytes,
            time::OffsetDateTime::now_utc(),
        )?;
        if !principal.may_access(project) {
            return Err(ApiError::forbidden(format!(
                "the credential does not grant access to project {project}"
            )));
        }
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let request_id = fgs_invoke::new_request_id();
    let event = apig::event(
        &m,
        &HttpRequest {
            method: &method,
            path: rest,
            query: parts.uri.query(),
            headers: &headers,
            body: &bytes,
            source_ip: &source_ip,
            request_id: &request_id,
        },
    );
    let target = &m.route.target;
    let key = FunctionKey {
        project: target.project.clone(),
        package: target.package.clone(),
        name: target.function.clone(),
    };
    let qualifier = Qualifier::parse(&target.qualifier)
        .map_err(|e| ApiError::internal(format!("stored trigger target is invalid: {e}")))?;
    let body = Bytes::from(serde_json::to_vec(&event).expect("a JSON value serialises"));
    let outcome = match state
        .invoker
        .invoke(
            &key,
            &qualifier,
            body,
            InvokeOptions {
                request_id: Some(request_id.clone()),
                ..InvokeOptions::default()
            },
        )
        .await
    {
        Ok(o) => o,
        Err(InvokeError::Resolve(ResolveError::FunctionNotFound(name))) => {
            // The function was deleted and its triggers with it: drop the stale routes.
            state
                .triggers
                .rebuild_routes(&state.store)
                .await
                .map_err(ApiError::from)?;
            return Err(ApiError::function_not_found(&name));
        }
        Err(e) => return Err(e.into()),
    };
    let result = match &outcome.result {
        Ok(b) => b,
        Err(fe) => {
            let mut resp =
                bad_gateway(format!("the function failed ({}): {}", fe.code, fe.message))
                    .into_response();
            set(&mut resp, "x-cff-request-id", &request_id);
            set(&mut resp, "x-func-err-code", &fe.code.to_string());
            return Ok(resp);
        }
    };
    let r = apig::parse_response(result).map_err(|e| {
        bad_gateway(format!(
            "{e}; an APIG-triggered function answers {{\"statusCode\",\"headers\",\"body\",\"isBase64Encoded\"}}"
        ))
    })?;
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status)
        .map_err(|_| bad_gateway(format!("statusCode {} is invalid", r.status)))?;
    for (k, v) in &r.headers {
        if HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) {
            continue;
        }
        match (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            (Ok(name), Ok(value)) => {
                resp.headers_mut().append(name, value);
            }
            _ => {
                return Err(bad_gateway(format!(
                    "header {k:?} of the function's answer is invalid"
                )))
            }
        }
    }
    set(&mut resp, "x-cff-request-id", &request_id);
    Ok(resp)
}

fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}
