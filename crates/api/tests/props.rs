//! Property tests of the signature canonicaliser and verifier (SPEC.md 2 "Authentication"),
//! standing in for fuzzing on the stable toolchain (docs/security.md): whatever a client signs
//! verifies, any change to a signed part does not, and no header, path or query, however
//! malformed, makes the verifier panic. Failing cases are kept in `proptest-regressions/`.

use fgs_api::auth::{sign, Credential, Keyring};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::OffsetDateTime;

/// `cases` per property, or `PROPTEST_CASES` for a longer run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        ..ProptestConfig::default()
    }
}

fn cred() -> Credential {
    Credential {
        access_key: "PROPAK".into(),
        secret_key: "prop-secret".into(),
        project_id: "p1".into(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a valid time")
}

/// Path and query pieces: encodings, separators, traversal, unicode.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{1,8}",
        Just("%2F".to_owned()),
        Just("%2f".to_owned()),
        Just("..".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("+".to_owned()),
        Just("%20".to_owned()),
        Just("é".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just(":".to_owned()),
        Just("%3A".to_owned()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|p| format!("/v2/p1/fgs/{}", p.join("/")))
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop::collection::vec(piece(), 0..6).prop_map(|p| p.concat()))
}

/// Extra headers a client may add; names without `_` (the SDK does not sign those) and none
/// that the verifier treats specially.
fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z][a-z0-9-]{0,10}", "[ -~]{0,20}"), 0..5).prop_map(|hs| {
        hs.into_iter()
            .filter(|(n, _)| {
                !matches!(
                    n.as_str(),
                    "authorization"
                        | "x-auth-token"
                        | "x-sdk-date"
                        | "x-sdk-content-sha256"
                        | "host"
                )
            })
            .collect()
    })
}

/// The signed request as the server receives it (a header map, last value of a name wins as in
/// the SDK's dict).
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).expect("valid name"),
            HeaderValue::from_str(v).expect("valid value"),
        );
    }
    map
}

fn signed(
    method: &str,
    path: &str,
    query: Option<&str>,
    extra: &[(String, String)],
    body: &[u8],
) -> HeaderMap {
    let c = cred();
    let mut hs = vec![("Host".to_owned(), "127.0.0.1:8080".to_owned())];
    hs.extend(extra.iter().cloned());
    sign(
        &c.access_key,
        &c.secret_key,
        method,
        path,
        query,
        &mut hs,
        body,
        now(),
    );
    header_map(&hs)
}

fn keyring() -> Keyring {
    Keyring::new(vec![cred()], None)
}

proptest! {
    #![proptest_config(config(1000))]

    /// Whatever `sign` signs, `verify` accepts for the same project.
    #[test]
    fn signed_requests_verify(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        path in path(),
        query in query(),
        extra in headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let hs = signed(method, &path, query.as_deref(), &extra, &body);
        let p = keyring()
            .verify(method, &path, query.as_deref(), &hs, &body, now())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(p.may_access("p1"));
        prop_assert!(!p.may_access("p2"));
    }

    /// A changed body, method, path segment, signed header value or date never verifies.
    #[test]
    fn tampered_requests_fail(
        path in path(),
        query in query(),
        extra in headers(),
        body in prop::collection::vec(any::<u8>(), 1..64),
        flip in any::<prop::sample::Index>(),
    ) {
        let k = keyring();
        let q = query.as_deref();
        let hs = signed("POST", &path, q, &extra, &body);
        let mut other = body.clone();
        let i = flip.index(other.len());
        other[i] ^= 1;
        prop_assert!(k.verify("POST", &path, q, &hs, &other, now()).is_err());
        prop_assert!(k.verify("PUT", &path, q, &hs, &body, now()).is_err());
        let longer = format!("{path}/x");
        prop_assert!(k.verify("POST", &longer, q, &hs, &body, now()).is_err());
        let mut moved = hs.clone();
        moved.insert("x-sdk-date", HeaderValue::from_static("20270115T080001Z"));
        prop_assert!(k.verify("POST", &path, q, &moved, &body, now()).is_err());
        if let Some((name, _)) = extra.first() {
            let mut changed = hs.clone();
            changed.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                HeaderValue::from_static("changed-value-xyz"),
            );
            prop_assert!(k.verify("POST", &path, q, &changed, &body, now()).is_err());
        }
        // Outside the 15-minute window.
        let later = now() + time::Duration::minutes(16);
        prop_assert!(k.verify("POST", &path, q, &hs, &body, later).is_err());
    }

    /// Garbage in every header the verifier reads never panics and never verifies.
    #[test]
    fn garbage_headers_never_panic(
        authorization in prop::collection::vec(32u8..127, 0..120),
        template in prop::sample::select(vec![
            "SDK-HMAC-SHA256 Access=PROPAK, SignedHeaders=host;x-sdk-date, Signature=",
            "SDK-HMAC-SHA256 Access=PROPAK, SignedHeaders=;;, Signature=00",
            "SDK-HMAC-SHA256 Access=PROPAK,SignedHeaders=x-sdk-date;host,Signature=zz",
            "SDK-HMAC-SHA256 ",
            "",
        ]),
        date in "[0-9TZ]{0,20}",
        sha in "[ -~]{0,70}",
        token in prop::collection::vec(32u8..127, 0..40),
        path in any::<String>(),
        query in prop::option::of(any::<String>()),
        body in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut auth = template.as_bytes().to_vec();
        auth.extend_from_slice(&authorization);
        for value in [auth, authorization.clone()] {
            let mut hs = HeaderMap::new();
            hs.insert("authorization", HeaderValue::from_bytes(&value).expect("visible ASCII"));
            hs.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
            if let Ok(d) = HeaderValue::from_str(&date) {
                hs.insert("x-sdk-date", d);
            }
            if let Ok(s) = HeaderValue::from_str(&sha) {
                hs.insert("x-sdk-content-sha256", s);
            }
            prop_assert!(keyring().verify("POST", &path, query.as_deref(), &hs, &body, now()).is_err());
        }
        let mut hs = HeaderMap::new();
        hs.insert("x-auth-token", HeaderValue::from_bytes(&token).expect("visible ASCII"));
        prop_assert!(keyring().verify("GET", &path, None, &hs, &[], now()).is_err());
        let with_token = Keyring::new(vec![cred()], Some("the-token".into()));
        let ok = with_token.verify("GET", &path, None, &hs, &[], now()).is_ok();
        prop_assert_eq!(ok, token.trim_ascii() == b"the-token");
    }
}
