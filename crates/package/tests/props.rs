//! Property tests of the zip checks and the unpacker (docs/security.md), standing in for
//! fuzzing on the stable toolchain: random bytes, mutated archives and archives of random
//! entry names, modes and link targets never panic, and whatever is accepted unpacks to a tree
//! that stays inside its directory. Failing cases are kept in `proptest-regressions/`.

use std::io::{Cursor, Write};
use std::path::{Component, Path, PathBuf};

use fgs_package::{Limits, PackageStore};
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

/// `cases` per property, or `PROPTEST_CASES` for a longer run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        ..ProptestConfig::default()
    }
}

const LIMITS: Limits = Limits {
    max_zip_bytes: 64 * 1024,
    max_unpacked_bytes: 16 * 1024,
    max_files: 16,
};

#[derive(Debug, Clone)]
enum Entry {
    File(String, Vec<u8>, u32),
    Dir(String),
    Link(String, String),
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-z]{1,4}",
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("".to_owned()),
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just("a\0".to_owned()),
        ],
        1..4,
    )
    .prop_map(|p| p.join("/"))
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (
            name(),
            prop::collection::vec(any::<u8>(), 0..64),
            any::<u32>()
        )
            .prop_map(|(n, c, m)| Entry::File(n, c, m)),
        name().prop_map(Entry::Dir),
        (name(), name()).prop_map(|(n, t)| Entry::Link(n, t)),
        (name(), "/[a-z/.]{0,12}").prop_map(|(n, t)| Entry::Link(n, t)),
    ]
}

fn build(entries: &[Entry]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    for e in entries {
        // The writer itself refuses some names; those entries are simply left out.
        let _ = match e {
            Entry::File(n, c, m) => w
                .start_file(n.as_str(), opts.unix_permissions(*m))
                .and_then(|()| w.write_all(c).map_err(Into::into)),
            Entry::Dir(n) => w.add_directory(n.as_str(), opts),
            Entry::Link(n, t) => w.add_symlink(n.as_str(), t.as_str(), opts),
        };
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Every path under `root`, not following symlinks.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry"))
        {
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// A symlink's target, resolved lexically from its directory, stays under `root`.
fn link_inside(root: &Path, link: &Path) -> bool {
    let target = std::fs::read_link(link).expect("read link");
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = link
        .parent()
        .expect("a parent")
        .strip_prefix(root)
        .expect("under root")
        .components()
        .count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Stores and unpacks `zip` in a fresh data dir inside a fresh root, then checks that nothing
/// appeared outside the data dir and that an unpacked tree holds only files, directories and
/// links that stay inside it.
fn check(zip: &[u8]) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().expect("temp dir");
    let data = root.path().join("data");
    let store = PackageStore::with_limits(&data, LIMITS).expect("open store");
    let _ = store.validate(zip);
    if let Ok(stored) = store.put(zip) {
        if let Ok(tree) = store.unpack(&stored.sha256) {
            for p in walk(&tree) {
                let meta = std::fs::symlink_metadata(&p).expect("stat");
                let ft = meta.file_type();
                prop_assert!(ft.is_file() || ft.is_dir() || ft.is_symlink(), "{p:?}");
                if ft.is_symlink() {
                    prop_assert!(link_inside(&tree, &p), "{p:?} points outside");
                }
            }
            store.remove(&stored.sha256).expect("remove");
        }
    }
    let top: Vec<_> = std::fs::read_dir(root.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    prop_assert_eq!(top, vec![std::ffi::OsString::from("data")]);
    let mut inside: Vec<_> = std::fs::read_dir(&data)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort();
    prop_assert_eq!(inside, vec!["packages".to_owned(), "unpacked".to_owned()]);
    Ok(())
}

fn valid_zip() -> Vec<u8> {
    build(&[
        Entry::File("bootstrap".into(), b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
        Entry::Dir("lib/".into()),
        Entry::File("lib/a.py".into(), b"A = 1\n".repeat(20), 0o644),
        Entry::Link("lib/b.py".into(), "a.py".into()),
    ])
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
        let mut with_magic = b"PK\x03\x04".to_vec();
        with_magic.extend_from_slice(&bytes);
        check(&with_magic)?;
    }

    /// A valid archive with bytes flipped, cut or overwritten anywhere: headers, sizes, names,
    /// modes and compressed data all get hit.
    #[test]
    fn mutated_archives_stay_inside(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut zip = valid_zip();
        for (at, b) in flips {
            let i = at.index(zip.len());
            zip[i] = b;
        }
        if let Some(c) = cut {
            zip.truncate(c.index(zip.len()));
        }
        check(&zip)?;
    }

    #[test]
    fn random_archives_stay_inside(entries in prop::collection::vec(entry(), 0..10)) {
        check(&build(&entries))?;
    }
}

#[test]
fn the_valid_archive_is_accepted() {
    let root = tempfile::tempdir().expect("temp dir");
    let store = PackageStore::with_limits(root.path(), LIMITS).expect("open store");
    let stored = store.put(&valid_zip()).expect("accepted");
    let tree = store.unpack(&stored.sha256).expect("unpacked");
    assert!(tree.join("lib/b.py").is_file());
}
