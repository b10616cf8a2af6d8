use std::collections::HashSet;

use super::*;
use crate::unpack::tests::{layer, E};

/// A tar of `files` (name, bytes).
fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/srv"]}}"#;

/// An OCI layout with two layers (the second deletes a file of the first), tagged `v1`.
fn oci_layout(corrupt_layer: bool) -> Vec<u8> {
    let l1 = layer(
        &[E::Dir("bin"), E::File("bin/srv", "x"), E::File("gone", "g")],
        true,
    );
    let l2 = layer(&[E::File(".wh.gone", "")], true);
    let desc = |b: &[u8]| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(b).to_string(), "size": b.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(CONFIG).to_string(), "size": CONFIG.len()},
        "layers": [desc(&l1), desc(&l2)],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    let blob = |b: &[u8]| format!("blobs/sha256/{}", Digest::of(b).hex());
    let mut l1_stored = l1.clone();
    if corrupt_layer {
        let n = l1_stored.len();
        l1_stored[n - 1] ^= 1;
    }
    tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", index.to_string().into_bytes()),
        (&blob(&manifest), manifest.clone()),
        (&blob(CONFIG), CONFIG.to_vec()),
        (&blob(&l1), l1_stored),
        (&blob(&l2), l2.clone()),
    ])
}

fn store() -> (tempfile::TempDir, Images) {
    let dir = tempfile::tempdir().unwrap();
    let images = Images::open(&dir.path().join("images"), Default::default()).unwrap();
    (dir, images)
}

#[test]
fn an_oci_layout_imports_and_collects() {
    let (dir, images) = store();
    let file = dir.path().join("img.tar");
    fs::write(&file, oci_layout(false)).unwrap();
    let name = Reference::parse("localhost/fgs/echo:v1").unwrap();
    let digest = images.import(&file, &name).unwrap();
    assert_eq!(images.imported(&name), Some(digest.clone()));
    let u = images.local(&digest).unwrap();
    assert_eq!(u.config.cmd, vec!["/bin/srv"]);
    assert!(u.root.join("bin/srv").is_file());
    assert!(!u.root.join("gone").exists());
    // A named image survives collection; an unnamed unused one does not.
    assert_eq!(images.collect(&HashSet::new()).unwrap(), 0);
    fs::remove_dir_all(dir.path().join("images/refs")).unwrap();
    fs::create_dir(dir.path().join("images/refs")).unwrap();
    assert_eq!(images.collect(&HashSet::from([digest.clone()])).unwrap(), 0);
    assert_eq!(images.collect(&HashSet::new()).unwrap(), 1);
    assert!(images.local(&digest).is_none());
}

#[test]
fn a_corrupt_blob_leaves_nothing_behind() {
    let (dir, images) = store();
    let file = dir.path().join("img.tar");
    fs::write(&file, oci_layout(true)).unwrap();
    let name = Reference::parse("localhost/fgs/echo:v1").unwrap();
    let r = images.import(&file, &name);
    assert!(matches!(r, Err(ImageError::DigestMismatch { .. })), "{r:?}");
    assert_eq!(
        fs::read_dir(dir.path().join("images/images"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        fs::read_dir(dir.path().join("images/tmp")).unwrap().count(),
        0
    );
    assert!(images.imported(&name).is_none());
}

#[test]
fn a_docker_save_imports() {
    let (dir, images) = store();
    let l1 = layer(&[E::Dir("app"), E::File("app/run", "r")], false);
    let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#;
    let file = dir.path().join("save.tar");
    fs::write(
        &file,
        tar_of(&[
            ("manifest.json", manifest.to_vec()),
            ("c.json", CONFIG.to_vec()),
            ("abc/layer.tar", l1),
        ]),
    )
    .unwrap();
    let name = Reference::parse("x:1").unwrap();
    let digest = images.import(&file, &name).unwrap();
    let u = images.local(&digest).unwrap();
    assert_eq!(fs::read_to_string(u.root.join("app/run")).unwrap(), "r");
    assert_eq!(u.config.env, vec!["PATH=/bin"]);
}
