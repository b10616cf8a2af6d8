//! Triggers of fgs (SPEC.md 2, 4): what starts an invocation other than an API call. Each type
//! is one module implementing [`TriggerType`]: [`timer`] (`Rate`, `Cron`, `@every`; its
//! [`timer::Scheduler`] fires async invocations) and [`apig`] (HTTP routes on fgs's own listener;
//! its [`apig::RouteTable`] matches requests and shapes the APIG event and response).
//!
//! [`TriggerHub`] is the running side: it loads the stored triggers from `fgs-store`, runs the
//! scheduler, keeps the route table, and follows the change feed to stay in step with storage.
//! It knows no SQL and no HTTP server: invocation comes in through [`timer::Fire`], which the
//! binary implements over `fgs-invoke`; `fgs-api` keeps the trigger CRUD and turns
//! [`TriggerError`]s into FSS codes.
#![forbid(unsafe_code)]

pub mod apig;
mod hub;
pub mod schedule;
pub mod timer;

use fgs_core::trigger::TriggerKind;
use serde_json::Value;

pub use hub::{target, TriggerHub};
pub use schedule::{Schedule, ScheduleError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("trigger_type_code {0:?} is not supported: fgs runs TIMER and APIG triggers")]
    UnsupportedType(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("event_data.{field} is invalid: {reason}")]
    Field { field: &'static str, reason: String },
}

impl TriggerError {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> TriggerError {
        TriggerError::Field {
            field,
            reason: reason.into(),
        }
    }
}

/// The function version a trigger invokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub project: String,
    pub package: String,
    pub function: String,
    /// `latest`, a version name, or `!alias`.
    pub qualifier: String,
}

/// What fgs knows when it shows a trigger's `event_data` back: things the user did not send.
#[derive(Debug, Clone)]
pub struct Shown<'a> {
    pub trigger_id: &'a str,
    pub project: &'a str,
    /// `http://host:port` of fgs's listener, for APIG's `invoke_url`.
    pub base_url: &'a str,
}

/// One kind of trigger: how its `event_data` is validated when created, and shown afterwards.
pub trait TriggerType: Sized {
    /// FunctionGraph's `trigger_type_code`.
    const CODE: &'static str;

    /// Validates the `event_data` of a create request.
    fn parse(event_data: &Value) -> Result<Self, TriggerError>;

    /// The normalised `event_data` that is stored: what the user sent that fgs keeps, with
    /// defaults filled in. [`TriggerType::parse`] of it gives back the same trigger.
    fn stored(&self) -> Value;

    /// The `event_data` the API answers with.
    fn shown(&self, ctx: &Shown<'_>) -> Value;
}

/// A trigger of any supported type.
#[derive(Debug, Clone)]
pub enum TriggerConfig {
    Timer(timer::TimerConfig),
    Apig(apig::ApigConfig),
}

impl TriggerConfig {
    pub fn parse(type_code: &str, event_data: &Value) -> Result<TriggerConfig, TriggerError> {
        match type_code {
            timer::TimerConfig::CODE => timer::TimerConfig::parse(event_data).map(Self::Timer),
            apig::ApigConfig::CODE => apig::ApigConfig::parse(event_data).map(Self::Apig),
            other => Err(TriggerError::UnsupportedType(other.to_string())),
        }
    }

    /// The kind, as stored beside the trigger.
    pub fn kind(&self) -> TriggerKind {
        match self {
            Self::Timer(_) => TriggerKind::Timer,
            Self::Apig(_) => TriggerKind::Apig,
        }
    }

    pub fn stored(&self) -> Value {
        match self {
            Self::Timer(t) => t.stored(),
            Self::Apig(a) => a.stored(),
        }
    }

    pub fn shown(&self, ctx: &Shown<'_>) -> Value {
        match self {
            Self::Timer(t) => t.shown(ctx),
            Self::Apig(a) => a.shown(ctx),
        }
    }
}

/// A string field of `event_data`: absent and `null` are `None`, anything but a string is an
/// error.
pub(crate) fn opt_str<'a>(
    v: &'a Value,
    field: &'static str,
) -> Result<Option<&'a str>, TriggerError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TriggerError::field(field, "must be a string")),
    }
}

/// A name as FunctionGraph's console takes them for timers: 1-64 letters, digits, `-` and
/// `_`, starting with a letter.
pub(crate) fn name_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
