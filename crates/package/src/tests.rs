//! Behaviour of [`PackageStore`] on a real directory: what it accepts, what it refuses, and that
//! a refusal or a crash leaves nothing behind.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Barrier};

use tempfile::TempDir;

use super::*;
use crate::testzip::{set_declared_size, set_mode, zip_of, E};

fn store() -> (TempDir, PackageStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = PackageStore::open(dir.path()).expect("open store");
    (dir, store)
}

fn small(dir: &Path, limits: Limits) -> PackageStore {
    PackageStore::with_limits(dir, limits).expect("open store")
}

/// Names in a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores `zip` as if an earlier, laxer version had accepted it, bypassing `put`'s checks.
fn plant(dir: &Path, zip: &[u8]) -> String {
    let sha = sha_hex(zip);
    fs::write(dir.join("packages").join(format!("{sha}.zip")), zip).expect("plant zip");
    sha
}

fn assert_refused(store: &PackageStore, dir: &Path, zip: &[u8], what: &str) -> PackageError {
    let err = store.put(zip).expect_err(what);
    assert!(
        listing(&dir.join("packages")).is_empty(),
        "{what}: leftovers after refusal"
    );
    assert!(
        listing(&dir.join("unpacked")).is_empty(),
        "{what}: leftovers after refusal"
    );
    err
}

#[test]
fn put_stores_by_sha256_and_is_idempotent() {
    let (dir, store) = store();
    let zip = zip_of(&[E::File("index.py", b"def handler(e, c): return 1\n", 0o644)]);
    let first = store.put(&zip).expect("put");
    assert_eq!(first.sha256, sha_hex(&zip));
    assert_eq!(first.digest, hex::encode(Sha512::digest(&zip)));
    assert_eq!(first.digest.len(), 128);
    assert_eq!(first.size, zip.len() as u64);
    let second = store.put(&zip).expect("put again");
    assert_eq!(first, second);
    assert_eq!(
        listing(&dir.path().join("packages")),
        [format!("{}.zip", first.sha256)]
    );
    assert_eq!(store.read(&first.sha256).expect("read"), zip);
}

#[test]
fn escaping_names_are_refused_and_leave_nothing() {
    let (dir, store) = store();
    for name in ["../x", "/abs", "a/../../x", "a\\..\\..\\x"] {
        let zip = zip_of(&[
            E::File("ok.txt", b"fine", 0o644),
            E::File(name, b"evil", 0o644),
        ]);
        let err = assert_refused(&store, dir.path(), &zip, name);
        assert!(
            matches!(
                err,
                PackageError::PathEscape { .. } | PackageError::BadName { .. }
            ),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn escaping_symlinks_are_refused() {
    let (dir, store) = store();
    for (link, target) in [
        ("a/l", "../../etc/passwd"),
        ("l", "/etc/passwd"),
        ("a/l", "x/../../.."),
    ] {
        let zip = zip_of(&[E::Dir("a/"), E::Link(link, target)]);
        let err = assert_refused(&store, dir.path(), &zip, target);
        assert!(
            matches!(
                err,
                PackageError::LinkEscape { .. } | PackageError::BadLink { .. }
            ),
            "{target}: {err:?}"
        );
    }
    // Writing through an archive's own symlink is refused even when the link stays inside.
    let zip = zip_of(&[
        E::Dir("sub/"),
        E::Link("d", "sub"),
        E::File("d/x", b"x", 0o644),
    ]);
    let err = assert_refused(&store, dir.path(), &zip, "entry below a symlink");
    assert!(matches!(err, PackageError::PathConflict { .. }), "{err:?}");
}

#[test]
fn special_files_are_refused() {
    let (dir, store) = store();
    for (what, type_bits) in [
        ("fifo", 0o010_000),
        ("char device", 0o020_000),
        ("block device", 0o060_000),
        ("socket", 0o140_000),
    ] {
        let mut zip = zip_of(&[E::File("dev", b"", 0o644)]);
        set_mode(&mut zip, "dev", type_bits | 0o644);
        let err = assert_refused(&store, dir.path(), &zip, what);
        assert!(
            matches!(err, PackageError::SpecialFile { .. }),
            "{what}: {err:?}"
        );
    }
}

#[test]
fn too_many_files_are_refused_at_put_and_at_unpack() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_files: 10,
        ..Limits::default()
    };
    let store = small(tmp.path(), limits);
    let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
    let entries: Vec<E<'_>> = names.iter().map(|n| E::File(n, b"x", 0o644)).collect();
    let zip = zip_of(&entries);
    let err = assert_refused(&store, tmp.path(), &zip, "11 files");
    assert!(
        matches!(err, PackageError::TooManyFiles { limit: 10 }),
        "{err:?}"
    );
    store.put(&zip_of(&entries[..10])).expect("10 files fit");

    let sha = plant(tmp.path(), &zip);
    let err = store
        .unpack(&sha)
        .expect_err("unpack checks the count again");
    assert!(matches!(err, PackageError::TooManyFiles { .. }), "{err:?}");
    assert!(listing(&tmp.path().join("unpacked")).is_empty());
}

#[test]
fn zip_bomb_is_caught_on_real_bytes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_unpacked_bytes: 64 * 1024,
        ..Limits::default()
    };
    let store = small(tmp.path(), limits);
    // 1 MiB of zeros deflates to about 1 KiB; the headers then claim 100 bytes.
    let zeros = vec![0u8; 1024 * 1024];
    let honest = zip_of(&[E::File("bomb", &zeros, 0o644)]);
    assert!(
        honest.len() < 16 * 1024,
        "the bomb is small: {}",
        honest.len()
    );
    let err = assert_refused(&store, tmp.path(), &honest, "declared too large");
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err:?}");

    let mut lying = honest.clone();
    set_declared_size(&mut lying, "bomb", 100);
    let err = assert_refused(&store, tmp.path(), &lying, "lying sizes");
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err:?}");

    let sha = plant(tmp.path(), &lying);
    let err = store.unpack(&sha).expect_err("unpack counts real bytes");
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err:?}");
    assert!(
        listing(&tmp.path().join("unpacked")).is_empty(),
        "temp tree discarded"
    );
}

