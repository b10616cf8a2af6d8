//! Code packages of fgs: zips stored content-addressed by sha256 as uploaded, checked in full
//! before they are accepted, and unpacked once into read-only trees that instances mount. This
//! crate owns every rule about what an archive may contain (entry names, file types, symlink
//! targets, file count and unpacked size) and applies them both at upload and again while
//! extracting, never trusting the archive's own headers. It must not know HTTP or SQL: which
//! packages are still referenced is the metadata store's business, asked by whoever collects
//! garbage. In a cluster a [`PackageSource`] (the shared store) gets every upload and gives
//! back, checked against its sha256, what this data dir lacks.
//!
//! All methods block on the file system; async callers run them on the blocking pool.
#![forbid(unsafe_code)]

mod archive;
mod entry;
mod error;
mod extract;
mod merge;
mod walk;

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256, Sha512};

pub use archive::{files_zip, list_entries, read_entry, single_file_zip, EntryInfo};
pub use error::PackageError;

use error::io;

/// Prefix of every temporary name in the store's directories; anything so named after a crash
/// is debris and is swept at [`PackageStore::open`].
const TMP_PREFIX: &str = ".tmp-";

/// What an archive may hold. The defaults are FunctionGraph's (SPEC.md 6); tests lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The zip as uploaded.
    pub max_zip_bytes: u64,
    /// All unpacked files and symlink targets together.
    pub max_unpacked_bytes: u64,
    /// Entries of every kind (files, directories, symlinks).
    pub max_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        use fgs_core::limits::{UNPACKED_FILES_MAX, UNPACKED_MAX, ZIP_CODE_MAX};
        Limits {
            max_zip_bytes: ZIP_CODE_MAX as u64,
            max_unpacked_bytes: UNPACKED_MAX,
            max_files: UNPACKED_FILES_MAX as u64,
        }
    }
}

/// A package as stored: the values a function's `CodeInfo` records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPackage {
    /// Hex sha256 of the zip: its name in the store.
    pub sha256: String,
    /// Hex sha512 of the zip: FunctionGraph's `digest`.
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
struct Dirs {
    packages: PathBuf,
    unpacked: PathBuf,
    limits: Limits,
    /// Free bytes an upload must leave on the data dir's file system.
    min_free: u64,
}

/// The default of `--min-free-disk`: room for the unpacked tree of the upload just accepted
/// (up to 250 MB) and for the database to go on growing.
pub const MIN_FREE_DISK: u64 = 256 * 1024 * 1024;

/// The package store under a data directory. Cheap to clone.
///
/// One process owns a data directory: [`PackageStore::open`] deletes temporary files that
/// another live process could still be writing.
#[derive(Debug, Clone)]
pub struct PackageStore {
    dirs: Arc<Dirs>,
    /// Where packages live besides this data dir (the cluster's store), if anywhere.
    source: Option<Arc<dyn PackageSource>>,
}

/// A copy of every package that all nodes of a cluster share: [`PackageStore::put`] hands it
/// each new package before answering, and [`PackageStore::read`] asks it for one this data dir
/// lacks. Both calls block (the store calls them from blocking threads).
pub trait PackageSource: Send + Sync + std::fmt::Debug {
    /// Keeps `bytes` as package `sha256`; storing the same package twice is a no-op.
    fn publish(&self, sha256: &str, bytes: &[u8]) -> Result<(), String>;
    /// The bytes of package `sha256`, `None` if the cluster does not have it.
    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String>;
}

impl PackageStore {
    /// Opens the store in `data_dir` with FunctionGraph's limits.
    pub fn open(data_dir: &Path) -> Result<PackageStore, PackageError> {
        PackageStore::with_limits(data_dir, Limits::default())
    }

