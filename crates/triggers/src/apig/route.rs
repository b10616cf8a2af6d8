//! APIG routes: path syntax, matching and the in-memory table every request is answered from.

use std::collections::HashMap;

use super::{Auth, MatchMode, PATH_MAX};
use crate::Target;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{name+}`: the rest of the path, one segment or more; only last.
    Greedy(String),
}

fn parse_segments(path: &str) -> Result<Vec<Seg>, String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    if path.len() > PATH_MAX {
        return Err(format!("over {PATH_MAX} characters"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut segs = Vec::new();
    let mut names = Vec::new();
    let parts: Vec<&str> = trimmed[1..].split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("{path:?} has an empty segment"));
        }
        if let Some(inner) = part.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or_else(|| format!("segment {part:?} must be a whole {{name}}"))?;
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "parameter {part:?} needs a name of letters, digits, '_' or '-'"
                ));
            }
            if names.contains(&name) {
                return Err(format!("parameter {{{name}}} appears twice"));
            }
            if greedy && i + 1 != parts.len() {
                return Err(format!("{{{name}+}} must be the last segment"));
            }
            names.push(name);
            segs.push(if greedy {
                Seg::Greedy(name.to_string())
            } else {
                Seg::Param(name.to_string())
            });
        } else if part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~@:+$,;=!".contains(&b))
        {
            segs.push(Seg::Lit((*part).to_string()));
        } else {
            return Err(format!(
                "segment {part:?} may hold only letters, digits and -._~@:+$,;=!"
            ));
        }
    }
    Ok(segs)
}

/// Whether `path` is a valid route path; the reason when it is not.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    parse_segments(path).map(drop)
}

/// The path as stored: without a trailing `/` (except the root).
pub(crate) fn normalize(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// One APIG trigger's route.
#[derive(Debug, Clone)]
pub struct Route {
    pub trigger_id: String,
    pub target: Target,
    pub path: String,
    pub method: String,
    pub match_mode: MatchMode,
    pub auth: Auth,
    segs: Vec<Seg>,
}

impl Route {
    /// A route for an APIG trigger; `None` when the stored path is not valid (it was checked
    /// when the trigger was created, so that would be a corrupt row).
    pub fn new(trigger_id: String, target: Target, config: &super::ApigConfig) -> Option<Route> {
        let segs = parse_segments(&config.path).ok()?;
        Some(Route {
            trigger_id,
            target,
            path: config.path.clone(),
            method: config.req_method.clone(),
            match_mode: config.match_mode,
            auth: config.auth,
            segs,
        })
    }

    fn methods_overlap(&self, other: &Route) -> bool {
        self.method == "ANY" || other.method == "ANY" || self.method == other.method
    }

    /// Whether `other` would answer some request this route answers in the same way: the same
    /// project, match mode and path shape (parameter names aside), and overlapping methods.
    pub fn conflicts_with(&self, other: &Route) -> bool {
        fn shape(s: &Seg) -> Option<&str> {
            match s {
                Seg::Lit(l) => Some(l.as_str()),
                Seg::Param(_) => None,
                Seg::Greedy(_) => Some("{+}"),
            }
        }
        self.target.project == other.target.project
            && self.match_mode == other.match_mode
            && self.methods_overlap(other)
            && self.segs.len() == other.segs.len()
            && self
                .segs
                .iter()
                .zip(&other.segs)
                .all(|(a, b)| shape(a) == shape(b))
    }

    /// Path parameters if the path matches (methods aside).
    fn match_path(&self, parts: &[&str]) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        for (i, seg) in self.segs.iter().enumerate() {
            match seg {
                Seg::Lit(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Seg::Param(n) => {
                    let p = parts.get(i)?;
                    params.push((n.clone(), decode(p)));
                }
                Seg::Greedy(n) => {
                    if i >= parts.len() {
                        return None;
                    }
                    let rest: Vec<String> = parts[i..].iter().map(|p| decode(p)).collect();
                    params.push((n.clone(), rest.join("/")));
                    return Some(params);
                }
            }
        }
        match self.match_mode {
            MatchMode::Normal if parts.len() != self.segs.len() => None,
            _ => Some(params),
        }
    }

    /// Ranks matches: an exact route before a prefix one, longer before shorter, literal
    /// segments before parameters, a named method before `ANY`.
    fn rank(&self, method_exact: bool) -> (bool, usize, usize, bool) {
        let literals = self
            .segs
            .iter()
            .filter(|s| matches!(s, Seg::Lit(_)))
            .count();
        (
            self.match_mode == MatchMode::Normal,
            self.segs.len(),
            literals,
            method_exact,
        )
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A request's route and its path parameters.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    pub route: &'a Route,
    pub path_params: Vec<(String, String)>,
}

/// Why no route answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// No route of the project has this path.
    NoPath,
    /// Some route has this path, none this method.
    NoMethod,
}

/// The active APIG routes of every project, rebuilt whole whenever a trigger changes.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_project: HashMap<String, Vec<Route>>,
}

impl RouteTable {
    pub fn new(routes: impl IntoIterator<Item = Route>) -> RouteTable {
        let mut by_project: HashMap<String, Vec<Route>> = HashMap::new();
        for r in routes {
            by_project
                .entry(r.target.project.clone())
                .or_default()
                .push(r);
        }
        RouteTable { by_project }
    }

    pub fn len(&self) -> usize {
        self.by_project.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The route answering `method path` (the path below `/apig/<project>`).
    pub fn lookup(&self, project: &str, method: &str, path: &str) -> Result<Match<'_>, Miss> {
        let routes = self.by_project.get(project).ok_or(Miss::NoPath)?;
        let trimmed = path.trim_end_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.trim_start_matches('/').split('/').collect()
        };
        let mut best: Option<(Match<'_>, (bool, usize, usize, bool))> = None;
        let mut path_seen = false;
        for r in routes {
            let Some(params) = r.match_path(&parts) else {
                continue;
            };
            path_seen = true;
            let exact = r.method == method;
            if !exact && r.method != "ANY" {
                continue;
            }
            let rank = r.rank(exact);
            if best.as_ref().is_none_or(|(_, b)| rank > *b) {
                best = Some((
                    Match {
                        route: r,
                        path_params: params,
                    },
                    rank,
                ));
            }
        }
        match best {
            Some((m, _)) => Ok(m),
            None if path_seen => Err(Miss::NoMethod),
            None => Err(Miss::NoPath),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::apig::ApigConfig;
    use crate::TriggerType;

    fn route(id: &str, path: &str, method: &str, mode: &str) -> Route {
        let c = ApigConfig::parse(&json!({"path": path, "req_method": method, "match_mode": mode}))
            .unwrap();
        let target = Target {
            project: "p".into(),
            package: "default".into(),
            function: format!("fn-{id}"),
            qualifier: "latest".into(),
        };
        Route::new(id.into(), target, &c).unwrap()
    }

    fn hit(t: &RouteTable, method: &str, path: &str) -> Option<String> {
        t.lookup("p", method, path)
            .ok()
            .map(|m| m.route.trigger_id.clone())
    }

    #[test]
    fn exact_prefix_method_and_params() {
        let t = RouteTable::new([
            route("exact", "/api/users", "GET", "NORMAL"),
            route("any", "/api/users", "ANY", "NORMAL"),
            route("prefix", "/api", "ANY", "SWA"),
            route("param", "/api/users/{id}", "GET", "NORMAL"),
            route("greedy", "/files/{key+}", "GET", "NORMAL"),
            route("root", "/", "GET", "SWA"),
        ]);
        assert_eq!(hit(&t, "GET", "/api/users").as_deref(), Some("exact"));
        assert_eq!(hit(&t, "GET", "/api/users/").as_deref(), Some("exact"));
        assert_eq!(hit(&t, "POST", "/api/users").as_deref(), Some("any"));
        assert_eq!(hit(&t, "POST", "/api/other/x").as_deref(), Some("prefix"));
        assert_eq!(hit(&t, "GET", "/api").as_deref(), Some("prefix"));
        // A prefix is whole segments: /apix is not under /api.
        assert_eq!(hit(&t, "GET", "/apix").as_deref(), Some("root"));
        let m = t.lookup("p", "GET", "/api/users/a%20b").unwrap();
        assert_eq!(m.route.trigger_id, "param");
        assert_eq!(m.path_params, vec![("id".to_string(), "a b".to_string())]);
        let m = t.lookup("p", "GET", "/files/x/y.txt").unwrap();
        assert_eq!(
            m.path_params,
            vec![("key".to_string(), "x/y.txt".to_string())]
        );
        assert_eq!(t.lookup("other", "GET", "/api").unwrap_err(), Miss::NoPath);
    }

    #[test]
    fn misses_tell_path_from_method() {
        let t = RouteTable::new([route("a", "/a", "GET", "NORMAL")]);
        assert_eq!(t.lookup("p", "POST", "/a").unwrap_err(), Miss::NoMethod);
        assert_eq!(t.lookup("p", "GET", "/a/b").unwrap_err(), Miss::NoPath);
        assert_eq!(t.lookup("p", "GET", "/b").unwrap_err(), Miss::NoPath);
    }

    #[test]
    fn conflicts() {
        let a = route("a", "/x/{id}", "GET", "NORMAL");
        assert!(a.conflicts_with(&route("b", "/x/{other}", "ANY", "NORMAL")));
        assert!(!a.conflicts_with(&route("b", "/x/{id}", "POST", "NORMAL")));
        assert!(!a.conflicts_with(&route("b", "/x/{id}", "GET", "SWA")));
        assert!(!a.conflicts_with(&route("b", "/x/y", "GET", "NORMAL")));
        assert!(!a.conflicts_with(&route("b", "/x", "GET", "NORMAL")));
    }
}
