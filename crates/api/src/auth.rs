//! AK/SK request authentication, both sides of FunctionGraph's `SDK-HMAC-SHA256` scheme
//! (SPEC.md section 2 "Authentication").
//!
//! The server calls [`Keyring::verify`] on every request; our CLI and tests call [`sign`].
//! This module is pure: no I/O, no clock (callers pass `now`), no axum; it knows nothing of
//! routes or projects beyond the project an access key belongs to. Mapping [`AuthError`] to
//! `FSS.0401`, and a [`Principal`] that may not touch the path's project to `FSS.0403`, is
//! the caller's job.

mod canonical;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use hmac::Mac;
use http::header::{HeaderMap, AUTHORIZATION};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use canonical::{HmacSha256, SignedHeader};

/// The only algorithm the SDKs use by default; SM3 and derived (V11) signing are not served.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Replay window: a signed request is accepted this long before or after its `X-Sdk-Date`.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);

const X_SDK_DATE: &str = "x-sdk-date";
const X_SDK_CONTENT_SHA256: &str = "x-sdk-content-sha256";
const X_AUTH_TOKEN: &str = "x-auth-token";
const HOST: &str = "host";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Fixed key for MACing static tokens, so comparing them is constant-time (`verify_slice`).
const TOKEN_MAC_KEY: &[u8] = b"fgs static x-auth-token";
/// Client-supplied strings echoed in error messages are cut to this many characters.
const ECHO_LIMIT: usize = 64;

/// One access key pair and the single project it may act on.
#[derive(Clone)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub project_id: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// Who a verified request acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Signed with an access key: may act on this project only.
    Project(String),
    /// Presented the configured static `X-Auth-Token`: may act on any project.
    Token,
}

impl Principal {
    /// Whether this principal may act on `project_id` (an AK maps to one project, SPEC.md 2).
    pub fn may_access(&self, project_id: &str) -> bool {
        match self {
            Principal::Project(own) => own == project_id,
            Principal::Token => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("request is not authenticated: sign it with an AK/SK (SDK-HMAC-SHA256) or send X-Auth-Token")]
    Missing,
    #[error("unsupported authorization scheme {0:?}: sign requests with SDK-HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    #[error("malformed authorization header: {0}")]
    Malformed(&'static str),
    #[error("unknown access key {0:?}")]
    UnknownAccessKey(String),
    #[error("signed headers must include {0}")]
    RequiredHeaderUnsigned(&'static str),
    #[error("header {0:?} is listed in SignedHeaders but missing from the request")]
    MissingSignedHeader(String),
    #[error("signed header {0:?} appears more than once")]
    DuplicateSignedHeader(String),
    #[error("x-sdk-date {0:?} is not a UTC time in YYYYMMDDTHHMMSSZ form")]
    BadDate(String),
    #[error(
        "x-sdk-date {date} is more than 15 minutes from server time {now}: check the client clock"
    )]
    StaleDate { date: String, now: String },
    #[error("x-sdk-content-sha256 does not match the sha256 of the body")]
    PayloadHashMismatch,
    #[error("signature does not match: check the secret key and that nothing changed the request after signing")]
    BadSignature,
    #[error("x-auth-token is not accepted by this server: sign requests with an AK/SK")]
    TokenNotAccepted,
    #[error("x-auth-token is not valid")]
    BadToken,
}

/// Access keys known to the server, plus the optional static token.
#[derive(Clone)]
pub struct Keyring {
    by_access_key: HashMap<String, Credential>,
    /// MAC of the static token, never the token itself; `None` when tokens are off.
    token_tag: Option<Vec<u8>>,
    /// The MAC with its key already absorbed: each check clones it rather than hashing the
    /// key's two blocks again (half of a token check's cost).
    token_key: HmacSha256,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.by_access_key.keys().collect();
        keys.sort();
        f.debug_struct("Keyring")
            .field("access_keys", &keys)
            .field("static_token", &self.token_tag.is_some())
            .finish()
    }
}

fn token_key() -> HmacSha256 {
    HmacSha256::new_from_slice(TOKEN_MAC_KEY).expect("HMAC accepts keys of any length")
}

