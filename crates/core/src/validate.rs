//! Validation of names and fields (SPEC.md 1, 2, 6). Every check returns a typed [`Invalid`] that
//! says what was wrong in words a user can act on; `fgs-api` maps each variant to its FSS code.

use crate::limits::*;
use crate::runtime::Runtime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("func_name {0:?} is invalid: use 1-60 letters, digits, '-' or '_', starting with a letter and ending with a letter or digit")]
    FuncName(String),
    #[error("package {0:?} is invalid: use 1-64 letters, digits, '-' or '_'")]
    Package(String),
    #[error("handler {0:?} is invalid: {1}")]
    Handler(String, &'static str),
    #[error("runtime {0:?} is not supported; supported runtimes: {1}")]
    Runtime(String, String),
    #[error("runtime {0} cannot run here: {1}")]
    RuntimeUnavailable(String, String),
    #[error("code_type {0:?} is invalid: use inline or zip")]
    CodeType(String),
    #[error("memory_size {0} is invalid: use one of 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240")]
    Memory(i64),
    #[error("timeout {0} is invalid: use 3 to 259200 seconds")]
    Timeout(i64),
    #[error("user_data is invalid: {0}")]
    UserData(String),
    #[error("initializer_handler {0:?} is invalid: use file.function")]
    InitializerHandler(String),
    #[error("initializer_timeout {0} is invalid: use 1 to 300 seconds")]
    InitializerTimeout(i64),
    #[error("zip code package is {0} bytes, over the 50 MB limit")]
    ZipTooLarge(usize),
    #[error("inline code is {0} bytes, over the 10 KB limit")]
    InlineTooLarge(usize),
    #[error("{0}")]
    Parameter(String),
}

/// Environment variable names FunctionGraph sets and a user variable may not take: the preset
/// values of its "Configuring Environment Variables" guide (functiongraph_01_0154, "Preset
/// values"), plus the two API addresses its Custom runtime and extension guides say the platform
/// sets. Issue 17: only these, so that samples setting e.g. `RUNTIME_LOG_LEVEL` run unchanged.
pub const RESERVED_ENV: &[&str] = &[
    "RUNTIME_PROJECT_ID",
    "RUNTIME_FUNC_NAME",
    "RUNTIME_FUNC_VERSION",
    "RUNTIME_PACKAGE",
    "RUNTIME_HANDLER",
    "RUNTIME_TIMEOUT",
    "RUNTIME_USERDATA",
    "RUNTIME_CPU",
    "RUNTIME_MEMORY",
    "RUNTIME_MAX_RESP_BODY_SIZE",
    "RUNTIME_INITIALIZER_HANDLER",
    "RUNTIME_INITIALIZER_TIMEOUT",
    "RUNTIME_ROOT",
    "RUNTIME_CODE_ROOT",
    "RUNTIME_LOG_DIR",
    "RUNTIME_API_ADDR",
    "EXTENSION_API_ADDR",
];

/// [FGS] The variables fgs's own runtime shims and extension supervisor are driven by: a user
/// value would replace what the platform decided (which shim to load, which extensions to start).
pub const FGS_ENV: &[&str] = &[
    "RUNTIME_PRE_STOP_HANDLER",
    "RUNTIME_PRE_STOP_TIMEOUT",
    "FGS_RUNTIME_DIR",
    "FGS_RUNTIME_WARNING",
    "FGS_EXTENSIONS",
];

/// Whether a user variable may not be called `name`.
pub fn env_name_reserved(name: &str) -> bool {
    RESERVED_ENV.contains(&name) || FGS_ENV.contains(&name)
}

fn word_chars(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// func_name: 1-60 chars, letters, digits, `-`, `_`; starts with a letter, ends with a letter or digit.
pub fn func_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=60).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && word_chars(s, b"-_")
}

pub fn package_name_ok(s: &str) -> bool {
    (1..=64).contains(&s.len()) && word_chars(s, b"-_")
}

pub fn project_id_ok(s: &str) -> bool {
    (1..=64).contains(&s.len()) && word_chars(s, b"-_")
}

/// Version names: 1-42 chars of letters, digits, `.`, `-`, `_`, starting with a letter or digit.
pub fn version_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=42).contains(&b.len()) && b[0].is_ascii_alphanumeric() && word_chars(s, b".-_")
}

