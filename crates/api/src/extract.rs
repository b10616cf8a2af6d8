//! axum's `Path` with FunctionGraph's error shape: a path parameter that does not decode (a
//! percent-encoded byte that is not UTF-8, `%FF`) is answered 400 `FSS.0400` in JSON, not with
//! axum's plain text.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The route's path parameters, as `axum::extract::Path` gives them.
pub(crate) struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Path(p.0)),
            // A route whose handler wants parameters it does not have is fgs's mistake.
            Err(e) if e.status().is_server_error() => Err(ApiError::internal(e.body_text())),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}
