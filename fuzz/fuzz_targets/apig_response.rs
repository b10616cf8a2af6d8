//! A function's APIG result: any bytes are refused or give a response with safe headers.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = fgs_triggers::apig::parse_response(data) {
        assert!((100..=599).contains(&r.status));
        for (_, v) in &r.headers {
            assert!(!v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0));
        }
    }
});
