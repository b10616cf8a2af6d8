//! Dependencies (FunctionGraph's 依赖包, SPEC.md 4): zips of libraries or extensions that functions
//! list in `depend_version_list` and get unpacked read-only under `/opt/function/dependency`.

use serde::{Deserialize, Serialize};

/// Dependencies one function may list (SPEC.md 6).
pub const DEPENDENCIES_PER_FUNCTION: usize = 20;

/// One version of a dependency. `id` is what functions list; versions of one dependency share
/// `dep_id` and `name` and count up from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyVersion {
    pub id: String,
    pub dep_id: String,
    pub project: String,
    pub name: String,
    pub runtime: String,
    pub description: String,
    pub version: u32,
    pub file_name: String,
    /// The stored zip in the package store.
    pub sha256: String,
    pub size: u64,
    pub created_ms: i64,
}

/// Dependency names: 1-96 letters, digits, `.`, `-`, `_`, starting with a letter.
pub fn name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=96).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(c))
}
