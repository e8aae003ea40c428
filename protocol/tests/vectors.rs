//! Frozen test vectors of the wire format (as the age crate freezes its format): every byte a
//! device, the relay or HQ signs or compares. A change that alters any of these bytes breaks devices
//! in the field and must fail here; a new format gets a new version and new vectors beside these.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_protocol::{
    canonical_deferred_request, canonical_request, device_id, names, sha256_hex,
    sign_request_with_nonce, to_hex, verify_ed25519, DeviceRole, EnrollmentCode, OrgPublic,
    Revocation, HEADER_DEVICE, HEADER_EXPIRES, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
    HQ_RECIPIENT, MAX_DEFERRED_MS, RECIPIENT_GROUPS,
};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;

/// Fixed keys: Ed25519 signatures are deterministic, so signed statements are vectors too.
fn org_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).unwrap()
}

fn device_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[0x07; 32]).unwrap()
}

fn org() -> OrgPublic {
    let mut groups = BTreeMap::new();
    for (i, g) in RECIPIENT_GROUPS.iter().enumerate() {
        groups.insert(g.to_string(), format!("age1recipient{i}"));
    }
    let mut org = OrgPublic {
        version: 1,
        signing_public_key: to_hex(org_key().public_key().as_ref()),
        groups,
        fingerprint: String::new(),
    };
    org.fingerprint = org.compute_fingerprint();
    org
}

#[test]
fn names_are_frozen() {
    assert_eq!(
        [
            names::REQUEST_V1,
            names::ENROLL_V1,
            names::REVOKE_V1,
            names::ORG_V,
            names::ENROLL_RELAY_V1,
            names::HQ_CERT_V1,
            names::EXPORT_V1,
            names::ORDER_V1,
            names::RECEIPT_V1,
            names::DEFERRED_V1,
        ],
        [
            "AMANAT-REQUEST-V1",
            "AMANAT-ENROLL-V1",
            "AMANAT-REVOKE-V1",
            "AMANAT-ORG-V",
            "AMANAT-ENROLL-RELAY-V1",
            "AMANAT-HQ-CERT-V1",
            "AMANAT-EXPORT-V1",
            "AMANAT-ORDER-V1",
            "AMANAT-RECEIPT-V1",
            "AMANAT-DEFERRED-V1",
        ]
    );
    assert_eq!(HEADER_EXPIRES, "x-amanat-expires");
    assert_eq!(MAX_DEFERRED_MS, 259_200_000);
    assert_eq!(
        [
            HEADER_DEVICE,
            HEADER_TIMESTAMP,
            HEADER_NONCE,
            HEADER_SIGNATURE
        ],
        [
            "x-amanat-device",
            "x-amanat-timestamp",
            "x-amanat-nonce",
            "x-amanat-signature"
        ]
    );
    assert_eq!(HQ_RECIPIENT, "hq");
    assert_eq!(
        RECIPIENT_GROUPS,
        ["caseworkers", "legal", "law_enforcement", "research"]
    );
}

#[test]
fn canonical_request_string() {
    let body_hash = sha256_hex(b"{\"envelopes\":[]}");
    let canonical = canonical_request(
        "post",
        "/v1/envelopes?x=1",
        1_764_000_000_000,
        "00112233445566778899aabbccddeeff",
        &body_hash,
    );
    assert_eq!(canonical, VECTOR_CANONICAL_REQUEST);
}

#[test]
fn canonical_deferred_request_string() {
    let canonical = canonical_deferred_request(
        "put",
        "/v1/blobs/aa?offset=1048576",
        1_764_000_000_000,
        1_764_259_200_000,
        "00112233445566778899aabbccddeeff",
        &sha256_hex(b"chunk"),
    );
    assert_eq!(canonical, VECTOR_CANONICAL_DEFERRED);
}

#[test]
fn request_signature() {
    let key = device_key();
    let headers = sign_request_with_nonce(
        &key,
        "POST",
        "/v1/envelopes",
        1_764_000_000_000,
        "00112233445566778899aabbccddeeff",
        b"body",
    );
    assert_eq!(headers.device, device_id(key.public_key().as_ref()));
    assert_eq!(headers.device, VECTOR_DEVICE_ID);
    assert_eq!(headers.timestamp, "1764000000000");
    assert_eq!(headers.signature, VECTOR_REQUEST_SIGNATURE);
    let canonical = canonical_request(
        "POST",
        "/v1/envelopes",
        1_764_000_000_000,
        "00112233445566778899aabbccddeeff",
        &sha256_hex(b"body"),
    );
    verify_ed25519(
        key.public_key().as_ref(),
        canonical.as_bytes(),
        &headers.signature,
    )
    .unwrap();
}

#[test]
fn org_fingerprint() {
    assert_eq!(org().fingerprint, VECTOR_ORG_FINGERPRINT);
}

