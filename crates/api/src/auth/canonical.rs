//! The SDK-HMAC-SHA256 canonical request and string to sign (SPEC.md section 2 "Authentication").
//!
//! Everything here mirrors `huaweicloudsdkcore/signer/signer.py` (class `Signer`) byte for
//! byte; the fixtures in `tests/fixtures/sdk_signatures.json` pin it. Both the server
//! (`Keyring::verify`) and the client (`sign`) go through these functions, so a request we
//! sign is one we accept.

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

pub(super) type HmacSha256 = Hmac<Sha256>;

/// What python's `quote(s, safe='~')` leaves alone: RFC 3986 unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `sha256("")`: the SDK hashes an empty body as this even when `X-Sdk-Content-Sha256` is set.
pub(super) const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn encode(s: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(s, UNRESERVED)
}

/// Python's `unquote`: `%XX` runs decoded as UTF-8 with invalid sequences replaced by U+FFFD,
/// a `%` not followed by two hex digits kept, `+` kept (the SDK sends spaces as `%20`).
fn decode(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode_str(s).collect::<Vec<u8>>()).into_owned()
}

/// The SDK decodes the whole resource path first and only then splits on `/`, so an encoded
/// `%2F` inside a segment becomes a separator in the canonical form.
pub(super) fn canonical_uri(path: &str) -> String {
    let decoded = decode(path);
    let mut out = decoded
        .split('/')
        .map(|segment| encode(segment).to_string())
        .collect::<Vec<_>>()
        .join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The SDK's wire query is already its canonical query, but other clients may order or
/// encode differently; decoding and re-encoding makes both sides agree. Pairs sort by the
/// decoded (key, value), as python sorts its `(key, value)` tuples before encoding.
pub(super) fn canonical_query(query: Option<&str>) -> String {
    let Some(query) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One signed header: its name as listed in `SignedHeaders`, its trimmed value bytes.
/// Values stay bytes: the SDK sends a header's UTF-8 encoding and signs the same UTF-8.
pub(super) struct SignedHeader<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

pub(super) fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// `METHOD\nURI\nQUERY\nname:value\n...\n\nsigned;names\nPAYLOAD_HASH`.
pub(super) fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[SignedHeader<'_>],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + path.len() + query.map_or(0, str::len));
    out.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(query).as_bytes());
    out.push(b'\n');
    for header in headers {
        out.extend_from_slice(header.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(trim(header.value));
        out.push(b'\n');
    }
    out.push(b'\n');
    let names: Vec<&str> = headers.iter().map(|h| h.name).collect();
    out.extend_from_slice(names.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// The keyed MAC over `SDK-HMAC-SHA256\n<X-Sdk-Date>\n<hex sha256(canonical request)>`;
/// the caller either finalizes it (client) or verifies it in constant time (server).
pub(super) fn signature_mac(secret_key: &str, date: &str, canonical_request: &[u8]) -> HmacSha256 {
    let string_to_sign = format!(
        "{}\n{}\n{}",
        super::ALGORITHM,
        date,
        sha256_hex(canonical_request)
    );
    let mut mac =
        HmacSha256::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_matches_python_quote() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(
            canonical_uri("/v2/p1/fgs/functions"),
            "/v2/p1/fgs/functions/"
        );
        assert_eq!(canonical_uri("/a/"), "/a/");
        assert_eq!(
            canonical_uri("/f/urn%3Afss%3Ap1/invocations"),
            "/f/urn%3Afss%3Ap1/invocations/"
        );
        assert_eq!(
            canonical_uri("/a%20b%2Fc~d%C3%A9/x%2520y"),
            "/a%20b/c~d%C3%A9/x%2520y/"
        );
        assert_eq!(canonical_uri("/a+b/%zz/%FF"), "/a%2Bb/%25zz/%EF%BF%BD/");
    }

    #[test]
    fn query_sorted_by_decoded_pair() {
        assert_eq!(canonical_query(None), "");
        assert_eq!(canonical_query(Some("")), "");
        assert_eq!(
            canonical_query(Some("b=2&a=1&a=0&flag")),
            "a=0&a=1&b=2&flag="
        );
        assert_eq!(
            canonical_query(Some("k=a+b%20c&&z=%7E*")),
            "k=a%2Bb%20c&z=~%2A"
        );
        // Decoded order, not encoded: 'é' (U+00E9) sorts after 'z' although "%C3" < "z".
        assert_eq!(canonical_query(Some("k=%C3%A9&k=z")), "k=z&k=%C3%A9");
    }
}