    /// Opens the store in `data_dir`, creating its directories, and sweeps the temporary files
    /// and trees a crash left behind.
    pub fn with_limits(data_dir: &Path, limits: Limits) -> Result<PackageStore, PackageError> {
        let dirs = Dirs {
            packages: data_dir.join("packages"),
            unpacked: data_dir.join("unpacked"),
            limits,
            min_free: MIN_FREE_DISK,
        };
        for dir in [&dirs.packages, &dirs.unpacked] {
            fs::create_dir_all(dir).map_err(io("creating directory", dir))?;
            sweep(dir)?;
        }
        Ok(PackageStore {
            dirs: Arc::new(dirs),
            source: None,
        })
    }

    pub fn limits(&self) -> Limits {
        self.dirs.limits
    }

    /// The same store, refusing uploads that would leave less than `bytes` free on the data
    /// dir's file system (0 turns the check off).
    /// The store with a cluster-wide copy of packages behind this data dir.
    pub fn with_source(mut self, source: Arc<dyn PackageSource>) -> PackageStore {
        self.source = Some(source);
        self
    }

    pub fn with_min_free_disk(self, bytes: u64) -> PackageStore {
        let mut dirs = (*self.dirs).clone();
        dirs.min_free = bytes;
        PackageStore {
            dirs: Arc::new(dirs),
            source: self.source,
        }
    }

    /// Refuses to store `size` more bytes when the file system would be left with less than
    /// the margin: a full disk corrupts nothing (writes are atomic) but fails every later
    /// upload, unpack and database write, so the upload that would fill it is the one refused,
    /// with an error that says why (docs/security.md).
    pub fn check_space(&self, size: u64) -> Result<(), PackageError> {
        if self.dirs.min_free == 0 {
            return Ok(());
        }
        let dir = &self.dirs.packages;
        let st = nix::sys::statvfs::statvfs(dir.as_path())
            .map_err(|e| io("checking free space of", dir)(e.into()))?;
        // The field types are u32 on some 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
        let needed = size.saturating_add(self.dirs.min_free);
        if free < needed {
            return Err(PackageError::NoSpace {
                path: dir.clone(),
                free,
                needed,
            });
        }
        Ok(())
    }

    /// Checks an archive against every rule and limit, decompressing it fully, without writing
    /// anything, and returns the bytes it unpacks to. [`put`](Self::put) does this first.
    pub fn validate(&self, zip_bytes: &[u8]) -> Result<u64, PackageError> {
        let limits = &self.dirs.limits;
        if zip_bytes.len() as u64 > limits.max_zip_bytes {
            return Err(PackageError::ZipTooLarge {
                size: zip_bytes.len() as u64,
                limit: limits.max_zip_bytes,
            });
        }
        walk::walk(zip_bytes, limits, &mut walk::Validate)
    }

    /// Validates and stores a zip under its sha256. Storing the same bytes again is a no-op;
    /// a refused or failed upload leaves nothing behind.
    pub fn put(&self, zip_bytes: &[u8]) -> Result<StoredPackage, PackageError> {
        let unpacked = self.validate(zip_bytes)?;
        // The zip, and the tree it is unpacked into at its first use (issue 17: a package that
        // fits as a zip but not unpacked fails here, before anything is written).
        self.check_space((zip_bytes.len() as u64).saturating_add(unpacked))?;
        let sha256 = hex::encode(Sha256::digest(zip_bytes));
        let digest = hex::encode(Sha512::digest(zip_bytes));
        let path = self.zip_path(&sha256);
        // Content-addressed: a file under this name was renamed into place whole, so it holds
        // these very bytes.
        if !path.try_exists().map_err(io("inspecting", &path))? {
            write_atomically(&self.dirs.packages, &path, zip_bytes)?;
            tracing::debug!(sha256 = %sha256, size = zip_bytes.len(), "stored code package");
        }
        // Before the record naming it is written: another node may run it at once.
        if let Some(source) = &self.source {
            source
                .publish(&sha256, zip_bytes)
                .map_err(|reason| PackageError::Remote {
                    sha256: sha256.clone(),
                    reason,
                })?;
        }
        Ok(StoredPackage {
            sha256,
            digest,
            size: zip_bytes.len() as u64,
        })
    }

