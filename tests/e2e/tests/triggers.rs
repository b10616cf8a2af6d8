//! Triggers (SPEC.md 2, 4) and test events through the real binary: the trigger API and its
//! refusals, TIMER firings (counts, accuracy, disable, restart), APIG routes (round trip with
//! query, headers and body; NONE vs IAM; prefix match; bad answers), and `/events` CRUD.

use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fgs_e2e::fixture::{bootstrap_zip, custom_zip_body, user_data};
use fgs_e2e::{json, unique, wait_until, Auth, Resp, Server, ServerOpts, Value};

/// A Custom runtime that answers `{}` to every event.
const NOOP: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T="${TMPDIR:-/tmp}/noop.$$"
while :; do
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  curl -sS -X POST --data-binary '{}' "$API/invocation/response/$id" >/dev/null || exit 1
done
"#;

/// A Custom runtime that answers `{"received_ns": <its clock when the event arrived>}`.
const STAMP: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T="${TMPDIR:-/tmp}/stamp.$$"
while :; do
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  now=$(date +%s%N)
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  curl -sS -X POST --data-binary "{\"received_ns\":$now}" "$API/invocation/response/$id" >/dev/null || exit 1
done
"#;

/// A Custom runtime for APIG: answers 201 with the event it got as the (base64) body, or a
/// result that is no APIG response when the request path contains `/bad`.
const ECHO: &str = r#"#!/bin/sh
API="http://${RUNTIME_API_ADDR}/v1/runtime"
T="${TMPDIR:-/tmp}/echo.$$"
while :; do
  curl -sS -D "$T.h" -o "$T.ev" "$API/invocation/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$T.h" | tr -d '\r\n')
  case "$(cat "$T.ev")" in
  *'"path":"/bad'*) printf '{"hello":"world"}' >"$T.out" ;;
  *) printf '{"statusCode":201,"headers":{"X-Echo":"yes","Content-Type":"application/json"},"body":"%s","isBase64Encoded":true}' \
       "$(base64 <"$T.ev" | tr -d '\n')" >"$T.out" ;;
  esac
  curl -sS -X POST --data-binary @"$T.out" "$API/invocation/response/$id" >/dev/null || exit 1
done
"#;

fn create_function(s: &Server, name: &str, script: &str, vars: &[(&str, &str)]) -> String {
    let mut body = custom_zip_body(name, &bootstrap_zip(script));
    body["user_data"] = json!(user_data(vars));
    s.post("/functions", &body).expect(200);
    s.urn(name)
}

fn create_trigger(s: &Server, urn: &str, body: Value) -> Resp {
    s.post(&format!("/triggers/{urn}"), &body)
}

fn timer(name: &str, kind: &str, schedule: &str) -> Value {
    json!({
        "trigger_type_code": "TIMER",
        "trigger_status": "ACTIVE",
        "event_data": {"name": name, "schedule_type": kind, "schedule": schedule, "user_event": "tick"},
    })
}

fn apig(path: &str, method: &str, mode: &str, auth: &str) -> Value {
    json!({
        "trigger_type_code": "APIG",
        "trigger_status": "ACTIVE",
        "event_data": {
            "name": "api_test", "path": path, "req_method": method, "match_mode": mode,
            "auth": auth, "type": 1, "protocol": "HTTPS", "group_id": "g1", "env_name": "RELEASE",
            "env_id": "DEFAULT_ENVIRONMENT_RELEASE_ID", "func_info": {"timeout": 5000},
        },
    })
}

