//! Small helpers over zip bytes in memory: building the package of inline code, and reading one
//! entry or the listing for a console, without touching the package store.

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::entry;
use crate::PackageError;

/// One entry of an archive as a console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub name: String,
    /// Uncompressed size as the archive declares it.
    pub size: u64,
    pub is_dir: bool,
}

/// A zip holding one file `name` with `content` and unix permissions `mode` (e.g. `0o755` for a
/// Custom runtime's `bootstrap`). Inline code is stored as such a package so that every function
/// has its code in the same form. The entry's timestamp is the zip crate's fixed default, so the
/// same code always gives the same bytes and thus the same package.
pub fn single_file_zip(name: &str, content: &[u8], mode: u32) -> Result<Vec<u8>, PackageError> {
    files_zip(&[(name, content, mode)])
}

/// A zip of several files, each `(name, content, mode)`, in that order, as
/// [`single_file_zip`] writes one (an exported function is such a zip).
pub fn files_zip(files: &[(&str, &[u8], u32)]) -> Result<Vec<u8>, PackageError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let finish = |source| PackageError::Build {
        name: String::new(),
        source,
    };
    for (name, content, mode) in files {
        let parts = entry::components(name)?;
        if parts.is_empty() || name.ends_with('/') {
            return Err(PackageError::BadName {
                name: (*name).to_owned(),
                reason: "it does not name a file",
            });
        }
        let build = |source| PackageError::Build {
            name: (*name).to_owned(),
            source,
        };
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        zip.start_file(parts.join("/"), options).map_err(build)?;
        zip.write_all(content).map_err(|e| build(e.into()))?;
    }
    Ok(zip.finish().map_err(finish)?.into_inner())
}

/// The content of the file entry `name`, or `None` if the archive has no such file. Refuses
/// entries larger than `max_size` (the inline-code limit when showing code), reading at most
/// `max_size + 1` bytes whatever the entry declares.
pub fn read_entry(
    zip_bytes: &[u8],
    name: &str,
    max_size: u64,
) -> Result<Option<Vec<u8>>, PackageError> {
    let mut archive = ZipArchive::new(Cursor::new(zip_bytes))
        .map_err(|source| PackageError::Unreadable { source })?;
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    let entry = archive
        .by_index(index)
        .map_err(|source| PackageError::Unreadable { source })?;
    if entry.is_dir() {
        return Ok(None);
    }
    let too_large = || PackageError::EntryTooLarge {
        name: name.to_owned(),
        limit: max_size,
    };
    if entry.size() > max_size {
        return Err(too_large());
    }
    let mut content = Vec::new();
    entry
        .take(max_size.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|source| PackageError::EntryUnreadable {
            name: name.to_owned(),
            source,
        })?;
    if content.len() as u64 > max_size {
        return Err(too_large());
    }
    Ok(Some(content))
}

/// Every entry of the archive in archive order, from its central directory only (nothing is
/// decompressed). Meant for stored packages, whose entry count [`crate::PackageStore::put`]
/// already bounded.
pub fn list_entries(zip_bytes: &[u8]) -> Result<Vec<EntryInfo>, PackageError> {
    let mut archive = ZipArchive::new(Cursor::new(zip_bytes))
        .map_err(|source| PackageError::Unreadable { source })?;
    (0..archive.len())
        .map(|i| {
            let entry = archive
                .by_index_raw(i)
                .map_err(|source| PackageError::Unreadable { source })?;
            Ok(EntryInfo {
                name: entry.name().to_owned(),
                size: entry.size(),
                is_dir: entry.is_dir(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::{zip_of, E};
    use fgs_core::limits::INLINE_CODE_MAX;

    #[test]
    fn single_file_zip_round_trips_with_its_mode() {
        let zip = single_file_zip("bootstrap", b"#!/bin/sh\necho hi\n", 0o755).expect("build");
        let mut archive = ZipArchive::new(Cursor::new(&zip[..])).expect("readable");
        let entry = archive.by_index(0).expect("one entry");
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(entry);
        assert_eq!(
            read_entry(&zip, "bootstrap", 100).expect("read"),
            Some(b"#!/bin/sh\necho hi\n".to_vec())
        );
        // Deterministic: the same inline code is the same package.
        assert_eq!(
            zip,
            single_file_zip("bootstrap", b"#!/bin/sh\necho hi\n", 0o755).expect("again")
        );
    }

    #[test]
    fn files_zip_keeps_each_file_in_order() {
        let zip =
            files_zip(&[("a.json", b"{}", 0o644), ("dir/b.zip", b"PK", 0o600)]).expect("build");
        let names: Vec<String> = list_entries(&zip)
            .expect("list")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a.json", "dir/b.zip"]);
        assert_eq!(
            read_entry(&zip, "dir/b.zip", 10).expect("read"),
            Some(b"PK".to_vec())
        );
        assert!(files_zip(&[("ok", b"", 0o644), ("../x", b"", 0o644)]).is_err());
    }

    #[test]
    fn single_file_zip_refuses_bad_names() {
        for name in ["../x", "/abs", "", "dir/", "."] {
            assert!(single_file_zip(name, b"x", 0o644).is_err(), "{name:?}");
        }
    }

    #[test]
    fn read_entry_is_bounded() {
        let big = vec![b'x'; INLINE_CODE_MAX + 1];
        let zip = zip_of(&[E::File("index.py", &big, 0o644), E::Dir("d/")]);
        let err = read_entry(&zip, "index.py", INLINE_CODE_MAX as u64).expect_err("too big");
        assert!(matches!(err, PackageError::EntryTooLarge { .. }), "{err:?}");
        assert_eq!(
            read_entry(&zip, "index.py", big.len() as u64)
                .expect("fits")
                .map(|c| c.len()),
            Some(big.len())
        );
        assert_eq!(read_entry(&zip, "missing.py", 10).expect("missing"), None);
        assert_eq!(read_entry(&zip, "d/", 10).expect("directory"), None);
    }

    #[test]
    fn list_entries_shows_files_and_dirs() {
        let zip = zip_of(&[E::Dir("lib/"), E::File("lib/a.py", b"abc", 0o644)]);
        assert_eq!(
            list_entries(&zip).expect("list"),
            [
                EntryInfo {
                    name: "lib/".to_owned(),
                    size: 0,
                    is_dir: true
                },
                EntryInfo {
                    name: "lib/a.py".to_owned(),
                    size: 3,
                    is_dir: false
                },
            ]
        );
        assert!(list_entries(b"nope").is_err());
    }
}
