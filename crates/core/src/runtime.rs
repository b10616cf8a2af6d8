//! Runtime names FunctionGraph accepts (SPEC.md 4), what family each belongs to, and the
//! [`RuntimeTable`] that maps each name to an interpreter installed on the host. Finding the
//! interpreters is I/O and lives in `fgs-instance`; choosing among them is here.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A runtime name as written in a function's `runtime` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Python(PythonVersion),
    NodeJs(NodeVersion),
    /// `Custom`: an executable `bootstrap` at the code root speaks the Runtime API.
    Custom,
    /// `http`: `bootstrap` starts a web server on 127.0.0.1:8000 (or, with a `custom_image`,
    /// the image's own server does).
    Http,
    /// `Custom Image`: an event function whose container image serves `POST /invoke` (and
    /// `POST /init`) on port 8000.
    CustomImage,
    Java(JavaVersion),
    /// `Go1.x`: the function is a Go binary built with FunctionGraph's Go SDK.
    Go,
    Php(PhpVersion),
    /// C# on .NET Core: listed so that its names are known, refused at create (no .NET here).
    CSharp(DotNetVersion),
    /// `Cangjie1.0`: listed so that its name is known, refused at create (no Cangjie here).
    Cangjie,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PythonVersion {
    V2_7,
    V3_6,
    V3_9,
    V3_10,
    V3_12,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeVersion {
    V6_10,
    V8_10,
    V10_16,
    V12_13,
    V14_18,
    V16_17,
    V18_15,
    V20_15,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JavaVersion {
    V8,
    V11,
    V17,
    V21,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhpVersion {
    V7_3,
    V8_3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DotNetVersion {
    V2_1,
    V3_1,
    V6_0,
    V8_0,
}

/// FunctionGraph's runtime names ("What Runtimes Does FunctionGraph Support?",
/// functiongraph_03_0260), spelled as its API takes them.
const NAMES: &[(&str, Runtime)] = &[
    ("Python2.7", Runtime::Python(PythonVersion::V2_7)),
    ("Python3.6", Runtime::Python(PythonVersion::V3_6)),
    ("Python3.9", Runtime::Python(PythonVersion::V3_9)),
    ("Python3.10", Runtime::Python(PythonVersion::V3_10)),
    ("Python3.12", Runtime::Python(PythonVersion::V3_12)),
    ("Node.js6.10", Runtime::NodeJs(NodeVersion::V6_10)),
    ("Node.js8.10", Runtime::NodeJs(NodeVersion::V8_10)),
    ("Node.js10.16", Runtime::NodeJs(NodeVersion::V10_16)),
    ("Node.js12.13", Runtime::NodeJs(NodeVersion::V12_13)),
    ("Node.js14.18", Runtime::NodeJs(NodeVersion::V14_18)),
    ("Node.js16.17", Runtime::NodeJs(NodeVersion::V16_17)),
    ("Node.js18.15", Runtime::NodeJs(NodeVersion::V18_15)),
    ("Node.js20.15", Runtime::NodeJs(NodeVersion::V20_15)),
    ("Custom", Runtime::Custom),
    ("http", Runtime::Http),
    ("Custom Image", Runtime::CustomImage),
    ("Java8", Runtime::Java(JavaVersion::V8)),
    ("Java11", Runtime::Java(JavaVersion::V11)),
    ("Java17", Runtime::Java(JavaVersion::V17)),
    ("Java21", Runtime::Java(JavaVersion::V21)),
    ("Go1.x", Runtime::Go),
    ("PHP7.3", Runtime::Php(PhpVersion::V7_3)),
    ("PHP8.3", Runtime::Php(PhpVersion::V8_3)),
    ("C#(.NET Core 2.1)", Runtime::CSharp(DotNetVersion::V2_1)),
    ("C#(.NET Core 3.1)", Runtime::CSharp(DotNetVersion::V3_1)),
    ("C#(.NET Core 6.0)", Runtime::CSharp(DotNetVersion::V6_0)),
    ("C#(.NET Core 8.0)", Runtime::CSharp(DotNetVersion::V8_0)),
    ("Cangjie1.0", Runtime::Cangjie),
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

    /// The file an inline code package is stored under (SPEC.md 4: `index.py` / `index.js`;
    /// FunctionGraph edits PHP inline too). Compiled languages have no inline code: their name
    /// here is only where such a file would land.
    pub fn inline_file_name(&self) -> &'static str {
        match self {
            Runtime::Python(_) => "index.py",
            Runtime::NodeJs(_) => "index.js",
            Runtime::Php(_) => "index.php",
            Runtime::Custom | Runtime::Http | Runtime::CustomImage => "bootstrap",
            Runtime::Java(_) => "index.java",
            Runtime::Go => "handler",
            Runtime::CSharp(_) => "index.cs",
            Runtime::Cangjie => "index.cj",
        }
    }

    /// Whether the handler field names a dotted entry point (Python, Node.js and PHP
    /// `file.func`, Java `package.Class.method`) rather than a file (Custom and http run
    /// `bootstrap`, Go its handler binary).
    pub fn needs_module_handler(&self) -> bool {
        matches!(
            self,
            Runtime::Python(_) | Runtime::NodeJs(_) | Runtime::Php(_) | Runtime::Java(_)
        )
    }
}

impl PythonVersion {
    /// `(major, minor)` of the interpreter this runtime asks for.
    pub fn version(&self) -> (u32, u32) {
        match self {
            PythonVersion::V2_7 => (2, 7),
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
            NodeVersion::V6_10 => (6, 10),
            NodeVersion::V8_10 => (8, 10),
            NodeVersion::V10_16 => (10, 16),
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

/// A runtime name fgs does not know: bad input, or a stored record fgs cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime {0:?}")]
pub struct UnknownRuntime(pub String);

impl std::str::FromStr for Runtime {
    type Err = UnknownRuntime;

    fn from_str(name: &str) -> Result<Runtime, UnknownRuntime> {
        Runtime::parse(name).ok_or_else(|| UnknownRuntime(name.to_string()))
    }
}

/// Stored and sent as the name FunctionGraph spells (`"Python3.9"`), byte for byte.
impl serde::Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An unknown name is an error of the whole record, never a panic when it is run.
impl<'de> serde::Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Runtime, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl JavaVersion {
    /// `(major, 0)`: Java's releases are numbered by major alone.
    pub fn version(&self) -> (u32, u32) {
        match self {
            JavaVersion::V8 => (8, 0),
            JavaVersion::V11 => (11, 0),
            JavaVersion::V17 => (17, 0),
            JavaVersion::V21 => (21, 0),
        }
    }
}

impl PhpVersion {
    pub fn version(&self) -> (u32, u32) {
        match self {
            PhpVersion::V7_3 => (7, 3),
            PhpVersion::V8_3 => (8, 3),
        }
    }
}

impl DotNetVersion {
    pub fn version(&self) -> (u32, u32) {
        match self {
            DotNetVersion::V2_1 => (2, 1),
            DotNetVersion::V3_1 => (3, 1),
            DotNetVersion::V6_0 => (6, 0),
            DotNetVersion::V8_0 => (8, 0),
        }
    }
}

/// Which language a runtime's functions are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Python,
    NodeJs,
    Java,
    Go,
    Php,
    CSharp,
    Cangjie,
}

impl Language {
    /// What this fgs lacks to run the language at all, whatever the host has installed: its
    /// runtime host is not part of fgs yet. `None` for the languages fgs serves.
    pub fn unserved(&self) -> Option<&'static str> {
        match self {
            Language::Python
            | Language::NodeJs
            | Language::Php
            | Language::Java
            | Language::Go => None,
            Language::CSharp => Some(
                "fgs cannot run C# functions: the .NET Core runtime and FunctionGraph's C# runtime host are not part of fgs",
            ),
            Language::Cangjie => Some(
                "fgs cannot run Cangjie functions: the Cangjie runtime and FunctionGraph's Cangjie runtime host are not part of fgs",
            ),
        }
    }

    /// Whether functions of the language are native binaries that need no interpreter.
    pub fn is_native(&self) -> bool {
        matches!(self, Language::Go)
    }
}

impl Runtime {
    /// The language of a built-in runtime; `None` for Custom and http, which bring their own.
    pub fn language(&self) -> Option<(Language, (u32, u32))> {
        match self {
            Runtime::Python(v) => Some((Language::Python, v.version())),
            Runtime::NodeJs(v) => Some((Language::NodeJs, v.version())),
            Runtime::Java(v) => Some((Language::Java, v.version())),
            Runtime::Go => Some((Language::Go, (1, 0))),
            Runtime::Php(v) => Some((Language::Php, v.version())),
            Runtime::CSharp(v) => Some((Language::CSharp, v.version())),
            Runtime::Cangjie => Some((Language::Cangjie, (1, 0))),
            Runtime::Custom | Runtime::Http | Runtime::CustomImage => None,
        }
    }
}

/// An interpreter binary found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub language: Language,
    /// The real binary (symlinks and version-manager shims resolved).
    pub path: PathBuf,
    /// `(major, minor, patch)`.
    pub version: (u32, u32, u32),
    /// The installation prefix (`sys.base_prefix`, or the dir above node's `bin/`): what an
    /// instance must see read-only for the interpreter to run.
    pub prefix: PathBuf,
}

impl Interpreter {
    pub fn version_string(&self) -> String {
        let (a, b, c) = self.version;
        format!("{a}.{b}.{c}")
    }
}

/// What a runtime name runs on here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Custom and http: the function brings its own `bootstrap`.
    Bootstrap,
    /// The interpreter of the exact major.minor the name asks for.
    Exact(Arc<Interpreter>),
    /// No interpreter of that major.minor; this is the nearest installed one.
    Nearest(Arc<Interpreter>),
    /// No interpreter of the language at all: functions of this runtime are refused.
    Missing,
    /// A native binary (Go): the function's own, started as it is.
    Native,
    /// fgs itself cannot run the language (why): functions of this runtime are refused.
    Unserved(&'static str),
}

impl Availability {
    pub fn interpreter(&self) -> Option<&Arc<Interpreter>> {
        match self {
            Availability::Exact(i) | Availability::Nearest(i) => Some(i),
            Availability::Bootstrap
            | Availability::Missing
            | Availability::Native
            | Availability::Unserved(_) => None,
        }
    }

    /// The warning a function of `runtime` gets in its log when it runs on another minor.
    pub fn warning(&self, runtime: Runtime) -> Option<String> {
        match self {
            Availability::Nearest(i) => Some(format!(
                "runtime {runtime} runs on {} {} ({}): no interpreter of that version is installed",
                lang_name(i.language),
                i.version_string(),
                i.path.display()
            )),
            _ => None,
        }
    }
}

/// Whether an interpreter runs what a runtime name promises: Python minors change the language,
/// so only the same one does; Node.js minors of one major are backward compatible (semver), so
/// `Node.js20.15` runs as it should on 20.20; PHP keeps the same promise within a major; a Java
/// runtime name asks for one major (`Java17`: a JDK 17).
fn compatible(lang: Language, (major, minor): (u32, u32), version: (u32, u32, u32)) -> bool {
    match lang {
        Language::Python => (version.0, version.1) == (major, minor),
        Language::NodeJs | Language::Php => version.0 == major && version.1 >= minor,
        Language::Java => version.0 == major,
        Language::Go | Language::CSharp | Language::Cangjie => false,
    }
}

/// The language's name and the interpreter it needs, for messages.
pub fn lang_name(l: Language) -> &'static str {
    match l {
        Language::Python => "Python",
        Language::NodeJs => "Node.js",
        Language::Java => "Java",
        Language::Go => "Go",
        Language::Php => "PHP",
        Language::CSharp => "C# (.NET Core)",
        Language::Cangjie => "Cangjie",
    }
}

/// Every runtime name with what it runs on, decided once at start-up (SPEC.md 4: each name maps
/// to the interpreter installed on the host; a name with none is refused at create time).
#[derive(Debug, Clone, Default)]
pub struct RuntimeTable {
    entries: Vec<(Runtime, Availability)>,
    installed: Vec<Arc<Interpreter>>,
}

impl RuntimeTable {
    /// Maps every runtime name to the best of `installed`: the same major.minor, else the
    /// same major with the nearest minor (the newer on a tie), else the nearest major.
    pub fn from_installed(installed: Vec<Interpreter>) -> RuntimeTable {
        let installed: Vec<Arc<Interpreter>> = installed.into_iter().map(Arc::new).collect();
        let entries = Runtime::all()
            .map(|rt| {
                let Some((lang, (major, minor))) = rt.language() else {
                    return (rt, Availability::Bootstrap);
                };
                if let Some(why) = lang.unserved() {
                    return (rt, Availability::Unserved(why));
                }
                if lang.is_native() {
                    return (rt, Availability::Native);
                }
                let best = installed
                    .iter()
                    .filter(|i| i.language == lang)
                    .min_by_key(|i| {
                        let (ma, mi, _) = i.version;
                        (
                            ma.abs_diff(major),
                            mi.abs_diff(minor),
                            // Newer minor first on a tie: it gets security fixes longer.
                            // Same minor: the first found (system dirs come first).
                            std::cmp::Reverse((ma, mi)),
                        )
                    });
                let av = match best {
                    None => Availability::Missing,
                    Some(i) if compatible(lang, (major, minor), i.version) => {
                        Availability::Exact(Arc::clone(i))
                    }
                    Some(i) => Availability::Nearest(Arc::clone(i)),
                };
                (rt, av)
            })
            .collect();
        RuntimeTable { entries, installed }
    }

    pub fn get(&self, rt: Runtime) -> &Availability {
        self.entries
            .iter()
            .find(|(r, _)| *r == rt)
            .map(|(_, a)| a)
            .unwrap_or(&Availability::Missing)
    }

    /// Every runtime name in FunctionGraph's order, with what it runs on.
    pub fn entries(&self) -> &[(Runtime, Availability)] {
        &self.entries
    }

    /// Every interpreter found, whether a runtime name uses it or not.
    pub fn installed(&self) -> &[Arc<Interpreter>] {
        &self.installed
    }

    /// Whether functions of `rt` can be created here; the reason when not.
    pub fn check(&self, rt: Runtime) -> Result<(), String> {
        match (self.get(rt), rt.language()) {
            (Availability::Unserved(why), _) => Err((*why).to_string()),
            (Availability::Missing, Some((lang, _))) => Err(format!(
                "no {} interpreter is installed on this fgs host; install one (see `fgs runtimes`) and restart fgs",
                lang_name(lang)
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_byte_for_byte() {
        for rt in Runtime::all() {
            let json = serde_json::to_string(&rt).unwrap();
            assert_eq!(json, format!("\"{}\"", rt.as_str()));
            assert_eq!(serde_json::from_str::<Runtime>(&json).unwrap(), rt);
            assert_eq!(rt.as_str().parse::<Runtime>(), Ok(rt));
        }
    }

    #[test]
    fn an_unknown_stored_name_is_an_error_not_a_panic() {
        let err = serde_json::from_str::<Runtime>("\"Cobol1.0\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown runtime \"Cobol1.0\""),
            "{err}"
        );
        assert_eq!(
            "python3.9".parse::<Runtime>(),
            Err(UnknownRuntime("python3.9".into()))
        );
        assert!(serde_json::from_str::<Runtime>("7").is_err());
    }

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
        assert_eq!(
            Runtime::parse("Java8"),
            Some(Runtime::Java(JavaVersion::V8))
        );
        assert_eq!(Runtime::parse("Go1.x"), Some(Runtime::Go));
        assert_eq!(Runtime::parse("Go1.8"), None, "retired by FunctionGraph");
    }

    fn interp(language: Language, version: (u32, u32, u32)) -> Interpreter {
        Interpreter {
            language,
            path: PathBuf::from(format!("/usr/bin/x{}.{}", version.0, version.1)),
            version,
            prefix: PathBuf::from("/usr"),
        }
    }

    #[test]
    fn exact_then_nearest_then_missing() {
        let t = RuntimeTable::from_installed(vec![
            interp(Language::Python, (3, 11, 2)),
            interp(Language::Python, (3, 9, 18)),
            interp(Language::Python, (3, 13, 0)),
        ]);
        let py = |v| t.get(Runtime::Python(v)).interpreter().map(|i| i.version);
        assert!(matches!(
            t.get(Runtime::Python(PythonVersion::V3_9)),
            Availability::Exact(_)
        ));
        assert_eq!(py(PythonVersion::V3_9), Some((3, 9, 18)));
        // 3.10 is one minor from both 3.9 and 3.11: the newer wins.
        assert_eq!(py(PythonVersion::V3_10), Some((3, 11, 2)));
        assert_eq!(py(PythonVersion::V3_12), Some((3, 13, 0)));
        assert_eq!(py(PythonVersion::V3_6), Some((3, 9, 18)));
        let w = t
            .get(Runtime::Python(PythonVersion::V3_12))
            .warning(Runtime::Python(PythonVersion::V3_12));
        assert!(w.unwrap().contains("Python 3.13.0"));
        assert_eq!(
            t.get(Runtime::NodeJs(NodeVersion::V20_15)),
            &Availability::Missing
        );
        let msg = t.check(Runtime::NodeJs(NodeVersion::V20_15)).unwrap_err();
        assert!(msg.contains("Node.js"), "{msg}");
        assert!(t.check(Runtime::Custom).is_ok());
        assert_eq!(t.get(Runtime::Http), &Availability::Bootstrap);
    }

    #[test]
    fn every_functiongraph_language_is_listed() {
        let names: Vec<&str> = Runtime::all().map(|r| r.as_str()).collect();
        for n in [
            "Java8",
            "Java11",
            "Java17",
            "Go1.x",
            "PHP7.3",
            "PHP8.3",
            "C#(.NET Core 2.1)",
            "C#(.NET Core 6.0)",
            "Cangjie1.0",
        ] {
            assert!(names.contains(&n), "{n} is missing");
        }
    }

    #[test]
    fn csharp_and_cangjie_are_refused_naming_what_is_missing() {
        let t = RuntimeTable::from_installed(vec![interp(Language::Python, (3, 11, 2))]);
        let cs = t
            .check(Runtime::parse("C#(.NET Core 3.1)").unwrap())
            .unwrap_err();
        assert!(cs.contains(".NET Core runtime"), "{cs}");
        let cj = t.check(Runtime::Cangjie).unwrap_err();
        assert!(cj.contains("Cangjie runtime"), "{cj}");
        assert!(matches!(t.get(Runtime::Cangjie), Availability::Unserved(_)));
        // A Go function is its own binary: nothing to install.
        assert_eq!(t.get(Runtime::Go), &Availability::Native);
        assert!(t.check(Runtime::Go).is_ok());
    }

    #[test]
    fn old_names_run_on_the_nearest_with_a_warning() {
        // Issue 17: FunctionGraph still lists these; code written for them runs unchanged.
        let t = RuntimeTable::from_installed(vec![
            interp(Language::NodeJs, (20, 20, 2)),
            interp(Language::Python, (3, 11, 2)),
        ]);
        for name in ["Node.js6.10", "Node.js8.10", "Node.js10.16", "Python2.7"] {
            let rt = Runtime::parse(name).unwrap_or_else(|| panic!("{name} is refused"));
            let av = t.get(rt);
            assert!(matches!(av, Availability::Nearest(_)), "{name}: {av:?}");
            let w = av.warning(rt).unwrap();
            assert!(w.starts_with(&format!("runtime {name} runs on ")), "{w}");
            assert!(t.check(rt).is_ok());
        }
    }

    #[test]
    fn nearest_major_for_node() {
        let t = RuntimeTable::from_installed(vec![interp(Language::NodeJs, (20, 20, 2))]);
        for v in [
            NodeVersion::V16_17,
            NodeVersion::V18_15,
            NodeVersion::V20_15,
        ] {
            let i = t.get(Runtime::NodeJs(v)).interpreter().unwrap();
            assert_eq!(i.version, (20, 20, 2));
        }
        assert!(matches!(
            t.get(Runtime::NodeJs(NodeVersion::V20_15)),
            Availability::Exact(_)
        ));
        assert!(matches!(
            t.get(Runtime::NodeJs(NodeVersion::V18_15)),
            Availability::Nearest(_)
        ));
        let t = RuntimeTable::from_installed(vec![interp(Language::NodeJs, (20, 9, 0))]);
        assert!(
            matches!(
                t.get(Runtime::NodeJs(NodeVersion::V20_15)),
                Availability::Nearest(_)
            ),
            "an older minor may lack what the function uses"
        );
    }
}
