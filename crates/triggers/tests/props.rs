//! Property tests of what triggers read from users and functions (docs/security.md), standing
//! in for fuzzing on the stable toolchain: the Rate, Cron and `@every` schedule parser, the APIG
//! route lookup and request-to-event mapping, and the reading of a function's APIG response.
//! Failing cases are kept in `proptest-regressions/` beside this file.

use fgs_triggers::apig::{event, parse_response, HttpRequest, Route, RouteTable};
use fgs_triggers::{Schedule, Target, TriggerConfig};
use proptest::prelude::*;
use serde_json::{json, Value};

/// `cases` per property, or `PROPTEST_CASES` for a longer run.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        ..ProptestConfig::default()
    }
}

fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        Just("?".to_owned()),
        Just("L".to_owned()),
        Just("W".to_owned()),
        Just("#".to_owned()),
        "[0-9]{1,3}",
        "[0-9]{1,2}-[0-9]{1,2}",
        "\\*/[0-9]{1,3}",
        "[0-9]{1,2}(,[0-9]{1,2}){0,3}",
        "[A-Z]{3}",
        "[0-9]{4}-[0-9]{4}",
        any::<String>(),
    ]
}

fn schedule_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(cron_field(), 0..9).prop_map(|f| f.join(" ")),
        "@every [0-9]{0,12}(ns|ms|s|m|h|d|x)?",
        "[0-9]{0,20} ?(s|m|h|d|minute|minutes|hour|hours|day|days|y)?",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    /// Parsing never panics, and an accepted schedule's next firing never panics either and,
    /// when there is one, is strictly later (a schedule that fired in the past would spin the
    /// scheduler).
    #[test]
    fn schedules_parse_and_step_forward(
        kind in prop::sample::select(vec!["Rate", "Cron", "Other"]),
        text in schedule_text(),
        now in 0i64..4_102_444_800_000,
        prev in prop::option::of(0i64..4_102_444_800_000),
    ) {
        if let Ok(s) = Schedule::parse(kind, &text) {
            if let Some(next) = s.next_after(now, None) {
                prop_assert!(next > now, "{kind} {text:?}: {next} <= {now}");
            }
            if let Some(prev) = prev.filter(|p| *p <= now) {
                if let Some(next) = s.next_after(now, Some(prev)) {
                    prop_assert!(next > now, "{kind} {text:?} after {prev}: {next} <= {now}");
                }
            }
            let _ = s.next_after(i64::MAX - 1, Some(i64::MAX - 2));
            let _ = s.next_after(i64::MIN, None);
        }
    }

    /// A function's APIG result never panics the reader, and what it accepts can be answered
    /// safely: a status in 100-599, header names that are HTTP tokens, values without CR, LF
    /// or NUL (no response splitting).
    #[test]
    fn apig_responses_are_safe(
        status in prop_oneof![any::<i64>().prop_map(Value::from), (0u64..1000).prop_map(Value::from), Just(json!("200")), Just(Value::Null)],
        headers in prop::collection::vec((any::<String>(), prop_oneof![
            any::<String>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            Just(json!(["a", "b\r\nSet-Cookie: x"])),
            Just(json!({"nested": 1})),
        ]), 0..4),
        body in prop_oneof![any::<String>().prop_map(Value::from), Just(json!(1)), Just(Value::Null)],
        b64 in any::<bool>(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = parse_response(&raw);
        let doc = json!({
            "statusCode": status,
            "headers": Value::Object(headers.into_iter().collect()),
            "body": body,
            "isBase64Encoded": b64,
        });
        if let Ok(r) = parse_response(doc.to_string().as_bytes()) {
            prop_assert!((100..=599).contains(&r.status));
            for (name, value) in &r.headers {
                prop_assert!(http::HeaderName::from_bytes(name.as_bytes()).is_ok(), "{name:?}");
                prop_assert!(!value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0), "{value:?}");
            }
        }
    }

    /// Any request against a route table never panics the lookup or the event mapping, and the
    /// event always has the shape FunctionGraph's APIG sends, body in base64.
    #[test]
    fn apig_events_have_their_shape(
        route_path in prop::sample::select(vec!["/", "/a", "/a/{id}", "/a/{id}/b", "/{x}"]),
        mode in prop::sample::select(vec!["NORMAL", "PREFIX"]),
        method in prop::sample::select(vec!["GET", "POST", "ANY", "DELETE"]),
        path in prop::collection::vec(prop_oneof![
            "[a-z0-9]{1,5}", Just("..".to_owned()), Just("%2F".to_owned()), Just("%".to_owned()),
            Just("%ff".to_owned()), Just("".to_owned()), any::<String>(),
        ], 0..5).prop_map(|p| format!("/{}", p.join("/"))),
        query in prop::option::of(any::<String>()),
        headers in prop::collection::vec(("[a-z-]{1,8}", any::<String>()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let Ok(TriggerConfig::Apig(cfg)) = TriggerConfig::parse(
            "APIG",
            &json!({"path": route_path, "match_mode": mode, "req_method": method, "auth": "NONE"}),
        ) else {
            return Ok(());
        };
        let target = Target {
            project: "p1".into(),
            package: "default".into(),
            function: "f".into(),
            qualifier: "latest".into(),
        };
        let route = Route::new("t1".into(), target, &cfg).expect("a parsed path makes a route");
        let table = RouteTable::new([route]);
        for m in ["GET", "POST", "PATCH"] {
            if let Ok(found) = table.lookup("p1", m, &path) {
                let req = HttpRequest {
                    method: m,
                    path: &path,
                    query: query.as_deref(),
                    headers: &headers,
                    body: &body,
                    source_ip: "127.0.0.1",
                    request_id: "r1",
                };
                let e = event(&found, &req);
                prop_assert_eq!(&e["httpMethod"], &json!(m));
                prop_assert_eq!(&e["isBase64Encoded"], &json!(true));
                prop_assert!(e["body"].is_string() && e["headers"].is_object());
                prop_assert!(e["queryStringParameters"].is_object());
                prop_assert!(e["pathParameters"].is_object());
                prop_assert!(e["path"].as_str().is_some_and(|p| p.starts_with('/')));
            }
        }
        prop_assert!(table.lookup("p2", "GET", &path).is_err());
    }
}

/// Schedules that once tried to hang or overflow the scheduler: each is refused or steps forward.
#[test]
fn extreme_schedules_are_bounded() {
    for (kind, text) in [
        ("Rate", "0m"),
        ("Rate", "99999999999999999999d"),
        ("Rate", "-1m"),
        ("Cron", "@every 0s"),
        ("Cron", "@every 1ns"),
        ("Cron", "@every 99999999999h"),
        ("Cron", "* * * * * * 1970"),
        ("Cron", "0 0 0 30 2 ?"),
        ("Cron", "* * * * * * 9999"),
        ("Cron", ""),
    ] {
        if let Ok(s) = Schedule::parse(kind, text) {
            if let Some(next) = s.next_after(1_800_000_000_000, None) {
                assert!(next > 1_800_000_000_000, "{kind} {text:?}");
            }
        }
    }
}
