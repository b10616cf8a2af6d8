//! A trigger's kind and status (SPEC.md 2: `trigger_type_code`, `trigger_status`), stored and
//! sent as FunctionGraph spells them. What each kind's `event_data` means is `fgs-triggers`'s.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The trigger kinds fgs runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TriggerKind {
    Timer,
    Apig,
}

/// Whether a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TriggerStatus {
    Active,
    Disabled,
}

/// A kind or status fgs does not know: bad input, or a stored row fgs cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 2] = [TriggerKind::Timer, TriggerKind::Apig];

    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerKind::Timer => "TIMER",
            TriggerKind::Apig => "APIG",
        }
    }
}

impl TriggerStatus {
    pub const ALL: [TriggerStatus; 2] = [TriggerStatus::Active, TriggerStatus::Disabled];

    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerStatus::Active => "ACTIVE",
            TriggerStatus::Disabled => "DISABLED",
        }
    }
}

impl FromStr for TriggerKind {
    type Err = UnknownName;

    /// Exact, as stored; the API's own refusal of other kinds is `fgs-triggers`'s.
    fn from_str(s: &str) -> Result<TriggerKind, UnknownName> {
        TriggerKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "trigger_type_code",
                value: s.to_string(),
            })
    }
}

impl FromStr for TriggerStatus {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<TriggerStatus, UnknownName> {
        TriggerStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "trigger_status",
                value: s.to_string(),
            })
    }
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for TriggerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_functiongraphs_byte_for_byte() {
        for k in TriggerKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(k.as_str().parse::<TriggerKind>(), Ok(k));
        }
        for s in TriggerStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<TriggerStatus>(), Ok(s));
        }
        assert_eq!(TriggerKind::Apig.to_string(), "APIG");
        assert_eq!(TriggerStatus::Disabled.to_string(), "DISABLED");
    }

    #[test]
    fn unknown_or_differently_cased_names_are_errors() {
        for bad in ["", "timer", "OBS", "DMS"] {
            assert!(bad.parse::<TriggerKind>().is_err(), "{bad}");
        }
        let e = "active".parse::<TriggerStatus>().unwrap_err();
        assert_eq!(e.to_string(), r#"unknown trigger_status "active""#);
    }
}
