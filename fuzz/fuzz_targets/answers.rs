//! Fuzz target `answers`: see `fuzz/harness/core.rs` (shared with core/tests/fuzz_regressions.rs).
#![no_main]

#[path = "../harness/core.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::answers::run(data);
});