#[test]
fn trigger_crud_and_refusals() {
    let s = Server::start(ServerOpts::default());
    let urn = create_function(&s, &unique("trg"), NOOP, &[]);

    let r = create_trigger(&s, &urn, timer("every3m", "Rate", "3m"));
    r.expect(201);
    let t = r.json();
    let id = t["trigger_id"].as_str().expect("trigger_id").to_string();
    assert_eq!(t["trigger_type_code"], "TIMER");
    assert_eq!(t["trigger_status"], "ACTIVE");
    assert_eq!(
        t["event_data"],
        json!({"name": "every3m", "schedule_type": "Rate", "schedule": "3m", "user_event": "tick"})
    );
    assert!(
        t["created_time"].as_str().is_some_and(|c| c.contains('T')),
        "{t}"
    );
    assert!(t["last_updated_time"].is_string(), "{t}");

    let list = s.get(&format!("/triggers/{urn}"));
    list.expect(200);
    assert_eq!(list.json().as_array().map(Vec::len), Some(1));
    let one = s.get(&format!("/triggers/{urn}/TIMER/{id}"));
    one.expect(200);
    assert_eq!(one.json()["trigger_id"], json!(id));
    s.get(&format!("/triggers/{urn}/APIG/{id}"))
        .expect_fss(404, "FSS.0404");

    let up = s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"trigger_status": "DISABLED"}),
    );
    up.expect(200);
    assert_eq!(up.json()["trigger_status"], "DISABLED");
    let up = s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"trigger_status": "ACTIVE", "event_data": {"schedule": "1h", "user_event": "tock"}}),
    );
    up.expect(200);
    assert_eq!(up.json()["event_data"]["schedule"], "1h");
    assert_eq!(up.json()["event_data"]["user_event"], "tock");
    s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"trigger_status": "PAUSED"}),
    )
    .expect_fss(400, "FSS.0400");
    s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"event_data": {"schedule": "61m"}}),
    )
    .expect_fss(400, "FSS.0400");

    // Refusals.
    let missing = s.urn(&unique("nofn"));
    create_trigger(&s, &missing, timer("t", "Rate", "3m")).expect_fss(404, "FSS.1051");
    s.get(&format!("/triggers/{missing}"))
        .expect_fss(404, "FSS.1051");
    for (body, what) in [
        (
            json!({"trigger_type_code": "OBS", "event_data": {}}),
            "unsupported type",
        ),
        (json!({"event_data": {}}), "no type"),
        (json!({"trigger_type_code": "TIMER"}), "no event_data"),
        (timer("bad", "Rate", "0m"), "rate below the minimum"),
        (timer("bad", "Rate", "31d"), "rate above the maximum"),
        (timer("bad", "Cron", "* * *"), "cron with 3 fields"),
        (timer("bad", "Cron", "@every 1x"), "bad @every"),
        (timer("bad", "Weekly", "1"), "bad schedule_type"),
        (timer("1bad", "Rate", "3m"), "bad name"),
        (
            json!({"trigger_type_code": "TIMER", "trigger_status": "ON",
                   "event_data": {"name": "x", "schedule_type": "Rate", "schedule": "3m"}}),
            "bad status",
        ),
        (apig("no-slash", "GET", "NORMAL", "NONE"), "bad path"),
        (apig("/a", "GET", "NORMAL", "APP"), "APP auth"),
        (apig("/a", "FETCH", "NORMAL", "NONE"), "bad method"),
    ] {
        let r = create_trigger(&s, &urn, body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "FSS.0400"),
            "{what}: {}",
            r.text()
        );
    }
    s.req("POST", &s.api(&format!("/triggers/{urn}")))
        .raw("{not json")
        .send()
        .expect_fss(400, "FSS.0406");
    create_trigger(&s, &urn, timer("every3m", "Cron", "@every 1h")).expect_fss(409, "FSS.0409");

    // At most 10 per function version.
    for i in 1..10 {
        create_trigger(&s, &urn, timer(&format!("t{i}"), "Cron", "0 0 * * * *")).expect(201);
    }
    create_trigger(&s, &urn, timer("t10", "Rate", "1d")).expect_fss(400, "FSS.1094");

    s.delete(&format!("/triggers/{urn}/TIMER/{id}")).expect(204);
    s.get(&format!("/triggers/{urn}/TIMER/{id}"))
        .expect_fss(404, "FSS.0404");
    s.delete(&format!("/triggers/{urn}/TIMER/{id}"))
        .expect_fss(404, "FSS.0404");
    s.delete(&format!("/triggers/{urn}")).expect(204);
    assert_eq!(s.get(&format!("/triggers/{urn}")).json(), json!([]));
}