    /// The stored zip, as uploaded.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>, PackageError> {
        check_id(sha256)?;
        let path = self.zip_path(sha256);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => self.fetch(sha256),
            Err(e) => Err(io("reading package", &path)(e)),
        }
    }

    /// A package this data dir lacks, from the cluster: checked against its id, then cached
    /// here like an upload.
    fn fetch(&self, sha256: &str) -> Result<Vec<u8>, PackageError> {
        let not_found = || PackageError::NotFound {
            sha256: sha256.to_owned(),
        };
        let Some(source) = &self.source else {
            return Err(not_found());
        };
        let remote = |reason: String| PackageError::Remote {
            sha256: sha256.to_owned(),
            reason,
        };
        let bytes = source
            .fetch(sha256)
            .map_err(remote)?
            .ok_or_else(not_found)?;
        let got = hex::encode(Sha256::digest(&bytes));
        if got != sha256 {
            return Err(remote(format!("the bytes received have sha256 {got}")));
        }
        let path = self.zip_path(sha256);
        write_atomically(&self.dirs.packages, &path, &bytes)?;
        tracing::info!(
            sha256,
            size = bytes.len(),
            "fetched code package from the cluster"
        );
        Ok(bytes)
    }

    /// The read-only tree of the package, extracted on first use. Safe to call concurrently for
    /// the same package: each caller extracts into its own temporary directory, the first rename
    /// wins, and the others discard their work and return the winner's tree.
    pub fn unpack(&self, sha256: &str) -> Result<PathBuf, PackageError> {
        check_id(sha256)?;
        let dest = self.dirs.unpacked.join(sha256);
        if is_dir(&dest)? {
            return Ok(dest);
        }
        let zip = self.read(sha256)?;
        // The disk may have filled since the upload was checked.
        self.check_space(walk::declared_size(&zip)?)?;
        let tmp = self.dirs.unpacked.join(tmp_name());
        fs::create_dir(&tmp).map_err(io("creating directory", &tmp))?;
        let extracted = walk::walk(&zip, &self.dirs.limits, &mut extract::Extractor::new(&tmp))
            .and_then(|_| extract::seal(&tmp));
        if let Err(e) = extracted {
            discard(&tmp);
            return Err(e);
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => {
                extract::sync_dir(&self.dirs.unpacked)?;
                tracing::debug!(sha256, "unpacked code package");
                Ok(dest)
            }
            // Another caller's tree got there first (the rename fails on a non-empty target).
            Err(_) if is_dir(&dest)? => {
                discard(&tmp);
                Ok(dest)
            }
            Err(e) => {
                discard(&tmp);
                Err(io("renaming unpacked tree to", &dest)(e))
            }
        }
    }

    /// Deletes the package's zip and unpacked tree; absent parts are fine. The caller makes sure
    /// no function refers to the package any more.
    pub fn remove(&self, sha256: &str) -> Result<(), PackageError> {
        check_id(sha256)?;
        self.remove_tree(sha256)?;
        // The tree goes before the zip: a zip without a tree is re-extracted when needed.
        let zip = self.zip_path(sha256);
        match fs::remove_file(&zip) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io("removing package", &zip)(e)),
            _ => Ok(()),
        }
    }

    /// Removes every package zip and unpacked tree whose id `used` lacks, and every merged tree
    /// that is not the merge of one of `dependency_lists`. Only for when nothing can be reading
    /// them: an instance's code is its package's unpacked tree. Names the store did not make
    /// are left alone.
    pub fn collect_garbage(
        &self,
        used: &HashSet<String>,
        dependency_lists: &[Vec<String>],
    ) -> Result<Collected, PackageError> {
        let merged = dependency_lists
            .iter()
            .map(|l| merge::merged_name(l))
            .collect::<Result<HashSet<_>, _>>()?;
        let mut collected = Collected::default();
        for name in names(&self.dirs.packages)? {
            let Some(sha) = name.strip_suffix(".zip") else {
                continue;
            };
            if check_id(sha).is_ok() && !used.contains(sha) {
                let zip = self.dirs.packages.join(&name);
                fs::remove_file(&zip).map_err(io("removing package", &zip))?;
                collected.packages += 1;
            }
        }
        for name in names(&self.dirs.unpacked)? {
            let unused = if name.starts_with("merged-") {
                !merged.contains(&name)
            } else {
                check_id(&name).is_ok() && !used.contains(&name)
            };
            if unused && self.remove_tree(&name)? {
                collected.trees += 1;
            }
        }
        Ok(collected)
    }

    /// Deletes the tree `unpacked/<name>`, if there is one (whether there was is returned).
    /// It is renamed away first, so that a crash half-way through the deletion leaves temporary
    /// debris for the sweep, never a partial tree under a name `unpack` trusts as whole.
    fn remove_tree(&self, name: &str) -> Result<bool, PackageError> {
        let tree = self.dirs.unpacked.join(name);
        let doomed = self.dirs.unpacked.join(tmp_name());
        match fs::rename(&tree, &doomed) {
            Ok(()) => extract::remove_tree(&doomed).map(|()| true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("moving aside unpacked tree", &tree)(e)),
        }
    }

    fn zip_path(&self, sha256: &str) -> PathBuf {
        self.dirs.packages.join(format!("{sha256}.zip"))
    }
}

