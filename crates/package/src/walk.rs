//! One pass over an archive that applies every rule and hands each accepted entry to a [`Sink`]:
//! a sink that keeps nothing validates an upload, a sink that writes files extracts it. Limits
//! are checked first on the sizes the archive declares (cheap, before any decompression), then on
//! the bytes actually decompressed, which a crafted archive can make far larger than declared.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::entry::{self, Kind, Tree, LINK_TARGET_MAX};
use crate::{Limits, PackageError};

/// Where accepted entries go. Entries arrive in archive order, each already checked.
pub(crate) trait Sink {
    type File;
    fn dir(&mut self, rel: &Path) -> Result<(), PackageError>;
    fn create_file(&mut self, rel: &Path, executable: bool) -> Result<Self::File, PackageError>;
    fn write(&mut self, file: &mut Self::File, buf: &[u8]) -> Result<(), PackageError>;
    fn finish_file(&mut self, file: Self::File) -> Result<(), PackageError>;
    fn symlink(&mut self, rel: &Path, target: &str) -> Result<(), PackageError>;
}

/// A sink that keeps nothing: walking into it decompresses and checks everything.
pub(crate) struct Validate;

impl Sink for Validate {
    type File = ();
    fn dir(&mut self, _: &Path) -> Result<(), PackageError> {
        Ok(())
    }
    fn create_file(&mut self, _: &Path, _: bool) -> Result<(), PackageError> {
        Ok(())
    }
    fn write(&mut self, _: &mut (), _: &[u8]) -> Result<(), PackageError> {
        Ok(())
    }
    fn finish_file(&mut self, _: ()) -> Result<(), PackageError> {
        Ok(())
    }
    fn symlink(&mut self, _: &Path, _: &str) -> Result<(), PackageError> {
        Ok(())
    }
}

/// Walks `zip` into `sink` and returns the bytes it unpacks to (file contents and link targets).
pub(crate) fn walk<S: Sink>(
    zip: &[u8],
    limits: &Limits,
    sink: &mut S,
) -> Result<u64, PackageError> {
    let too_many = || PackageError::TooManyFiles {
        limit: limits.max_files,
    };
    let too_large = || PackageError::TooLarge {
        limit: limits.max_unpacked_bytes,
    };
    // The zip crate builds an in-memory record per central-directory entry, so a 50 MB upload of
    // empty entries would cost hundreds of MB before `len()` could be checked.
    if declared_entry_count(zip).is_some_and(|n| n > limits.max_files) {
        return Err(too_many());
    }
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|source| PackageError::Unreadable { source })?;
    if archive.len() as u64 > limits.max_files {
        return Err(too_many());
    }
    let declared = declared_bytes(&mut archive)?;
    if declared > limits.max_unpacked_bytes {
        return Err(too_large());
    }

    let mut tree = Tree::default();
    let mut written: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|source| PackageError::Unreadable { source })?;
        let name = entry.name().to_owned();
        let parts = entry::components(&name)?;
        let kind = entry::kind(&name, entry.unix_mode())?;
        tree.add(&name, &parts, kind)?;
        let rel: PathBuf = parts.iter().collect();
        let unreadable = |source| PackageError::EntryUnreadable {
            name: name.clone(),
            source,
        };
        match kind {
            // A directory's data, if a writer put any there, means nothing and is not read.
            Kind::Dir if parts.is_empty() => {}
            Kind::Dir => sink.dir(&rel)?,
            Kind::File { executable } => {
                let mut file = sink.create_file(&rel, executable)?;
                loop {
                    let n = entry.read(&mut buf).map_err(unreadable)?;
                    if n == 0 {
                        break;
                    }
                    written = written.saturating_add(n as u64);
                    if written > limits.max_unpacked_bytes {
                        return Err(too_large());
                    }
                    sink.write(&mut file, &buf[..n])?;
                }
                sink.finish_file(file)?;
            }
            Kind::Symlink => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(LINK_TARGET_MAX + 1)
                    .read_to_end(&mut target)
                    .map_err(unreadable)?;
                if target.len() as u64 > LINK_TARGET_MAX {
                    return Err(PackageError::BadLink {
                        name,
                        reason: "it is longer than 4096 bytes",
                    });
                }
                let target = entry::link_target(&name, &parts, &target)?;
                written = written.saturating_add(target.len() as u64);
                if written > limits.max_unpacked_bytes {
                    return Err(too_large());
                }
                sink.symlink(&rel, target)?;
            }
        }
    }
    Ok(written)
}

