//! The client side of the OCI distribution protocol: manifests and blobs, over HTTPS or, for
//! the registries named insecure, plain HTTP; anonymous, basic and bearer-token auth (the token
//! endpoint a `401`'s `WWW-Authenticate` names, with the registry's credentials if any).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use sha2::Digest as _;

use crate::reference::{Digest, Reference};
use crate::ImageError;

/// What a manifest request accepts: single-platform manifests and indexes, OCI and Docker.
pub(crate) const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Where the registries are and who fgs is to them.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `host[:port]` spoken to over plain HTTP (`--insecure-registry`).
    pub insecure: Vec<String>,
    /// `host[:port]` -> (user, password) (`--registry-auth FILE`).
    pub credentials: HashMap<String, (String, String)>,
}

impl RegistryConfig {
    /// Reads credentials in the form of Docker's `config.json`: `{"auths": {"HOST[:PORT]":
    /// {"auth": base64("user:password")}}}`, or `"username"`/`"password"` in place of `auth`.
    pub fn read_credentials(&mut self, file: &Path) -> Result<(), ImageError> {
        use base64::Engine;
        let bad = |why: String| ImageError::Config(format!("{}: {why}", file.display()));
        let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let auths = doc
            .get("auths")
            .and_then(|a| a.as_object())
            .ok_or_else(|| bad("no \"auths\" object".into()))?;
        for (host, entry) in auths {
            let s = |k: &str| entry.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let pair = match (s("auth"), s("username"), s("password")) {
                (Some(a), _, _) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(a.trim())
                        .map_err(|e| bad(format!("{host}: auth is not base64: {e}")))?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| bad(format!("{host}: auth is not UTF-8")))?;
                    let (u, p) = text
                        .split_once(':')
                        .ok_or_else(|| bad(format!("{host}: auth is not user:password")))?;
                    (u.to_string(), p.to_string())
                }
                (None, Some(u), Some(p)) => (u, p),
                _ => {
                    return Err(bad(format!(
                        "{host}: neither auth nor username and password"
                    )))
                }
            };
            let host = host
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            self.credentials.insert(host, pair);
        }
        Ok(())
    }
}

pub(crate) struct Registry {
    http: reqwest::Client,
    cfg: RegistryConfig,
    /// Bearer tokens by (registry, repository), reused until a request is refused.
    tokens: Mutex<HashMap<(String, String), String>>,
}

