//! Fuzz harnesses for the parsers of `amanat-core`: template JSON, answer batches, sealed values
//! (and the store's decoding of opened values), the age attachment reader.
//!
//! Shared word for word by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and the regression test
//! `core/tests/fuzz_regressions.rs`, which both include this file with `#[path = …] mod …;`: the
//! committed corpus and every crash input run through exactly the code that fuzzing ran.
//!
//! Each `run` returns `true` when the input was accepted by the parser (so tests can prove the
//! seeds reach past the first check) and panics when an invariant breaks: a panic anywhere below
//! is a finding, whether it comes from the core or from an assertion here.

// Each fuzz binary uses one harness of this file; the regression test uses all of them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Template JSON: `Template::from_json`, then every operation a shell performs on a loaded template.
pub mod template_json {
    use amanat_core::forms::{
        default_template, AnswerReason, Answers, Template, DEFAULT_TEMPLATE_JSON,
    };

    /// Loads `data` as a template; a loaded template must localise into each of its languages
    /// with no empty text, refuse any other language, and accept an empty answer set.
    pub fn run(data: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let template = match Template::from_json(text) {
            Ok(t) => t,
            Err(e) => {
                assert!(!e.path.is_empty(), "a template error names a place");
                assert!(!e.detail.is_empty(), "a template error explains itself");
                return false;
            }
        };
        let question_count = template.questions().count();
        for lang in template.languages() {
            let l = template
                .localized(lang)
                .expect("a loaded template localises into each of its languages");
            assert_eq!(&l.language, lang);
            assert!(!l.title.trim().is_empty(), "empty title in {lang}");
            assert_eq!(l.sections.len(), template.sections().len());
            let mut n = 0;
            for s in &l.sections {
                assert!(!s.title.trim().is_empty(), "empty section title");
                for q in &s.questions {
                    n += 1;
                    assert!(!q.label.trim().is_empty(), "empty question label");
                    for c in &q.choices {
                        assert!(!c.label.trim().is_empty(), "empty choice label");
                    }
                }
            }
            assert_eq!(n, question_count);
            // What the FFI hands to the shells: it must serialise.
            serde_json::to_string(&l).expect("a localised template serialises");
        }
        // Not a language tag at all, so no template can declare it.
        assert!(template.localized("not a language").is_err());
        // Question ids are unique (answers are keyed by them).
        let mut ids: Vec<&str> = template.questions().map(|q| q.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), question_count, "duplicate question ids loaded");
        // An interview can start: the empty answer set merges, and submitting it fails only on a
        // relevant required question.
        let empty = Answers::new();
        let merged = template
            .merge_batch(&empty, &empty)
            .expect("an empty batch merges");
        assert!(merged.is_empty());
        for q in template.visible_questions(&empty) {
            assert!(template.question(q.id()).is_some());
        }
        if let Err(e) = template.validate_submission(&empty) {
            let q = template
                .question(&e.question)
                .expect("the error names a question of the template");
            assert!(q.required() && template.is_relevant(q.id(), &empty));
            assert_eq!(e.reason, AnswerReason::Required);
        }
        true
    }

    /// Valid templates: the built-in one, and the smallest template the format allows.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        assert!(default_template().is_ok());
        let minimal = r#"{"id":"t","version":1,"languages":["en","ru","uz"],
            "title":{"en":"T","ru":"Т","uz":"T"},
            "sections":[{"id":"s","title":{"en":"S","ru":"С","uz":"S"},"questions":[
              {"id":"c","type":"consent","scope":"interview","required":true,
               "label":{"en":"Consent?","ru":"Согласие?","uz":"Rozilik?"}},
              {"id":"n","type":"integer","label":{"en":"N","ru":"N","uz":"N"},
               "constraints":{"min":0,"max":10},
               "relevant":{"equals":{"question":"c","value":true}}}]}]}"#;
        vec![
            ("builtin", DEFAULT_TEMPLATE_JSON.as_bytes().to_vec()),
            ("minimal", minimal.as_bytes().to_vec()),
        ]
    }
}

/// Answers: JSON batches of `Answers` merged one after the other into an interview of the
/// built-in template, as the FFI does on every save, then checked for submission.
pub mod answers {
    use amanat_core::forms::{default_template, AnswerValue, Answers, ConsentScope, Template};
    use std::sync::OnceLock;

