//! Function URNs and every shortened form the API accepts (SPEC.md 1).
//!
//! Full form: `urn:fss:<region>:<project_id>:function:<package>:<func_name>:<version>`, where the
//! version field is `latest`, a published version name, or `!<alias>`. Shortened forms:
//! `<name>`, `<package>:<name>`, `<project>:<package>:<name>`,
//! `<project>:<package>:<name>:<version|!alias>` and the 7-field URN without a version.

use std::fmt;

use crate::function::DEFAULT_PACKAGE;
use crate::validate;

pub const LATEST: &str = "latest";

/// Which code and configuration of a function a reference selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// The unpublished, editable version.
    Latest,
    /// A published version by name.
    Version(String),
    /// An alias, written `!name` in the version field.
    Alias(String),
}

impl Qualifier {
    /// Parses the version field of a URN.
    pub fn parse(s: &str) -> Result<Qualifier, UrnError> {
        if s == LATEST {
            Ok(Qualifier::Latest)
        } else if let Some(alias) = s.strip_prefix('!') {
            if validate::alias_name_ok(alias) {
                Ok(Qualifier::Alias(alias.to_string()))
            } else {
                Err(UrnError::Qualifier(s.to_string()))
            }
        } else if validate::version_name_ok(s) {
            Ok(Qualifier::Version(s.to_string()))
        } else {
            Err(UrnError::Qualifier(s.to_string()))
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str(LATEST),
            Qualifier::Version(v) => f.write_str(v),
            Qualifier::Alias(a) => write!(f, "!{a}"),
        }
    }
}

/// A reference to a function (and optionally a version or alias of it) as a caller wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionRef {
    /// The project named in the reference, if any; the API checks it against the path's project.
    pub project: Option<String>,
    /// The region named in a full URN, if any.
    pub region: Option<String>,
    pub package: String,
    pub name: String,
    /// `None` when the reference names no version: it then means the function as a whole (for
    /// delete) or `latest` (for everything else).
    pub qualifier: Option<Qualifier>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrnError {
    #[error("function reference is empty")]
    Empty,
    #[error("function URN {0:?} is malformed: expected urn:fss:<region>:<project_id>:function:<package>:<func_name>[:<version>]")]
    Malformed(String),
    #[error("function reference {0:?} has too many fields")]
    TooManyFields(String),
    #[error("function name {0:?} is invalid")]
    Name(String),
    #[error("package name {0:?} is invalid")]
    Package(String),
    #[error("project id {0:?} is invalid")]
    Project(String),
    #[error("version or alias {0:?} is invalid")]
    Qualifier(String),
}

impl FunctionRef {
    /// Parses a function reference in any form of SPEC.md section 1. The input is the path segment
    /// after percent-decoding.
    pub fn parse(s: &str) -> Result<FunctionRef, UrnError> {
        if s.is_empty() {
            return Err(UrnError::Empty);
        }
        let fields: Vec<&str> = s.split(':').collect();
        if fields[0] == "urn" {
            return Self::parse_urn(s, &fields);
        }
        let (project, package, name, qualifier) = match fields.as_slice() {
            [name] => (None, DEFAULT_PACKAGE, *name, None),
            [package, name] => (None, *package, *name, None),
            [project, package, name] => (Some(*project), *package, *name, None),
            [project, package, name, q] => (Some(*project), *package, *name, Some(*q)),
            _ => return Err(UrnError::TooManyFields(s.to_string())),
        };
        Self::build(None, project, package, name, qualifier)
    }

