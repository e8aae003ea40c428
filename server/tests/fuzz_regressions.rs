#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The fuzz corpus and every crash input of the relay's fuzz targets, run through the same
//! harness code as `cargo fuzz` (fuzz/harness/relay.rs: the public router in memory over a SQLite
//! relay). How to fuzz: docs/SECURITY.md.

#[path = "../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../fuzz/harness/relay.rs"]
mod harness;

#[test]
fn relay_push_corpus_and_crashes() {
    corpus::replay("relay_push", harness::relay_push::run);
}

#[test]
fn relay_push_seeds_reach_storage() {
    for (name, seed) in harness::relay_push::seeds() {
        let accepted = harness::relay_push::run(&seed);
        assert_eq!(
            accepted,
            harness::relay_push::seed_status(name).is_success(),
            "seed {name}"
        );
    }
}

#[test]
fn request_headers_corpus_and_crashes() {
    corpus::replay("request_headers", harness::request_headers::run);
}

#[test]
fn request_headers_seeds() {
    for (name, seed) in harness::request_headers::seeds() {
        assert_eq!(
            harness::request_headers::run(&seed),
            harness::request_headers::seed_accepted(name),
            "seed {name}"
        );
    }
}

/// Regenerates the committed seed files (see core/tests/fuzz_regressions.rs).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    corpus::write_seeds("relay_push", harness::relay_push::seeds());
    corpus::write_seeds("request_headers", harness::request_headers::seeds());
}
