//! The image store under the data dir: one unpacked root per image digest, written to a
//! temporary directory and renamed into place only when every blob was verified and every layer
//! applied, so a failed pull leaves nothing behind.
//!
//! ```text
//! images/<hex>/manifest.json   the platform manifest whose digest is <hex>
//! images/<hex>/config.json     its image config
//! images/<hex>/rootfs/         the layers applied in order
//! refs/<sha256 of the name>    "<name>\n<digest>": images loaded by `fgs image import`
//! tmp/                         pulls in progress (removed at start)
//! ```

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::manifest::{self, Manifest, Parsed, RunConfig};
use crate::reference::{Digest, Reference};
use crate::registry::{Registry, RegistryConfig};
use crate::unpack::apply_layer;
use crate::ImageError;

/// FunctionGraph's limit on an image (its layers, unpacked).
pub const IMAGE_MAX_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// An image ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The platform manifest's digest: what a function stores and its instances run.
    pub digest: Digest,
    /// The unpacked root file system on the host.
    pub root: PathBuf,
    pub config: RunConfig,
}

pub struct Images {
    dir: PathBuf,
    registry: Registry,
    limit: u64,
}

impl Images {
    /// Opens (and creates) the store at `dir`, removing pulls a previous run left unfinished.
    pub fn open(dir: &Path, cfg: RegistryConfig) -> Result<Images, ImageError> {
        for d in ["images", "refs"] {
            fs::create_dir_all(dir.join(d)).map_err(|e| store_err(&dir.join(d), e))?;
        }
        let _ = fs::remove_dir_all(dir.join("tmp"));
        fs::create_dir_all(dir.join("tmp")).map_err(|e| store_err(&dir.join("tmp"), e))?;
        Ok(Images {
            dir: dir.to_path_buf(),
            registry: Registry::new(cfg)?,
            limit: IMAGE_MAX_BYTES,
        })
    }

    /// Lowers the size limit (tests).
    pub fn with_limit(mut self, bytes: u64) -> Images {
        self.limit = bytes;
        self
    }

    /// The image `digest` if it is unpacked here.
    pub fn local(&self, digest: &Digest) -> Option<Unpacked> {
        let dir = self.dir.join("images").join(digest.hex());
        let config = fs::read(dir.join("config.json")).ok()?;
        Some(Unpacked {
            digest: digest.clone(),
            root: dir.join("rootfs"),
            config: manifest::run_config(&config).ok()?,
        })
    }

    /// The digest an imported image was named with, if any.
    pub fn imported(&self, name: &Reference) -> Option<Digest> {
        let text = fs::read_to_string(self.ref_file(name)).ok()?;
        let (n, d) = text.split_once('\n')?;
        (n == name.to_string()).then(|| Digest::parse(d.trim()).ok())?
    }

    fn ref_file(&self, name: &Reference) -> PathBuf {
        self.dir
            .join("refs")
            .join(Digest::of(name.to_string().as_bytes()).hex())
    }

    /// Names an image in the store (`fgs image import`).
    pub(crate) fn name(&self, name: &Reference, digest: &Digest) -> Result<(), ImageError> {
        let f = self.ref_file(name);
        fs::write(&f, format!("{name}\n{digest}\n")).map_err(|e| store_err(&f, e))
    }