#[test]
fn upload_larger_than_the_zip_limit_is_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let zip = zip_of(&[E::File("a", &[1u8; 100], 0o644)]);
    let store = small(
        tmp.path(),
        Limits {
            max_zip_bytes: zip.len() as u64 - 1,
            ..Limits::default()
        },
    );
    let err = assert_refused(&store, tmp.path(), &zip, "zip too large");
    assert!(matches!(err, PackageError::ZipTooLarge { .. }), "{err:?}");
}

#[test]
fn unpack_keeps_exec_bit_links_and_makes_the_tree_read_only() {
    let (dir, store) = store();
    let zip = zip_of(&[
        E::File("bootstrap", b"#!/bin/sh\necho hi\n", 0o755),
        E::File("lib/real.txt", b"content", 0o664),
        E::Link("lib/alias", "real.txt"),
        E::Link("bin/tool", "../lib/real.txt"),
        E::Dir("empty/"),
    ]);
    let sha = store.put(&zip).expect("put").sha256;
    let root = store.unpack(&sha).expect("unpack");
    assert_eq!(root, dir.path().join("unpacked").join(&sha));
    assert_eq!(mode(&root.join("bootstrap")), 0o555);
    assert_eq!(mode(&root.join("lib/real.txt")), 0o444);
    for d in ["", "lib", "bin", "empty"] {
        assert_eq!(mode(&root.join(d)), 0o555, "directory {d:?}");
    }
    assert_eq!(
        fs::read_link(root.join("lib/alias")).expect("link"),
        Path::new("real.txt")
    );
    assert_eq!(
        fs::read(root.join("bin/tool")).expect("through the link"),
        b"content"
    );
    assert_eq!(
        fs::read(root.join("bootstrap")).expect("read"),
        b"#!/bin/sh\necho hi\n"
    );
}

#[test]
fn unpack_is_idempotent() {
    let (dir, store) = store();
    let sha = store
        .put(&single_file_zip("index.js", b"exports.handler = 1", 0o644).expect("zip"))
        .expect("put")
        .sha256;
    let first = store.unpack(&sha).expect("unpack");
    let inode = fs::metadata(&first).expect("stat").ino();
    let second = store.unpack(&sha).expect("unpack again");
    assert_eq!(first, second);
    assert_eq!(
        fs::metadata(&second).expect("stat").ino(),
        inode,
        "not extracted twice"
    );
    assert_eq!(listing(&dir.path().join("unpacked")), [sha]);
}

#[test]
fn concurrent_unpacks_of_one_package_agree() {
    let (dir, store) = store();
    let files: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("d{}/f{i}", i % 5), vec![i as u8; 10_000]))
        .collect();
    let entries: Vec<E<'_>> = files.iter().map(|(n, c)| E::File(n, c, 0o644)).collect();
    let sha = store.put(&zip_of(&entries)).expect("put").sha256;
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (store, sha, barrier) = (store.clone(), sha.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                store.unpack(&sha)
            })
        })
        .collect();
    let roots: Vec<PathBuf> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").expect("unpack"))
        .collect();
    assert!(roots.iter().all(|r| *r == roots[0]));
    assert_eq!(
        listing(&dir.path().join("unpacked")),
        [sha],
        "losers removed their temp trees"
    );
    for (name, content) in &files {
        assert_eq!(
            &fs::read(roots[0].join(name)).expect("read"),
            content,
            "{name}"
        );
    }
}

