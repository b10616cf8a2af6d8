//! Applying one layer (a tar stream, gzip-compressed or not) onto a root being built, as the
//! OCI image spec says: `.wh.NAME` deletes NAME of the layers below, `.wh..wh..opq` empties its
//! directory of what the layers below put there. Nothing is ever written through a link: a path
//! whose parent is a symlink is refused, so a layer cannot write outside the root. Hard links
//! must point inside the root. Device nodes and fifos are skipped (an instance gets its own
//! `/dev`). The bytes written count against a limit.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::ImageError;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Applies the layer read from `reader` onto `root`. `budget` is what may still be written;
/// it shrinks by every file's size.
pub fn apply_layer(root: &Path, reader: impl Read, budget: &mut u64) -> Result<(), ImageError> {
    let mut buf = BufReader::new(reader);
    let gzip = buf.fill_buf().map_err(layer_io)?.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(buf))
    } else {
        Box::new(buf)
    };
    let mut archive = tar::Archive::new(stream);
    let as_root = is_root();
    // What this layer itself wrote: an opaque marker hides only the layers below.
    let mut ours: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries().map_err(layer_io)? {
        let mut entry = entry.map_err(layer_io)?;
        let raw = entry.path().map_err(layer_io)?.into_owned();
        let Some(rel) = clean(&raw)? else { continue };
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == OPAQUE {
            let dir = inside(root, &parent)?;
            if dir.is_dir() {
                empty_below(root, &parent, &ours)?;
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            let target = parent.join(hidden);
            let path = inside(root, &target)?;
            remove_any(&path)?;
            continue;
        }
        let dst = inside(root, &rel)?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o1777;
        let owner = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        let existing = fs::symlink_metadata(&dst).ok();
        if let Some(m) = &existing {
            if !(m.is_dir() && kind.is_dir()) {
                remove_any(&dst)?;
            }
        }
        match kind {
            tar::EntryType::Directory => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(&dst).map_err(|e| write_err(&rel, e))?;
                }
                // Without root, fgs must still be able to write the layers above into it.
                let mode = if as_root { mode } else { mode | 0o700 };
                set_mode(&dst, mode, &rel)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = header.size().unwrap_or(0);
                if size > *budget {
                    return Err(ImageError::TooLarge);
                }
                *budget -= size;
                let mut f = fs::File::create(&dst).map_err(|e| write_err(&rel, e))?;
                io::copy(&mut (&mut entry).take(size), &mut f).map_err(layer_io)?;
                set_mode(&dst, mode, &rel)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(layer_io)?
                    .ok_or_else(|| ImageError::Layer(format!("{} links nowhere", rel.display())))?;
                // Kept as written: it is resolved inside the instance's root, never here.
                symlink(&target, &dst).map_err(|e| write_err(&rel, e))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(layer_io)?
                    .ok_or_else(|| ImageError::Layer(format!("{} links nowhere", rel.display())))?;
                let Some(target_rel) = clean(&target)? else {
                    return Err(ImageError::Layer(format!(
                        "{} links to the root",
                        rel.display()
                    )));
                };
                let src = inside(root, &target_rel)?;
                fs::hard_link(&src, &dst).map_err(|e| write_err(&rel, e))?;
            }
            // Devices, fifos and what tar extensions fgs does not know: skipped.
            _ => continue,
        }
        if as_root {
            let _ = std::os::unix::fs::lchown(&dst, Some(owner.0 as u32), Some(owner.1 as u32));
        }
        ours.insert(rel);
    }
    Ok(())
}

/// Whether fgs runs as root (and so may keep the layer's owners): `/proc/self` belongs to
/// the effective uid.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A layer path as a relative path without `.` and `..`; `None` for the root itself.
fn clean(raw: &Path) -> Result<Option<PathBuf>, ImageError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ImageError::Layer(format!(
                    "path {} leaves the root",
                    raw.display()
                )))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// `root/rel`, making sure no directory on the way is a link (which could lead out of the
/// root) and creating missing ones.
fn inside(root: &Path, rel: &Path) -> Result<PathBuf, ImageError> {
    let mut p = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        if i + 1 == parts.len() {
            break;
        }
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ImageError::Layer(format!(
                    "{} goes through the link {}",
                    rel.display(),
                    p.strip_prefix(root).unwrap_or(&p).display()
                )))
            }
            Ok(_) => {
                return Err(ImageError::Layer(format!(
                    "{} is under a file",
                    rel.display()
                )))
            }
            Err(_) => fs::create_dir(&p).map_err(|e| write_err(rel, e))?,
        }
    }
    Ok(p)
}

/// Removes what the layers below put in `dir` (relative), keeping what this layer wrote.
fn empty_below(root: &Path, dir: &Path, ours: &HashSet<PathBuf>) -> Result<(), ImageError> {
    let abs = root.join(dir);
    for child in fs::read_dir(&abs).map_err(layer_io)? {
        let child = child.map_err(layer_io)?;
        let rel = dir.join(child.file_name());
        if !ours.contains(&rel) {
            remove_any(&child.path())?;
        } else if child.file_type().map_err(layer_io)?.is_dir() {
            empty_below(root, &rel, ours)?;
        }
    }
    Ok(())
}

fn remove_any(path: &Path) -> Result<(), ImageError> {
    let r = match fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    r.map_err(|e| ImageError::Store(format!("removing {}: {e}", path.display())))
}

fn set_mode(path: &Path, mode: u32, rel: &Path) -> Result<(), ImageError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| write_err(rel, e))
}

fn layer_io(e: io::Error) -> ImageError {
    ImageError::Layer(format!("reading the layer: {e}"))
}

fn write_err(rel: &Path, e: io::Error) -> ImageError {
    ImageError::Store(format!("writing {}: {e}", rel.display()))
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
pub(crate) mod tests;
