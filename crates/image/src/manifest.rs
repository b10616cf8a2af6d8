//! Manifests (OCI and Docker v2), indexes and image configs: only the fields fgs reads.

use serde::{Deserialize, Serialize};

use crate::reference::Digest;
use crate::ImageError;

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
}

/// One platform's image: its config and layers, bottom first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

/// What a manifest request answered.
pub(crate) enum Parsed {
    Image(Manifest),
    /// A multi-platform index: the digest of the host's platform's manifest.
    Index(Digest),
}

/// The platform name of this host, as OCI spells it.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, ImageError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Manifest(format!("not JSON: {e}")))?;
    let media = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    if INDEX_TYPES.contains(&media) || (media.is_empty() && v.get("manifests").is_some()) {
        let index: Index =
            serde_json::from_value(v).map_err(|e| ImageError::Manifest(format!("index: {e}")))?;
        let arch = host_arch();
        let pick = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| {
                ImageError::Platform(format!("the image has no linux/{arch} manifest"))
            })?;
        return Ok(Parsed::Index(Digest::parse(&pick.digest)?));
    }
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err(ImageError::Manifest(
            "Docker schema 1 manifests are not supported; push the image again".into(),
        ));
    }
    let m: Manifest =
        serde_json::from_value(v).map_err(|e| ImageError::Manifest(format!("manifest: {e}")))?;
    Ok(Parsed::Image(m))
}

/// What an image's config says about running it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `KEY=VALUE` entries.
    #[serde(rename = "Env", default, deserialize_with = "null_default")]
    pub env: Vec<String>,
    #[serde(rename = "Entrypoint", default, deserialize_with = "null_default")]
    pub entrypoint: Vec<String>,
    #[serde(rename = "Cmd", default, deserialize_with = "null_default")]
    pub cmd: Vec<String>,
    #[serde(rename = "WorkingDir", default, deserialize_with = "null_default")]
    pub working_dir: String,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The run configuration of an image config blob (its `config` object).
pub(crate) fn run_config(bytes: &[u8]) -> Result<RunConfig, ImageError> {
    #[derive(Deserialize)]
    struct ImageConfig {
        #[serde(default, deserialize_with = "null_default")]
        config: RunConfig,
    }
    let c: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Manifest(format!("image config: {e}")))?;
    Ok(c.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_picks_the_host_platform() {
        let d = format!("sha256:{}", "b".repeat(64));
        let other = format!("sha256:{}", "c".repeat(64));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"digest": other, "size": 1, "platform": {"os": "linux", "architecture": "s390x"}},
                {"digest": d, "size": 1, "platform": {"os": "linux", "architecture": host_arch()}},
            ]
        });
        match parse(index.to_string().as_bytes()).unwrap() {
            Parsed::Index(got) => assert_eq!(got.as_str(), d),
            Parsed::Image(_) => panic!("an index parsed as an image"),
        }
        let none = serde_json::json!({"mediaType": INDEX_TYPES[1], "manifests": []});
        assert!(matches!(
            parse(none.to_string().as_bytes()),
            Err(ImageError::Platform(_))
        ));
    }

    #[test]
    fn configs_with_nulls_read_as_empty() {
        let c =
            run_config(br#"{"config":{"Env":["A=1"],"Entrypoint":null,"Cmd":["/srv"]}}"#).unwrap();
        assert_eq!(c.env, vec!["A=1"]);
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.cmd, vec!["/srv"]);
        assert_eq!(run_config(b"{}").unwrap(), RunConfig::default());
    }
}
