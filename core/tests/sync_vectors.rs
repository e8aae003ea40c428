//! Frozen test vectors of the sync envelope (format 1), as `vectors.rs` freezes the vault's
//! formats. Devices in the field sign, and HQ's custody verification checks, exactly these bytes:
//! a change to `envelope::signed_bytes`, the content hash, the domain labels or the JSON field
//! names must fail here. A new format gets a new `FORMAT` number and new vectors beside these.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::journal::hlc::{Hlc, NodeId};
use amanat_core::sync::envelope::{self, OpenError, SignedRecord, FORMAT};
use ring::signature::{Ed25519KeyPair, KeyPair};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fixed author key: Ed25519 from the seed `0x42 × 32`.
fn author() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).unwrap()
}

/// The record every vector is made from: every field set, `prev_hash` present.
fn record(prev_hash: Option<&str>) -> SignedRecord {
    let mut r = SignedRecord {
        format: FORMAT,
        envelope_id: "0192f1c4-8a2b-7c3d-9e4f-0123456789ab".into(),
        kind: "case".into(),
        record_id: "00112233445566778899aabbccddeeff".into(),
        version: 7,
        hlc: Hlc {
            ms: 1_800_000_000_123,
            counter: 5,
            node: NodeId([1, 2, 3, 4, 5, 6, 7, 8]),
        },
        author: String::new(),
        author_key: String::new(),
        prev_hash: prev_hash.map(str::to_owned),
        content_hash: String::new(),
        content: r#"{"code":"K7Q-2MX","fields":{}}"#.into(),
        signature: String::new(),
    };
    envelope::sign(&mut r, &author());
    r
}

