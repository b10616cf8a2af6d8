//! Signed HTTP requests to a test server, the way the SDK sends them.

use fgs_api::auth::{sign, Credential};
use reqwest::header::HeaderMap;
use serde_json::Value;
use time::OffsetDateTime;

use crate::Server;

/// How a request proves who it is.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `SDK-HMAC-SHA256` with this credential, dated now.
    Signed(Credential),
    /// Signed, but with this `X-Sdk-Date` (stale-date tests).
    SignedAt(Credential, OffsetDateTime),
    /// Signed correctly, then one hex digit of the signature flipped.
    Tampered(Credential),
    /// `X-Auth-Token`.
    Token(String),
    /// Nothing at all.
    None,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The `error_code` of an FSS error body.
    pub fn error_code(&self) -> String {
        self.json()["error_code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts a successful invocation: 200 and no function error.
    #[track_caller]
    pub fn expect_ok(&self) -> &Self {
        self.expect(200);
        assert_eq!(
            self.header("x-is-func-err").as_deref(),
            Some("false"),
            "{}",
            self.text()
        );
        self
    }

    /// Asserts an FSS error: status, `error_code`, and a non-empty `error_msg`.
    #[track_caller]
    pub fn expect_fss(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.error_code().as_str()),
            (status, code),
            "unexpected error; body: {}",
            self.text()
        );
        let msg = self.json()["error_msg"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!msg.is_empty(), "error_msg is empty: {}", self.text());
        self
    }
}

/// A request being built; `send` signs and sends it.
pub struct Req<'a> {
    server: &'a Server,
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    auth: Auth,
}

impl<'a> Req<'a> {
    pub(crate) fn new(server: &'a Server, method: &str, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_and_query.to_owned(), None),
        };
        Req {
            server,
            method: method.to_owned(),
            path,
            query,
            headers: Vec::new(),
            body: Vec::new(),
            auth: Auth::Signed(server.cred.clone()),
        }
    }

    /// Sets a header, replacing one of the same name (any case): the SDK keeps headers in a
    /// dict, so it never sends a name twice.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, v: &Value) -> Self {
        self.body = serde_json::to_vec(v).expect("a Value serializes");
        self.header("Content-Type", "application/json")
    }

    /// A raw body, sent as `application/json` (what the SDK declares for every call).
    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("Content-Type", "application/json")
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sends the request; a transport failure panics.
    pub fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.path);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what} failed: {e}"))
    }

    /// Sends the request; a transport failure (refused, reset) is an `Err`.
    pub fn try_send(self) -> Result<Resp, String> {
        let mut headers = self.headers;
        headers.push(("Host".to_owned(), self.server.addr.to_string()));
        match &self.auth {
            Auth::Signed(c) | Auth::SignedAt(c, _) | Auth::Tampered(c) => {
                let now = match &self.auth {
                    Auth::SignedAt(_, at) => *at,
                    _ => OffsetDateTime::now_utc(),
                };
                headers.push(("X-Project-Id".to_owned(), c.project_id.clone()));
                sign(
                    &c.access_key,
                    &c.secret_key,
                    &self.method,
                    &self.path,
                    self.query.as_deref(),
                    &mut headers,
                    &self.body,
                    now,
                );
                if let Auth::Tampered(_) = &self.auth {
                    let (_, v) = headers
                        .iter_mut()
                        .find(|(n, _)| n == "Authorization")
                        .expect("sign adds Authorization");
                    let last = v.pop().expect("signature is not empty");
                    v.push(if last == '0' { '1' } else { '0' });
                }
            }
            Auth::Token(t) => headers.push(("X-Auth-Token".to_owned(), t.clone())),
            Auth::None => {}
        }
        let mut url = format!("{}{}", self.server.base_url(), self.path);
        if let Some(q) = &self.query {
            url.push('?');
            url.push_str(q);
        }
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("a valid method");
        let mut rb = self.server.http.request(method, &url);
        for (k, v) in &headers {
            rb = rb.header(k, v);
        }
        let resp = rb.body(self.body).send().map_err(|e| format!("{e:#}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .map_err(|e| format!("reading the body: {e:#}"))?
            .to_vec();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

impl Server {
    /// `/v2/{project}/fgs` + `rel`.
    pub fn api(&self, rel: &str) -> String {
        format!("/v2/{}/fgs{rel}", self.cred.project_id)
    }

    /// A request to an absolute path (with an optional `?query`), signed with the test credential.
    pub fn req(&self, method: &str, path_and_query: &str) -> Req<'_> {
        Req::new(self, method, path_and_query)
    }

    pub fn get(&self, rel: &str) -> Resp {
        self.req("GET", &self.api(rel)).send()
    }

    pub fn post(&self, rel: &str, body: &Value) -> Resp {
        self.req("POST", &self.api(rel)).json(body).send()
    }

    pub fn put(&self, rel: &str, body: &Value) -> Resp {
        self.req("PUT", &self.api(rel)).json(body).send()
    }

    pub fn delete(&self, rel: &str) -> Resp {
        self.req("DELETE", &self.api(rel)).send()
    }
}
