//! Container images for image functions (FunctionGraph's `Custom Image` runtime): references
//! and digests, a client of the OCI distribution protocol ([`RegistryConfig`]: HTTPS, or plain
//! HTTP for registries named insecure; anonymous, basic and bearer auth), OCI and Docker v2
//! manifests and multi-platform indexes (the host's platform is picked), blobs verified by
//! sha256 while they stream, and the store ([`Images`]) that unpacks each image once per
//! digest, applying whiteouts and opaque directories, into a root file system an instance runs
//! on. `fgs image import` loads an OCI layout or `docker save` tar into the same store.

mod import;
mod manifest;
mod reference;
mod registry;
mod store;
mod unpack;

pub use manifest::RunConfig;
pub use reference::{Digest, Reference};
pub use registry::RegistryConfig;
pub use store::{Images, Unpacked, IMAGE_MAX_BYTES};

/// What can go wrong with an image. The registry's own answer is kept word for word.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Reference(String),
    #[error("image {image} was not found: the registry answered {answer}")]
    NotFound { image: String, answer: String },
    #[error("registry {registry} answered {answer}")]
    Registry { registry: String, answer: String },
    #[error("registry {registry} cannot be reached: {why}")]
    Unreachable { registry: String, why: String },
    #[error("{what} does not match its digest (its content is {got}); nothing was kept")]
    DigestMismatch { what: String, got: String },
    #[error("the image's manifest is invalid: {0}")]
    Manifest(String),
    #[error("{0}")]
    Platform(String),
    #[error("a layer is invalid: {0}")]
    Layer(String),
    #[error("the image is larger than 10 GB unpacked")]
    TooLarge,
    #[error("the image store: {0}")]
    Store(String),
    #[error("importing the image: {0}")]
    Import(String),
    #[error("registry configuration: {0}")]
    Config(String),
}
