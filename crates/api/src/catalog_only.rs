//! Handlers write what an invocation resolves to only through the catalog, which publishes the
//! change; a write straight to the store would leave every follower of the feed stale. This
//! test reads the crate's sources and refuses such a call.

use std::path::Path;

/// The store's writes that the catalog wraps.
const CATALOG_WRITES: &[&str] = &[
    "create_function",
    "update_function",
    "delete_function",
    "publish_version",
    "delete_version",
    "put_alias",
    "delete_alias",
    "create_trigger",
    "update_trigger",
    "delete_triggers",
];

/// `.store.NAME(` with the whitespace rustfmt puts between them removed.
fn direct_writes(source: &str) -> Vec<&'static str> {
    let flat: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    CATALOG_WRITES
        .iter()
        .copied()
        .filter(|w| flat.contains(&format!(".store.{w}(")))
        .collect()
}

#[test]
fn a_direct_store_write_is_found() {
    let src = "state\n        .store\n        .put_alias(&p, a)\n        .await?;";
    assert_eq!(direct_writes(src), ["put_alias"]);
    assert!(direct_writes("state.catalog.put_alias(&p, a)").is_empty());
    assert!(direct_writes("state.store.get_function(&p)").is_empty());
}

#[test]
fn handlers_write_through_the_catalog() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the crate's sources are readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("a source file is readable");
            for w in direct_writes(&source) {
                found.push(format!("{}: store.{w}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "write through state.catalog, not state.store: {found:?}"
    );
}