#[test]
fn content_hash_is_domain_separated_sha256() {
    assert_eq!(envelope::content_hash(b""), CONTENT_HASH_EMPTY);
    assert_eq!(
        envelope::content_hash(br#"{"code":"K7Q-2MX","fields":{}}"#),
        CONTENT_HASH
    );
}

#[test]
fn signed_bytes_author_and_signature_are_frozen() {
    let r = record(Some(PREV_HASH));
    assert_eq!(hex(author().public_key().as_ref()), AUTHOR_KEY);
    assert_eq!(r.author_key, AUTHOR_KEY);
    assert_eq!(r.author, AUTHOR_ID);
    assert_eq!(r.content_hash, CONTENT_HASH);
    assert_eq!(hex(&envelope::signed_bytes(&r)), SIGNED_BYTES);
    assert_eq!(r.signature, SIGNATURE);
    envelope::verify(&r).unwrap();
    // Without a previous hash: a different presence byte, a different signature.
    let first = record(None);
    assert_eq!(hex(&envelope::signed_bytes(&first)), SIGNED_BYTES_NO_PREV);
    assert_eq!(first.signature, SIGNATURE_NO_PREV);
}

/// A change to one field of a record.
type Change = fn(&mut SignedRecord);

#[test]
fn the_frozen_json_parses_and_verifies_and_every_signed_field_counts() {
    let r: SignedRecord = serde_json::from_str(RECORD_JSON).unwrap();
    assert_eq!(r, record(Some(PREV_HASH)));
    assert_eq!(serde_json::to_string(&r).unwrap(), RECORD_JSON);
    envelope::verify(&r).unwrap();
    // Each signed field, changed, breaks the signature (or the hash, for the content).
    let cases: Vec<(Change, OpenError)> = vec![
        (|r| r.envelope_id.push('0'), OpenError::BadSignature),
        (|r| r.kind = "identity".into(), OpenError::BadSignature),
        (|r| r.record_id.push('0'), OpenError::BadSignature),
        (|r| r.version += 1, OpenError::BadSignature),
        (|r| r.hlc.ms += 1, OpenError::BadSignature),
        (|r| r.hlc.counter += 1, OpenError::BadSignature),
        (|r| r.hlc.node.0[0] ^= 1, OpenError::BadSignature),
        (|r| r.prev_hash = None, OpenError::BadSignature),
        (|r| r.content.push(' '), OpenError::ContentHash),
        (|r| r.author.push('0'), OpenError::WrongAuthor),
        (|r| r.format = 2, OpenError::Malformed),
    ];
    for (i, (change, want)) in cases.into_iter().enumerate() {
        let mut bad = r.clone();
        change(&mut bad);
        assert_eq!(envelope::verify(&bad), Err(want), "case {i}");
    }
    // Unknown fields are refused (a format change cannot slip in beside format 1).
    let extra = RECORD_JSON.replacen('{', r#"{"extra":1,"#, 1);
    assert!(serde_json::from_str::<SignedRecord>(&extra).is_err());
}

#[test]
fn a_frozen_sealed_payload_opens_with_its_identity_only() {
    let identity: age::x25519::Identity = AGE_IDENTITY.parse().unwrap();
    let payload =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, SEALED_PAYLOAD).unwrap();
    let r = envelope::open(&payload, &identity).unwrap();
    assert_eq!(r, record(Some(PREV_HASH)));
    envelope::verify(&r).unwrap();
    let other = age::x25519::Identity::generate();
    assert_eq!(
        envelope::open(&payload, &other),
        Err(OpenError::Undecryptable)
    );
}

const PREV_HASH: &str = "5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b";
const AUTHOR_KEY: &str = "2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12";
const AUTHOR_ID: &str = "3097e2dee2cb4a34b53840cdb705aed7";
const CONTENT_HASH_EMPTY: &str = "418dfa9915bf419a93668888c066dba5dbf0b3f12b9fb096b37b8c4ec093609c";
const CONTENT_HASH: &str = "12f1b77f935d74474204ad8705132b89a22162414d84ce2639373fa00ba906a4";
const SIGNED_BYTES: &str = "616d616e61742f76312f73796e632d7265636f72640000000001000000000000002430313932663163342d386132622d376333642d396534662d303132333435363738396162000000000000000463617365000000000000002030303131323233333434353536363737383839396161626263636464656566660000000000000007000001a3185c507b0000000501020304050607080000000000000020333039376532646565326362346133346235333834306364623730356165643700000000000000403231353266386431396237393164323434353332343265313566326561623663623763666661376236613565643330303937393630653036393838316462313201000000000000004035623562356235623562356235623562356235623562356235623562356235623562356235623562356235623562356235623562356235623562356235623562000000000000004031326631623737663933356437343437343230346164383730353133326238396132323136323431346438346365323633393337336661303062613930366134";
const SIGNATURE: &str = "70158b6cfba65d28240109dcfe308b4db2ee3ea59ed7ffa5ceed4b3fc22add664269e5fa2dc6810e54630239677834e12d996e098c1799e652b779f39bbaa007";
const SIGNED_BYTES_NO_PREV: &str = "616d616e61742f76312f73796e632d7265636f72640000000001000000000000002430313932663163342d386132622d376333642d396534662d303132333435363738396162000000000000000463617365000000000000002030303131323233333434353536363737383839396161626263636464656566660000000000000007000001a3185c507b0000000501020304050607080000000000000020333039376532646565326362346133346235333834306364623730356165643700000000000000403231353266386431396237393164323434353332343265313566326561623663623763666661376236613565643330303937393630653036393838316462313200000000000000004031326631623737663933356437343437343230346164383730353133326238396132323136323431346438346365323633393337336661303062613930366134";
const SIGNATURE_NO_PREV: &str = "a72bd1c49c1d80f09dca89738a31c0ce9484c9b2467bc8f9d91e443a9bff00ffa754f6909621b3121d815ac857873942daab67132a29c66a061273dcbf1c0704";
const RECORD_JSON: &str = r#"{"format":1,"envelope_id":"0192f1c4-8a2b-7c3d-9e4f-0123456789ab","kind":"case","record_id":"00112233445566778899aabbccddeeff","version":7,"hlc":{"ms":1800000000123,"counter":5,"node":"0102030405060708"},"author":"3097e2dee2cb4a34b53840cdb705aed7","author_key":"2152f8d19b791d24453242e15f2eab6cb7cffa7b6a5ed30097960e069881db12","prev_hash":"5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b","content_hash":"12f1b77f935d74474204ad8705132b89a22162414d84ce2639373fa00ba906a4","content":"{\"code\":\"K7Q-2MX\",\"fields\":{}}","signature":"70158b6cfba65d28240109dcfe308b4db2ee3ea59ed7ffa5ceed4b3fc22add664269e5fa2dc6810e54630239677834e12d996e098c1799e652b779f39bbaa007"}"#;
/// A throwaway identity made for this vector only (it protects nothing else).
const AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-15V0YUSY4VZVJWQ73D9F4NC5C2LE5E9S7QEQ9LGRWMTW8J4G4U3YSTZLEA8";
/// `base64(age(JSON(record)))` to [`AGE_IDENTITY`], as the relay stores it.
const SEALED_PAYLOAD: &str = "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSA1TUZuTXpldTV5bmNnYk0vTncxdCtCMzhwekMvZWlONnhKWVd6WFBjVWpZCmhNRHFhZEpKL2haRHl5RzExYllPS1Y1VkMxa0ZMbTk4SnNqUzBCUXpRaWMKLT4gQH4tZ3JlYXNlClhSUzJNQ1FtQVB4MFNuWEhBQzJ0N25aQkZGSUNUT1BuV0ltSWhETVV3QQotLS0gTjNjY0tLWnFManEvOWh2bFpoWU5ZNk82ZXdPLzlGNDdkaDVXdk1aN1M2QQp8CYkbwDQBtqSga2Spu1GIcjclOMjU3Ya8PallIhE7s3u707tH85ahSYu8jqe+Wntu7Eea+qY6N7gF776Rfd1r3LRi1GcbyXqIwhjbcicjOBwLuahlYndKarCwhZwJFrjeWNzBk1pZOlC0ceI5olRcZaFpWgU17W6Cou60cg+sHQmLahagd7f9cSeP5nPgFM7DH3KffDFW1JfGDMPaChd+2WWTLoj3Nru+q8xmpQHEnuzMXUAjrPFgVI3icF8LFqke/UkK8YbGWOZvd7qXWHzVG+GB3itgMhQswkP2hXKNqK9yu0qBzYLjqrNgepIGlmylBsez56//P1NevASQbKxEh3Ygw+BFwNCqiozzVb0/G/yHQxuLCNwlr5whORxdYvtmvFrk2qv68L9lVCoWLTxgxcYujYtyM+a+95dfYB/5kYyGnsbkM+mbeenZHDhgtYV8N4b8q5raeZOAYx/emTDtOZyVXt2BiesZNyz/TS77sMp2+TRneW7y//fj7qPpEQczxXQI8/NlCy0ldANtWhAu7bSOVEuaEvR4ryHL26hMtO8tzhKyxU359H8w4l56oe8uzMzqEJv9z+lhHMaqkJ4LtWLX3qxtIeyzk8s6SPwGBvyfGm5dCxgCRScnMNdEhDd2ecBD9IPt7NkHFSTH5JNAcU3J7V0lYZvJA71T2egTFWT7SAqcQ6wi30550SMdmOgdIpEBhtRAoNS4w5tZhgqjXScaxNu7h0/2zSpa58UWvAXC52yT8EuC/xq9amXV4D/2F6cRt3jR9EJNkNRjG5tgUfyu5uI0XlG8MKtZoVPNpRxl+UR/s71l/AKfvIgsRj0LlEJodyK1gba1sTA9K1b1L3VDA3hoRsvWwKudkgUf2u/OxmOEaW6hut3AbJNTtDQi7LeJib9EqmNouB6YKpXFJDxuOT8UdCnKPQJlnmhfYb8YaLXwkEKy";
