//! Bytes produced by Go 1.19's `encoding/gob` (a program encoding `rpc.Response`, the SDK's
//! `InvokeResponse` and a struct of each basic kind), decoded by fgs.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits a stream into its messages (each length-prefixed) and decodes the values.
fn values(stream: &[u8]) -> Vec<Value> {
    let mut d = Decoder::default();
    let mut r = Reader { b: stream, at: 0 };
    let mut out = Vec::new();
    while r.at < stream.len() {
        let n = r.uint().unwrap() as usize;
        let msg = r.take(n).unwrap();
        if let Some(v) = d.message(msg).unwrap() {
            out.push(v);
        }
    }
    out
}

/// `rpc.Response{ServiceMethod: "Function.Invoke"}`, `InvokeResponse{200, {"ok":true}}`,
/// `rpc.Response{.., Seq: 1, Error: "boom"}` and the `struct{}` net/rpc sends after an error.
const GO_SERVER: &str = "3aff8903010108526573706f6e736501ff8a000103010d536572766963654d6574686f64010c00010353657101060001054572726f72010c00000014ff8a010f46756e6374696f6e2e496e766f6b650037ff8b0301010e496e766f6b65526573706f6e736501ff8c000102010a537461747573436f646501040001075061796c6f6164010a00000014ff8c01fe0190010b7b226f6b223a747275657d001cff8a010f46756e6374696f6e2e496e766f6b6501010104626f6f6d000aff8d030102ff8e00000003ff8e00";

#[test]
fn decodes_what_a_go_rpc_server_sends() {
    let v = values(&hex(GO_SERVER));
    assert_eq!(v.len(), 4, "{v:?}");
    assert_eq!(
        v[0],
        Value::Struct(vec![(
            "ServiceMethod".into(),
            Value::Str("Function.Invoke".into())
        )])
    );
    assert_eq!(v[1].field("StatusCode"), Some(&Value::Int(200)));
    assert_eq!(
        v[1].field("Payload"),
        Some(&Value::Bytes(br#"{"ok":true}"#.to_vec()))
    );
    assert_eq!(v[2].field("Seq"), Some(&Value::Uint(1)));
    assert_eq!(v[2].field("Error"), Some(&Value::Str("boom".into())));
    assert_eq!(v[3], Value::Struct(vec![]));
}

/// `struct{F float64; N int; U uint; B bool; S []string}{1.5, -3, 300, true, {"a", ""}}`.
const GO_KINDS: &str = "2bff89030102ff8a00010501014601080001014e01040001015501060001014201020001015301ff860000000cff85020102ff8600010c000014ff8a01fef83f010501fe012c0101010201610000";

#[test]
fn decodes_every_basic_kind() {
    let v = values(&hex(GO_KINDS));
    let s = &v[0];
    assert_eq!(s.field("F"), Some(&Value::Float(1.5)));
    assert_eq!(s.field("N"), Some(&Value::Int(-3)));
    assert_eq!(s.field("U"), Some(&Value::Uint(300)));
    assert_eq!(s.field("B"), Some(&Value::Bool(true)));
    assert_eq!(
        s.field("S"),
        Some(&Value::List(vec![
            Value::Str("a".into()),
            Value::Str("".into())
        ]))
    );
}

#[test]
fn numbers_round_trip() {
    for u in [0u64, 1, 127, 128, 255, 256, 300, 65535, 1 << 40, u64::MAX] {
        let mut w = Writer::default();
        w.uint(u);
        assert_eq!(Reader { b: &w.0, at: 0 }.uint(), Ok(u), "{u}");
    }
    for i in [0i64, 1, -1, -3, 200, -200, i64::MIN, i64::MAX] {
        let mut w = Writer::default();
        w.int(i);
        assert_eq!(Reader { b: &w.0, at: 0 }.int(), Ok(i), "{i}");
    }
    let mut w = Writer::default();
    w.int(200);
    assert_eq!(w.0, vec![0xfe, 0x01, 0x90], "Go's bytes for int 200");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut d = Decoder::default();
    assert_eq!(d.message(&[]), Err(GobError::Short));
    assert!(d.message(&[0x82, 0x01]).is_err());
    assert_eq!(d.message(&hex("ff82")), Err(GobError::Short));
    assert_eq!(d.message(&hex("ff8200")), Err(GobError::UnknownType(65)));
    // A struct with one string field, then a field index past it.
    let def = hex("ff81030102ff82000101010141010600000000");
    assert_eq!(d.message(&def), Ok(None));
    assert!(d.message(&hex("ff8202")).is_err());
    for cut in 0..def.len() {
        let _ = Decoder::default().message(&def[..cut]);
    }
}
