//! Fuzz target `enrollment`: see `fuzz/harness/protocol.rs` (shared with protocol/tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness/protocol.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::enrollment::run(data);
});