/// The async invocations of a function: a timer firing is one, whatever became of it.
fn firings(s: &Server, urn: &str) -> u64 {
    let r = s.get(&format!("/functions/{urn}/async-invocations?limit=500"));
    r.expect(200);
    r.json()["count"].as_u64().unwrap_or(0)
}

/// `lag_ms` of the scheduler's `timer fired` lines (`FGS_LOG=fgs_triggers=debug`): planned
/// instant to the invocation being queued.
fn scheduler_lags(s: &Server) -> Vec<i64> {
    strip_ansi(&s.stderr())
        .lines()
        .filter(|l| l.contains("timer fired"))
        .filter_map(|l| l.split("lag_ms=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The log without its colour codes (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn timer_fires_each_second_stops_when_disabled_and_survives_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let opts = ServerOpts::default()
        .data_dir(&data)
        .env("FGS_LOG", "info,fgs_triggers=debug");
    let s = Server::start(opts.clone());
    let urn = create_function(&s, &unique("tick"), NOOP, &[]);
    let r = create_trigger(&s, &urn, timer("every_second", "Cron", "*/1 * * * * *"));
    r.expect(201);
    let id = r.json()["trigger_id"].as_str().unwrap().to_string();

    // Six whole seconds: five to seven firings, never more than one per second.
    let t0 = now_ms();
    std::thread::sleep(Duration::from_secs(6));
    let n = firings(&s, &urn);
    let secs = ((now_ms() - t0) / 1000) as u64;
    assert!(
        (secs - 1..=secs + 1).contains(&n),
        "{n} firings in {secs} s"
    );
    let mut lags = scheduler_lags(&s);
    assert!(!lags.is_empty(), "no `timer fired` lines");
    lags.sort_unstable();
    eprintln!(
        "timer accuracy over {} firings (planned instant -> queued): min {} ms, median {} ms, max {} ms",
        lags.len(),
        lags[0],
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    assert!(lags[lags.len() / 2] < 100, "median lag {lags:?}");

    // Disabled: no more firings.
    s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"trigger_status": "DISABLED"}),
    )
    .expect(200);
    let after_disable = firings(&s, &urn);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(firings(&s, &urn), after_disable, "fired while disabled");

    // Enabled again, then a restart: the trigger is still there and still fires, once a
    // second, with no burst for the seconds the server was down.
    s.put(
        &format!("/triggers/{urn}/TIMER/{id}"),
        &json!({"trigger_status": "ACTIVE"}),
    )
    .expect(200);
    assert!(wait_until(Duration::from_secs(10), || firings(&s, &urn)
        >= after_disable + 2));
    drop(s);
    std::thread::sleep(Duration::from_secs(3));
    let s = Server::start(opts);
    let t1 = now_ms();
    let before = firings(&s, &urn);
    let list = s.get(&format!("/triggers/{urn}")).json();
    assert_eq!(list[0]["trigger_status"], "ACTIVE", "{list}");
    std::thread::sleep(Duration::from_secs(4));
    let n = firings(&s, &urn) - before;
    let secs = ((now_ms() - t1) / 1000) as u64;
    assert!(
        (secs - 1..=secs + 1).contains(&n),
        "{n} firings in {secs} s after the restart"
    );
}

fn webhook(max: usize) -> (String, mpsc::Receiver<Value>) {
    fgs_e2e::http_sink(max)
}

fn unix_ms(rfc3339: &str) -> i128 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("time {rfc3339:?}: {e}"));
    t.unix_timestamp_nanos() / 1_000_000
}

