use std::fs;

use super::*;

/// A layer built in the test: `(path, kind)` in order.
pub(crate) enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Dev(&'a str),
}

pub(crate) fn layer(entries: &[E<'_>], gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(0);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                (p, b"")
            }
            E::File(p, c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(c.len() as u64);
                (p, c.as_bytes())
            }
            E::Link(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(t).unwrap();
                (p, b"")
            }
            E::Hard(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_link_name(t).unwrap();
                (p, b"")
            }
            E::Dev(p) => {
                h.set_entry_type(tar::EntryType::Char);
                (p, b"")
            }
        };
        // set_path refuses `..`; a hostile layer is written raw.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

fn apply(root: &Path, entries: &[E<'_>]) -> Result<(), ImageError> {
    let mut budget = 1 << 30;
    apply_layer(root, &layer(entries, true)[..], &mut budget)
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    apply(
        root,
        &[
            E::Dir("etc"),
            E::File("etc/keep", "k"),
            E::File("etc/gone", "g"),
            E::Dir("data"),
            E::File("data/old", "o"),
            E::Dir("data/sub"),
            E::File("data/sub/deep", "d"),
        ],
    )
    .unwrap();
    apply(
        root,
        &[
            E::File("etc/.wh.gone", ""),
            E::Dir("data"),
            E::File("data/new", "n"),
            E::File("data/.wh..wh..opq", ""),
        ],
    )
    .unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/keep")).unwrap(), "k");
    assert!(!root.join("etc/gone").exists());
    assert!(!root.join("etc/.wh.gone").exists());
    assert_eq!(fs::read_to_string(root.join("data/new")).unwrap(), "n");
    assert!(!root.join("data/old").exists());
    assert!(!root.join("data/sub").exists());
    assert!(!root.join("data/.wh..wh..opq").exists());
}

#[test]
fn links_stay_inside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    // A link to the host is kept as a link, but nothing is written through it.
    apply(&root, &[E::Link("escape", outside.to_str().unwrap())]).unwrap();
    let r = apply(&root, &[E::File("escape/pwned", "x")]);
    assert!(matches!(r, Err(ImageError::Layer(_))), "{r:?}");
    assert!(!outside.join("pwned").exists());
    let r = apply(&root, &[E::File("../pwned", "x")]);
    assert!(matches!(r, Err(ImageError::Layer(_))), "{r:?}");
    assert!(!dir.path().join("pwned").exists());
    let r = apply(&root, &[E::Hard("h", "../../etc/passwd")]);
    assert!(matches!(r, Err(ImageError::Layer(_))), "{r:?}");
    // A hard link inside works; a device node is skipped.
    apply(
        &root,
        &[E::File("a", "A"), E::Hard("b", "a"), E::Dev("dev/null")],
    )
    .unwrap();
    assert_eq!(fs::read_to_string(root.join("b")).unwrap(), "A");
    assert!(!root.join("dev/null").exists());
}

#[test]
fn a_layer_over_the_budget_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut budget = 3;
    let r = apply_layer(
        dir.path(),
        &layer(&[E::File("big", "12345")], false)[..],
        &mut budget,
    );
    assert!(matches!(r, Err(ImageError::TooLarge)), "{r:?}");
}
