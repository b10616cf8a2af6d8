//! The walk-throughs of the README, run as written: examples/ must keep working.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use fgs_e2e::fixture::{b64, zip_files};
use fgs_e2e::{json, Server, ServerOpts, Value};

/// Every file under `dir` with its mode, as the CLI zips a code directory.
fn zip_dir(dir: &Path) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                files.push((rel, std::fs::read(&p).unwrap(), mode));
            }
        }
    }
    let refs: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(n, c, m)| (n.as_str(), c.as_slice(), *m))
        .collect();
    zip_files(&refs)
}

/// A collector on the host's loopback that hands over every event POSTed to it.
fn collector() -> (u16, mpsc::Receiver<Value>) {
    let (url, batches) = fgs_e2e::http_sink(200);
    let port = url
        .split(':')
        .nth(2)
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for batch in batches {
            for e in batch.as_array().cloned().unwrap_or_default() {
                if tx.send(e).is_err() {
                    return;
                }
            }
        }
    });
    (port, rx)
}

#[test]
fn the_counter_extension_walk_through() {
    let s = Server::start(ServerOpts::default());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/extension-counter");
    let (port, events) = collector();
    let body = json!({
        "func_name": "counted", "runtime": "Custom", "handler": "bootstrap", "memory_size": 128,
        "timeout": 10, "code_type": "zip", "code_filename": "counter.zip",
        "func_code": {"file": b64(&zip_dir(&dir))},
        "user_data": json!({"COLLECTOR_URL": format!("http://host.fgs.internal:{port}/")}).to_string(),
    });
    s.post("/functions", &body).expect(200);
    let mut last = Value::Null;
    for _ in 0..4 {
        let r = s.invoke("counted", &json!({}));
        r.expect_ok();
        last = r.json();
    }
    // The function reads the count the extension keeps: by the fourth call it has seen at
    // least the first three.
    assert!(
        last["invocations_seen_by_extension"].as_u64().unwrap() >= 3,
        "{last}"
    );
    let mut reports = 0;
    let mut handled = 0;
    while let Ok(e) = events.recv_timeout(Duration::from_secs(5)) {
        match e["type"].as_str() {
            Some("platform.report") => reports += 1,
            Some("function")
                if e["record"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("handling ")) =>
            {
                handled += 1
            }
            _ => {}
        }
        if reports >= 4 && handled >= 4 {
            break;
        }
    }
    assert!(
        reports >= 4 && handled >= 4,
        "reports {reports}, function lines {handled}"
    );
}
