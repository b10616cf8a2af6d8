//! Zips built in memory for tests, including shapes that honest writers never produce.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub(crate) enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Link(&'a str, &'a str),
}

pub(crate) fn zip_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for entry in entries {
        match entry {
            E::File(name, content, mode) => {
                zip.start_file(*name, opts.unix_permissions(*mode))
                    .expect("start file");
                zip.write_all(content).expect("write file");
            }
            E::Dir(name) => zip.add_directory(*name, opts).expect("add directory"),
            E::Link(name, target) => zip.add_symlink(*name, *target, opts).expect("add symlink"),
        }
    }
    zip.finish().expect("finish zip").into_inner()
}

/// Offsets of the central-directory header of the entry `name`.
fn central_header(zip: &[u8], name: &str) -> usize {
    let sig = [0x50, 0x4b, 0x01, 0x02];
    (0..zip.len().saturating_sub(46))
        .find(|&i| {
            zip[i..i + 4] == sig && {
                let len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
                zip.get(i + 46..i + 46 + len) == Some(name.as_bytes())
            }
        })
        .expect("entry is in the central directory")
}

/// Overwrites the unix mode (file type included) of `name`, which the zip crate's writer
/// masks to permission bits.
pub(crate) fn set_mode(zip: &mut [u8], name: &str, mode: u32) {
    let at = central_header(zip, name);
    zip[at + 5] = 3; // made by: unix
    zip[at + 38..at + 42].copy_from_slice(&(mode << 16).to_le_bytes());
}

/// Makes `name` declare `size` uncompressed bytes, in both its local and central headers: a
/// zip bomb that lies about its size.
pub(crate) fn set_declared_size(zip: &mut [u8], name: &str, size: u32) {
    let at = central_header(zip, name);
    zip[at + 24..at + 28].copy_from_slice(&size.to_le_bytes());
    let local = u32::from_le_bytes(zip[at + 42..at + 46].try_into().expect("4 bytes")) as usize;
    zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
}
