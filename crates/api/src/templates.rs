//! Built-in function templates (`GET /templates`, `GET /templates/{id}`, docs/api.md): a hello
//! world per runtime fgs runs from source (Custom, http, Python, Node.js, PHP), an APIG-triggered
//! and a timer-triggered function, and a Custom function with an extension. Their code is
//! compiled in (`crates/api/templates/`, `examples/extension-counter/`); `fgs function create
//! --template ID` creates a function, and the template's triggers, from one.

use std::collections::HashMap;

use crate::extract::Path;
use axum::extract::Query;
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::ListParams;

/// How a template's code is shipped.
enum Code {
    /// One file: the runtime's inline file (`bootstrap`, `index.py`, ...).
    Inline(&'static str),
    /// Several files, `(path, content, mode)`, made into a zip when asked for.
    Zip(&'static [(&'static str, &'static str, u32)]),
}

struct Template {
    id: &'static str,
    title: &'static str,
    description: &'static str,
    runtime: &'static str,
    handler: &'static str,
    /// FunctionGraph's `scene`: what the template is for.
    scene: &'static str,
    /// FunctionGraph's `service`: the cloud service it works with.
    service: &'static str,
    code: Code,
    /// `(trigger_type, event_data JSON)`.
    triggers: &'static [(&'static str, &'static str)],
}

const EXTENSION: &[(&str, &str, u32)] = &[
    (
        "bootstrap",
        include_str!("../../../examples/extension-counter/bootstrap"),
        0o755,
    ),
    (
        "extension/extensionCounter.sh",
        include_str!("../../../examples/extension-counter/extension/extensionCounter.sh"),
        0o755,
    ),
    (
        "extension/counter.py",
        include_str!("../../../examples/extension-counter/extension/counter.py"),
        0o644,
    ),
];

const TEMPLATES: &[Template] = &[
    Template {
        id: "hello-custom",
        title: "Hello world (Custom runtime)",
        description: "A Custom runtime in POSIX sh and curl that answers every event with a greeting.",
        runtime: "Custom",
        handler: "bootstrap",
        scene: "hello-world",
        service: "none",
        code: Code::Inline(include_str!("../templates/hello-custom.sh")),
        triggers: &[],
    },
    Template {
        id: "hello-http",
        title: "Hello world (http runtime)",
        description: "A web server on 127.0.0.1:8000 (python3) that answers every request.",
        runtime: "http",
        handler: "bootstrap",
        scene: "hello-world",
        service: "none",
        code: Code::Inline(include_str!("../templates/hello-http.sh")),
        triggers: &[],
    },
    Template {
        id: "hello-python",
        title: "Hello world (Python)",
        description: "A Python handler that returns a greeting with the event.",
        runtime: "Python3.10",
        handler: "index.handler",
        scene: "hello-world",
        service: "none",
        code: Code::Inline(include_str!("../templates/hello-python.py")),
        triggers: &[],
    },
    Template {
        id: "hello-nodejs",
        title: "Hello world (Node.js)",
        description: "A Node.js handler that returns a greeting with the event.",
        runtime: "Node.js20.15",
        handler: "index.handler",
        scene: "hello-world",
        service: "none",
        code: Code::Inline(include_str!("../templates/hello-nodejs.js")),
        triggers: &[],
    },
    Template {
        id: "hello-php",
        title: "Hello world (PHP)",
        description: "A PHP handler that returns a greeting with the event.",
        runtime: "PHP8.3",
        handler: "index.handler",
        scene: "hello-world",
        service: "none",
        code: Code::Inline(include_str!("../templates/hello-php.php")),
        triggers: &[],
    },
    Template {
        id: "apig-python",
        title: "HTTP API (APIG trigger, Python)",
        description: "Answers HTTP requests through an APIG trigger at /hello: the event is the request, the result the response.",
        runtime: "Python3.10",
        handler: "index.handler",
        scene: "apig",
        service: "APIG",
        code: Code::Inline(include_str!("../templates/apig-python.py")),
        triggers: &[(
            "APIG",
            r#"{"name":"hello","path":"/hello","protocol":"HTTPS","req_method":"ANY","auth":"NONE","match_mode":"NORMAL","env_name":"RELEASE","type":1}"#,
        )],
    },
    Template {
        id: "timer-python",
        title: "Scheduled task (timer trigger, Python)",
        description: "Runs every minute through a timer trigger and logs its user_event.",
        runtime: "Python3.10",
        handler: "index.handler",
        scene: "timer",
        service: "TIMER",
        code: Code::Inline(include_str!("../templates/timer-python.py")),
        triggers: &[(
            "TIMER",
            r#"{"name":"every_minute","schedule_type":"Rate","schedule":"1m","user_event":"tick"}"#,
        )],
    },
    Template {
        id: "extension-custom",
        title: "Extension (Custom runtime)",
        description: "A Custom function with an extension that counts the invocations of its instance (examples/extension-counter).",
        runtime: "Custom",
        handler: "bootstrap",
        scene: "extension",
        service: "none",
        code: Code::Zip(EXTENSION),
        triggers: &[],
    },
];

impl Template {
    fn json(&self) -> ApiResult<Value> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (code_type, code) = match &self.code {
            Code::Inline(src) => ("inline", b64(src.as_bytes())),
            Code::Zip(files) => {
                let files: Vec<(&str, &[u8], u32)> = files
                    .iter()
                    .map(|(p, c, m)| (*p, c.as_bytes(), *m))
                    .collect();
                ("zip", b64(&fgs_package::files_zip(&files)?))
            }
        };
        let triggers: Vec<Value> = self
            .triggers
            .iter()
            .map(|(kind, data)| {
                json!({"trigger_name": kind.to_lowercase(), "trigger_type": kind,
                       "event_type": kind.to_lowercase(), "event_data": data})
            })
            .collect();
        Ok(json!({
            "id": self.id,
            "type": 0,
            "title": self.title,
            "template_name": self.id,
            "description": self.description,
            "runtime": self.runtime,
            "handler": self.handler,
            "code_type": code_type,
            "code": code,
            "timeout": 30,
            "memory_size": 128,
            "trigger_metadata_list": triggers,
            "temp_detail": {"input": "", "output": "", "warning": ""},
            "user_data": "",
            "encrypted_user_data": "",
            "dependencies": [],
            "scene": self.scene,
            "service": self.service,
        }))
    }
}

pub async fn list(Query(q): Query<HashMap<String, String>>) -> ApiResult<Json<Value>> {
    let q = ListParams(&q);
    let marker = q.num("marker", 0)? as usize;
    let max = q.num("maxitems", 400)?.clamp(1, 400) as usize;
    let wanted = |t: &&Template| {
        q.get("runtime").is_none_or(|r| r == t.runtime)
            && q.get("scene").is_none_or(|s| s == t.scene)
            && q.get("service").is_none_or(|s| s == t.service)
    };
    let page = TEMPLATES
        .iter()
        .filter(wanted)
        .skip(marker)
        .take(max)
        .map(Template::json)
        .collect::<ApiResult<Vec<Value>>>()?;
    let next = marker + page.len();
    Ok(Json(json!({"func_templates": page, "next_marker": next})))
}

pub async fn get(Path((_project, id)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    let t = TEMPLATES
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("template {id} does not exist")))?;
    Ok(Json(t.json()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_a_valid_function() {
        for t in TEMPLATES {
            let rt = fgs_core::validate::runtime(t.runtime).expect("a known runtime");
            fgs_core::validate::handler(rt, t.handler).expect("a valid handler");
            let j = t.json().expect("the template's code packs");
            assert!(
                !j["code"].as_str().unwrap_or_default().is_empty(),
                "{}",
                t.id
            );
            for (_, data) in t.triggers {
                serde_json::from_str::<Value>(data).expect("event_data is JSON");
            }
        }
        let mut ids: Vec<&str> = TEMPLATES.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TEMPLATES.len());
    }
}
