//! Function references (SPEC.md 1): any string parses or is refused, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let _ = fgs_core::FunctionRef::parse(s);
    let _ = fgs_core::validate::user_data(s);
});
