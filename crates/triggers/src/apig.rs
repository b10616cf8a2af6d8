//! APIG triggers (SPEC.md 2, 4): HTTP routes on fgs's own listener. A route is a path (with
//! `{name}` segments), a method or `ANY`, a match mode (`NORMAL`: the whole path; `SWA`: a
//! path prefix, by whole segments) and an auth mode (`NONE` or `IAM`). The [`RouteTable`] is
//! built from the stored triggers and answers every request from memory; [`event`] and
//! [`parse_response`] are the two ends of FunctionGraph's APIG event contract.

mod event;
mod route;

use serde_json::{json, Value};

pub use event::{event, parse_response, ApigResponse, BadResponse, HttpRequest};
pub use route::{Match, Miss, Route, RouteTable};

use crate::{opt_str, Shown, TriggerError, TriggerType};

pub const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "ANY",
];

/// How a route matches a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// The whole path.
    Normal,
    /// A prefix of the path, by whole segments.
    Swa,
}

impl MatchMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchMode::Normal => "NORMAL",
            MatchMode::Swa => "SWA",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// A caller signed like an API call (AK/SK or `X-Auth-Token`) for the trigger's project.
    Iam,
}

impl Auth {
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::None => "NONE",
            Auth::Iam => "IAM",
        }
    }
}

/// An APIG trigger's `event_data`.
#[derive(Debug, Clone)]
pub struct ApigConfig {
    /// The API's name.
    pub name: String,
    pub path: String,
    /// Upper-case method, or `ANY`.
    pub req_method: String,
    pub match_mode: MatchMode,
    pub auth: Auth,
    /// Fields fgs does not act on but echoes back, as the SDK sent them (`group_id`,
    /// `env_name`, `protocol`, `func_info`, ...).
    pub echoed: serde_json::Map<String, Value>,
}

/// The fields that fgs keeps and echoes without acting on them.
const ECHOED: &[&str] = &[
    "type",
    "protocol",
    "group_id",
    "group_name",
    "env_name",
    "env_id",
    "func_info",
    "sl_domain",
    "backend_type",
    "instance_id",
];

/// The longest route path [FGS].
pub const PATH_MAX: usize = 1024;

impl TriggerType for ApigConfig {
    const CODE: &'static str = "APIG";

    fn parse(v: &Value) -> Result<ApigConfig, TriggerError> {
        let path = opt_str(v, "path")?
            .ok_or_else(|| TriggerError::field("path", "required, e.g. /hello"))?;
        route::check_path(path).map_err(|r| TriggerError::field("path", r))?;
        let req_method = opt_str(v, "req_method")?
            .unwrap_or("ANY")
            .to_ascii_uppercase();
        if !METHODS.contains(&req_method.as_str()) {
            return Err(TriggerError::field(
                "req_method",
                format!("{req_method:?}: use {}", METHODS.join(", ")),
            ));
        }
        let match_mode = match opt_str(v, "match_mode")?.unwrap_or("NORMAL") {
            "NORMAL" => MatchMode::Normal,
            "SWA" => MatchMode::Swa,
            other => {
                return Err(TriggerError::field(
                    "match_mode",
                    format!("{other:?}: use NORMAL (exact path) or SWA (path prefix)"),
                ))
            }
        };
        let auth = match opt_str(v, "auth")?.unwrap_or("IAM") {
            "NONE" => Auth::None,
            "IAM" => Auth::Iam,
            "APP" => {
                return Err(TriggerError::field(
                    "auth",
                    "APP (app key and secret) is not supported by fgs: use IAM or NONE",
                ))
            }
            other => {
                return Err(TriggerError::field(
                    "auth",
                    format!("{other:?}: use IAM or NONE"),
                ))
            }
        };
        let name = opt_str(v, "name")?.unwrap_or_default();
        if name.len() > 64 {
            return Err(TriggerError::field("name", "over 64 characters"));
        }
        let mut echoed = serde_json::Map::new();
        for k in ECHOED {
            if let Some(x) = v.get(*k).filter(|x| !x.is_null()) {
                echoed.insert((*k).to_string(), x.clone());
            }
        }
        Ok(ApigConfig {
            name: name.to_string(),
            path: route::normalize(path),
            req_method,
            match_mode,
            auth,
            echoed,
        })
    }

