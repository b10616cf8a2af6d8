//! Fixture functions: a Custom runtime in POSIX sh + curl, zipped in memory, and helpers to
//! create and invoke it.

use std::io::{Cursor, Write};

use base64::Engine;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

use crate::{Resp, Server};

/// A Custom runtime (SPEC.md 4) driven by the event it receives, so one fixture covers every
/// test. The event's `op` picks the behaviour:
///
/// | op | result |
/// |---|---|
/// | (none) | the event, echoed |
/// | `pid` | `{"pid":N,"id":"..."}`: the bootstrap's PID (as its own PID namespace sees it) and the instance id |
/// | `env` | the output of `env` |
/// | `cwd` | the working directory |
/// | `log` | writes `fx-stdout <request id> <text>` to stdout and `fx-stderr <request id>` to stderr |
/// | `sleep` | sleeps `secs`, then as `pid` |
/// | `error` | reports `{"errorType":"FixtureError","errorMessage":"fixture raised"}` via `/error` |
/// | `exit` | the bootstrap exits with status 7 |
/// | `hang` | starts a child titled `fxchild-<marker>`, then sleeps 600 s |
/// | `big` | `bytes` bytes of `a` |
///
/// The bootstrap re-execs itself once so that its command line carries
/// `fxmark-$FX_MARK-<instance id>`: with instances in their own PID namespaces, `$$` means
/// nothing on the host, so tests find an instance's host PID with `pgrep -f` instead
/// ([`crate::instances`], [`crate::host_pid`]). The instance id is random per instance.
pub const RUNTIME: &str = r#"#!/bin/sh
# fgs e2e fixture: a Custom runtime speaking the Runtime API with curl.
if [ -z "${FX_ID:-}" ]; then
  FX_ID=$(mktemp -u fxidXXXXXXXXXXXX)
  export FX_ID
  exec /bin/sh "$0" "fxmark-${FX_MARK:-none}-$FX_ID"
fi
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T="$(mktemp -d)/fx"
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$T.ev"; }
handle() {
  case "$(cat "$T.ev")" in
  *'"op":"pid"'*) printf '{"pid":%s,"id":"%s"}' "$$" "$FX_ID" ;;
  *'"op":"env"'*) env ;;
  *'"op":"cwd"'*) pwd ;;
  *'"op":"headers"'*) cat "$T.h" ;;
  *'"op":"log"'*)
    echo "fx-stdout $REQUEST_ID $(field text)" >&3
    echo "fx-stderr $REQUEST_ID" >&2
    printf '{"logged":"%s"}' "$REQUEST_ID" ;;
  *'"op":"sleep"'*) sleep "$(field secs)"; printf '{"pid":%s,"id":"%s"}' "$$" "$FX_ID" ;;
  *'"op":"error"'*) printf '{"errorType":"FixtureError","errorMessage":"fixture raised"}'; return 1 ;;
  *'"op":"exit"'*) echo "fx exiting" >&2; exit 7 ;;
  *'"op":"hang"'*) sh -c 'sleep 600; :' "fxchild-$(field marker)" & sleep 600 ;;
  *'"op":"big"'*) head -c "$(field bytes)" /dev/zero | tr '\0' 'a' ;;
  *) cat "$T.ev" ;;
  esac
}
while :; do
  : >"$T.ev"
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  REQUEST_ID=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  if handle 3>&1 >"$T.out"; then kind=response; else kind=error; fi
  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @"$T.out" \
    "$API/invocation/$kind/$REQUEST_ID" >/dev/null || exit 1
done
"#;

/// A zip of `(name, content, unix mode)` entries.
pub fn zip_files(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content, mode) in files {
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        w.start_file(*name, opts).expect("zip entry starts");
        w.write_all(content).expect("zip entry writes");
    }
    w.finish().expect("zip finishes").into_inner()
}

/// A code zip holding one executable `bootstrap`.
pub fn bootstrap_zip(script: &str) -> Vec<u8> {
    zip_files(&[("bootstrap", script.as_bytes(), 0o755)])
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text:?}"))
}

/// A create-function body for a Custom function with this zip.
pub fn custom_zip_body(name: &str, zip: &[u8]) -> Value {
    json!({
        "func_name": name,
        "package": "default",
        "runtime": "Custom",
        "handler": "bootstrap",
        "memory_size": 128,
        "timeout": 30,
        "code_type": "zip",
        "code_filename": "code.zip",
        "func_code": {"file": b64(zip)},
    })
}

/// `user_data` for these environment variables.
pub fn user_data(vars: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, Value> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Value::Object(map).to_string()
}

/// A value unique to this process and call, for function names and `pgrep` markers.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

impl Server {
    /// Creates a Custom function from [`RUNTIME`] with `FX_MARK=<mark>` plus `vars`, merged with
    /// `extra` (top-level fields of the create body); asserts 200 and returns the function object.
    pub fn create_fixture(
        &self,
        name: &str,
        mark: &str,
        vars: &[(&str, &str)],
        extra: Value,
    ) -> Value {
        let mut all = vec![("FX_MARK", mark)];
        all.extend_from_slice(vars);
        let mut body = custom_zip_body(name, &bootstrap_zip(RUNTIME));
        body["user_data"] = json!(user_data(&all));
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                body[k] = v;
            }
        }
        let r = self.post("/functions", &body);
        r.expect(200);
        r.json()
    }

    /// Sync invocation of `urn` (any accepted form, used as the path segment as given) with
    /// extra headers.
    pub fn invoke_with(&self, urn: &str, event: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .req("POST", &self.api(&format!("/functions/{urn}/invocations")))
            .json(event);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    }

    pub fn invoke(&self, urn: &str, event: &Value) -> Resp {
        self.invoke_with(urn, event, &[])
    }

    /// Invokes `{"op":"pid"}`, asserts success, and returns the host PID of the instance's
    /// bootstrap.
    #[track_caller]
    pub fn invoke_pid(&self, urn: &str) -> u32 {
        let r = self.invoke(urn, &json!({"op": "pid"}));
        r.expect(200);
        assert_eq!(
            r.header("x-is-func-err").as_deref(),
            Some("false"),
            "function failed: {}",
            r.text()
        );
        crate::host_pid(&r)
    }

    /// The URN of a function of the test project in package `default`.
    pub fn urn(&self, name: &str) -> String {
        format!(
            "urn:fss:local:{}:function:default:{name}:latest",
            self.cred.project_id
        )
    }
}
