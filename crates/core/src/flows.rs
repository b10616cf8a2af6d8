//! Published versions, aliases and the async invocation configuration of a function
//! (SPEC.md 2, 3).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// The async configuration is part of a function's record, which this module's versions
// snapshot: it lives below both, and is named here too, where its users look for it.
pub use crate::async_config::{
    AsyncInvokeConfig, Destination, DestinationConfig, DestinationKind, ASYNC_AGE_DEFAULT,
    ASYNC_AGE_MAX, ASYNC_RETRY_DEFAULT, ASYNC_RETRY_MAX,
};
use crate::function::FunctionRecord;

/// Published versions per function, `latest` included (SPEC.md 6).
pub const VERSIONS_MAX: usize = 20;
/// Aliases per function (SPEC.md 6).
pub const ALIASES_MAX: usize = 10;

/// An immutable snapshot of a function's code and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: String,
    pub description: String,
    pub created_ms: i64,
    /// The function as it was when published; its code package is shared, never rewritten.
    pub function: FunctionRecord,
}

/// One rule of an alias's `additional_version_strategy` (FunctionGraph's VersionStrategyRules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyRule {
    /// `Header` or `Cookie`.
    pub rule_type: String,
    pub param: String,
    /// `=`, `!=`, `in`.
    pub op: String,
    pub value: String,
}

/// Rules that send an invocation to one version (FunctionGraph's VersionStrategy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionStrategy {
    /// `and` or `or`.
    #[serde(default = "default_combine")]
    pub combine_type: String,
    pub rules: Vec<StrategyRule>,
}

fn default_combine() -> String {
    "and".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub version: String,
    pub description: String,
    /// One extra version and the percentage of traffic it gets.
    pub additional_version_weights: BTreeMap<String, u32>,
    /// Rules on headers or cookies that route to a version, checked before the weights.
    pub additional_version_strategy: BTreeMap<String, VersionStrategy>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl AliasRecord {
    /// Every version the alias can route to.
    pub fn versions(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.version.as_str())
            .chain(self.additional_version_weights.keys().map(String::as_str))
            .chain(self.additional_version_strategy.keys().map(String::as_str))
    }

    /// Picks the version for one invocation: a version whose rules match the request's
    /// headers and cookies first, else the weighted split, where `roll` is uniform in 0..100.
    pub fn route(&self, headers: &[(String, String)], roll: u32) -> &str {
        for (version, strategy) in &self.additional_version_strategy {
            if strategy.matches(headers) {
                return version;
            }
        }
        let mut acc = 0;
        for (version, weight) in &self.additional_version_weights {
            acc += *weight;
            if roll < acc {
                return version;
            }
        }
        &self.version
    }
}

fn cookie<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl StrategyRule {
    fn matches(&self, headers: &[(String, String)]) -> bool {
        let actual = match self.rule_type.to_ascii_lowercase().as_str() {
            "header" => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&self.param))
                .map(|(_, v)| v.as_str()),
            "cookie" => cookie(headers, &self.param),
            _ => None,
        };
        let Some(actual) = actual else {
            return self.op == "!=";
        };
        match self.op.as_str() {
            "=" => actual == self.value,
            "!=" => actual != self.value,
            "in" => self.value.split(',').any(|v| v.trim() == actual),
            _ => false,
        }
    }
}

impl VersionStrategy {
    pub fn matches(&self, headers: &[(String, String)]) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        if self.combine_type.eq_ignore_ascii_case("or") {
            self.rules.iter().any(|r| r.matches(headers))
        } else {
            self.rules.iter().all(|r| r.matches(headers))
        }
    }
}

/// Status of an async invocation (SPEC.md 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AsyncStatus {
    Wait,
    Running,
    Success,
    Fail,
    Discard,
}

impl AsyncStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AsyncStatus::Wait => "WAIT",
            AsyncStatus::Running => "RUNNING",
            AsyncStatus::Success => "SUCCESS",
            AsyncStatus::Fail => "FAIL",
            AsyncStatus::Discard => "DISCARD",
        }
    }

    pub fn parse(s: &str) -> Option<AsyncStatus> {
        [
            AsyncStatus::Wait,
            AsyncStatus::Running,
            AsyncStatus::Success,
            AsyncStatus::Fail,
            AsyncStatus::Discard,
        ]
        .into_iter()
        .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias() -> AliasRecord {
        AliasRecord {
            name: "prod".into(),
            version: "v1".into(),
            description: String::new(),
            additional_version_weights: BTreeMap::from([("v2".to_string(), 30)]),
            additional_version_strategy: BTreeMap::new(),
            created_ms: 0,
            modified_ms: 0,
        }
    }

    #[test]
    fn weights_split_by_roll() {
        let a = alias();
        assert_eq!(a.route(&[], 0), "v2");
        assert_eq!(a.route(&[], 29), "v2");
        assert_eq!(a.route(&[], 30), "v1");
        assert_eq!(a.route(&[], 99), "v1");
    }

    #[test]
    fn rules_win_over_weights() {
        let mut a = alias();
        a.additional_version_weights.clear();
        a.additional_version_strategy.insert(
            "v3".into(),
            VersionStrategy {
                combine_type: "and".into(),
                rules: vec![
                    StrategyRule {
                        rule_type: "Header".into(),
                        param: "x-user".into(),
                        op: "in".into(),
                        value: "alice,bob".into(),
                    },
                    StrategyRule {
                        rule_type: "Cookie".into(),
                        param: "beta".into(),
                        op: "=".into(),
                        value: "1".into(),
                    },
                ],
            },
        );
        let h = |u: &str, c: &str| {
            vec![
                ("X-User".to_string(), u.to_string()),
                ("Cookie".to_string(), c.to_string()),
            ]
        };
        assert_eq!(a.route(&h("bob", "a=2; beta=1"), 50), "v3");
        assert_eq!(a.route(&h("carol", "beta=1"), 50), "v1");
        assert_eq!(a.route(&h("bob", "beta=0"), 50), "v1");
        assert_eq!(a.route(&[], 50), "v1");
    }

    #[test]
    fn statuses_parse() {
        assert_eq!(AsyncStatus::parse("success"), Some(AsyncStatus::Success));
        assert_eq!(AsyncStatus::parse("nope"), None);
    }
}
