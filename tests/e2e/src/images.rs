//! Container images built by the tests themselves (no Docker engine): a static server of the
//! test's own (`images/srv.c`, compiled with `gcc -static`) in layers written as an OCI image
//! layout, pushed with Debian's `skopeo` to a throwaway `docker-registry` on a loopback port
//! (`FGS_TEST_REGISTRY`, started by scripts/engines.sh, or started here when unset).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The server every test image runs: `POST /init`, `POST /invoke` (reports its uid, gid,
/// args, `FOO`, `/etc/version`, which files of the layers it sees, whether it may write
/// `/scratch`), `{"op":"alloc"}` eats memory, `{"op":"fail"}` answers 500, any other request
/// is echoed as an HTTP function's; `--never-listen` prints a line and never binds.
const SRV_C: &str = include_str!("images/srv.c");

/// Whether the tools are here: `gcc` with a static libc, `skopeo`, and a registry.
pub fn available() -> Result<(), String> {
    for tool in ["gcc", "skopeo"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!("{tool} is not installed"));
        }
    }
    if std::env::var("FGS_TEST_REGISTRY").is_err()
        && Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
    {
        return Err("docker-registry is not installed and FGS_TEST_REGISTRY is unset".into());
    }
    Ok(())
}

/// The compiled server, built once per test process.
pub fn server_binary() -> &'static [u8] {
    static BIN: OnceLock<Vec<u8>> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("srv.c");
        std::fs::write(&src, SRV_C).expect("write srv.c");
        let out = dir.path().join("srv");
        let st = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("gcc");
        assert!(st.success(), "gcc -static failed");
        std::fs::read(&out).expect("read srv")
    })
}

/// One entry of a layer.
pub enum Entry<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
}

/// A gzip-compressed layer tar and its uncompressed digest (the config's `diff_id`).
pub fn layer(entries: &[Entry<'_>]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (path, data, mode, kind): (&str, &[u8], u32, tar::EntryType) = match e {
            Entry::Dir(p, m) => (p, b"", *m, tar::EntryType::Directory),
            Entry::File(p, d, m) => (p, d, *m, tar::EntryType::Regular),
        };
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_path(path).expect("layer path");
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    let tar = b.into_inner().expect("tar");
    let diff_id = digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

pub fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// The base layer of every test image: the server at `/bin/srv`, `/etc/version`, a file a
/// later layer deletes (`/etc/gone`), a directory a later layer makes opaque (`/data/old`),
/// and `/scratch`, writable by anyone.
pub fn base_layer(version: &str) -> (Vec<u8>, String) {
    layer(&[
        Entry::Dir("bin", 0o755),
        Entry::File("bin/srv", server_binary(), 0o755),
        Entry::Dir("etc", 0o755),
        Entry::File("etc/version", version.as_bytes(), 0o644),
        Entry::File("etc/gone", b"x", 0o644),
        Entry::Dir("data", 0o755),
        Entry::File("data/old", b"x", 0o644),
        Entry::Dir("scratch", 0o777),
    ])
}

/// The layer over it: a whiteout of `/etc/gone` and an opaque `/data` holding `/data/new`.
pub fn whiteout_layer() -> (Vec<u8>, String) {
    layer(&[
        Entry::File("etc/.wh.gone", b"", 0o644),
        Entry::Dir("data", 0o755),
        Entry::File("data/.wh..wh..opq", b"", 0o644),
        Entry::File("data/new", b"n", 0o644),
    ])
}

/// Writes an OCI image layout of `layers` (bottom first) with `config` (the image config's
/// `config` object) into `dir`, tagged `tag`.
pub fn write_layout(dir: &Path, tag: &str, layers: &[(Vec<u8>, String)], config: Value) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |b: &[u8]| {
        let d = digest(b);
        std::fs::write(blobs.join(&d["sha256:".len()..]), b).expect("write blob");
        json!({"digest": d, "size": b.len()})
    };
    let cfg = json!({
        "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.1.clone()).collect::<Vec<_>>()},
    })
    .to_string();
    let mut cdesc = put(cfg.as_bytes());
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let ldesc: Vec<Value> = layers
        .iter()
        .map(|(b, _)| {
            let mut d = put(b);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
            d
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cdesc, "layers": ldesc,
    })
    .to_string();
    let mut mdesc = put(manifest.as_bytes());
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    mdesc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    std::fs::write(
        dir.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [mdesc]}).to_string(),
    )
    .expect("index");
}

/// A registry for the tests: `FGS_TEST_REGISTRY` (`127.0.0.1:PORT`), or a `docker-registry`
/// started here and stopped on drop.
pub struct Registry {
    pub addr: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Registry {
    pub fn start() -> Registry {
        if let Ok(addr) = std::env::var("FGS_TEST_REGISTRY") {
            return Registry {
                addr,
                child: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry");
        let up = crate::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(up, "docker-registry did not listen on {addr}");
        Registry {
            addr,
            child: Some(child),
            _dir: Some(dir),
        }
    }

    /// Pushes the OCI layout in `layout` (tag `tag`) as `repo:tag`; returns the reference.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) -> String {
        let reference = format!("{}/{repo}:{tag}", self.addr);
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        reference
    }

    /// Builds the standard test image (base layer `version`, the whiteout layer) with
    /// `config` and pushes it as `repo:tag`.
    pub fn push_image(&self, repo: &str, tag: &str, version: &str, config: Value) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        write_layout(
            dir.path(),
            tag,
            &[base_layer(version), whiteout_layer()],
            config,
        );
        self.push(dir.path(), tag, repo)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
