#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The fuzz corpus and every crash input of the protocol's fuzz targets, run through the same
//! harness code as `cargo fuzz` (fuzz/harness/protocol.rs). How to fuzz: docs/SECURITY.md.

#[path = "../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../fuzz/harness/protocol.rs"]
mod harness;

#[test]
fn enrollment_corpus_and_crashes() {
    corpus::replay("enrollment", harness::enrollment::run);
}

#[test]
fn enrollment_seeds_verify() {
    for (name, seed) in harness::enrollment::seeds() {
        assert!(harness::enrollment::run(&seed), "seed {name} refused");
    }
}

#[test]
fn envelopes_corpus_and_crashes() {
    corpus::replay("envelopes", harness::envelopes::run);
}

#[test]
fn envelopes_seeds_parse() {
    for (name, seed) in harness::envelopes::seeds() {
        assert!(harness::envelopes::run(&seed), "seed {name} refused");
    }
}

/// Regenerates the committed seed files (see core/tests/fuzz_regressions.rs).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    corpus::write_seeds("enrollment", harness::enrollment::seeds());
    corpus::write_seeds("envelopes", harness::envelopes::seeds());
}