    fn parse_urn(s: &str, fields: &[&str]) -> Result<FunctionRef, UrnError> {
        let (region, project, package, name, qualifier) = match fields {
            ["urn", "fss", region, project, "function", package, name] => {
                (*region, *project, *package, *name, None)
            }
            ["urn", "fss", region, project, "function", package, name, q] => {
                (*region, *project, *package, *name, Some(*q))
            }
            _ => return Err(UrnError::Malformed(s.to_string())),
        };
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(UrnError::Malformed(s.to_string()));
        }
        Self::build(Some(region), Some(project), package, name, qualifier)
    }

    fn build(
        region: Option<&str>,
        project: Option<&str>,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionRef, UrnError> {
        if let Some(p) = project {
            if !validate::project_id_ok(p) {
                return Err(UrnError::Project(p.to_string()));
            }
        }
        if !validate::package_name_ok(package) {
            return Err(UrnError::Package(package.to_string()));
        }
        if !validate::func_name_ok(name) {
            return Err(UrnError::Name(name.to_string()));
        }
        let qualifier = qualifier.map(Qualifier::parse).transpose()?;
        Ok(FunctionRef {
            project: project.map(str::to_string),
            region: region.map(str::to_string),
            package: package.to_string(),
            name: name.to_string(),
            qualifier,
        })
    }

    /// The qualifier, with an absent one meaning `latest`.
    pub fn qualifier_or_latest(&self) -> Qualifier {
        self.qualifier.clone().unwrap_or(Qualifier::Latest)
    }
}

/// The URN of a function without a version field (`func_urn` of `latest` carries `:latest`).
pub fn function_urn(region: &str, project: &str, package: &str, name: &str) -> String {
    format!("urn:fss:{region}:{project}:function:{package}:{name}")
}

/// The URN of one version or alias of a function.
pub fn qualified_urn(
    region: &str,
    project: &str,
    package: &str,
    name: &str,
    q: &Qualifier,
) -> String {
    format!("urn:fss:{region}:{project}:function:{package}:{name}:{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Option<Qualifier> {
        Some(Qualifier::parse(s).unwrap())
    }

    #[test]
    fn every_short_form() {
        let r = FunctionRef::parse("hello").unwrap();
        assert_eq!(
            (r.project, r.package.as_str(), r.name.as_str(), r.qualifier),
            (None, "default", "hello", None)
        );

        let r = FunctionRef::parse("pkg:hello").unwrap();
        assert_eq!((r.package.as_str(), r.name.as_str()), ("pkg", "hello"));

        let r = FunctionRef::parse("p1:pkg:hello").unwrap();
        assert_eq!(r.project.as_deref(), Some("p1"));
        assert_eq!(r.qualifier, None);

        let r = FunctionRef::parse("p1:pkg:hello:v2").unwrap();
        assert_eq!(r.qualifier, q("v2"));
        let r = FunctionRef::parse("p1:pkg:hello:!prod").unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Alias("prod".into())));
        let r = FunctionRef::parse("p1:pkg:hello:latest").unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Latest));
    }

    #[test]
    fn full_urns() {
        let r = FunctionRef::parse("urn:fss:local:p1:function:default:hello").unwrap();
        assert_eq!(r.region.as_deref(), Some("local"));
        assert_eq!(r.project.as_deref(), Some("p1"));
        assert_eq!(r.qualifier, None);
        assert_eq!(r.qualifier_or_latest(), Qualifier::Latest);

        let r = FunctionRef::parse("urn:fss:local:p1:function:default:hello:!a1").unwrap();
        assert_eq!(r.qualifier, Some(Qualifier::Alias("a1".into())));
        assert_eq!(
            qualified_urn("local", "p1", "default", "hello", &r.qualifier.unwrap()),
            "urn:fss:local:p1:function:default:hello:!a1"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "urn:fss:local:p1:fn:default:hello",
            "urn:fss:local:p1:function:default",
            "urn:fss::p1:function:default:hello",
            "a:b:c:d:e",
            "1hello",
            "hello-",
            "p1:pkg:hello:!",
            "p1:pkg:hello:!9bad",
            "p1:pkg:hello:a/b",
            "../etc",
            "pkg/x:hello",
            "p1:pkg:../x",
            "p 1:pkg:hello",
        ] {
            assert!(FunctionRef::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