    fn template() -> &'static Template {
        static T: OnceLock<Template> = OnceLock::new();
        T.get_or_init(|| default_template().expect("the built-in template loads"))
    }

    /// Texts of an answer that must never appear in an error message (values of 16+ characters,
    /// so a short value that happens to be a word of a reason is not a false alarm).
    fn long_texts(v: &AnswerValue) -> Vec<&str> {
        let all: Vec<&str> = match v {
            AnswerValue::Text(s)
            | AnswerValue::Date(s)
            | AnswerValue::Choice(s)
            | AnswerValue::Location { district: s } => vec![s.as_str()],
            AnswerValue::Choices(v) => v.iter().map(String::as_str).collect(),
            AnswerValue::Attachment {
                id,
                sha256,
                media_type,
            } => vec![id.as_str(), sha256.as_str(), media_type.as_str()],
            AnswerValue::Integer(_)
            | AnswerValue::Decimal(_)
            | AnswerValue::YesNo(_)
            | AnswerValue::Consent(_) => vec![],
        };
        all.into_iter()
            .filter(|s| s.chars().count() >= 16)
            .collect()
    }

    /// `data` is a JSON array of answer batches (or one batch). Returns whether any batch merged.
    pub fn run(data: &[u8]) -> bool {
        let batches: Vec<Answers> = match serde_json::from_slice::<Vec<Answers>>(data) {
            Ok(b) => b,
            Err(_) => match serde_json::from_slice::<Answers>(data) {
                Ok(b) => vec![b],
                Err(_) => return false,
            },
        };
        let t = template();
        let mut answers = Answers::new();
        let mut any = false;
        for batch in &batches {
            match t.merge_batch(&answers, batch) {
                Ok(merged) => {
                    any = true;
                    // Promise of `merge_batch`: the result validates as a whole ...
                    t.validate_batch(&Answers::new(), &merged)
                        .expect("a merged answer set validates as a batch");
                    // ... keeps no hidden answer ...
                    for (id, _) in merged.iter() {
                        assert!(t.is_relevant(id, &merged), "hidden answer kept");
                    }
                    // ... and keeps every batch answer that is still relevant, unchanged.
                    for (id, v) in batch.iter() {
                        if t.is_relevant(id, &merged) {
                            assert!(merged.get(id) == Some(v), "relevant answer lost");
                        }
                    }
                    answers = merged;
                }
                Err(e) => {
                    assert!(
                        t.question(&e.question).is_some() || batch.contains(&e.question),
                        "error names a question of the batch or template"
                    );
                    for (_, v) in batch.iter() {
                        for s in long_texts(v) {
                            assert!(
                                !e.detail.contains(s) && !format!("{:?}", e.reason).contains(s),
                                "an answer value leaked into an error"
                            );
                        }
                    }
                }
            }
        }
        // The store keeps answers as JSON and the submission hash is computed over that JSON again
        // after loading: a value that does not survive the round trip would break the chain.
        let json = serde_json::to_vec(&answers).expect("answers serialise");
        let back: Answers = serde_json::from_slice(&json).expect("answers parse back");
        assert!(back == answers, "answers changed through JSON");
        assert_eq!(
            serde_json::to_vec(&back).expect("answers serialise"),
            json,
            "answer JSON is not stable"
        );
        match t.validate_submission(&answers) {
            Ok(()) => {
                for q in t.questions() {
                    if q.required() && t.is_relevant(q.id(), &answers) {
                        assert!(answers.contains(q.id()), "required question unanswered");
                    }
                }
            }
            Err(e) => assert!(t.question(&e.question).is_some()),
        }
        for scope in ConsentScope::ALL {
            if t.consent_given(scope, &answers) {
                let q = t.consent_question(scope).expect("scope has a question");
                assert!(matches!(
                    answers.get(q.id()),
                    Some(AnswerValue::Consent(true))
                ));
            }
        }
        let _ = t.visible_questions(&answers);
        any
    }

    /// A valid session: consent, then answers of every type the built-in template asks for.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let t = template();
        let mut consent = Vec::new();
        for q in t.questions() {
            if q.scope().is_some() {
                consent.push(format!(r#""{}":{{"type":"consent","value":true}}"#, q.id()));
            }
        }
        let consent = format!("{{{}}}", consent.join(","));
        // One value of each kind for the first visible question of that kind.
        let mut after = Answers::new();
        for (k, v) in serde_json::from_str::<Answers>(&consent)
            .expect("consent batch parses")
            .iter()
        {
            after.insert(k, v.clone());
        }
        let mut batch = Vec::new();
        for q in t.visible_questions(&after) {
            use amanat_core::forms::QuestionType as T;
            let v = match q.kind() {
                T::Text | T::LongText => r#"{"type":"text","value":"Kept in the hostel"}"#.into(),
                T::Integer => r#"{"type":"integer","value":3}"#.into(),
                T::Decimal => r#"{"type":"decimal","value":2.5}"#.into(),
                T::Date => r#"{"type":"date","value":"2024-02-29"}"#.into(),
                T::SingleChoice => {
                    format!(r#"{{"type":"choice","value":"{}"}}"#, q.choices()[0].id())
                }
                T::MultipleChoice => format!(
                    r#"{{"type":"choices","value":["{}"]}}"#,
                    q.choices()[0].id()
                ),
                T::YesNo => r#"{"type":"yes_no","value":true}"#.into(),
                T::Audio => format!(
                    r#"{{"type":"attachment","value":{{"id":"a1","sha256":"{}","media_type":"audio/ogg"}}}}"#,
                    "0".repeat(64)
                ),
                T::Photo => format!(
                    r#"{{"type":"attachment","value":{{"id":"p1","sha256":"{}","media_type":"image/jpeg"}}}}"#,
                    "a".repeat(64)
                ),
                T::Location => r#"{"type":"location","value":{"district":"Chilonzor"}}"#.into(),
                T::Consent => continue,
            };
            batch.push(format!(r#""{}":{v}"#, q.id()));
        }
        let session = format!("[{consent},{{{}}}]", batch.join(","));
        vec![
            ("consent", consent.into_bytes()),
            ("session", session.into_bytes()),
        ]
    }
}

/// Sealed values: `crypto::open` on arbitrary bytes under a key fixed for the process, the
/// seal/open round trip with padding, and the store's decoding of an opened value
/// (`crypto::unpad`, then `store::from_json` into every stored record type).
pub mod sealed_value {
    use amanat_core::crypto::{self, CryptoError, NonceSource, SEAL_OVERHEAD};
    use amanat_core::journal::{audit::AuditEntry, hlc::Hlc};
    use amanat_core::records::{
        attachments::AttachmentInfo, cases::Case, cases::CaseCode, cases::CaseIdentity,
        consent::Consent, interviews::Interview,
    };
    use amanat_core::secret::{SecretBytes, SecretKey};
    use amanat_core::store::{self, RecordId};
    use std::sync::OnceLock;

    const AAD: &[u8] = b"amanat/fuzz/sealed-value";

    /// `SecretKey` has no public constructor from bytes (deliberately): the key is random per
    /// process, which changes nothing for these properties.
    fn keys() -> &'static (SecretKey, NonceSource) {
        static K: OnceLock<(SecretKey, NonceSource)> = OnceLock::new();
        K.get_or_init(|| {
            (
                crypto::random_key().expect("OS random"),
                NonceSource::new().expect("OS random"),
            )
        })
    }

    fn decode_all(value: &SecretBytes) -> bool {
        fn one<T: serde::de::DeserializeOwned + serde::Serialize>(v: &SecretBytes) -> bool {
            match store::from_json::<T>(v) {
                Ok(t) => {
                    store::to_json(&t).expect("a decoded record serialises again");
                    true
                }
                Err(_) => false,
            }
        }
        let mut any = false;
        any |= one::<Case>(value);
        any |= one::<CaseIdentity>(value);
        any |= one::<Consent>(value);
        any |= one::<Interview>(value);
        any |= one::<AuditEntry>(value);
        any |= one::<AttachmentInfo>(value);
        any |= one::<Hlc>(value);
        any
    }

    /// Returns whether `data`, once opened, decodes as some stored record type.
    pub fn run(data: &[u8]) -> bool {
        let (key, nonces) = keys();
        // 1. Arbitrary bytes never open (no forgery) and fail with the right typed error.
        let expected = if data.len() < SEAL_OVERHEAD || data[0] != 1 {
            CryptoError::Malformed
        } else {
            CryptoError::Integrity
        };
        assert_eq!(crypto::open(key, AAD, data).err(), Some(expected));

        // 2. Round trip through the store's padded sealing; any flipped byte is refused.
        let mut sealed = Vec::new();
        crypto::seal_into(key, nonces, AAD, data, true, &mut sealed).expect("seal");
        assert_eq!(
            sealed.len(),
            crypto::padme_len(data.len() + 1) + SEAL_OVERHEAD
        );
        let mut opened = crypto::open(key, AAD, &sealed).expect("own seal opens");
        crypto::unpad(&mut opened).expect("own padding strips");
        assert_eq!(opened.expose(), data);
        let pos = data.first().map_or(0, |b| usize::from(*b)) % sealed.len();
        sealed[pos] ^= 0x01;
        assert!(
            crypto::open(key, AAD, &sealed).is_err(),
            "flipped byte opened"
        );
        assert!(crypto::open(key, b"other row", &sealed).is_err());

        // 3. `unpad` on arbitrary plaintext: strips exactly `0x80 0*` or refuses.
        let mut padded = SecretBytes::new(data.to_vec());
        if crypto::unpad(&mut padded).is_some() {
            let rest = &data[padded.len()..];
            assert_eq!(rest.first(), Some(&0x80));
            assert!(rest[1..].iter().all(|b| *b == 0));
        }

        // 4. The store's decoding of an opened value, and record ids as text.
        if let Ok(text) = std::str::from_utf8(data) {
            if let Some(id) = RecordId::parse(text) {
                assert_eq!(id.to_string(), text.to_ascii_lowercase());
            }
        }
        decode_all(&SecretBytes::new(data.to_vec()))
    }

    /// Stored record shapes as the store writes them.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let hlc = r#"{"ms":1732800000000,"counter":2,"node":"0011223344556677"}"#;
        // A case code with a correct check character (found by trying each symbol).
        let code = "023456789ABCDEFGHJKMNPQRSTVWXYZ"
            .chars()
            .map(|c| format!("K7Q2-MX9{c}"))
            .find(|c| CaseCode::parse(c).is_ok())
            .expect("one check character fits");
        vec![
            ("hlc", hlc.as_bytes().to_vec()),
            (
                "case",
                format!(
                    r#"{{"code":"{code}","created":{hlc},"fields":{{"status":{{"value":"open","hlc":{hlc}}}}},"withdrawal_pending":false}}"#
                )
                .into_bytes(),
            ),
            (
                "audit",
                format!(
                    r#"{{"seq":1,"at_ms":5,"kind":"unlock","subject":null,"prev_hash":"{0}","hash":"{0}"}}"#,
                    "0".repeat(64)
                )
                .into_bytes(),
            ),
            ("record-id", b"00112233445566778899aabbccddeeff".to_vec()),
            (
                "padded",
                [b"{}".as_slice(), &[0x80, 0, 0, 0]].concat(),
            ),
        ]
    }
}

/// The age attachment reader: `AttachmentReader::open_file` over a file holding the input's
/// bytes, with a fixed test identity, then a full read and seeks to input-chosen offsets.
///
/// Input layout: one byte `n` (number of seeks, `n % 8`), `n` little-endian `u64` offsets, then
/// the file. Seeds are real age files encrypted to the test identity, so the fuzzer starts past
/// the header and mutates the STREAM chunks.
pub mod attachment_reader {
    use amanat_core::records::attachments::{AttachmentError, AttachmentReader, CHUNK_SIZE};
    use std::io::Write;
    use std::str::FromStr;

    /// Test identity of the fuzz fixture (made with `age-keygen`; protects nothing).
    pub const IDENTITY: &str =
        "AGE-SECRET-KEY-1D5A6GVD965JM65DRHNR3CWH3V3AERL4QLHFUD6LRJZP8Y76WJR3SUYTQ55";

    fn identity() -> age::x25519::Identity {
        age::x25519::Identity::from_str(IDENTITY).expect("test identity parses")
    }

    fn split(data: &[u8]) -> (Vec<u64>, &[u8]) {
        let Some((&n, rest)) = data.split_first() else {
            return (Vec::new(), data);
        };
        let n = usize::from(n % 8).min(rest.len() / 8);
        let (offs, file) = rest.split_at(n * 8);
        let offsets = offs
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        (offsets, file)
    }

    /// Returns whether the file decrypted completely.
    pub fn run(data: &[u8]) -> bool {
        let (offsets, file_bytes) = split(data);
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(file_bytes).expect("write temp file");
        file.flush().expect("flush temp file");
        let ids = [identity()];
        let mut reader = match AttachmentReader::open_file(file.path(), &ids) {
            Ok(r) => r,
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        AttachmentError::Malformed
                            | AttachmentError::NoMatchingKey
                            | AttachmentError::Truncated
                    ),
                    "unexpected error opening: {e:?}"
                );
                return false;
            }
        };
        // Full read: on failure, `plain` holds what was returned before the failing chunk.
        let mut plain = Vec::new();
        let full = reader.read_to_end(&mut plain);
        if let Err(e) = &full {
            assert!(
                matches!(
                    e,
                    AttachmentError::Integrity { .. } | AttachmentError::Truncated
                ),
                "unexpected error reading: {e:?}"
            );
            assert_eq!(plain.len() as u64 % CHUNK_SIZE, 0, "partial chunk returned");
        }
        let complete = full.is_ok();
        let len = plain.len() as u64;
        for off in offsets {
            let mut buf = [0u8; 97];
            let got = reader.seek(off).and_then(|p| {
                // Past the end means at the end.
                if complete {
                    assert_eq!(p, off.min(len), "seek landed elsewhere");
                } else {
                    assert!(p <= off, "seek landed past its target");
                }
                reader.read(&mut buf)
            });
            match got {
                Ok(n) => {
                    // Bytes that overlap what the full read returned must be the same bytes.
                    let start = usize::try_from(off).unwrap_or(usize::MAX);
                    if start < plain.len() {
                        let end = (start + n).min(plain.len());
                        assert_eq!(&buf[..end - start], &plain[start..end], "seek read differs");
                    }
                    if complete && off >= len {
                        assert_eq!(n, 0, "bytes past the end");
                    }
                    if complete && off < len {
                        assert!(n > 0, "no bytes before the end");
                    }
                }
                Err(e) => {
                    // A file that decrypted completely must be seekable anywhere inside it.
                    assert!(
                        !(complete && off < len),
                        "seek inside a good file failed: {e:?}"
                    );
                }
            }
        }
        complete
    }

    /// Builds a seed: `seeks` offsets, then `plaintext` encrypted to the test identity (and, if
    /// `other`, to a second recipient first, as a device plus an organisation group).
    pub fn encrypt(seeks: &[u64], plaintext: &[u8], other: bool) -> Vec<u8> {
        let me = identity().to_public();
        let stranger = age::x25519::Identity::generate().to_public();
        let mut recipients: Vec<&dyn age::Recipient> = Vec::new();
        if other {
            recipients.push(&stranger);
        }
        recipients.push(&me);
        let enc = age::Encryptor::with_recipients(recipients.into_iter()).expect("recipients");
        let mut out = vec![u8::try_from(seeks.len()).expect("few seeks")];
        for s in seeks {
            out.extend_from_slice(&s.to_le_bytes());
        }
        let mut w = enc.wrap_output(&mut out).expect("age writer");
        w.write_all(plaintext).expect("encrypt");
        w.finish().expect("finish");
        out
    }

    /// Real attachment files: empty, small, exactly one chunk, two chunks; with seeks.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let chunk = usize::try_from(CHUNK_SIZE).expect("small");
        let big: Vec<u8> = (0..chunk + 100).map(|i| (i % 251) as u8).collect();
        vec![
            ("empty", encrypt(&[], b"", false)),
            (
                "small",
                encrypt(&[3, 0, 40], b"a recorded statement", false),
            ),
            ("two-recipients", encrypt(&[1], b"photo bytes", true)),
            (
                "one-chunk",
                encrypt(&[65_535, 65_536], &big[..chunk], false),
            ),
            ("two-chunks", encrypt(&[65_536, 10, 65_600], &big, false)),
        ]
    }
}