    /// Resolves `image` to a digest and makes sure it is unpacked here: asks the registry for
    /// the tag's current manifest (so a tag pushed again is pulled again); an image pinned to
    /// a digest that is here already is not asked for. An image loaded by `fgs image import`
    /// under this name is used when the registry cannot be reached.
    pub async fn pull(&self, image: &Reference) -> Result<Unpacked, ImageError> {
        if let Some(d) = &image.digest {
            if let Some(u) = self.local(d) {
                return Ok(u);
            }
        }
        let fetched = self.registry.manifest(image, &image.manifest_ref()).await;
        let (bytes, digest) = match fetched {
            Ok(m) => m,
            Err(e @ (ImageError::Unreachable { .. } | ImageError::NotFound { .. })) => {
                if let Some(u) = self.imported(image).and_then(|d| self.local(&d)) {
                    return Ok(u);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let (bytes, digest) = match manifest::parse(&bytes)? {
            Parsed::Image(_) => (bytes, digest),
            Parsed::Index(d) => self.registry.manifest(image, d.as_str()).await?,
        };
        if let Some(u) = self.local(&digest) {
            return Ok(u);
        }
        let Parsed::Image(m) = manifest::parse(&bytes)? else {
            return Err(ImageError::Manifest(
                "an index points at another index".into(),
            ));
        };
        let tmp = self.tmp_dir()?;
        let r = self.download(image, &m, &tmp).await;
        let r = match r {
            Ok(()) => self.finish(&tmp.0, &bytes, &digest),
            Err(e) => Err(e),
        };
        drop(tmp);
        r
    }

    /// Downloads the config and layers into `tmp` and applies the layers.
    async fn download(
        &self,
        image: &Reference,
        m: &Manifest,
        tmp: &TmpDir,
    ) -> Result<(), ImageError> {
        let config = Digest::parse(&m.config.digest)?;
        let path = tmp.0.join("config.json");
        let mut f = fs::File::create(&path).map_err(|e| store_err(&path, e))?;
        self.registry.blob(image, &config, &mut f, 1 << 20).await?;
        let rootfs = tmp.0.join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| store_err(&rootfs, e))?;
        let mut budget = self.limit;
        for layer in &m.layers {
            let digest = Digest::parse(&layer.digest)?;
            let blob = tmp.0.join("layer");
            let mut f = fs::File::create(&blob).map_err(|e| store_err(&blob, e))?;
            self.registry
                .blob(image, &digest, &mut f, self.limit)
                .await?;
            drop(f);
            let root = rootfs.clone();
            budget = tokio::task::spawn_blocking(move || {
                let f = fs::File::open(&blob).map_err(|e| store_err(&blob, e))?;
                let mut budget = budget;
                apply_layer(&root, f, &mut budget)?;
                let _ = fs::remove_file(&blob);
                Ok::<_, ImageError>(budget)
            })
            .await
            .map_err(|e| ImageError::Store(format!("unpacking: {e}")))??;
        }
        Ok(())
    }

    /// Renames a complete pull into place.
    pub(crate) fn finish(
        &self,
        tmp: &Path,
        manifest: &[u8],
        digest: &Digest,
    ) -> Result<Unpacked, ImageError> {
        let mf = tmp.join("manifest.json");
        fs::write(&mf, manifest).map_err(|e| store_err(&mf, e))?;
        let config = fs::read(tmp.join("config.json")).map_err(|e| store_err(tmp, e))?;
        manifest::run_config(&config)?;
        mount_points(&tmp.join("rootfs"))?;
        let dst = self.dir.join("images").join(digest.hex());
        if let Err(e) = fs::rename(tmp, &dst) {
            // Another pull of the same image finished first: it is the same content.
            if self.local(digest).is_none() {
                return Err(store_err(&dst, e));
            }
        }
        self.local(digest)
            .ok_or_else(|| ImageError::Store(format!("{} vanished", dst.display())))
    }

    pub(crate) fn tmp_dir(&self) -> Result<TmpDir, ImageError> {
        let p = self
            .dir
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        fs::create_dir(&p).map_err(|e| store_err(&p, e))?;
        Ok(TmpDir(p))
    }

    /// Removes every image neither in `keep` nor named by `fgs image import`; returns how
    /// many went. Called at start, like the code packages' collection.
    pub fn collect(&self, keep: &HashSet<Digest>) -> Result<usize, ImageError> {
        let mut keep = keep.clone();
        let refs = self.dir.join("refs");
        for e in fs::read_dir(&refs)
            .map_err(|e| store_err(&refs, e))?
            .flatten()
        {
            if let Some(d) = fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.lines().nth(1).and_then(|d| Digest::parse(d).ok()))
            {
                keep.insert(d);
            }
        }
        let mut removed = 0;
        let images = self.dir.join("images");
        for e in fs::read_dir(&images).map_err(|e| store_err(&images, e))? {
            let e = e.map_err(|e| store_err(&images, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let kept = Digest::parse(&format!("sha256:{name}")).is_ok_and(|d| keep.contains(&d));
            if !kept {
                fs::remove_dir_all(e.path()).map_err(|err| store_err(&e.path(), err))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// What the sandbox mounts over in an image's root (its own `/dev`, `/proc`, `/tmp`,
/// `/etc/hosts`, the host's `/etc/resolv.conf`), made where the image lacks them: the root is
/// read-only to the sandbox, and an overlay cannot create a mount point without writing it.
fn mount_points(root: &Path) -> Result<(), ImageError> {
    for d in ["dev", "proc", "tmp", "etc"] {
        let p = root.join(d);
        if fs::symlink_metadata(&p).is_err() {
            fs::create_dir(&p).map_err(|e| store_err(&p, e))?;
        }
    }
    if let Ok(m) = fs::symlink_metadata(root.join("tmp")) {
        if m.is_dir() {
            let _ = fs::set_permissions(
                root.join("tmp"),
                std::os::unix::fs::PermissionsExt::from_mode(0o1777),
            );
        }
    }
    for f in ["etc/hosts", "etc/resolv.conf"] {
        let p = root.join(f);
        let etc_is_dir = fs::symlink_metadata(root.join("etc")).is_ok_and(|m| m.is_dir());
        if etc_is_dir && fs::symlink_metadata(&p).is_err() {
            fs::write(&p, b"").map_err(|e| store_err(&p, e))?;
        }
    }
    Ok(())
}

/// A directory under `tmp/`, removed when dropped (it is gone already once renamed).
pub(crate) struct TmpDir(pub(crate) PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn store_err(p: &Path, e: std::io::Error) -> ImageError {
    ImageError::Store(format!("{}: {e}", p.display()))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
