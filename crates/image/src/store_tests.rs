//! Pulls from a registry of the test's own: a loopback HTTP server answering the distribution
//! API's GETs from a table, behind a bearer-token challenge.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::unpack::tests::{layer, E};

type Table = Arc<HashMap<String, Vec<u8>>>;

/// How the test registry wants to be spoken to.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    /// `Bearer t0k3n`, which `/token` hands out.
    Bearer,
    /// HTTP basic as `u` / `p:w`.
    Basic,
}

/// Serves `table` (path -> body) at 127.0.0.1:PORT behind a bearer challenge.
async fn registry(table: Table) -> String {
    registry_with(table, Auth::Bearer).await
}

/// Serves `table` at 127.0.0.1:PORT; `/v2/...` needs the credentials `auth` says.
async fn registry_with(table: Table, auth: Auth) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let (table, realm) = (Arc::clone(&table), realm.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                // base64("u:p:w")
                let authed = match auth {
                    Auth::Bearer => head.contains("Bearer t0k3n"),
                    Auth::Basic => head.contains("Basic dTpwOnc="),
                };
                let (status, extra, body) = if path.starts_with("/token") {
                    ("200 OK", String::new(), br#"{"token":"t0k3n"}"#.to_vec())
                } else if !authed && auth == Auth::Basic {
                    let c = "WWW-Authenticate: Basic realm=\"test\"\r\n".to_string();
                    ("401 Unauthorized", c, b"{}".to_vec())
                } else if !authed {
                    let c =
                        format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n");
                    ("401 Unauthorized", c, b"{}".to_vec())
                } else if let Some(b) = table.get(&path) {
                    ("200 OK", String::new(), b.clone())
                } else {
                    let e =
                        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
                    ("404 Not Found", String::new(), e.to_vec())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

/// The table of one image `fgs/app:v1` whose layer is served as `served` (its digest always
/// that of the good layer).
fn image(served: Option<Vec<u8>>) -> (HashMap<String, Vec<u8>>, Digest) {
    let config = br#"{"config":{"Cmd":["/srv"]}}"#.to_vec();
    let l = layer(&[E::Dir("etc"), E::File("etc/x", "1")], true);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"digest": Digest::of(&l).to_string(), "size": l.len()}],
    })
    .to_string()
    .into_bytes();
    let digest = Digest::of(&manifest);
    let mut t = HashMap::new();
    t.insert(format!("/v2/fgs/app/blobs/{}", Digest::of(&config)), config);
    t.insert(
        format!("/v2/fgs/app/blobs/{}", Digest::of(&l)),
        served.unwrap_or(l),
    );
    t.insert("/v2/fgs/app/manifests/v1".to_string(), manifest.clone());
    t.insert(format!("/v2/fgs/app/manifests/{digest}"), manifest);
    (t, digest)
}

fn store(addr: &str) -> (tempfile::TempDir, Images) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RegistryConfig {
        insecure: vec![addr.to_string()],
        ..Default::default()
    };
    let images = Images::open(&dir.path().join("images"), cfg).unwrap();
    (dir, images)
}

#[tokio::test]
async fn a_tag_pulls_through_a_bearer_challenge() {
    let (table, digest) = image(None);
    let addr = registry(Arc::new(table)).await;
    let (_dir, images) = store(&addr);
    let r = Reference::parse(&format!("{addr}/fgs/app:v1")).unwrap();
    let u = images.pull(&r).await.unwrap();
    assert_eq!(u.digest, digest);
    assert_eq!(std::fs::read_to_string(u.root.join("etc/x")).unwrap(), "1");
    assert_eq!(u.config.cmd, vec!["/srv"]);
    // Pinned to its digest and present: no registry needed.
    let pinned = r.with_digest(&digest);
    assert_eq!(images.pull(&pinned).await.unwrap(), u);
}

#[tokio::test]
async fn a_layer_that_does_not_match_its_digest_leaves_nothing() {
    let (table, _) = image(Some(b"not the layer".to_vec()));
    let addr = registry(Arc::new(table)).await;
    let (dir, images) = store(&addr);
    let r = Reference::parse(&format!("{addr}/fgs/app:v1")).unwrap();
    let e = images.pull(&r).await.unwrap_err();
    assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
    for d in ["images/images", "images/tmp"] {
        assert_eq!(
            std::fs::read_dir(dir.path().join(d)).unwrap().count(),
            0,
            "{d}"
        );
    }
}

#[tokio::test]
async fn missing_images_and_absent_registries_say_so() {
    let (table, _) = image(None);
    let addr = registry(Arc::new(table)).await;
    let (_dir, images) = store(&addr);
    let r = Reference::parse(&format!("{addr}/fgs/app:v2")).unwrap();
    let e = images.pull(&r).await.unwrap_err();
    assert!(matches!(e, ImageError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = l.local_addr().unwrap().to_string();
    drop(l);
    let (_dir, images) = store(&gone);
    let e = images
        .pull(&Reference::parse(&format!("{gone}/fgs/app:v1")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, ImageError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn basic_auth_uses_the_registrys_credentials() {
    let (table, digest) = image(None);
    let addr = registry_with(Arc::new(table), Auth::Basic).await;
    let r = Reference::parse(&format!("{addr}/fgs/app:v1")).unwrap();
    // Without credentials the registry's refusal is the answer.
    let (_dir, images) = store(&addr);
    let e = images.pull(&r).await.unwrap_err();
    assert!(matches!(e, ImageError::Registry { .. }), "{e}");
    assert!(e.to_string().contains("401"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RegistryConfig {
        insecure: vec![addr.clone()],
        ..Default::default()
    };
    cfg.credentials
        .insert(addr.clone(), ("u".to_string(), "p:w".to_string()));
    let images = Images::open(&dir.path().join("images"), cfg).unwrap();
    assert_eq!(images.pull(&r).await.unwrap().digest, digest);
}
