//! The signature verifier (SPEC.md 2): any Authorization, date, path and query are refused
//! without a panic. The input is split on NUL into those four fields and the body.
#![no_main]
use fgs_api::auth::{Credential, Keyring};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(5, |b| *b == 0);
    let auth = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let query = parts.next().map(|q| String::from_utf8_lossy(q).into_owned());
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(auth) {
        headers.insert("authorization", v);
    }
    if let Ok(v) = HeaderValue::from_bytes(date) {
        headers.insert("x-sdk-date", v);
    }
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    let keyring = Keyring::new(
        vec![Credential {
            access_key: "AK".into(),
            secret_key: "SK".into(),
            project_id: "p".into(),
        }],
        Some("token".into()),
    );
    let _ = keyring.verify(
        "POST",
        &path,
        query.as_deref(),
        &headers,
        body,
        time::OffsetDateTime::now_utc(),
    );
});
