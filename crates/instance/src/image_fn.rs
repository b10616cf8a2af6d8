//! Image functions (FunctionGraph's `Custom Image`): the image's own process serves HTTP on
//! port 8000 inside the instance, and fgs plays the platform, as for HTTP functions
//! ([`crate::fn_server`] runs both). The instance is ready once the port accepts; an initializer
//! is `POST /init`, once, before that; each event of an event function is `POST /invoke` with
//! the event as the body and the `X-CFF-*` headers, and its response body is the result (a
//! non-2xx answer is a function error). An HTTP function from an image is driven by `http_fn`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::limits::SYNC_PAYLOAD_MAX;
use fgs_core::FunctionError;
use fgs_sandbox::ProcessHandle;
use http_body_util::{BodyExt, Limited};

use crate::adapters::Launch;
use crate::config::{Hook, ImageRun, Request};
use crate::error::StartError;
use crate::fn_server::{self, exchange, gone, Conn, Outgoing, Step, PORT};
use crate::http_fn;
use crate::runtime_api::ApiState;

/// Where a program without a `/` is looked for when the image sets no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image's process: its command (entrypoint and cmd, or the function's overrides), with a
/// bare program name found on the image's `PATH` inside its root.
pub(crate) fn launch(image: &ImageRun) -> Result<Launch, StartError> {
    let Some((first, rest)) = image.argv.split_first() else {
        return Err(StartError::ImageCommand(
            "the image has no entrypoint or cmd, and the function sets no command".into(),
        ));
    };
    let program = if first.contains('/') {
        Path::new(cwd(image)).join(first)
    } else {
        let path = image
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| Path::new(d).join(first))
            .find(|p| in_root(&image.rootfs, p).symlink_metadata().is_ok())
            .ok_or_else(|| {
                StartError::ImageCommand(format!("{first} is not on the image's PATH ({path})"))
            })?
    };
    if in_root(&image.rootfs, &program).symlink_metadata().is_err() {
        return Err(StartError::ImageCommand(format!(
            "{} is not in the image",
            program.display()
        )));
    }
    Ok(Launch {
        program,
        args: rest.to_vec(),
        env: Vec::new(),
        mounts: Vec::new(),
    })
}

/// Where `inside` (absolute, as the instance sees it) is under the image's root on the host;
/// only ever inspected, never followed for writing.
fn in_root(rootfs: &Path, inside: &Path) -> PathBuf {
    rootfs.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// The working directory: the function's, else the image's, else `/`.
pub(crate) fn cwd(image: &ImageRun) -> &str {
    if image.working_dir.is_empty() {
        "/"
    } else {
        &image.working_dir
    }
}

/// The instance's environment: the image's own, then fgs's `RUNTIME_*` values and the others
/// fgs sets (where the image sets a name that fgs only defaults, such as `PATH` or `HOME`, the
/// image's stays), then the function's variables, which win over both.
pub(crate) fn environment(
    image: &[(String, String)],
    platform: Vec<(String, String)>,
    user: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image.to_vec();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(e) => e.1 = v,
        None => env.push((k, v)),
    };
    for (k, v) in platform {
        let image_has = image.iter().any(|(n, _)| *n == k);
        if image_has && !k.starts_with("RUNTIME_") && !user.iter().any(|(n, _)| *n == k) {
            continue;
        }
        set(&mut env, k, v);
    }
    for (k, v) in user {
        set(&mut env, k.clone(), v.clone());
    }
    env
}

/// Serves the instance's events until its queue closes: waits for port 8000, calls the
/// initializer, marks the instance ready, and forwards each event as `POST /invoke`.
pub(crate) async fn drive(
    api: Arc<ApiState>,
    process: ProcessHandle,
    concurrency: usize,
    env: Vec<(String, String)>,
    initializer: Option<Hook>,
) {
    let invoke = Invoke {
        fixed: http_fn::cff_headers(&env),
        initializer,
    };
    fn_server::run(api, process, concurrency, invoke).await;
}

/// An image function's step: `POST /init` once before the instance is ready, then
/// `POST /invoke` per event.
struct Invoke {
    /// The `X-CFF-*` headers of every request.
    fixed: Vec<(String, String)>,
    initializer: Option<Hook>,
}

impl Step for Invoke {
    async fn prepare(
        &self,
        process: &ProcessHandle,
        conn: &mut Option<Conn>,
    ) -> Result<(), FunctionError> {
        let Some(hook) = &self.initializer else {
            return Ok(());
        };
        let id = uuid::Uuid::new_v4().to_string();
        let req = outgoing("/init", &id, &self.fixed, Bytes::new());
        match tokio::time::timeout(hook.timeout, call(process, conn, req)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(FunctionError::new(
                codes::INIT_FAILED,
                "InitializerFailed",
                format!("POST /init failed: {}", e.message),
            )),
            Err(_) => Err(FunctionError::new(
                codes::INIT_TIMEOUT,
                "InitializerTimeout",
                format!(
                    "POST /init did not answer within {}s",
                    hook.timeout.as_secs_f64()
                ),
            )),
        }
    }