impl Keyring {
    /// A later credential with the same access key replaces an earlier one. An empty static
    /// token counts as none, so an empty `X-Auth-Token` header can never authenticate.
    pub fn new(creds: Vec<Credential>, static_token: Option<String>) -> Keyring {
        let by_access_key = creds
            .into_iter()
            .map(|c| (c.access_key.clone(), c))
            .collect();
        let token_key = token_key();
        let token_tag = static_token.filter(|t| !t.is_empty()).map(|t| {
            let mut mac = token_key.clone();
            mac.update(t.as_bytes());
            mac.finalize().into_bytes().to_vec()
        });
        Keyring {
            by_access_key,
            token_tag,
            token_key,
        }
    }

    /// Verifies a request. `path` is the raw (still percent-encoded) path, `query` the raw
    /// query string (without '?'). An `Authorization` header takes precedence over
    /// `X-Auth-Token`: a request carrying both is judged by its signature.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Principal, AuthError> {
        let Some(authorization) = headers.get(AUTHORIZATION) else {
            return match headers.get(X_AUTH_TOKEN) {
                Some(token) => self.verify_token(token.as_bytes()),
                None => Err(AuthError::Missing),
            };
        };
        let auth = parse_authorization(authorization.as_bytes())?;
        let cred = self
            .by_access_key
            .get(auth.access)
            .ok_or_else(|| AuthError::UnknownAccessKey(clip(auth.access)))?;

        let names: Vec<&str> = auth.signed_headers.split(';').collect();
        if names.iter().any(|n| n.is_empty()) {
            return Err(AuthError::Malformed("SignedHeaders has an empty name"));
        }
        // The SDK always signs these two: the date makes the replay window meaningful, the
        // host stops a request signed for one server being replayed against another.
        for required in [X_SDK_DATE, HOST] {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(required)) {
                return Err(AuthError::RequiredHeaderUnsigned(required));
            }
        }
        let mut signed = Vec::with_capacity(names.len());
        for &name in &names {
            let mut values = headers.get_all(name).iter();
            let value = values
                .next()
                .ok_or_else(|| AuthError::MissingSignedHeader(clip(name)))?;
            if values.next().is_some() {
                return Err(AuthError::DuplicateSignedHeader(clip(name)));
            }
            signed.push(SignedHeader {
                name,
                value: canonical::trim(value.as_bytes()),
            });
        }
        let signed_value = |wanted: &str| {
            signed
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(wanted))
                .map(|h| h.value)
        };

        let raw_date =
            signed_value(X_SDK_DATE).ok_or(AuthError::RequiredHeaderUnsigned(X_SDK_DATE))?;
        let date_text =
            std::str::from_utf8(raw_date).map_err(|_| AuthError::BadDate(clip_bytes(raw_date)))?;
        let date = parse_date(date_text).ok_or_else(|| AuthError::BadDate(clip(date_text)))?;
        if (now - date).abs() > MAX_CLOCK_SKEW {
            return Err(AuthError::StaleDate {
                date: date_text.to_owned(),
                now: format_date(now),
            });
        }

        let payload_hash = payload_hash(signed_value(X_SDK_CONTENT_SHA256), body)?;
        let canonical = canonical::canonical_request(method, path, query, &signed, &payload_hash);
        canonical::signature_mac(&cred.secret_key, date_text, &canonical)
            .verify_slice(&auth.signature)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(Principal::Project(cred.project_id.clone()))
    }

    fn verify_token(&self, presented: &[u8]) -> Result<Principal, AuthError> {
        let tag = self.token_tag.as_ref().ok_or(AuthError::TokenNotAccepted)?;
        let mut mac = self.token_key.clone();
        mac.update(canonical::trim(presented));
        mac.verify_slice(tag)
            .map(|()| Principal::Token)
            .map_err(|_| AuthError::BadToken)
    }
}

/// The SDK hashes an empty body as empty whatever the headers say. A non-empty body is
/// covered by `X-Sdk-Content-Sha256` only when that header is itself signed: otherwise anyone
/// could attach the old body's hash and swap the body. A declared hash other than
/// `UNSIGNED-PAYLOAD` must be the body's real hash, for the same reason.
fn payload_hash(declared: Option<&[u8]>, body: &[u8]) -> Result<String, AuthError> {
    if body.is_empty() {
        return Ok(canonical::EMPTY_BODY_SHA256.to_owned());
    }
    let actual = canonical::sha256_hex(body);
    match declared.filter(|d| !d.is_empty()) {
        None => Ok(actual),
        Some(d) if d == UNSIGNED_PAYLOAD.as_bytes() => Ok(UNSIGNED_PAYLOAD.to_owned()),
        Some(d) if d == actual.as_bytes() => Ok(actual),
        Some(_) => Err(AuthError::PayloadHashMismatch),
    }
}

