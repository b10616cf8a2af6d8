//! Signed HTTP calls to the FunctionGraph API, and its `FSS.xxxx` errors.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fgs_api::auth::{sign, Credential};
use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::Value;
use time::OffsetDateTime;

/// An error the API answered with: `{"error_code":"FSS.xxxx","error_msg":"..."}`, or a non-2xx
/// status with some other body.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => write!(f, "HTTP {}: {}", self.status, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

pub struct Response {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the server's answer is not JSON")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// One server and the credential to sign with.
pub struct Api {
    http: Client,
    /// `scheme://host:port` plus any path prefix, without a trailing `/`.
    base: String,
    /// The base's path prefix, part of what is signed.
    prefix: String,
    /// The `Host` header value, which is signed.
    host: String,
    cred: Credential,
}

impl Api {
    pub fn new(endpoint: &str, cred: Credential) -> Result<Api> {
        let url = Url::parse(endpoint).with_context(|| format!("bad --endpoint {endpoint:?}"))?;
        if url.scheme() != "http" {
            bail!("--endpoint {endpoint:?}: only http:// endpoints are supported (this build has no TLS)");
        }
        let host_name = url
            .host_str()
            .with_context(|| format!("--endpoint {endpoint:?} has no host"))?;
        let host = match url.port() {
            Some(p) => format!("{host_name}:{p}"),
            None => host_name.to_owned(),
        };
        let prefix = url.path().trim_end_matches('/').to_owned();
        let base = format!("http://{host}{prefix}");
        // Sync invocations may run for the function's whole timeout.
        let http = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15 * 60))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            base,
            prefix,
            host,
            cred,
        })
    }

    /// A call to `rel` under `/v2/{project_id}/fgs` with an optional JSON body; non-2xx
    /// answers become [`ApiError`].
    pub fn call(
        &self,
        method: &str,
        rel: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        self.call_query(method, rel, "", body, headers)
    }

    pub fn call_query(
        &self,
        method: &str,
        rel: &str,
        query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        let bytes = match body {
            Some(v) => serde_json::to_vec(v).expect("a Value serializes"),
            None => Vec::new(),
        };
        self.call_raw(method, rel, query, bytes, headers)
    }

    pub fn call_raw(
        &self,
        method: &str,
        rel: &str,
        query: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<Response> {
        self.send(method, &format!("/fgs{rel}"), query, body, extra)
    }

    /// A call to `rel` under `/v2/{project_id}` itself: FunctionGraph's tag API lies outside
    /// `/fgs`.
    pub fn call_project(&self, method: &str, rel: &str, body: Option<&Value>) -> Result<Response> {
        let bytes = body.map_or_else(Vec::new, |v| {
            serde_json::to_vec(v).expect("a Value serializes")
        });
        self.send(method, rel, "", bytes, &[])
    }

    fn send(
        &self,
        method: &str,
        rel: &str,
        query: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Result<Response> {
        let path = format!("{}/v2/{}{rel}", self.prefix, self.cred.project_id);
        let mut headers: Vec<(String, String)> = vec![
            ("Host".into(), self.host.clone()),
            ("Content-Type".into(), "application/json".into()),
            ("X-Project-Id".into(), self.cred.project_id.clone()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let query_opt = (!query.is_empty()).then_some(query);
        sign(
            &self.cred.access_key,
            &self.cred.secret_key,
            method,
            &path,
            query_opt,
            &mut headers,
            &body,
            OffsetDateTime::now_utc(),
        );
        let mut url = format!("{}{}", self.base, &path[self.prefix.len()..]);
        if let Some(q) = query_opt {
            url.push('?');
            url.push_str(q);
        }
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).expect("methods here are valid");
        let mut req = self.http.request(method, &url);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let body = if body.len() > PROGRESS_FROM {
            let len = body.len() as u64;
            reqwest::blocking::Body::sized(Progress::new(body), len)
        } else {
            body.into()
        };
        let resp = req.body(body).send().map_err(|e| self.send_error(e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .context("reading the server's answer")?
            .to_vec();
        if !(200..300).contains(&status) {
            let parsed: Option<Value> = serde_json::from_slice(&body).ok();
            let field = |k: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v[k].as_str())
                    .map(str::to_owned)
            };
            return Err(match field("error_code") {
                Some(code) => ApiError {
                    status,
                    code: Some(code),
                    message: field("error_msg").unwrap_or_default(),
                },
                None => ApiError {
                    status,
                    code: None,
                    message: String::from_utf8_lossy(&body).trim().to_owned(),
                },
            }
            .into());
        }
        Ok(Response { headers, body })
    }
}

impl Api {
    /// A failed send, with what to do about it.
    fn send_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow::anyhow!(
                "could not reach fgs at {}: is `fgs serve` running? (or set --endpoint / FGS_ENDPOINT)",
                self.base
            )
        } else if e.is_timeout() {
            anyhow::anyhow!("fgs at {} did not answer in time", self.base)
        } else {
            anyhow::Error::new(e).context(format!("talking to fgs at {}", self.base))
        }
    }
}

/// Request bodies over this many bytes show their upload progress.
const PROGRESS_FROM: usize = 1024 * 1024;

/// A request body that reports how much of it was sent: a percentage redrawn on a terminal,
/// one closing line otherwise (so logs of scripts stay short).
struct Progress {
    data: std::io::Cursor<Vec<u8>>,
    total: usize,
    shown: usize,
    tty: bool,
}

impl Progress {
    fn new(data: Vec<u8>) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total: data.len(),
            data: std::io::Cursor::new(data),
            shown: usize::MAX,
            tty: std::io::stderr().is_terminal(),
        }
    }
}

impl std::io::Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        let sent = self.data.position() as usize;
        let pct = sent * 100 / self.total.max(1);
        if pct != self.shown && (self.tty || sent == self.total) {
            self.shown = pct;
            let mb = self.total as f64 / (1024.0 * 1024.0);
            let end = if sent == self.total { "\n" } else { "" };
            eprint!("\ruploading {mb:.1} MB: {pct:>3}%{end}");
        }
        Ok(n)
    }
}

/// A function name or URN as one path segment: everything but unreserved characters and the
/// URN's `:` and `!` is percent-encoded.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:!".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