#[test]
fn enrollment_statement() {
    let org = org();
    let canonical = EnrollmentCode::canonical(
        "code-1",
        &org.fingerprint,
        1_800_000_000_000,
        DeviceRole::Field,
    );
    assert_eq!(
        canonical,
        format!("AMANAT-ENROLL-V1\ncode-1\n{VECTOR_ORG_FINGERPRINT}\n1800000000000\nfield")
    );
    let code = EnrollmentCode {
        code_id: "code-1".into(),
        org_fingerprint: org.fingerprint.clone(),
        expires_at: 1_800_000_000_000,
        role: DeviceRole::Hq,
        relay_url: None,
        signature: to_hex(
            org_key()
                .sign(
                    EnrollmentCode::canonical(
                        "code-1",
                        &org.fingerprint,
                        1_800_000_000_000,
                        DeviceRole::Hq,
                    )
                    .as_bytes(),
                )
                .as_ref(),
        ),
    };
    assert_eq!(code.signature, VECTOR_ENROLL_SIGNATURE);
    code.verify(&org).unwrap();
}

#[test]
fn enrollment_statement_with_relay_url() {
    let org = org();
    let canonical = EnrollmentCode::canonical_with_relay(
        "code-1",
        &org.fingerprint,
        1_800_000_000_000,
        DeviceRole::Field,
        "https://relay.example.org:8443",
    );
    assert_eq!(
        canonical,
        format!(
            "AMANAT-ENROLL-RELAY-V1\ncode-1\n{VECTOR_ORG_FINGERPRINT}\n1800000000000\nfield\nhttps://relay.example.org:8443"
        )
    );
    let code = EnrollmentCode {
        code_id: "code-1".into(),
        org_fingerprint: org.fingerprint.clone(),
        expires_at: 1_800_000_000_000,
        role: DeviceRole::Field,
        relay_url: Some("https://relay.example.org:8443".into()),
        signature: to_hex(org_key().sign(canonical.as_bytes()).as_ref()),
    };
    assert_eq!(code.signature, VECTOR_ENROLL_RELAY_SIGNATURE);
    code.verify(&org).unwrap();
    // The JSON of a code carries `relay_url` only when set, so old codes keep their exact JSON.
    let json = serde_json::to_string(&code).unwrap();
    assert!(json.contains("\"relay_url\":\"https://relay.example.org:8443\""));
    let old: EnrollmentCode = serde_json::from_str(&format!(
        "{{\"code_id\":\"code-1\",\"org_fingerprint\":\"{VECTOR_ORG_FINGERPRINT}\",\"expires_at\":1800000000000,\"role\":\"hq\",\"signature\":\"{VECTOR_ENROLL_SIGNATURE}\"}}"
    ))
    .unwrap();
    assert_eq!(old.relay_url, None);
    old.verify(&org).unwrap();
    assert!(!serde_json::to_string(&old).unwrap().contains("relay_url"));
}

#[test]
fn revocation_statement() {
    let org = org();
    assert_eq!(
        Revocation::canonical(VECTOR_DEVICE_ID, &org.fingerprint, 1_790_000_000_000),
        format!("AMANAT-REVOKE-V1\n{VECTOR_DEVICE_ID}\n{VECTOR_ORG_FINGERPRINT}\n1790000000000")
    );
    let r = Revocation::issue(
        &org_key(),
        &org.fingerprint,
        VECTOR_DEVICE_ID,
        1_790_000_000_000,
    );
    assert_eq!(r.signature, VECTOR_REVOKE_SIGNATURE);
    r.verify(&org).unwrap();
}

const VECTOR_CANONICAL_REQUEST: &str = "AMANAT-REQUEST-V1\nPOST\n/v1/envelopes?x=1\n1764000000000\n00112233445566778899aabbccddeeff\n00e117c0b667aec6c72af889a903c201cc31fb23c947b7c9509aee634eff89c9";
const VECTOR_DEVICE_ID: &str = "fe812c12f3ab4ce6ac5db69ac352f906";
const VECTOR_REQUEST_SIGNATURE: &str = "b897997dd6276c1d30ac7910c404dc5420c73579dd3967fbb3de1dbb23df6dcb91202ab695503de9de437653d19e4911bba8fe22c784f464b1923b8fffef390d";
const VECTOR_ORG_FINGERPRINT: &str =
    "dea78538c0d0186e8ad88543bc096886f25703f2f14a3aa5eb1979b850f303d8";
const VECTOR_ENROLL_SIGNATURE: &str = "82c29563eebda330e5266438db0cbcda5e8bebf8ae744ac315272e5b18b11322b951189abbfb8515a61bdb7a528143b59154bc98334fe488a50c3613f85edf07";
const VECTOR_REVOKE_SIGNATURE: &str = "0b15d17f78e022df61a6b35ac172c3be7ca678781892cb421132d471b5f45fbafd3e9a0edba5f343147031e2c53ef42a45c27fa764c2674f6f5094e52e966803";
const VECTOR_ENROLL_RELAY_SIGNATURE: &str = "0ab378913d2398d29a20724049b6631b436dff3486408193162987d0aed015197ced52c275619e2109ae552cfdf2916179464adcaa0584405ba02775cc2adb03";
const VECTOR_CANONICAL_DEFERRED: &str = "AMANAT-DEFERRED-V1\nPUT\n/v1/blobs/aa?offset=1048576\n1764000000000\n1764259200000\n00112233445566778899aabbccddeeff\n6c87f68371b28954707ebb92afee7ccffb74c6f71ec8fea8a98cf6104289585b";