/// The entry count that the end-of-central-directory record declares (ZIP64's if the classic
/// field is saturated), read without parsing the directory; `None` if it cannot be found, in which
/// case the zip crate's own parse decides.
pub(crate) fn declared_entry_count(zip: &[u8]) -> Option<u64> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const ZIP64_LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const ZIP64_EOCD: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    // The record is 22 bytes plus a comment of at most 65,535 bytes, at the end of the file.
    let last = zip.len().checked_sub(22)?;
    let first = last.saturating_sub(u16::MAX as usize);
    let at = (first..=last)
        .rev()
        .find(|&i| zip.get(i..i + 4) == Some(&EOCD[..]))?;
    let total = u16::from_le_bytes(zip.get(at + 10..at + 12)?.try_into().ok()?);
    if total != u16::MAX {
        return Some(u64::from(total));
    }
    let locator = zip.get(at.checked_sub(20)?..at)?;
    if locator.get(..4)? != ZIP64_LOCATOR {
        return None;
    }
    let offset = usize::try_from(u64::from_le_bytes(locator.get(8..16)?.try_into().ok()?)).ok()?;
    let record = zip.get(offset..offset.checked_add(56)?)?;
    if record.get(..4)? != ZIP64_EOCD {
        return None;
    }
    Some(u64::from_le_bytes(record.get(32..40)?.try_into().ok()?))
}

/// The unpacked size the archive's central directory declares (no decompression).
fn declared_bytes(archive: &mut ZipArchive<Cursor<&[u8]>>) -> Result<u64, PackageError> {
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|source| PackageError::Unreadable { source })?;
        declared = declared.saturating_add(entry.size());
    }
    Ok(declared)
}

/// [`declared_bytes`] of a zip: what unpacking it is about to write, for the free-disk check
/// before a stored (so already validated) package is unpacked.
pub(crate) fn declared_size(zip: &[u8]) -> Result<u64, PackageError> {
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|source| PackageError::Unreadable { source })?;
    declared_bytes(&mut archive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testzip::{zip_of, E};

    #[test]
    fn declared_count_is_read_from_the_end_record() {
        let zip = zip_of(&[
            E::File("a", b"1", 0o644),
            E::Dir("d/"),
            E::File("d/b", b"2", 0o644),
        ]);
        assert_eq!(declared_entry_count(&zip), Some(3));
        assert_eq!(declared_entry_count(b"not a zip"), None);
        assert_eq!(declared_entry_count(b""), None);
    }

    #[test]
    fn validation_walk_counts_real_bytes_against_the_limit() {
        let zip = zip_of(&[
            E::File("a", &[7u8; 1000], 0o644),
            E::File("b", &[7u8; 1000], 0o644),
        ]);
        let limits = |max| Limits {
            max_unpacked_bytes: max,
            ..Limits::default()
        };
        let n = walk(&zip, &limits(2000), &mut Validate).expect("exactly at the limit");
        assert_eq!(n, 2000);
        assert_eq!(declared_size(&zip).unwrap(), 2000);
        let err = walk(&zip, &limits(1999), &mut Validate).expect_err("one byte over");
        assert!(
            matches!(err, PackageError::TooLarge { limit: 1999 }),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_unreadable() {
        let err =
            walk(b"PK\x03\x04 garbage", &Limits::default(), &mut Validate).expect_err("not a zip");
        assert!(matches!(err, PackageError::Unreadable { .. }), "{err:?}");
    }
}