struct Authorization<'a> {
    access: &'a str,
    signed_headers: &'a str,
    signature: Vec<u8>,
}

/// `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`, tolerant of spacing
/// around the commas and equals signs and of the order of the three fields.
fn parse_authorization(raw: &[u8]) -> Result<Authorization<'_>, AuthError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| AuthError::Malformed("not UTF-8"))?
        .trim();
    let (scheme, rest) = text
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((text, ""));
    if scheme != ALGORITHM {
        return Err(AuthError::UnsupportedAlgorithm(clip(scheme)));
    }
    let (mut access, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (key, value) = field.split_once('=').ok_or(AuthError::Malformed(
            "expected Access=, SignedHeaders= and Signature= fields",
        ))?;
        let slot = match key.trim() {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(AuthError::Malformed(
                    "unknown field; expected Access, SignedHeaders, Signature",
                ))
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(AuthError::Malformed("a field appears twice"));
        }
    }
    let access = access
        .filter(|a| !a.is_empty())
        .ok_or(AuthError::Malformed("missing Access"))?;
    let signed_headers = signed_headers
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::Malformed("missing SignedHeaders"))?;
    let signature = signature.ok_or(AuthError::Malformed("missing Signature"))?;
    let signature = hex::decode(signature)
        .ok()
        .filter(|s| s.len() == 32)
        .ok_or(AuthError::Malformed("Signature is not 64 hex digits"))?;
    Ok(Authorization {
        access,
        signed_headers,
        signature,
    })
}

/// Strict `YYYYMMDDTHHMMSSZ`, the SDK's `%Y%m%dT%H%M%SZ`; strictness also guarantees the
/// text we put in the string to sign is the one python's `strftime` would print.
fn parse_date(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text[range].parse::<u16>().ok();
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::from(num(0..4)?), month, u8::try_from(num(6..8)?).ok()?)
            .ok()?;
    let hms = [num(9..11)?, num(11..13)?, num(13..15)?].map(|n| u8::try_from(n).unwrap_or(u8::MAX));
    let time = Time::from_hms(hms[0], hms[1], hms[2]).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn format_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn clip(s: &str) -> String {
    s.chars().take(ECHO_LIMIT).collect()
}

fn clip_bytes(b: &[u8]) -> String {
    clip(&String::from_utf8_lossy(b))
}

/// Client side: signs a request the way the SDK's `Signer` does. Adds `X-Sdk-Date` (from
/// `now`) unless a header of that name is already there, trims header values, replaces any
/// `Authorization`, and signs every header given whose name has no `_` (the SDK's rule), so
/// the caller must include `Host`. `X-Sdk-Content-Sha256`, if given, stands in for the hash
/// of a non-empty body, as in the SDK.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    ak: &str,
    sk: &str,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &mut Vec<(String, String)>,
    body: &[u8],
    now: OffsetDateTime,
) {
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(AUTHORIZATION.as_str()));
    for (_, value) in headers.iter_mut() {
        let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.len() != value.len() {
            *value = trimmed.to_owned();
        }
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(X_SDK_DATE))
    {
        headers.push(("X-Sdk-Date".to_owned(), format_date(now)));
    }
    // Like the SDK's dict of headers: the last value of a (case-insensitive) name wins.
    let value_of = |wanted: &str| {
        headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.as_str())
    };
    let date = value_of(X_SDK_DATE).unwrap_or_default().to_owned();
    let mut names: Vec<String> = headers
        .iter()
        .filter(|(name, _)| !name.contains('_'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect();
    names.sort();
    let signed: Vec<SignedHeader<'_>> = names
        .iter()
        .map(|name| SignedHeader {
            name,
            value: value_of(name).unwrap_or_default().as_bytes(),
        })
        .collect();
    let payload_hash = match value_of(X_SDK_CONTENT_SHA256).filter(|v| !v.is_empty()) {
        _ if body.is_empty() => canonical::EMPTY_BODY_SHA256.to_owned(),
        Some(declared) => declared.to_owned(),
        None => canonical::sha256_hex(body),
    };
    let canonical = canonical::canonical_request(method, path, query, &signed, &payload_hash);
    let signature = hex::encode(
        canonical::signature_mac(sk, &date, &canonical)
            .finalize()
            .into_bytes(),
    );
    let authorization = format!(
        "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={signature}",
        names.join(";")
    );
    headers.push(("Authorization".to_owned(), authorization));
}
