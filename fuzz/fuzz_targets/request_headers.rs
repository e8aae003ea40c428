//! Fuzz target `request_headers`: see `fuzz/harness/relay.rs` (shared with server/tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness/relay.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::request_headers::run(data);
});
