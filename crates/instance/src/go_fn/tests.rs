//! fgs's client bytes against Go 1.19's: the same calls encoded by `encoding/gob` for
//! `rpc.Request` and the SDK's `InvokeRequest`, as Go's `net/rpc` client sends them.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn id(r: &str) -> Vec<(String, String)> {
    vec![("X-Cff-Request-Id".to_string(), r.to_string())]
}

#[test]
fn the_first_call_is_byte_for_byte_gos() {
    let go = "2fff81030101075265717565737401ff82000102010d536572766963654d6574686f64010c000103536571010600000014ff82010f46756e6374696f6e2e496e766f6b650033ff830301010d496e766f6b655265717565737401ff8400010201075061796c6f6164010a00010648656164657201ff8800000017ff870401010648656164657201ff8800010c01ff8600000cff85020102ff8600010c000023ff8401077b2261223a317d010110582d4366662d526571756573742d49640102723100";
    assert_eq!(encode_call(true, 0, br#"{"a":1}"#, &id("r1")), hex(go));
}

#[test]
fn a_later_call_sends_values_only() {
    let go = "16ff82010f46756e6374696f6e2e496e766f6b650101001eff8401027b7d010110582d4366662d526571756573742d49640102723200";
    assert_eq!(encode_call(false, 1, b"{}", &id("r2")), hex(go));
    assert_eq!(
        encode_call(false, 1, b"", &id("r2")),
        hex(go),
        "an empty event is sent as {{}}: the SDK refuses a nil payload"
    );
}

#[test]
fn returned_errors_and_panics_are_function_errors() {
    let ok = Value::Struct(vec![("ServiceMethod".into(), Value::Str(METHOD.into()))]);
    let body = Value::Struct(vec![
        ("StatusCode".into(), Value::Int(200)),
        ("Payload".into(), Value::Bytes(b"hi".to_vec())),
    ]);
    assert_eq!(result(&ok, &body).unwrap(), Bytes::from_static(b"hi"));
    let failed = |e: &str| {
        Value::Struct(vec![
            ("ServiceMethod".into(), Value::Str(METHOD.into())),
            ("Error".into(), Value::Str(e.into())),
        ])
    };
    let empty = Value::Struct(vec![]);
    let e = result(
        &failed(r#"{"errorMessage":"no","errorType":"FunctionReturnError","stackTrace":null}"#),
        &empty,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.error_type.as_str(), e.message.as_str()),
        (4002, "FunctionReturnError", "no")
    );
    let e = result(
        &failed(r#"{"errorMessage":"oops","errorType":"panic","stackTrace":["main.f()","    main.go:9"]}"#),
        &empty,
    )
    .unwrap_err();
    assert_eq!(e.error_type, "panic");
    assert_eq!(e.stack_trace, vec!["main.f()", "    main.go:9"]);
    let e = result(&failed("plain"), &empty).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (4002, "plain"));
}