/// The timer event reaches the function, and how late: each firing's outcome goes to an HTTP
/// destination carrying the event (`request_payload`) and the function's own clock reading
/// when it got it (`response_payload`).
#[test]
fn timer_events_reach_the_function_on_time() {
    let s = Server::start(ServerOpts::default());
    let urn = create_function(&s, &unique("stamp"), STAMP, &[]);
    let (url, hook) = webhook(16);
    s.put(
        &format!("/functions/{urn}/async-invoke-config"),
        &json!({"max_async_retry_attempts": 0, "destination_config": {
            "on_success": {"destination": "HTTP", "param": json!({"url": url}).to_string()}}}),
    )
    .expect(200);
    create_trigger(&s, &urn, timer("stamp", "Cron", "*/1 * * * * *")).expect(201);
    let mut lags = Vec::new();
    for _ in 0..8 {
        let rec = hook
            .recv_timeout(Duration::from_secs(30))
            .expect("a firing reached the destination within 30 s");
        let ev = &rec["request_payload"];
        assert_eq!(ev["trigger_type"], "TIMER", "{rec}");
        assert_eq!(ev["trigger_name"], "stamp", "{rec}");
        assert_eq!(ev["user_event"], "tick", "{rec}");
        assert_eq!(ev["version"], "v1.0", "{rec}");
        let got = rec["response_payload"]["received_ns"]
            .as_i64()
            .unwrap_or_else(|| panic!("no received_ns: {rec}")) as i128;
        lags.push(got / 1_000_000 - unix_ms(ev["time"].as_str().expect("time")));
    }
    // The first waited for the cold start.
    let mut warm = lags[1..].to_vec();
    warm.sort_unstable();
    eprintln!(
        "timer accuracy, planned instant -> function got the event: cold {} ms; warm min {} ms, median {} ms, max {} ms ({} firings)",
        lags[0],
        warm[0],
        warm[warm.len() / 2],
        warm[warm.len() - 1],
        warm.len()
    );
    assert!(warm[warm.len() / 2] < 1000, "median lag {warm:?}");
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn apig_routes_round_trip_with_auth_and_match_modes() {
    let s = Server::start(ServerOpts::default());
    let urn = create_function(&s, &unique("api"), ECHO, &[]);
    let project = s.cred.project_id.clone();

    let r = create_trigger(&s, &urn, apig("/echo/{id}", "POST", "NORMAL", "NONE"));
    r.expect(201);
    let t = r.json();
    let url = t["event_data"]["invoke_url"]
        .as_str()
        .expect("invoke_url")
        .to_string();
    assert_eq!(url, format!("{}/apig/{project}/echo/{{id}}", s.base_url()));
    assert_eq!(t["event_data"]["group_id"], "g1", "echoed: {t}");
    assert_eq!(t["event_data"]["auth"], "NONE");
    let id = t["trigger_id"].as_str().unwrap().to_string();

    // A route taken twice is refused.
    create_trigger(&s, &urn, apig("/echo/{other}", "ANY", "NORMAL", "NONE"))
        .expect_fss(409, "FSS.0409");

    // Round trip: query, headers and body in; status, headers and body out. No credential.
    let path = format!("/apig/{project}/echo/42");
    let t0 = now_ms();
    let r = s
        .req("POST", &format!("{path}?x=1&y=two%20words"))
        .header("X-Test", "abc")
        .raw("hello body")
        .auth(Auth::None)
        .send();
    let first_ms = now_ms() - t0;
    r.expect(201);
    assert_eq!(r.header("x-echo").as_deref(), Some("yes"));
    assert!(r.header("x-cff-request-id").is_some());
    let ev = r.json();
    assert_eq!(ev["httpMethod"], "POST");
    assert_eq!(ev["path"], "/echo/42");
    assert_eq!(ev["pathParameters"], json!({"id": "42"}));
    assert_eq!(
        ev["queryStringParameters"],
        json!({"x": "1", "y": "two words"})
    );
    assert_eq!(ev["headers"]["x-test"], "abc");
    assert_eq!(ev["isBase64Encoded"], true);
    assert_eq!(fgs_e2e::unb64(ev["body"].as_str().unwrap()), b"hello body");
    assert_eq!(ev["requestContext"]["apiId"], json!(id));
    assert_eq!(ev["requestContext"]["sourceIp"], "127.0.0.1");
    let t0 = now_ms();
    s.req("POST", &path)
        .raw("{}")
        .auth(Auth::None)
        .send()
        .expect(201);
    eprintln!(
        "APIG round trip: cold {first_ms} ms, warm {} ms",
        now_ms() - t0
    );

    // Method and path misses.
    s.req("GET", &path)
        .auth(Auth::None)
        .send()
        .expect_fss(405, "FSS.0405");
    s.req("POST", &format!("/apig/{project}/nowhere"))
        .auth(Auth::None)
        .send()
        .expect_fss(404, "FSS.0404");

    // IAM: the API's own credentials.
    create_trigger(&s, &urn, apig("/secure", "ANY", "NORMAL", "IAM")).expect(201);
    let secure = format!("/apig/{project}/secure");
    s.req("PUT", &secure)
        .raw("{}")
        .auth(Auth::None)
        .send()
        .expect_fss(401, "FSS.0401");
    s.req("PUT", &secure)
        .raw("{}")
        .auth(Auth::Tampered(s.cred.clone()))
        .send()
        .expect_fss(401, "FSS.0401");
    let r = s.req("PUT", &secure).raw("{\"signed\":true}").send();
    r.expect(201);
    assert_eq!(r.json()["path"], "/secure");

    // SWA: a prefix, by whole segments.
    create_trigger(&s, &urn, apig("/static", "GET", "SWA", "NONE")).expect(201);
    let r = s
        .req("GET", &format!("/apig/{project}/static/css/site.css"))
        .auth(Auth::None)
        .send();
    r.expect(201);
    assert_eq!(r.json()["path"], "/static/css/site.css");
    s.req("GET", &format!("/apig/{project}/staticx"))
        .auth(Auth::None)
        .send()
        .expect_fss(404, "FSS.0404");

    // A result that is no APIG response is a clear 502.
    create_trigger(&s, &urn, apig("/bad", "ANY", "NORMAL", "NONE")).expect(201);
    let r = s
        .req("GET", &format!("/apig/{project}/bad"))
        .auth(Auth::None)
        .send();
    r.expect_fss(502, "FSS.0502");
    assert!(r.text().contains("statusCode"), "{}", r.text());

    // Disabled, then deleted: the route is gone at once.
    s.put(
        &format!("/triggers/{urn}/APIG/{id}"),
        &json!({"trigger_status": "DISABLED"}),
    )
    .expect(200);
    s.req("POST", &path)
        .auth(Auth::None)
        .send()
        .expect_fss(404, "FSS.0404");
    s.put(
        &format!("/triggers/{urn}/APIG/{id}"),
        &json!({"trigger_status": "ACTIVE"}),
    )
    .expect(200);
    s.req("POST", &path)
        .raw("{}")
        .auth(Auth::None)
        .send()
        .expect(201);
    s.delete(&format!("/triggers/{urn}/APIG/{id}")).expect(204);
    s.req("POST", &path)
        .auth(Auth::None)
        .send()
        .expect_fss(404, "FSS.0404");

    // Deleting the function takes its routes along.
    s.delete(&format!("/functions/{urn}")).expect(204);
    s.req("PUT", &secure)
        .raw("{}")
        .send()
        .expect_fss(404, "FSS.1051");
    s.req("PUT", &secure)
        .raw("{}")
        .send()
        .expect_fss(404, "FSS.0404");
}

#[test]
fn test_events_crud() {
    let s = Server::start(ServerOpts::default());
    let urn = create_function(&s, &unique("ev"), NOOP, &[]);
    let content = fgs_e2e::b64(br#"{"key":"value"}"#);
    let r = s.post(
        &format!("/functions/{urn}/events"),
        &json!({"name": "event-123test", "content": content}),
    );
    r.expect(200);
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(r.json()["name"], "event-123test");

    s.post(
        &format!("/functions/{urn}/events"),
        &json!({"name": "event-123test", "content": content}),
    )
    .expect_fss(409, "FSS.0409");
    for (body, what) in [
        (
            json!({"name": "1bad", "content": content}),
            "name starts with a digit",
        ),
        (
            json!({"name": "bad-", "content": content}),
            "name ends with '-'",
        ),
        (
            json!({"name": "a".repeat(26), "content": content}),
            "name too long",
        ),
        (json!({"name": "ok"}), "no content"),
        (
            json!({"name": "ok", "content": "%%%"}),
            "content not base64",
        ),
    ] {
        let r = s.post(&format!("/functions/{urn}/events"), &body);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "FSS.0400"),
            "{what}: {}",
            r.text()
        );
    }
    s.post(
        &format!("/functions/{}/events", s.urn(&unique("nofn"))),
        &json!({"name": "x", "content": content}),
    )
    .expect_fss(404, "FSS.1051");

    let list = s.get(&format!("/functions/{urn}/events"));
    list.expect(200);
    let l = list.json();
    assert_eq!(l["count"], 1);
    assert_eq!(l["events"][0]["id"], json!(id));
    assert!(l["events"][0]["last_modified"].is_number(), "{l}");

    let one = s.get(&format!("/functions/{urn}/events/{id}")).json();
    assert_eq!(one["content"], json!(content));
    let other = fgs_e2e::b64(br#"{"k":2}"#);
    let up = s.put(
        &format!("/functions/{urn}/events/{id}"),
        &json!({"content": other}),
    );
    up.expect(200);
    assert_eq!(up.json()["name"], "event-123test");
    let one = s.get(&format!("/functions/{urn}/events/{id}")).json();
    assert_eq!(one["content"], json!(other));

    for i in 1..10 {
        s.post(
            &format!("/functions/{urn}/events"),
            &json!({"name": format!("e{i}"), "content": content}),
        )
        .expect(200);
    }
    s.post(
        &format!("/functions/{urn}/events"),
        &json!({"name": "e10", "content": content}),
    )
    .expect_fss(400, "FSS.1096");

    s.delete(&format!("/functions/{urn}/events/{id}"))
        .expect(204);
    s.get(&format!("/functions/{urn}/events/{id}"))
        .expect_fss(404, "FSS.0404");
    s.delete(&format!("/functions/{urn}/events/{id}"))
        .expect_fss(404, "FSS.0404");
}

/// [FGS] `--public-url` is the base of every APIG `invoke_url` (behind a proxy, or listening on
/// 0.0.0.0); a malformed one stops `fgs serve` before it listens.
#[test]
fn public_url_names_where_apig_routes_are_reached() {
    let s =
        Server::start(ServerOpts::default().flag("--public-url", "https://fgs.example.com/base/"));
    let urn = create_function(&s, &unique("pub"), ECHO, &[]);
    let project = s.cred.project_id.clone();
    let r = create_trigger(&s, &urn, apig("/hello", "GET", "NORMAL", "NONE"));
    r.expect(201);
    let want = format!("https://fgs.example.com/base/apig/{project}/hello");
    assert_eq!(r.json()["event_data"]["invoke_url"], want.as_str());
    let listed = s.get(&format!("/triggers/{urn}")).expect(200).json();
    assert_eq!(
        listed[0]["event_data"]["invoke_url"],
        want.as_str(),
        "{listed}"
    );
    // The route itself is still served at the listener, under /apig.
    s.req("GET", &format!("/apig/{project}/hello"))
        .auth(Auth::None)
        .send()
        .expect(201);

    let bad = Server::try_start(ServerOpts::default().flag("--public-url", "fgs.example.com"));
    let err = bad.err().expect("a public URL without a scheme is refused");
    assert!(
        err.contains("--public-url") && err.contains("http:// or https://"),
        "{err}"
    );
}