/// Alias names: start with a letter, at most 63 chars of letters, digits, `-`, `_`.
pub fn alias_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len()) && b[0].is_ascii_alphabetic() && word_chars(s, b"-_")
}

pub fn runtime(name: &str) -> Result<Runtime, Invalid> {
    Runtime::parse(name).ok_or_else(|| {
        let all: Vec<&str> = Runtime::all().map(|r| r.as_str()).collect();
        Invalid::Runtime(name.to_string(), all.join(", "))
    })
}

/// `file.function` handlers of Python and Node.js; the file part may hold `/` (a sub-folder of the
/// code root) but never `..` or a leading `/`.
fn module_handler_ok(s: &str) -> bool {
    let Some((file, func)) = s.rsplit_once('.') else {
        return false;
    };
    !file.is_empty()
        && !func.is_empty()
        && s.len() <= 128
        && !file.starts_with('/')
        && !file
            .split('/')
            .any(|seg| seg.is_empty() || seg == ".." || seg == ".")
        && word_chars(file, b"_-./")
        && func.as_bytes()[0].is_ascii_alphabetic() | (func.as_bytes()[0] == b'_')
        && word_chars(func, b"_")
}

pub fn handler(runtime: Runtime, s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > 128 {
        return Err(Invalid::Handler(s.to_string(), "use 1 to 128 characters"));
    }
    // Issue 17: the handler names a file inside the code root; `..` could only point out of it.
    if s.contains("..") {
        return Err(Invalid::Handler(
            s.to_string(),
            "'..' is not allowed: name a file inside the code root, e.g. src/index.handler",
        ));
    }
    if runtime.needs_module_handler() && !module_handler_ok(s) {
        return Err(Invalid::Handler(
            s.to_string(),
            "use file.function, e.g. index.handler",
        ));
    }
    if !word_chars(s, b"_-./") {
        return Err(Invalid::Handler(
            s.to_string(),
            "use letters, digits, '.', '/', '-' or '_'",
        ));
    }
    Ok(())
}

pub fn initializer_handler(runtime: Runtime, s: &str) -> Result<(), Invalid> {
    if s.is_empty() {
        return Ok(());
    }
    if handler(runtime, s).is_err() {
        return Err(Invalid::InitializerHandler(s.to_string()));
    }
    Ok(())
}

pub fn memory_size(m: i64) -> Result<u32, Invalid> {
    MEMORY_SIZES
        .iter()
        .copied()
        .find(|&x| i64::from(x) == m)
        .ok_or(Invalid::Memory(m))
}

pub fn timeout(t: i64) -> Result<u32, Invalid> {
    if (i64::from(TIMEOUT_MIN)..=i64::from(TIMEOUT_MAX)).contains(&t) {
        Ok(t as u32)
    } else {
        Err(Invalid::Timeout(t))
    }
}

pub fn initializer_timeout(t: i64) -> Result<u32, Invalid> {
    if (i64::from(INITIALIZER_TIMEOUT_MIN)..=i64::from(INITIALIZER_TIMEOUT_MAX)).contains(&t) {
        Ok(t as u32)
    } else {
        Err(Invalid::InitializerTimeout(t))
    }
}

