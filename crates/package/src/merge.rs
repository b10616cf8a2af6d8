//! Merged dependency trees: the unpacked trees of several packages overlaid in list order into
//! one read-only tree, so that an instance sees them all under one `/opt/function/dependency`
//! (SPEC.md 4: merged in list order; a later package's file of the same path wins).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::io;
use crate::{check_id, discard, extract, is_dir, tmp_name, PackageError, PackageStore};

/// Copies `src` into `dst`, replacing what is there; files are hard-linked (the trees are
/// read-only and share one file system), with a copy as the fallback.
fn overlay(src: &Path, dst: &Path) -> Result<(), PackageError> {
    for entry in fs::read_dir(src).map_err(io("listing directory", src))? {
        let entry = entry.map_err(io("listing directory", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let ty = entry.file_type().map_err(io("inspecting", &from))?;
        if ty.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    fs::remove_file(&to).map_err(io("replacing", &to))?;
                    fs::create_dir(&to).map_err(io("creating directory", &to))?;
                }
                Err(_) => fs::create_dir(&to).map_err(io("creating directory", &to))?,
            }
            overlay(&from, &to)?;
            continue;
        }
        if let Ok(m) = fs::symlink_metadata(&to) {
            if m.is_dir() {
                extract::remove_tree(&to)?;
            } else {
                fs::remove_file(&to).map_err(io("replacing", &to))?;
            }
        }
        if ty.is_symlink() {
            let target = fs::read_link(&from).map_err(io("reading link", &from))?;
            symlink(&target, &to).map_err(io("creating link", &to))?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(io("copying", &from))?;
        }
    }
    Ok(())
}

/// The name of the merged tree of these packages, in this order, under `unpacked/`.
pub(crate) fn merged_name(sha256s: &[String]) -> Result<String, PackageError> {
    let mut h = Sha256::new();
    for s in sha256s {
        check_id(s)?;
        h.update(s.as_bytes());
        h.update(b"\n");
    }
    Ok(format!("merged-{}", hex::encode(h.finalize())))
}

impl PackageStore {
    /// The merged tree of these packages, in this order, built once and kept under
    /// `unpacked/merged-<hash of the list>`.
    pub fn merged(&self, sha256s: &[String]) -> Result<PathBuf, PackageError> {
        let dest = self.dirs.unpacked.join(merged_name(sha256s)?);
        if is_dir(&dest)? {
            return Ok(dest);
        }
        let tmp = self.dirs.unpacked.join(tmp_name());
        fs::create_dir(&tmp).map_err(io("creating directory", &tmp))?;
        let built = sha256s
            .iter()
            .try_for_each(|s| overlay(&self.unpack(s)?, &tmp))
            .and_then(|()| extract::seal(&tmp));
        if let Err(e) = built {
            discard(&tmp);
            return Err(e);
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if is_dir(&dest)? => {
                discard(&tmp);
                Ok(dest)
            }
            Err(e) => {
                discard(&tmp);
                Err(io("renaming merged tree to", &dest)(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{single_file_zip, PackageStore};

    #[test]
    fn later_packages_win_and_the_tree_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = PackageStore::open(dir.path()).unwrap();
        let a = store
            .put(&single_file_zip("python/lib.py", b"A", 0o644).unwrap())
            .unwrap();
        let b = store
            .put(&single_file_zip("python/lib.py", b"B", 0o644).unwrap())
            .unwrap();
        let c = store
            .put(&single_file_zip("extension/extensionC.sh", b"#!/bin/bash", 0o755).unwrap())
            .unwrap();
        let ab = store
            .merged(&[a.sha256.clone(), b.sha256.clone(), c.sha256.clone()])
            .unwrap();
        assert_eq!(std::fs::read(ab.join("python/lib.py")).unwrap(), b"B");
        assert!(ab.join("extension/extensionC.sh").is_file());
        let ba = store.merged(&[b.sha256.clone(), a.sha256.clone()]).unwrap();
        assert_eq!(std::fs::read(ba.join("python/lib.py")).unwrap(), b"A");
        assert_ne!(ab, ba);
        // Built once.
        assert_eq!(store.merged(&[b.sha256, a.sha256]).unwrap(), ba);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ab.join("python"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o555);
    }
}