#[test]
fn open_sweeps_temporary_debris() {
    let (dir, store) = store();
    let sha = store
        .put(&zip_of(&[E::File("a", b"a", 0o644)]))
        .expect("put")
        .sha256;
    store.unpack(&sha).expect("unpack");
    let packages = dir.path().join("packages");
    let unpacked = dir.path().join("unpacked");
    fs::write(packages.join(".tmp-half-written"), b"partial").expect("debris file");
    let tree = unpacked.join(".tmp-half-extracted");
    fs::create_dir_all(tree.join("sub")).expect("debris tree");
    fs::write(tree.join("sub/f"), b"x").expect("debris file");
    fs::set_permissions(tree.join("sub"), fs::Permissions::from_mode(0o555)).expect("chmod");
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o555)).expect("chmod");

    let reopened = PackageStore::open(dir.path()).expect("reopen");
    assert_eq!(listing(&packages), [format!("{sha}.zip")]);
    assert_eq!(listing(&unpacked), std::slice::from_ref(&sha));
    assert_eq!(
        fs::read(reopened.unpack(&sha).expect("unpack").join("a")).expect("read"),
        b"a"
    );
}

#[test]
fn remove_deletes_zip_and_read_only_tree() {
    let (dir, store) = store();
    let sha = store
        .put(&zip_of(&[
            E::File("x/y/z", b"z", 0o644),
            E::File("run", b"", 0o755),
        ]))
        .expect("put")
        .sha256;
    store.unpack(&sha).expect("unpack");
    store.remove(&sha).expect("remove");
    assert!(listing(&dir.path().join("packages")).is_empty());
    assert!(listing(&dir.path().join("unpacked")).is_empty());
    assert!(matches!(
        store.read(&sha),
        Err(PackageError::NotFound { .. })
    ));
    assert!(matches!(
        store.unpack(&sha),
        Err(PackageError::NotFound { .. })
    ));
    store
        .remove(&sha)
        .expect("removing an absent package is fine");
}

#[test]
fn package_ids_are_never_paths() {
    let (_dir, store) = store();
    let upper = "A".repeat(64);
    let short = "a".repeat(63);
    for id in ["../../etc", "", upper.as_str(), short.as_str(), "./aaaa"] {
        for result in [
            store.unpack(id).map(drop),
            store.read(id).map(drop),
            store.remove(id),
        ] {
            assert!(
                matches!(result, Err(PackageError::InvalidId { .. })),
                "{id:?}"
            );
        }
    }
}

#[test]
fn upload_that_would_fill_the_disk_is_refused_and_leaves_nothing() {
    let (dir, store) = store();
    let zip = zip_of(&[E::File("bootstrap", b"#!/bin/sh\n", 0o755)]);
    // No file system has u64::MAX bytes free.
    let full = store.clone().with_min_free_disk(u64::MAX);
    let err = full.put(&zip).expect_err("refused");
    assert!(matches!(err, PackageError::NoSpace { .. }), "{err:?}");
    assert!(err.to_string().contains("--min-free-disk"), "{err}");
    assert!(listing(&dir.path().join("packages")).is_empty());
    // The margin off, and the default margin on a disk with room, both accept it.
    store
        .clone()
        .with_min_free_disk(0)
        .put(&zip)
        .expect("no check");
    store.put(&zip).expect("default margin");
}

/// Free bytes of the file system holding `dir`, as the store's check sees them.
fn free_bytes(dir: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(dir).expect("statvfs");
    #[allow(clippy::useless_conversion)]
    let free = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
    free
}

/// Issue 17: the free-disk check counts what the package unpacks to, at upload and again before
/// an unpack, and a refusal writes nothing.
#[test]
fn a_package_that_fits_zipped_but_not_unpacked_is_refused_before_writing() {
    const UNPACKED: u64 = 64 << 20;
    let (dir, store) = store();
    let zeros = vec![0u8; UNPACKED as usize];
    let zip = zip_of(&[E::File("zeros", &zeros, 0o644)]);
    assert!(
        (zip.len() as u64) < UNPACKED / 100,
        "compressed to {}",
        zip.len()
    );
    // A margin that leaves room for the zip, with 32 MB to spare, but not for its 64 MB tree.
    let margin = |free: u64| free.saturating_sub(zip.len() as u64 + UNPACKED / 2);
    let packages = dir.path().join("packages");
    let tight = store
        .clone()
        .with_min_free_disk(margin(free_bytes(&packages)));
    let err = tight.put(&zip).expect_err("refused");
    assert!(matches!(err, PackageError::NoSpace { .. }), "{err:?}");
    assert!(listing(&packages).is_empty());
    // Stored while there was room, then unpacked once the disk is as tight.
    let stored = store.clone().with_min_free_disk(0).put(&zip).expect("put");
    let tight = store
        .clone()
        .with_min_free_disk(margin(free_bytes(&packages)));
    let err = tight.unpack(&stored.sha256).expect_err("refused");
    assert!(matches!(err, PackageError::NoSpace { .. }), "{err:?}");
    assert!(listing(&dir.path().join("unpacked")).is_empty());
    store
        .clone()
        .with_min_free_disk(0)
        .unpack(&stored.sha256)
        .expect("unpack with room");
}

