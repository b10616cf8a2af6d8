//! Makes every `tests/*.rs` but `main.rs` a module of the one `e2e` test binary, so that a new
//! test file needs no other change: `tests/foo.rs` runs as `foo::*`
//! (`cargo nextest run -p fgs-e2e foo::`).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=tests");
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs") && !p.ends_with("main.rs"))
        .collect();
    files.sort();
    let mut out = String::new();
    for f in files {
        let module = f
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("test file names are UTF-8");
        out.push_str(&format!(
            "#[path = {:?}]\nmod {module};\n",
            f.display().to_string()
        ));
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets it")).join("modules.rs");
    // Written only when it changed, so that an unchanged list does not rebuild the binary.
    if std::fs::read_to_string(&dest).ok().as_deref() != Some(out.as_str()) {
        std::fs::write(&dest, out).expect("OUT_DIR is writable");
    }
}
