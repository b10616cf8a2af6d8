//! The headers of the event the runtime takes (`GET /v1/runtime/invocation/request`, SPEC.md 4).
//!
//! Most of them are the same from one event of an instance to the next (its function's URN,
//! alias and timeout): their values are kept from the last event and shared rather than copied
//! and formatted again for every event, a part of fgs's own cpu time on a warm call. The request
//! id's value shares the id's bytes, and the map is the one the runtime's request came in
//! (hyper parses each request into the map of the response before it): an event allocates
//! nothing for its headers.

use std::sync::Mutex;

use bytes::Bytes;
use http::header::{InvalidHeaderValue, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Request;

// The names are built once rather than parsed for each event (HTTP/1.1 sends them in lower
// case either way).
const X_CFF_REQUEST_ID: HeaderName = HeaderName::from_static("x-cff-request-id");
const X_CFF_INVOKE_TYPE: HeaderName = HeaderName::from_static("x-cff-invoke-type");
const X_CFF_TIMEOUT_MS: HeaderName = HeaderName::from_static("x-cff-timeout-ms");
const X_CFF_FUNCTION_URN: HeaderName = HeaderName::from_static("x-cff-function-urn");
const X_CFF_ALIAS: HeaderName = HeaderName::from_static("x-cff-alias");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The most headers an event has: the map is made for them and never grows.
const EVENT_HEADERS: usize = 7;

/// One instance's event headers, with the values its last event used.
#[derive(Debug, Default)]
pub(crate) struct EventHeaders {
    last: Mutex<Last>,
}

#[derive(Debug)]
struct Last {
    timeout_ms: u128,
    timeout: HeaderValue,
    urn: HeaderValue,
    alias: HeaderValue,
}

impl Default for Last {
    fn default() -> Last {
        Last {
            timeout_ms: 0,
            timeout: HeaderValue::from_static("0"),
            urn: HeaderValue::from_static(""),
            alias: HeaderValue::from_static(""),
        }
    }
}

/// `last` when it holds `s`, else `s` as a new value that becomes `last`.
fn reuse(last: &mut HeaderValue, s: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    if last.as_bytes() != s.as_bytes() {
        *last = HeaderValue::from_str(s)?;
    }
    Ok(last.clone())
}

impl EventHeaders {
    /// The headers of `request`'s event, whose request id is `id`, in `h` (emptied first, its
    /// memory kept); an error when a value cannot be a header's (the request id and
    /// traceparent are fgs's own, the URN and alias were checked by the API).
    pub(crate) fn build(
        &self,
        id: &Bytes,
        request: &Request,
        mut h: HeaderMap,
    ) -> Result<HeaderMap, InvalidHeaderValue> {
        h.clear();
        h.reserve(EVENT_HEADERS);
        h.insert(CONTENT_TYPE, JSON);
        h.insert(
            X_CFF_REQUEST_ID,
            HeaderValue::from_maybe_shared(id.clone())?,
        );
        h.insert(
            X_CFF_INVOKE_TYPE,
            HeaderValue::from_static(request.invoke_type.as_str()),
        );
        {
            let mut last = self.last.lock().expect("header lock is never poisoned");
            let ms = request.timeout.as_millis();
            if last.timeout_ms != ms {
                last.timeout = HeaderValue::from(ms as u64);
                last.timeout_ms = ms;
            }
            h.insert(X_CFF_TIMEOUT_MS, last.timeout.clone());
            h.insert(
                X_CFF_FUNCTION_URN,
                reuse(&mut last.urn, &request.invoked_urn)?,
            );
            h.insert(X_CFF_ALIAS, reuse(&mut last.alias, &request.alias)?);
        }
        if let Some(tp) = &request.traceparent {
            h.insert(TRACEPARENT, HeaderValue::from_str(tp)?);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::config::InvokeType;

    fn request(urn: &str, alias: &str, timeout: u64) -> Request {
        Request {
            request_id: String::new(),
            body: Bytes::new(),
            invoke_type: InvokeType::Sync,
            invoked_urn: urn.into(),
            alias: alias.into(),
            traceparent: None,
            traced: false,
            timeout: Duration::from_secs(timeout),
        }
    }

    fn id(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h[name].to_str().expect("ascii")
    }

    #[test]
    fn every_event_gets_its_own_values() {
        let e = EventHeaders::default();
        let h = e
            .build(&id("r1"), &request("urn:a", "", 3), HeaderMap::new())
            .expect("valid");
        assert_eq!(h.len(), 6);
        assert_eq!(get(&h, "content-type"), "application/json");
        assert_eq!(get(&h, "x-cff-request-id"), "r1");
        assert_eq!(get(&h, "x-cff-invoke-type"), "sync");
        assert_eq!(get(&h, "x-cff-timeout-ms"), "3000");
        assert_eq!(get(&h, "x-cff-function-urn"), "urn:a");
        assert_eq!(get(&h, "x-cff-alias"), "");
        // The same function again, then another URN, alias and timeout: nothing of the
        // previous event's values leaks into the next one's.
        // The map of the last event comes back (as hyper hands the runtime's next request in
        // it), with a header no event has: emptied, its memory kept.
        let mut reused = h;
        reused.insert("user-agent", HeaderValue::from_static("runtime"));
        let cap = reused.capacity();
        let h = e
            .build(&id("r2"), &request("urn:a", "", 3), reused)
            .expect("valid");
        assert_eq!(h.len(), 6);
        assert!(!h.contains_key("user-agent"));
        assert_eq!(h.capacity(), cap);
        assert_eq!(get(&h, "x-cff-request-id"), "r2");
        assert_eq!(get(&h, "x-cff-function-urn"), "urn:a");
        let mut r = request("urn:a:!prod", "prod", 30);
        r.invoke_type = InvokeType::Async;
        r.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        let h = e.build(&id("r3"), &r, HeaderMap::new()).expect("valid");
        assert_eq!(h.len(), 7);
        assert!(h.capacity() >= EVENT_HEADERS);
        assert_eq!(get(&h, "x-cff-invoke-type"), "async");
        assert_eq!(get(&h, "x-cff-timeout-ms"), "30000");
        assert_eq!(get(&h, "x-cff-function-urn"), "urn:a:!prod");
        assert_eq!(get(&h, "x-cff-alias"), "prod");
        assert_eq!(
            get(&h, "traceparent"),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        let h = e
            .build(&id("r4"), &request("urn:a", "", 3), h)
            .expect("valid");
        assert_eq!(h.len(), 6, "the last event's traceparent is gone");
        assert_eq!(get(&h, "x-cff-timeout-ms"), "3000");
        assert_eq!(get(&h, "x-cff-alias"), "");
    }

    #[test]
    fn a_value_that_cannot_be_a_header_is_an_error() {
        let e = EventHeaders::default();
        assert!(e
            .build(&id("r1"), &request("urn:\na", "", 3), HeaderMap::new())
            .is_err());
        assert!(e
            .build(&id("r\n1"), &request("urn:a", "", 3), HeaderMap::new())
            .is_err());
        // The bad value was not kept.
        let h = e
            .build(&id("r2"), &request("urn:a", "", 3), HeaderMap::new())
            .expect("valid");
        assert_eq!(get(&h, "x-cff-function-urn"), "urn:a");
    }
}