#[test]
fn garbage_is_what_nothing_uses_and_the_rest_stays_whole() {
    let (dir, store) = store();
    let put = |body: &[u8]| {
        store
            .put(&single_file_zip("index.py", body, 0o644).expect("zip"))
            .expect("put")
            .sha256
    };
    let (a, b, c) = (put(b"a"), put(b"b"), put(b"c"));
    for sha in [&a, &b, &c] {
        store.unpack(sha).expect("unpack");
    }
    let ab = store.merged(&[a.clone(), b.clone()]).expect("merge");
    let stray = dir.path().join("unpacked").join("not-ours");
    fs::create_dir(&stray).expect("stray dir");

    let used: HashSet<String> = [a.clone(), b.clone()].into();
    let lists = [vec![a.clone(), b.clone()]];
    let got = store.collect_garbage(&used, &lists).expect("collect");
    assert_eq!(
        got,
        Collected {
            packages: 1,
            trees: 1
        }
    );
    assert_eq!(listing(&dir.path().join("packages")), {
        let mut v = vec![format!("{a}.zip"), format!("{b}.zip")];
        v.sort();
        v
    });
    assert!(ab.is_dir() && stray.is_dir());
    assert!(store.read(&c).is_err(), "c is gone");

    // Nothing uses b nor the merge any more: both go, a stays readable and unpacked.
    let used: HashSet<String> = [a.clone()].into();
    let got = store.collect_garbage(&used, &[]).expect("collect");
    assert_eq!(
        got,
        Collected {
            packages: 1,
            trees: 2
        }
    );
    assert!(!ab.exists());
    assert_eq!(
        fs::read(store.unpack(&a).expect("a").join("index.py")).expect("read"),
        b"a"
    );
    let left = listing(&dir.path().join("unpacked"));
    assert_eq!(left, {
        let mut v = vec![a.clone(), "not-ours".to_string()];
        v.sort();
        v
    });
    // Collected again: nothing more to do.
    assert_eq!(
        store.collect_garbage(&used, &[]).expect("again"),
        Collected::default()
    );
}

/// A shared copy in memory, as a cluster's store keeps it.
#[derive(Debug, Default)]
struct Shared(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

impl PackageSource for Shared {
    fn publish(&self, sha256: &str, bytes: &[u8]) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .insert(sha256.to_owned(), bytes.to_vec());
        Ok(())
    }
    fn fetch(&self, sha256: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.lock().unwrap().get(sha256).cloned())
    }
}

#[test]
fn a_shared_source_gets_every_upload_and_fills_in_what_this_dir_lacks() {
    let shared = Arc::new(Shared::default());
    let (_a_dir, a) = store();
    let a = a.with_source(shared.clone());
    let (_b_dir, b) = store();
    let b = b.with_source(shared.clone());
    let zip = zip_of(&[E::File("bootstrap", b"#!/bin/sh\n", 0o755)]);
    let stored = a.put(&zip).expect("put");
    assert!(shared.0.lock().unwrap().contains_key(&stored.sha256));
    // B never saw the upload: it reads, unpacks and keeps the package from the shared copy.
    assert_eq!(b.read(&stored.sha256).expect("fetched"), zip);
    assert!(b
        .unpack(&stored.sha256)
        .expect("unpack")
        .join("bootstrap")
        .exists());
    shared.0.lock().unwrap().clear();
    assert_eq!(b.read(&stored.sha256).expect("cached"), zip);
    // Bytes that are not the package asked for are refused, and nothing is cached.
    let other = "0".repeat(64);
    shared.0.lock().unwrap().insert(other.clone(), zip.clone());
    assert!(matches!(b.read(&other), Err(PackageError::Remote { .. })));
    shared.0.lock().unwrap().clear();
    assert!(matches!(b.read(&other), Err(PackageError::NotFound { .. })));
}
