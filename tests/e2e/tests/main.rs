//! The end-to-end tests, one module per file of this folder and per area of the API, linked as
//! one test binary (`e2e`): `build.rs` declares every `tests/*.rs` as a module, so a new file
//! needs nothing else. Run one file's tests with `cargo nextest run -p fgs-e2e <file>::`.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
