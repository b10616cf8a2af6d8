//! The API as fgs's HTTP server calls it. A warm call's cost is mostly the protocol's
//! (bench/README.md "fgs's own work, by part"), and axum's routing and middleware were the
//! largest part of the rest: `POST /v2/{project}/fgs/functions/{urn}/invocations` is matched
//! here and served by [`invocation::direct`], which authenticates and bounds the body exactly as
//! the router's layers do; every other request goes through [`router`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::Response;
use axum::Router;
use percent_encoding::percent_decode_str;
use tower_service::Service;

use crate::authn::BodyReadTimeout;
use crate::state::SharedState;
use crate::{invocation, router};

/// The whole HTTP surface, with the sync invocation's path served outside axum's router.
#[derive(Clone)]
pub struct Api {
    state: SharedState,
    router: Router,
}

impl Api {
    pub fn new(state: SharedState) -> Self {
        Api {
            router: router(state.clone()),
            state,
        }
    }

    /// Answers one request from `peer`, whose body must arrive within `body_timeout` once its
    /// head is read.
    pub async fn serve<B>(
        self,
        req: Request<B>,
        peer: SocketAddr,
        body_timeout: Duration,
    ) -> Response
    where
        B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (parts, body) = req.into_parts();
        if parts.method == Method::POST {
            if let Some((project, urn)) = invocation_path(parts.uri.path()) {
                return invocation::direct(&self.state, &project, &urn, &parts, body, body_timeout)
                    .await;
            }
        }
        let mut req = Request::from_parts(parts, Body::new(body));
        // APIG events report the peer as `requestContext.sourceIp`.
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(BodyReadTimeout(body_timeout));
        let mut router = self.router;
        match router.call(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        }
    }
}

/// The project and function URN of `/v2/{project}/fgs/functions/{urn}/invocations`,
/// percent-decoded as axum decodes path parameters; `None` for any other path, and for one the
/// router would answer differently (an empty or undecodable segment), which the router then
/// answers.
fn invocation_path(path: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let rest = path.strip_prefix("/v2/")?;
    let (project, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("fgs/functions/")?;
    let (urn, rest) = rest.split_once('/')?;
    if rest != "invocations" || project.is_empty() || urn.is_empty() {
        return None;
    }
    let decode = |s| percent_decode_str(s).decode_utf8().ok();
    Some((decode(project)?, decode(urn)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Option<(String, String)> {
        invocation_path(path).map(|(p, u)| (p.into_owned(), u.into_owned()))
    }

    #[test]
    fn only_the_invocations_path_is_matched() {
        assert_eq!(
            parts("/v2/p1/fgs/functions/urn:fss:r:p1:function:default:f:latest/invocations"),
            Some(("p1".into(), "urn:fss:r:p1:function:default:f:latest".into()))
        );
        for other in [
            "/v2/p1/fgs/functions/f/invocations-async",
            "/v2/p1/fgs/functions/f/invocations/",
            "/v2/p1/fgs/functions/f/config",
            "/v2/p1/fgs/functions/invocations",
            "/v2//fgs/functions/f/invocations",
            "/v2/p1/fgs/functions//invocations",
            "/v2/p1/fgs/functions/f/x/invocations",
            "/v2/p1/other/functions/f/invocations",
            "/apig/p1/fgs/functions/f/invocations",
            "/v2/p1/fgs/functions/%FF/invocations",
        ] {
            assert_eq!(parts(other), None, "{other}");
        }
    }

    #[test]
    fn segments_are_percent_decoded_as_axum_decodes_them() {
        assert_eq!(
            parts(
                "/v2/p%311/fgs/functions/urn%3Afss%3Ar%3Ap11%3Afunction%3Adefault%3Af/invocations"
            ),
            Some(("p11".into(), "urn:fss:r:p11:function:default:f".into()))
        );
        // A decoded slash stays inside the URN, as with axum's `Path`.
        assert_eq!(
            parts("/v2/p/fgs/functions/a%2Fb/invocations"),
            Some(("p".into(), "a/b".into()))
        );
    }
}
