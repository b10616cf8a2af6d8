//! The errors of the package store. Refusals of an archive (`Bad*`, `*Escape`, `Too*`) are the
//! user's fault and carry the entry they concern; `Io` is the host's.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("zip archive of {size} bytes exceeds {limit} bytes")]
    ZipTooLarge { size: u64, limit: u64 },
    #[error("reading the zip archive")]
    Unreadable {
        #[source]
        source: zip::result::ZipError,
    },
    #[error("reading archive entry {name:?}")]
    EntryUnreadable {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive entry {name:?} has an invalid name: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("archive entry {name:?} is absolute or has a `..` component")]
    PathEscape { name: String },
    #[error("archive entry {name:?} is not a regular file, directory or symlink (mode {mode:o})")]
    SpecialFile { name: String, mode: u32 },
    #[error("archive entry {name:?} clashes with another entry of the same path")]
    PathConflict { name: String },
    #[error("archive symlink {name:?} has an invalid target: {reason}")]
    BadLink { name: String, reason: &'static str },
    #[error("archive symlink {name:?} points outside the package to {target:?}")]
    LinkEscape { name: String, target: String },
    #[error("archive has more than {limit} entries")]
    TooManyFiles { limit: u64 },
    #[error("unpacked size exceeds {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("archive entry {name:?} exceeds {limit} bytes")]
    EntryTooLarge { name: String, limit: u64 },
    #[error("building a zip archive with entry {name:?}")]
    Build {
        name: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("package id {sha256:?} is not 64 lowercase hex digits")]
    InvalidId { sha256: String },
    #[error("package {sha256} not found")]
    NotFound { sha256: String },
    #[error("the file system of {path} has {free} bytes free, under the {needed} bytes this upload needs with the --min-free-disk margin")]
    NoSpace {
        path: PathBuf,
        free: u64,
        needed: u64,
    },
    /// The cluster's copy of a package could not be written or read (its engine is out of
    /// reach), or what it gave back is not the package asked for.
    #[error("the cluster's copy of package {sha256}: {reason}")]
    Remote { sha256: String, reason: String },
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Builds the `Io` variant in a `map_err`.
pub(crate) fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> PackageError {
    let path = path.to_path_buf();
    move |source| PackageError::Io { op, path, source }
}
