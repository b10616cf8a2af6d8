//! Runtime names FunctionGraph accepts (SPEC.md 4) and what family each belongs to.

use std::fmt;

/// A runtime name as written in a function's `runtime` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Python(PythonVersion),
    NodeJs(NodeVersion),
    /// `Custom`: an executable `bootstrap` at the code root speaks the Runtime API.
    Custom,
    /// `http`: `bootstrap` starts a web server on 127.0.0.1:8000.
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PythonVersion {
    V3_6,
    V3_9,
    V3_10,
    V3_12,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeVersion {
    V12_13,
    V14_18,
    V16_17,
    V18_15,
    V20_15,
}

const NAMES: &[(&str, Runtime)] = &[
    ("Python3.6", Runtime::Python(PythonVersion::V3_6)),
    ("Python3.9", Runtime::Python(PythonVersion::V3_9)),
    ("Python3.10", Runtime::Python(PythonVersion::V3_10)),
    ("Python3.12", Runtime::Python(PythonVersion::V3_12)),
    ("Node.js12.13", Runtime::NodeJs(NodeVersion::V12_13)),
    ("Node.js14.18", Runtime::NodeJs(NodeVersion::V14_18)),
    ("Node.js16.17", Runtime::NodeJs(NodeVersion::V16_17)),
    ("Node.js18.15", Runtime::NodeJs(NodeVersion::V18_15)),
    ("Node.js20.15", Runtime::NodeJs(NodeVersion::V20_15)),
    ("Custom", Runtime::Custom),
    ("http", Runtime::Http),
];

impl Runtime {
    /// Parses a runtime name exactly as FunctionGraph spells it.
    pub fn parse(name: &str) -> Option<Runtime> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    pub fn as_str(&self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, r)| r == self)
            .map(|(n, _)| *n)
            .expect("every runtime variant has a name in NAMES")
    }

    /// Every runtime name, in FunctionGraph's order.
    pub fn all() -> impl Iterator<Item = Runtime> {
        NAMES.iter().map(|(_, r)| *r)
    }

    /// The file an inline code package is stored under (SPEC.md 4: `index.py` / `index.js`).
    pub fn inline_file_name(&self) -> &'static str {
        match self {
            Runtime::Python(_) => "index.py",
            Runtime::NodeJs(_) => "index.js",
            Runtime::Custom | Runtime::Http => "bootstrap",
        }
    }

    /// Whether the handler field names a `file.func` entry point (Python, Node.js) rather than
    /// being informational (Custom, http run `bootstrap`).
    pub fn needs_module_handler(&self) -> bool {
        matches!(self, Runtime::Python(_) | Runtime::NodeJs(_))
    }
}

impl PythonVersion {
    /// `(major, minor)` of the interpreter this runtime asks for.
    pub fn version(&self) -> (u32, u32) {
        match self {
            PythonVersion::V3_6 => (3, 6),
            PythonVersion::V3_9 => (3, 9),
            PythonVersion::V3_10 => (3, 10),
            PythonVersion::V3_12 => (3, 12),
        }
    }
}

impl NodeVersion {
    /// `(major, minor)` of the interpreter this runtime asks for.
    pub fn version(&self) -> (u32, u32) {
        match self {
            NodeVersion::V12_13 => (12, 13),
            NodeVersion::V14_18 => (14, 18),
            NodeVersion::V16_17 => (16, 17),
            NodeVersion::V18_15 => (18, 15),
            NodeVersion::V20_15 => (20, 15),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Runtime::all() {
            assert_eq!(Runtime::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            Runtime::parse("python3.9"),
            None,
            "names are case-sensitive"
        );
        assert_eq!(Runtime::parse("Java8"), None);
    }
}