/// What [`PackageStore::collect_garbage`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Package zips.
    pub packages: usize,
    /// Unpacked and merged trees.
    pub trees: usize,
}

/// The entry names of `dir`, as text (a name that is not UTF-8 is none the store made).
fn names(dir: &Path) -> Result<Vec<String>, PackageError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("listing directory", dir))? {
        let entry = entry.map_err(io("listing directory", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

/// Package ids become file names, so only the exact shape of a sha256 is let through.
pub(crate) fn check_id(sha256: &str) -> Result<(), PackageError> {
    let hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if sha256.len() == 64 && sha256.as_bytes().iter().all(hex) {
        Ok(())
    } else {
        Err(PackageError::InvalidId {
            sha256: sha256.chars().take(80).collect(),
        })
    }
}

pub(crate) fn tmp_name() -> String {
    format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// Whether `path` is a directory, not following a symlink there.
pub(crate) fn is_dir(path: &Path) -> Result<bool, PackageError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("inspecting", path)(e)),
    }
}

/// Best-effort removal of a temporary tree on an error path; the original error is the one worth
/// reporting, and the sweep at the next start gets whatever is left.
pub(crate) fn discard(tmp: &Path) {
    if let Err(e) = extract::remove_tree(tmp) {
        tracing::warn!(error = %e, "could not remove temporary package tree");
    }
}

/// Writes `bytes` to `dest` so that `dest` is either absent or complete, even across a crash or
/// power loss: temporary file, fsync, rename, fsync of the directory.
fn write_atomically(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    let tmp = dir.join(tmp_name());
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io("writing package", &tmp))
        .and_then(|()| fs::rename(&tmp, dest).map_err(io("renaming package to", dest)));
    if let Err(e) = written {
        // Best effort: a leftover temp file is swept at the next start.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    extract::sync_dir(dir)
}

/// Deletes `.tmp-*` files and trees left in `dir` by a crash.
fn sweep(dir: &Path) -> Result<(), PackageError> {
    for entry in fs::read_dir(dir).map_err(io("listing directory", dir))? {
        let entry = entry.map_err(io("listing directory", dir))?;
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let path = entry.path();
            extract::remove_tree(&path)?;
            tracing::warn!(path = %path.display(), "removed temporary package data left by a crash");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testzip;
