//! Property tests of the parsers in fgs-core that read what clients send (SPEC.md 1, 2): the
//! function reference (URN) parser and `user_data`. They stand in for fuzzing on the stable
//! toolchain (docs/security.md): bounded case counts keep them in every `cargo test`, and a
//! failing case is kept in `proptest-regressions/` next to this file, which is committed.

use fgs_core::urn::{function_urn, qualified_urn, FunctionRef, Qualifier};
use fgs_core::validate;
use proptest::prelude::*;

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

/// Pieces that hostile references are made of: separators, traversal, encodings, NUL,
/// non-ASCII, and the valid words around them.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(":".to_owned()),
        Just("..".to_owned()),
        Just("/".to_owned()),
        Just("%2F".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("\\".to_owned()),
        Just("\0".to_owned()),
        Just("!".to_owned()),
        Just("urn".to_owned()),
        Just("fss".to_owned()),
        Just("function".to_owned()),
        Just("latest".to_owned()),
        Just("é".to_owned()),
        "[a-zA-Z0-9_-]{1,8}",
        any::<String>(),
    ]
}

fn hostile_ref() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..12).prop_map(|v| v.concat())
}

/// Every accepted name can become a file or directory name or a path segment without
/// meaning anything else.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

proptest! {
    #![proptest_config(config(2000))]

    /// Never panics, and whatever it accepts is made of plain names: no separator, no
    /// traversal, no encoding survives parsing.
    #[test]
    fn urn_parser_accepts_only_plain_names(s in hostile_ref()) {
        if let Ok(r) = FunctionRef::parse(&s) {
            prop_assert!(plain(&r.name), "{s:?} gave name {:?}", r.name);
            prop_assert!(plain(&r.package), "{s:?} gave package {:?}", r.package);
            if let Some(p) = &r.project {
                prop_assert!(plain(p), "{s:?} gave project {p:?}");
            }
            if let Some(region) = &r.region {
                prop_assert!(plain(region), "{s:?} gave region {region:?}");
            }
            match r.qualifier_or_latest() {
                Qualifier::Latest => {}
                Qualifier::Version(v) | Qualifier::Alias(v) => {
                    prop_assert!(plain(&v), "{s:?} gave qualifier {v:?}")
                }
            }
        }
    }

    /// Any bytes at all, not only the hostile alphabet.
    #[test]
    fn urn_parser_never_panics(s in any::<String>()) {
        let _ = FunctionRef::parse(&s);
        let _ = Qualifier::parse(&s);
    }

    /// What fgs prints, it parses back to the same function.
    #[test]
    fn urns_round_trip(
        project in "[a-f0-9]{1,32}",
        package in "[a-zA-Z0-9_-]{1,16}",
        name in "[a-zA-Z]([a-zA-Z0-9_-]{0,20}[a-zA-Z0-9])?",
        version in "[a-zA-Z0-9][a-zA-Z0-9._-]{0,10}",
    ) {
        let r = FunctionRef::parse(&function_urn("local", &project, &package, &name))
            .expect("a printed URN parses");
        prop_assert_eq!(&r.name, &name);
        prop_assert_eq!(&r.package, &package);
        prop_assert_eq!(r.project.as_deref(), Some(project.as_str()));
        let q = Qualifier::parse(&version).expect("a valid version parses");
        let r = FunctionRef::parse(&qualified_urn("local", &project, &package, &name, &q))
            .expect("a printed qualified URN parses");
        prop_assert_eq!(r.qualifier_or_latest(), q);
    }

    /// `user_data` never panics, and what it accepts is within the 4 KB limit, with keys of
    /// the allowed syntax, none reserved, and values without NUL (they become environment
    /// variables: a NUL would cut them, `=` in a key would forge another).
    #[test]
    fn user_data_accepts_only_safe_variables(
        pairs in prop::collection::vec((piece(), piece()), 0..8),
        raw in any::<String>(),
    ) {
        let _ = validate::user_data(&raw);
        let doc = serde_json::Value::Object(
            pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect(),
        )
        .to_string();
        if let Ok(vars) = validate::user_data(&doc) {
            prop_assert!(doc.len() <= fgs_core::limits::USER_DATA_MAX);
            for (k, v) in vars {
                prop_assert!(k.as_bytes()[0].is_ascii_alphabetic(), "{k:?}");
                prop_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{k:?}");
                prop_assert!(!validate::env_name_reserved(&k), "{k:?}");
                prop_assert!(!v.contains('\0'), "{k:?}");
            }
        }
    }
}

/// References that once tried a path trick (issue 8): each must be refused.
#[test]
fn path_tricks_are_refused() {
    for s in [
        "..",
        "../etc/passwd",
        "a/../b",
        "a%2Fb",
        "a/b",
        "default:..",
        "..:hello",
        "p:default:hello:..",
        "p:default:hello:../x",
        "p:default:hello:!..",
        "urn:fss:local:p:function:default:..:latest",
        "urn:fss:local:p:function:..:hello:latest",
        "urn:fss:..:p:function:default:hello:latest",
        "urn:fss:local:../p:function:default:hello",
        "hello\0",
        "hello\\x",
        "%2e%2e",
        "",
    ] {
        assert!(FunctionRef::parse(s).is_err(), "{s:?} was accepted");
    }
}
