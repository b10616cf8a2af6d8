//! Writing an archive's entries under a fresh directory, and the permission handling of the
//! finished, read-only trees.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::io;
use crate::walk::Sink;
use crate::PackageError;

/// Writes entries under `root`, which must be a new, empty directory that nothing else writes to.
///
/// Parents are made with `create_dir_all`, which follows symlinks; that is safe only because
/// [`crate::entry::Tree`] refuses any entry below a symlink, so every parent is a real directory
/// made here. Files and links are made with exclusive creation, so an existing name is never
/// followed or replaced.
pub(crate) struct Extractor {
    root: PathBuf,
}

pub(crate) struct OutFile {
    file: File,
    path: PathBuf,
    executable: bool,
}

impl Extractor {
    pub(crate) fn new(root: &Path) -> Extractor {
        Extractor {
            root: root.to_path_buf(),
        }
    }

    fn parent_of(&self, path: &Path) -> Result<(), PackageError> {
        match path.parent() {
            Some(parent) if parent != self.root => {
                fs::create_dir_all(parent).map_err(io("creating directory", parent))
            }
            _ => Ok(()),
        }
    }
}

impl Sink for Extractor {
    type File = OutFile;

    fn dir(&mut self, rel: &Path) -> Result<(), PackageError> {
        let path = self.root.join(rel);
        fs::create_dir_all(&path).map_err(io("creating directory", &path))
    }

    fn create_file(&mut self, rel: &Path, executable: bool) -> Result<OutFile, PackageError> {
        let path = self.root.join(rel);
        self.parent_of(&path)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("creating file", &path))?;
        Ok(OutFile {
            file,
            path,
            executable,
        })
    }

    fn write(&mut self, out: &mut OutFile, buf: &[u8]) -> Result<(), PackageError> {
        out.file
            .write_all(buf)
            .map_err(io("writing file", &out.path))
    }

    fn finish_file(&mut self, out: OutFile) -> Result<(), PackageError> {
        // Set explicitly, not through `mode()` at creation, which the umask could narrow and
        // leave the file unreadable to the instance's user. The exec bit is kept because a
        // Custom runtime's `bootstrap` must stay runnable.
        let mode = if out.executable { 0o555 } else { 0o444 };
        out.file
            .set_permissions(Permissions::from_mode(mode))
            .map_err(io("setting permissions of", &out.path))?;
        // Synced before the tree is renamed into place: a tree under its final name is taken as
        // complete forever after, so its contents must be on disk before the name is.
        out.file.sync_all().map_err(io("syncing file", &out.path))
    }

    fn symlink(&mut self, rel: &Path, target: &str) -> Result<(), PackageError> {
        let path = self.root.join(rel);
        self.parent_of(&path)?;
        std::os::unix::fs::symlink(target, &path).map_err(io("creating symlink", &path))
    }
}

/// Every directory under `root` (and `root`), without following symlinks. Iterative, since an
/// archive may nest up to 2,048 levels deep.
fn dirs_of(root: &Path) -> Result<Vec<PathBuf>, PackageError> {
    let mut found = vec![root.to_path_buf()];
    let mut next = 0;
    while let Some(dir) = found.get(next).cloned() {
        next += 1;
        for child in fs::read_dir(&dir).map_err(io("listing directory", &dir))? {
            let child = child.map_err(io("listing directory", &dir))?;
            let is_dir = child
                .file_type()
                .map_err(io("inspecting", &child.path()))?
                .is_dir();
            if is_dir {
                found.push(child.path());
            }
        }
    }
    Ok(found)
}

/// Makes every directory of a finished tree read-only and durable.
pub(crate) fn seal(root: &Path) -> Result<(), PackageError> {
    for dir in dirs_of(root)? {
        sync_dir(&dir)?;
        fs::set_permissions(&dir, Permissions::from_mode(0o555))
            .map_err(io("setting permissions of", &dir))?;
    }
    Ok(())
}

/// Deletes a tree made by [`Extractor`] and [`seal`]: its directories get their write bit back
/// first, without which a non-root owner could not unlink their entries. Absent is fine.
pub(crate) fn remove_tree(root: &Path) -> Result<(), PackageError> {
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("inspecting", root)(e)),
        Ok(meta) if !meta.is_dir() => {
            return fs::remove_file(root).map_err(io("removing", root));
        }
        Ok(_) => {}
    }
    // Parents first: listing a directory needs its read and execute bits, which sealed trees
    // have, and unlinking needs the write bit restored here.
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        fs::set_permissions(&dir, Permissions::from_mode(0o755))
            .map_err(io("setting permissions of", &dir))?;
        for child in fs::read_dir(&dir).map_err(io("listing directory", &dir))? {
            let child = child.map_err(io("listing directory", &dir))?;
            if child
                .file_type()
                .map_err(io("inspecting", &child.path()))?
                .is_dir()
            {
                pending.push(child.path());
            }
        }
    }
    fs::remove_dir_all(root).map_err(io("removing directory", root))
}

/// Makes the entries of `dir` (creations, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), PackageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tree_is_read_only_and_removable() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("t");
        fs::create_dir(&root).expect("root");
        let mut ex = Extractor::new(&root);
        let f = ex
            .create_file(Path::new("a/b/run"), true)
            .expect("create nested file");
        ex.finish_file(f).expect("finish");
        ex.symlink(Path::new("a/link"), "b/run").expect("symlink");
        seal(&root).expect("seal");
        for dir in [&root, &root.join("a"), &root.join("a/b")] {
            let mode = fs::metadata(dir).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o555, "{}", dir.display());
        }
        // A file name that exists must never be reused or followed.
        let again = ex.create_file(Path::new("a/b/run"), false);
        assert!(again.is_err());
        remove_tree(&root).expect("remove");
        assert!(!root.exists());
        remove_tree(&root).expect("removing an absent tree is fine");
    }
}