    fn stored(&self) -> Value {
        let mut m = self.echoed.clone();
        m.insert("name".into(), json!(self.name));
        m.insert("path".into(), json!(self.path));
        m.insert("req_method".into(), json!(self.req_method));
        m.insert("match_mode".into(), json!(self.match_mode.as_str()));
        m.insert("auth".into(), json!(self.auth.as_str()));
        Value::Object(m)
    }

    fn shown(&self, ctx: &Shown<'_>) -> Value {
        let mut v = self.stored();
        let m = v.as_object_mut().expect("stored() is an object");
        let name = if self.name.is_empty() {
            ctx.trigger_id
        } else {
            &self.name
        };
        m.insert("name".into(), json!(name));
        m.insert("api_name".into(), json!(name));
        m.insert("api_id".into(), json!(ctx.trigger_id));
        m.insert("triggerid".into(), json!(ctx.trigger_id));
        m.insert(
            "invoke_url".into(),
            json!(invoke_url(ctx.base_url, ctx.project, &self.path)),
        );
        let domain = ctx
            .base_url
            .split_once("://")
            .map_or(ctx.base_url, |(_, rest)| rest);
        m.entry("sl_domain").or_insert(json!(domain));
        m.entry("env_name").or_insert(json!("RELEASE"));
        m.entry("protocol").or_insert(json!("HTTP"));
        m.entry("type").or_insert(json!(1));
        m.entry("backend_type").or_insert(json!("FUNCTION"));
        v
    }
}

/// Where an APIG trigger's route is served [FGS]: `<base>/apig/<project_id><path>`. FunctionGraph
/// gives each API group its own domain; one fgs listener serves every project, so the project
/// is the first path segment instead.
pub fn invoke_url(base_url: &str, project: &str, path: &str) -> String {
    format!(
        "{}{}",
        base_url.trim_end_matches('/'),
        route_prefix(project, path)
    )
}

/// The listener path of a route: `/apig/<project_id><path>`.
pub fn route_prefix(project: &str, path: &str) -> String {
    format!("/apig/{project}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(c: &ApigConfig) -> Value {
        c.shown(&Shown {
            trigger_id: "t-1",
            project: "p1",
            base_url: "http://127.0.0.1:8080",
        })
    }

    #[test]
    fn defaults_and_echo() {
        let c = ApigConfig::parse(&json!({"path": "/hello/", "group_id": "g1",
            "func_info": {"timeout": 5000}, "env_name": "RELEASE", "unknown": 1}))
        .unwrap();
        assert_eq!(c.path, "/hello");
        assert_eq!(c.req_method, "ANY");
        assert_eq!(c.match_mode, MatchMode::Normal);
        assert_eq!(c.auth, Auth::Iam);
        let s = c.stored();
        assert_eq!(s["group_id"], "g1");
        assert!(s.get("unknown").is_none());
        let again = ApigConfig::parse(&s).unwrap();
        assert_eq!(again.stored(), s);
        let v = shown(&c);
        assert_eq!(v["invoke_url"], "http://127.0.0.1:8080/apig/p1/hello");
        assert_eq!(v["triggerid"], "t-1");
        assert_eq!(v["name"], "t-1");
        assert_eq!(v["sl_domain"], "127.0.0.1:8080");
    }

    #[test]
    fn refusals_name_the_field() {
        for (v, field) in [
            (json!({}), "path"),
            (json!({"path": "hello"}), "path"),
            (json!({"path": "/a//b"}), "path"),
            (json!({"path": "/a b"}), "path"),
            (json!({"path": "/a/{x"}), "path"),
            (json!({"path": "/a/{x}/{x}"}), "path"),
            (json!({"path": "/a", "req_method": "FETCH"}), "req_method"),
            (json!({"path": "/a", "match_mode": "PREFIX"}), "match_mode"),
            (json!({"path": "/a", "auth": "APP"}), "auth"),
            (json!({"path": "/a", "auth": "none"}), "auth"),
        ] {
            match ApigConfig::parse(&v) {
                Err(TriggerError::Field { field: f, .. }) => assert_eq!(f, field, "{v}"),
                other => panic!("{v}: {other:?}"),
            }
        }
    }
}