/// Parses `user_data`: a JSON object of string values (SPEC.md 2), keys of letters, digits and
/// `_` starting with a letter, none reserved, at most 4 KB in all. Returns the pairs in order.
pub fn user_data(s: &str) -> Result<Vec<(String, String)>, Invalid> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    if s.len() > USER_DATA_MAX {
        return Err(Invalid::UserData(format!(
            "{} bytes, over the {USER_DATA_MAX}-byte limit",
            s.len()
        )));
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(s)
        .map_err(|e| Invalid::UserData(format!("not a JSON object of strings: {e}")))?;
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let kb = k.as_bytes();
        if kb.is_empty() || !kb[0].is_ascii_alphabetic() || !word_chars(&k, b"_") {
            return Err(Invalid::UserData(format!(
                "key {k:?} is invalid: use letters, digits and '_', starting with a letter"
            )));
        }
        if env_name_reserved(&k) {
            return Err(Invalid::UserData(format!(
                "key {k:?} is reserved by the platform"
            )));
        }
        let v = match v {
            serde_json::Value::String(s) => s,
            other => {
                return Err(Invalid::UserData(format!(
                    "value of {k:?} must be a string, got {other}"
                )))
            }
        };
        if v.contains('\0') {
            return Err(Invalid::UserData(format!(
                "value of {k:?} holds a NUL byte"
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    #[test]
    fn func_names() {
        for ok in ["a", "hello", "a-b_c9", &"a".repeat(60)] {
            assert!(func_name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "-a",
            "a-",
            "a_",
            "a.b",
            "a b",
            &"a".repeat(61),
            "ä",
        ] {
            assert!(!func_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn handlers() {
        let py = Runtime::parse("Python3.9").unwrap();
        assert!(handler(py, "index.handler").is_ok());
        assert!(handler(py, "src/app.main").is_ok());
        // Issue 17: the slash form of published samples, and never a way out of the code root.
        assert!(handler(py, "src/index.handler").is_ok());
        assert!(handler(py, "src.index.handler").is_ok());
        let node = Runtime::parse("Node.js20.15").unwrap();
        for bad in [
            "src/../../x.handler",
            "..index.handler",
            "a/..b.handler",
            "src..x.h",
        ] {
            for rt in [py, node, Runtime::Custom, Runtime::Http] {
                let err = handler(rt, bad).expect_err(bad).to_string();
                assert!(err.contains("'..' is not allowed"), "{bad}: {err}");
            }
        }
        for bad in [
            "index",
            "index.",
            ".handler",
            "../x.handler",
            "/abs.handler",
            "a b.c",
            "x.9f",
        ] {
            assert!(handler(py, bad).is_err(), "{bad}");
        }
        assert!(handler(Runtime::Custom, "bootstrap").is_ok());
        assert!(handler(Runtime::Custom, "").is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(memory_size(256), Ok(256));
        assert!(memory_size(100).is_err());
        assert!(timeout(2).is_err());
        assert_eq!(timeout(3), Ok(3));
        assert!(timeout(259_201).is_err());
        assert!(initializer_timeout(0).is_err());
        assert!(initializer_timeout(301).is_err());
    }

    #[test]
    fn user_data_rules() {
        assert_eq!(user_data("").unwrap(), vec![]);
        assert_eq!(
            user_data(r#"{"A":"1","b_2":"x"}"#).unwrap(),
            vec![("A".into(), "1".into()), ("b_2".into(), "x".into())]
        );
        assert!(user_data("[1]").is_err());
        assert!(user_data(r#"{"A":1}"#).is_err());
        assert!(user_data(r#"{"1A":"x"}"#).is_err());
        assert!(user_data(r#"{"A-B":"x"}"#).is_err());
        assert!(user_data(r#"{"RUNTIME_FUNC_NAME":"x"}"#).is_err());
        for reserved in [
            "RUNTIME_PRE_STOP_HANDLER",
            "RUNTIME_ROOT",
            "RUNTIME_LOG_DIR",
            "RUNTIME_API_ADDR",
            "EXTENSION_API_ADDR",
            "FGS_RUNTIME_DIR",
            "FGS_EXTENSIONS",
        ] {
            let err = user_data(&format!(r#"{{"{reserved}":"x"}}"#)).expect_err(reserved);
            assert!(err.to_string().contains("reserved"), "{reserved}: {err}");
        }
        // PATH, HOME and LANG are the function's own to set.
        assert!(user_data(r#"{"PATH":"/x","HOME":"/tmp","LANG":"C"}"#).is_ok());
        // Issue 17: names FunctionGraph does not preset are the user's, whatever their prefix.
        assert_eq!(
            user_data(r#"{"RUNTIME_LOG_LEVEL":"DEBUG","FGS_REGION":"x"}"#).unwrap(),
            vec![
                ("FGS_REGION".into(), "x".into()),
                ("RUNTIME_LOG_LEVEL".into(), "DEBUG".into())
            ]
        );
        // The limit counts the whole user_data string, escapes included.
        let at_limit = format!(r#"{{"A":"{}"}}"#, "x".repeat(USER_DATA_MAX - 8));
        assert_eq!(at_limit.len(), USER_DATA_MAX);
        assert!(user_data(&at_limit).is_ok());
        let over = format!(r#"{{"A":"{}"}}"#, "x".repeat(USER_DATA_MAX - 7));
        assert!(user_data(&over).is_err());
        let big = format!(r#"{{"A":"{}"}}"#, "x".repeat(5000));
        assert!(user_data(&big).is_err());
    }
}
