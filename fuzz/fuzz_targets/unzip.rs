//! The package checks and the unpacker: any bytes are refused or unpack inside the target.
#![no_main]
use fgs_package::{Limits, PackageStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|zip: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let limits = Limits {
        max_zip_bytes: 1 << 20,
        max_unpacked_bytes: 1 << 20,
        max_files: 64,
    };
    let store = PackageStore::with_limits(dir.path(), limits).expect("open store");
    if let Ok(stored) = store.put(zip) {
        let _ = store.unpack(&stored.sha256);
    }
    let top: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(top.len() == 2, "something was written beside packages/ and unpacked/: {top:?}");
});