    async fn call(
        &self,
        process: &ProcessHandle,
        conn: &mut Option<Conn>,
        request: &Request,
    ) -> Result<Bytes, FunctionError> {
        call(process, conn, event(request, &self.fixed)).await
    }
}

/// `POST /invoke` of one event.
fn event(request: &Request, fixed: &[(String, String)]) -> Outgoing {
    let mut req = outgoing("/invoke", &request.request_id, fixed, request.body.clone());
    if let Some(tp) = &request.traceparent {
        req.headers.push(("traceparent".into(), tp.clone()));
    }
    if let Some(region) = request
        .invoked_urn
        .split(':')
        .nth(2)
        .filter(|r| !r.is_empty())
    {
        req.headers
            .push(("X-CFF-Region".into(), region.to_string()));
    }
    req
}

fn outgoing(path: &str, request_id: &str, fixed: &[(String, String)], body: Bytes) -> Outgoing {
    let mut headers = vec![
        ("Host".to_string(), format!("127.0.0.1:{PORT}")),
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-CFF-Request-Id".to_string(), request_id.to_string()),
    ];
    headers.extend(fixed.iter().cloned());
    headers.retain(|(k, v)| {
        http::HeaderName::from_bytes(k.as_bytes()).is_ok() && http::HeaderValue::from_str(v).is_ok()
    });
    Outgoing {
        method: http::Method::POST,
        uri: path.to_string(),
        headers,
        body,
    }
}

/// Sends `req` and reads the answer: its body when the status is 2xx, else a function error
/// carrying the status and the body.
async fn call(
    process: &ProcessHandle,
    conn: &mut Option<Conn>,
    req: Outgoing,
) -> Result<Bytes, FunctionError> {
    let resp = exchange(process, conn, req).await?;
    let status = resp.status();
    let body = match Limited::new(resp.into_body(), SYNC_PAYLOAD_MAX)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(FunctionError::new(
                codes::RESPONSE_TOO_LARGE,
                "ResponseTooLarge",
                format!("response body exceeds the limit of {SYNC_PAYLOAD_MAX} bytes"),
            ))
        }
        Err(e) => return Err(gone(e)),
    };
    if status.is_success() {
        return Ok(body);
    }
    let text: String = String::from_utf8_lossy(&body).chars().take(1024).collect();
    Err(FunctionError::new(
        codes::FUNCTION_RAISED,
        "FunctionError",
        format!("the function answered {status}: {text}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(root: &Path, argv: &[&str], env: &[(&str, &str)]) -> ImageRun {
        ImageRun {
            rootfs: root.to_path_buf(),
            digest: String::new(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            working_dir: String::new(),
            uid: 1003,
            gid: 1003,
            http: false,
        }
    }

    #[test]
    fn a_bare_program_is_found_on_the_images_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app/bin")).unwrap();
        std::fs::write(dir.path().join("app/bin/srv"), b"").unwrap();
        let img = run(
            dir.path(),
            &["srv", "-p", "8000"],
            &[("PATH", "/usr/bin:/app/bin")],
        );
        let l = launch(&img).unwrap();
        assert_eq!(l.program, PathBuf::from("/app/bin/srv"));
        assert_eq!(l.args, vec!["-p", "8000"]);
        let img = run(dir.path(), &["nope"], &[]);
        assert!(matches!(launch(&img), Err(StartError::ImageCommand(_))));
        let img = run(dir.path(), &[], &[]);
        assert!(matches!(launch(&img), Err(StartError::ImageCommand(_))));
        let img = run(dir.path(), &["/app/bin/srv"], &[]);
        assert_eq!(launch(&img).unwrap().program, PathBuf::from("/app/bin/srv"));
    }

    #[test]
    fn the_environment_layers_image_platform_and_user() {
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let env = environment(
            &s(&[
                ("PATH", "/app/bin"),
                ("RUNTIME_MEMORY", "x"),
                ("A", "image"),
            ]),
            s(&[
                ("PATH", "/usr/bin"),
                ("RUNTIME_MEMORY", "128"),
                ("HOME", "/tmp"),
            ]),
            &s(&[("A", "user")]),
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/app/bin"));
        assert_eq!(get("RUNTIME_MEMORY"), Some("128"));
        assert_eq!(get("HOME"), Some("/tmp"));
        assert_eq!(get("A"), Some("user"));
    }
}
