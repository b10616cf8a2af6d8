//! Image references (`host[:port]/repo[:tag]`, `...@sha256:HEX`) and content digests.

use std::fmt;

use crate::ImageError;

/// The registry a reference without a host names, as Docker's tools read it.
const DEFAULT_REGISTRY: &str = "docker.io";
/// Where that registry's API is served.
const DEFAULT_REGISTRY_API: &str = "registry-1.docker.io";

/// A `sha256:<64 hex>` content digest: the only algorithm fgs accepts (every registry and
/// image tool writes it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| ImageError::Reference(format!("digest {s:?} is not sha256:<hex>")))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ImageError::Reference(format!(
                "digest {s:?} is not sha256 with 64 lowercase hex digits"
            )));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest::from_hash(&sha2::Sha256::digest(bytes))
    }

    pub(crate) fn from_hash(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The 64 hex digits: a file name in the image store.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (`docker.io` when the reference names none).
    pub registry: String,
    pub repository: String,
    /// `latest` when the reference gives neither a tag nor a digest.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way Docker's tools do: the first component is a registry when it
    /// has a `.` or a `:` or is `localhost`.
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        let bad = |why: &str| ImageError::Reference(format!("image {s:?}: {why}"));
        if s.is_empty() || s.len() > 1024 || s.chars().any(|c| c.is_whitespace()) {
            return Err(bad("empty, too long or with spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), rest.to_string()),
        };
        // A tag is after the last ':' of the path (the registry's port is gone already).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), Some(t.to_string())),
            _ => (path, None),
        };
        let repo_ok = |r: &str| {
            !r.is_empty()
                && r.split('/').all(|c| {
                    !c.is_empty()
                        && c.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                        })
                })
        };
        if !repo_ok(&repository) {
            return Err(bad(
                "the repository must be lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad(
                    "the tag must be up to 128 letters, digits, '.', '_' and '-'",
                ));
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the registry's API is served on.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_API
        } else {
            &self.registry
        }
    }

    /// What a manifest request names: the digest when there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same image pinned to `digest`.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker() {
        let r = Reference::parse("127.0.0.1:5000/fgs/echo:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "fgs/echo");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.manifest_ref(), "v1");
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            (r.api_host(), r.repository.as_str()),
            ("registry-1.docker.io", "library/busybox")
        );
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!((r.tag.clone(), r.manifest_ref()), (None, d));
        let r = Reference::parse("reg.example:443/a/b").unwrap();
        assert_eq!(r.to_string(), "reg.example:443/a/b:latest");
    }

    #[test]
    fn bad_references_are_refused() {
        for s in [
            "",
            "UPPER/case",
            "a b",
            "host:5000/x:bad tag",
            "x@sha256:12",
            "x:",
            "/x",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn digests_are_sha256() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
    }
}
