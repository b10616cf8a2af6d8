//! `network_controller.disable_public_network` (FunctionGraph's NetworkControlConfig): such a
//! function's instances reach nothing beyond their own loopback. Needs the sandbox (root).

use fgs_e2e::fixture::{b64, zip_files};
use fgs_e2e::{json, Server, ServerOpts};

/// Answers every event with whether `curl` reached the URL in the event's `url`.
const PROBE: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
d=$(mktemp -d)
while :; do
  curl -sS -D "$d/h" -o "$d/ev" "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$d/h" | tr -d '\r\n')
  url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$d/ev")
  if curl -s -m 3 -o /dev/null "$url"; then r=reached; else r=unreachable; fi
  printf '{"result":"%s"}' "$r" > "$d/out"
  curl -sS -o /dev/null -X POST --data-binary @"$d/out" "$API/response/$id" || exit 1
done
"#;

#[test]
fn disabled_public_network_cuts_egress() {
    if !nix_is_root() {
        eprintln!("skipped: the sandbox's network namespaces need root");
        return;
    }
    let s = Server::start(ServerOpts::default());
    let health: fgs_e2e::Value = reqwest::blocking::get(format!("{}/healthz", s.base_url()))
        .and_then(|r| r.json())
        .expect("healthz");
    if health["isolation"]["egress"].as_str().unwrap_or("none") == "none" {
        eprintln!("skipped: this host gives instances no egress (install passt)");
        return;
    }
    let (url, _hits) = fgs_e2e::http_sink(16);
    let url = url.replace("127.0.0.1", "host.fgs.internal");
    let zip = zip_files(&[("bootstrap", PROBE.as_bytes(), 0o755)]);
    for (name, disabled) in [("open", false), ("closed", true)] {
        let body = json!({
            "func_name": name, "runtime": "Custom", "handler": "bootstrap", "memory_size": 128,
            "timeout": 10, "code_type": "zip", "code_filename": "c.zip", "func_code": {"file": b64(&zip)},
            "network_controller": {"disable_public_network": disabled},
        });
        let created = s.post("/functions", &body);
        created.expect(200);
        assert_eq!(
            created.json()["network_controller"]["disable_public_network"],
            disabled
        );
    }
    let result = |name: &str| {
        let r = s.invoke(name, &json!({"url": url}));
        r.expect(200);
        let v = r.json();
        assert!(v["result"].is_string(), "{name}: {}", r.text());
        v["result"].clone()
    };
    assert_eq!(result("open"), "reached");
    assert_eq!(result("closed"), "unreachable");
    // Turned back on through the config API, the function reaches out again.
    s.put(
        "/functions/closed/config",
        &json!({"network_controller": {"disable_public_network": false}}),
    )
    .expect(200);
    assert_eq!(result("closed"), "reached");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
