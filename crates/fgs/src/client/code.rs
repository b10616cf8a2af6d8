//! Turning `--code PATH` into a zip: a directory is zipped with its file modes (a Custom
//! runtime's `bootstrap` must stay executable); a `.zip` is sent as it is.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zip::write::SimpleFileOptions;

pub struct Code {
    pub zip: Vec<u8>,
    /// `code_filename` for the API.
    pub filename: String,
}

pub fn load(path: &Path) -> Result<Code> {
    let meta = std::fs::metadata(path).with_context(|| format!("--code {}", path.display()))?;
    if meta.is_dir() {
        let zip = zip_dir(path)?;
        return Ok(Code {
            zip,
            filename: "code.zip".to_owned(),
        });
    }
    let is_zip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if !is_zip {
        bail!("--code {}: give a directory or a .zip file", path.display());
    }
    let zip = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "code.zip".to_owned());
    Ok(Code { zip, filename })
}

/// Zips the tree under `root` (following symlinks), entries named relative to it and sorted so
/// the same tree always gives the same digest.
pub fn zip_dir(root: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(root, root, &mut files)?;
    files.sort();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for rel in files {
        let full = root.join(&rel);
        let meta =
            std::fs::metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(meta.permissions().mode() & 0o777);
        if meta.is_dir() {
            w.add_directory(format!("{rel}/"), opts)?;
        } else {
            w.start_file(rel.as_str(), opts)?;
            let bytes =
                std::fs::read(&full).with_context(|| format!("reading {}", full.display()))?;
            w.write_all(&bytes)?;
        }
    }
    Ok(w.finish()?.into_inner())
}

/// Relative paths (with `/`) of every file and directory under `dir`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let rel = path
            .strip_prefix(root)
            .expect("read_dir yields children of dir")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        out.push(rel);
        if meta.is_dir() {
            collect(root, &path, out)?;
        }
    }
    Ok(())
}
