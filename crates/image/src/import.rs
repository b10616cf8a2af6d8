//! `fgs image import FILE --name REF`: an image from a file, for machines without a registry.
//! Two forms are read: an OCI image layout in a tar (`oci-layout`, `index.json`, `blobs/`, as
//! `skopeo copy ... oci-archive:` writes) and `docker save`'s tar (`manifest.json` naming a config
//! and layer tars). Every blob an OCI layout names is verified against its digest; a `docker save`
//! image gets the digest of an OCI manifest fgs writes for it.

use std::fs;
use std::path::Path;

use serde::Deserialize;

use crate::manifest::{self, Descriptor, Manifest, Parsed};
use crate::reference::{Digest, Reference};
use crate::store::{store_err, Images};
use crate::unpack::apply_layer;
use crate::ImageError;

impl Images {
    /// Loads the image in `file` and names it `name`; returns its digest.
    pub fn import(&self, file: &Path, name: &Reference) -> Result<Digest, ImageError> {
        let tmp = self.tmp_dir()?;
        let input = tmp.0.join("in");
        let f = fs::File::open(file).map_err(|e| store_err(file, e))?;
        tar::Archive::new(f)
            .unpack(&input)
            .map_err(|e| ImageError::Import(format!("{}: {e}", file.display())))?;
        let out = tmp.0.join("image");
        fs::create_dir_all(out.join("rootfs")).map_err(|e| store_err(&out, e))?;
        let (manifest_bytes, digest, layers) = if input.join("index.json").is_file() {
            oci_layout(&input, name)?
        } else if input.join("manifest.json").is_file() {
            docker_save(&input)?
        } else {
            return Err(ImageError::Import(format!(
                "{}: neither an OCI layout (index.json) nor a docker save (manifest.json)",
                file.display()
            )));
        };
        let (config, layer_files) = layers;
        fs::write(out.join("config.json"), &config).map_err(|e| store_err(&out, e))?;
        let mut budget = crate::store::IMAGE_MAX_BYTES;
        for l in layer_files {
            let f = fs::File::open(&l).map_err(|e| store_err(&l, e))?;
            apply_layer(&out.join("rootfs"), f, &mut budget)?;
        }
        if self.local(&digest).is_none() {
            self.finish(&out, &manifest_bytes, &digest)?;
        }
        self.name(name, &digest)?;
        Ok(digest)
    }
}

type Loaded = (Vec<u8>, Digest, (Vec<u8>, Vec<std::path::PathBuf>));

/// A blob of an OCI layout, verified.
fn blob(dir: &Path, d: &str) -> Result<(Vec<u8>, std::path::PathBuf), ImageError> {
    let digest = Digest::parse(d)?;
    let path = dir.join("blobs/sha256").join(digest.hex());
    let bytes = fs::read(&path).map_err(|e| ImageError::Import(format!("blob {d}: {e}")))?;
    let got = Digest::of(&bytes);
    if got != digest {
        return Err(ImageError::DigestMismatch {
            what: format!("blob {d}"),
            got: got.to_string(),
        });
    }
    Ok((bytes, path))
}

fn oci_layout(dir: &Path, name: &Reference) -> Result<Loaded, ImageError> {
    #[derive(Deserialize)]
    struct Index {
        manifests: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        digest: String,
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
    }
    let text = fs::read(dir.join("index.json")).map_err(|e| store_err(dir, e))?;
    let index: Index = serde_json::from_slice(&text)
        .map_err(|e| ImageError::Import(format!("index.json: {e}")))?;
    let tag = name.tag.clone().unwrap_or_default();
    let entry = index
        .manifests
        .iter()
        .find(|m| {
            m.annotations
                .get("org.opencontainers.image.ref.name")
                .is_some_and(|r| *r == tag)
        })
        .or(index.manifests.first())
        .ok_or_else(|| ImageError::Import("index.json lists no image".into()))?;
    let (mut bytes, _) = blob(dir, &entry.digest)?;
    let mut digest = Digest::parse(&entry.digest)?;
    let m = loop {
        match manifest::parse(&bytes)? {
            Parsed::Image(m) => break m,
            Parsed::Index(d) => {
                bytes = blob(dir, d.as_str())?.0;
                digest = d;
            }
        }
    };
    let (config, _) = blob(dir, &m.config.digest)?;
    let mut layers = Vec::new();
    for l in &m.layers {
        layers.push(blob(dir, &l.digest)?.1);
    }
    Ok((bytes, digest, (config, layers)))
}

fn docker_save(dir: &Path) -> Result<Loaded, ImageError> {
    #[derive(Deserialize)]
    struct Item {
        #[serde(rename = "Config")]
        config: String,
        #[serde(rename = "Layers")]
        layers: Vec<String>,
    }
    let text = fs::read(dir.join("manifest.json")).map_err(|e| store_err(dir, e))?;
    let items: Vec<Item> = serde_json::from_slice(&text)
        .map_err(|e| ImageError::Import(format!("manifest.json: {e}")))?;
    let item = items
        .first()
        .ok_or_else(|| ImageError::Import("manifest.json lists no image".into()))?;
    let inside = |p: &str| {
        if p.split('/').any(|c| c == "..") || p.starts_with('/') {
            return Err(ImageError::Import(format!("{p} leaves the archive")));
        }
        Ok(dir.join(p))
    };
    let config = fs::read(inside(&item.config)?).map_err(|e| store_err(dir, e))?;
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for l in &item.layers {
        let path = inside(l)?;
        let bytes = fs::read(&path).map_err(|e| store_err(&path, e))?;
        descriptors.push(Descriptor {
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            digest: Digest::of(&bytes).to_string(),
            size: bytes.len() as u64,
            platform: None,
        });
        layers.push(path);
    }
    let m = Manifest {
        config: Descriptor {
            media_type: "application/vnd.oci.image.config.v1+json".into(),
            digest: Digest::of(&config).to_string(),
            size: config.len() as u64,
            platform: None,
        },
        layers: descriptors,
    };
    let mut v = serde_json::to_value(&m).map_err(|e| ImageError::Import(e.to_string()))?;
    v["schemaVersion"] = 2.into();
    v["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    let bytes = serde_json::to_vec(&v).map_err(|e| ImageError::Import(e.to_string()))?;
    let digest = Digest::of(&bytes);
    Ok((bytes, digest, (config, layers)))
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
