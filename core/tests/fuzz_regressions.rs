#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The fuzz corpus and every crash input of the core's fuzz targets, run through the same harness
//! code as `cargo fuzz` (fuzz/harness/core.rs), so plain `cargo test` keeps every finding fixed.
//! How to fuzz: docs/SECURITY.md, "Fuzzing".

#[path = "../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../fuzz/harness/core.rs"]
mod harness;

#[test]
fn template_json_corpus_and_crashes() {
    corpus::replay("template_json", harness::template_json::run);
}

#[test]
fn template_json_seeds_load() {
    for (name, seed) in harness::template_json::seeds() {
        assert!(harness::template_json::run(&seed), "seed {name} refused");
    }
}

#[test]
fn answers_corpus_and_crashes() {
    corpus::replay("answers", harness::answers::run);
}

#[test]
fn answers_seeds_merge() {
    for (name, seed) in harness::answers::seeds() {
        assert!(harness::answers::run(&seed), "seed {name} refused");
    }
}

#[test]
fn sealed_value_corpus_and_crashes() {
    corpus::replay("sealed_value", harness::sealed_value::run);
}

#[test]
fn sealed_value_seeds_decode() {
    for (name, seed) in harness::sealed_value::seeds() {
        let decodes = harness::sealed_value::run(&seed);
        assert_eq!(
            decodes,
            !matches!(name, "record-id" | "padded"),
            "seed {name}"
        );
    }
}

#[test]
fn attachment_reader_corpus_and_crashes() {
    corpus::replay("attachment_reader", harness::attachment_reader::run);
}

#[test]
fn attachment_reader_seeds_decrypt() {
    for (name, seed) in harness::attachment_reader::seeds() {
        assert!(
            harness::attachment_reader::run(&seed),
            "seed {name} refused"
        );
    }
}

/// Regenerates the committed seed files: `cargo test -p amanat-core --test fuzz_regressions --
/// --ignored write_seeds` (then minimise with `cargo fuzz cmin`, see SECURITY.md).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    corpus::write_seeds("template_json", harness::template_json::seeds());
    corpus::write_seeds("answers", harness::answers::seeds());
    corpus::write_seeds("sealed_value", harness::sealed_value::seeds());
    corpus::write_seeds("attachment_reader", harness::attachment_reader::seeds());
}

/// Found by `attachment_reader` (fuzz/artifacts-regressions/attachment_reader/seek-past-end-same-chunk):
/// a seek past the end that stays in the current chunk made age 0.12's reader panic on the next
/// read ("attempt to subtract with overflow" in `read_from_chunk`; an out-of-range slice in a
/// release build). A player seeking to the end of a recording must get 0 bytes, not a crash.
#[test]
fn seek_past_the_end_reads_nothing() {
    for (len, offsets) in [
        (20usize, vec![21u64, 40, 65_535, 65_536, 1 << 40, u64::MAX]),
        (
            65_536 + 100,
            vec![65_636, 65_637, 131_071, 131_072, u64::MAX],
        ),
        (0, vec![1, 65_536, u64::MAX]),
    ] {
        let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let file = harness::attachment_reader::encrypt(&[], &plain, false);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.age");
        std::fs::write(&path, &file[1..]).unwrap();
        let id: age::x25519::Identity = harness::attachment_reader::IDENTITY.parse().unwrap();
        let mut r =
            amanat_core::records::attachments::AttachmentReader::open_file(&path, &[id]).unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, plain);
        for off in offsets {
            // Positioned at the end, whichever chunk the reader was in.
            assert_eq!(
                r.seek(off).unwrap(),
                len as u64,
                "seek({off}) of {len} bytes"
            );
            let mut buf = [0u8; 64];
            assert_eq!(r.read(&mut buf).unwrap(), 0, "read after seek({off})");
            // And seeking back still works.
            if len > 3 {
                assert_eq!(r.seek(3).unwrap(), 3);
                assert_eq!(r.read(&mut buf[..1]).unwrap(), 1);
                assert_eq!(buf[0], plain[3]);
            }
        }
    }
}

/// Found by `template_json` (fuzz/artifacts-regressions/template_json/unknown-empty-field-at-root):
/// an unknown field with an empty name at the top level gave an error with an empty path,
/// although `TemplateError::path` always names a place (`$` for the whole document).
#[test]
fn unknown_empty_field_names_a_place() {
    let e = amanat_core::forms::Template::from_json(r#"{"":0}"#).unwrap_err();
    assert_eq!(e.path, r#""""#);
    assert_eq!(e.reason, amanat_core::forms::TemplateReason::UnknownField);
    let e = amanat_core::forms::Template::from_json(r#"{"id":"t","version":1,"languages":["en","ru","uz"],"title":{"en":"T","ru":"T","uz":"T"},"sections":[{"":1}]}"#).unwrap_err();
    assert_eq!(e.path, r#"sections[0]."""#);
}
