//! The web console (docs/console.md): plain HTML, CSS and JavaScript under `console/`, embedded
//! in the binary and served at `/console`. The pages are public; every call they make is an
//! ordinary `/v2` API request that the browser signs itself (SDK-HMAC-SHA256 via Web Crypto) or
//! sends with the static `X-Auth-Token`, so the console has no session of its own on the server.

use crate::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};

use crate::error::ApiError;

const INDEX: &str = include_str!("../../../console/index.html");
const APP_JS: &str = include_str!("../../../console/app.js");
const SIGN_JS: &str = include_str!("../../../console/sign.js");
const APP_CSS: &str = include_str!("../../../console/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    // Assets change only with the binary; `no-cache` revalidates cheaply and never serves an
    // old console against a new server.
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn redirect() -> Redirect {
    Redirect::permanent("/console/")
}

pub async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => asset("text/javascript; charset=utf-8", APP_JS),
        "sign.js" => asset("text/javascript; charset=utf-8", SIGN_JS),
        "app.css" => asset("text/css; charset=utf-8", APP_CSS),
        _ => ApiError::not_found("no such console file").into_response(),
    }
}