impl Registry {
    pub(crate) fn new(cfg: RegistryConfig) -> Result<Registry, ImageError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ImageError::Config(format!("the registry client: {e}")))?;
        Ok(Registry {
            http,
            cfg,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, r: &Reference) -> String {
        let scheme = if self.cfg.insecure.iter().any(|h| h == &r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}", r.api_host(), r.repository)
    }

    /// GET `path` of the repository, answering the registry's auth challenge once.
    async fn get(&self, r: &Reference, path: &str, accept: &str) -> Result<Response, ImageError> {
        let url = format!("{}/{path}", self.base(r));
        let key = (r.registry.clone(), r.repository.clone());
        let cached = self
            .tokens
            .lock()
            .expect("token lock is never poisoned")
            .get(&key)
            .cloned();
        let send = |auth: Option<String>| {
            let mut req = self.http.get(&url).header(ACCEPT, accept);
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            req.send()
        };
        let unreachable = |e: reqwest::Error| ImageError::Unreachable {
            registry: r.registry.clone(),
            why: error_chain(&e),
        };
        let resp = send(cached.clone()).await.map_err(unreachable)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let auth = self.answer_challenge(r, resp.headers()).await?;
        if let Some(a) = auth.as_ref().filter(|a| a.starts_with("Bearer ")) {
            self.tokens
                .lock()
                .expect("token lock is never poisoned")
                .insert(key, a.clone());
        }
        send(auth).await.map_err(unreachable)
    }

    /// The `Authorization` value a 401's challenge asks for.
    async fn answer_challenge(
        &self,
        r: &Reference,
        headers: &HeaderMap,
    ) -> Result<Option<String>, ImageError> {
        use base64::Engine;
        let creds = self.cfg.credentials.get(&r.registry);
        let basic = creds.map(|(u, p)| {
            let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            format!("Basic {b}")
        });
        let challenge = headers
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Ok(basic);
        };
        let params = parse_params(params);
        let realm = params.get("realm").ok_or_else(|| ImageError::Registry {
            registry: r.registry.clone(),
            answer: format!("a bearer challenge without a realm: {challenge}"),
        })?;
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", r.repository));
        let mut query = vec![("scope", scope)];
        if let Some(s) = params.get("service") {
            query.push(("service", s.clone()));
        }
        let mut req = self.http.get(realm).query(&query);
        if let Some(b) = basic {
            req = req.header(AUTHORIZATION, b);
        }
        let resp = req.send().await.map_err(|e| ImageError::Unreachable {
            registry: realm.clone(),
            why: error_chain(&e),
        })?;
        let resp = ok_or_answer(r, resp).await?;
        let body: serde_json::Value = resp.json().await.map_err(|e| ImageError::Registry {
            registry: r.registry.clone(),
            answer: format!("the token endpoint's answer is not JSON: {e}"),
        })?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| ImageError::Registry {
                registry: r.registry.clone(),
                answer: "the token endpoint gave no token".into(),
            })?;
        Ok(Some(format!("Bearer {token}")))
    }

    /// The manifest `reference` names (by tag or digest), its bytes and their digest.
    pub(crate) async fn manifest(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(Vec<u8>, Digest), ImageError> {
        let resp = self
            .get(r, &format!("manifests/{reference}"), MANIFEST_TYPES)
            .await?;
        let resp = ok_or_answer(r, resp).await?;
        let bytes = resp.bytes().await.map_err(|e| ImageError::Unreachable {
            registry: r.registry.clone(),
            why: error_chain(&e),
        })?;
        let digest = Digest::of(&bytes);
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {reference}"),
                got: digest.to_string(),
            });
        }
        Ok((bytes.to_vec(), digest))
    }

    /// Downloads blob `digest` into `out`, verifying its digest while it streams, within
    /// `limit` bytes.
    pub(crate) async fn blob(
        &self,
        r: &Reference,
        digest: &Digest,
        out: &mut std::fs::File,
        limit: u64,
    ) -> Result<u64, ImageError> {
        let resp = self.get(r, &format!("blobs/{digest}"), "*/*").await?;
        let mut resp = ok_or_answer(r, resp).await?;
        let mut hasher = sha2::Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|e| ImageError::Unreachable {
            registry: r.registry.clone(),
            why: error_chain(&e),
        })? {
            n += chunk.len() as u64;
            if n > limit {
                return Err(ImageError::TooLarge);
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .map_err(|e| ImageError::Store(format!("writing blob {digest}: {e}")))?;
        }
        let got = Digest::from_hash(&hasher.finalize());
        if &got != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {digest}"),
                got: got.to_string(),
            });
        }
        Ok(n)
    }
}

/// The response when it is a success; otherwise the registry's answer as an error: its status
/// and the `errors[].code`/`message` of the distribution spec when it sent them.
async fn ok_or_answer(r: &Reference, resp: Response) -> Result<Response, ImageError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?.clone();
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
            ))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    let answer = format!("{status} {detail}").trim().to_string();
    if status == StatusCode::NOT_FOUND {
        return Err(ImageError::NotFound {
            image: r.to_string(),
            answer,
        });
    }
    Err(ImageError::Registry {
        registry: r.registry.clone(),
        answer,
    })
}

/// `k="v",k2="v2"` of a challenge.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v.to_string(), n),
                None => (q.to_string(), ""),
            }
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v.to_string(), n),
                None => (after.to_string(), ""),
            }
        };
        out.insert(k, v);
        rest = next.trim_start_matches(',').trim();
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = parse_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull");
    }

    #[test]
    fn only_insecure_registries_get_plain_http() {
        let reg = Registry::new(RegistryConfig {
            insecure: vec!["127.0.0.1:5000".into()],
            ..Default::default()
        })
        .unwrap();
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(
            reg.base(&r("127.0.0.1:5000/a/b")),
            "http://127.0.0.1:5000/v2/a/b"
        );
        assert_eq!(
            reg.base(&r("127.0.0.1:5001/a/b")),
            "https://127.0.0.1:5001/v2/a/b"
        );
        assert_eq!(
            reg.base(&r("busybox")),
            "https://registry-1.docker.io/v2/library/busybox"
        );
    }

    #[test]
    fn credentials_read_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        std::fs::write(
            &f,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dTpwOnc="},"https://r.example/":{"username":"a","password":"b"}}}"#,
        )
        .unwrap();
        let mut c = RegistryConfig::default();
        c.read_credentials(&f).unwrap();
        assert_eq!(c.credentials["127.0.0.1:5000"], ("u".into(), "p:w".into()));
        assert_eq!(c.credentials["r.example"], ("a".into(), "b".into()));
        std::fs::write(&f, r#"{"auths":{"x":{"auth":"!!"}}}"#).unwrap();
        assert!(c.read_credentials(&f).is_err());
    }
}
