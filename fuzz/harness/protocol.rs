//! Fuzz harnesses for the wire formats of `amanat-protocol`: org-signed statements (enrollment
//! codes, revocations, `org.pub`) and the JSON bodies of push and pull.
//!
//! Shared word for word by the fuzz targets and `protocol/tests/fuzz_regressions.rs` (both
//! include this file with `#[path = …] mod …;`). `run` returns whether the input was accepted and
//! panics when an invariant breaks.

// Each fuzz binary uses one harness of this file; the regression test uses all of them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use amanat_protocol::{to_hex, OrgPublic};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The fixture organisation: an Ed25519 key from a fixed seed (so committed seeds stay valid),
/// and its `org.pub`.
pub fn org() -> &'static (Ed25519KeyPair, OrgPublic) {
    static ORG: OnceLock<(Ed25519KeyPair, OrgPublic)> = OnceLock::new();
    ORG.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&[0x4f; 32]).expect("fixed seed");
        let recipient = "age18xhnq6l8xepfh5fhzxlpjqq6c5krxyze5e0hkefv08l8e92h8sdsslt5fy";
        let groups: BTreeMap<String, String> = amanat_protocol::RECIPIENT_GROUPS
            .iter()
            .map(|g| ((*g).to_owned(), recipient.to_owned()))
            .collect();
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: to_hex(key.public_key().as_ref()),
            groups,
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        (key, org)
    })
}

/// Enrollment codes, revocations and `org.pub`, parsed as the relay and devices parse them and
/// verified against the fixture organisation.
pub mod enrollment {
    use super::org;
    use amanat_protocol::{
        from_hex, DeviceRole, EnrollRequest, EnrollmentCode, OrgPublic, Revocation, WireError,
    };

    /// Ed25519 signatures are deterministic and ring accepts only the canonical encoding, so a
    /// statement verifies exactly when its signature is the organisation's signature of its
    /// canonical text: an independent statement of what `verify` must do.
    fn genuinely_signed(canonical: &str, fingerprint: &str, signature_hex: &str) -> bool {
        let (key, org) = org();
        fingerprint == org.fingerprint
            && from_hex(signature_hex).as_deref() == Some(key.sign(canonical.as_bytes()).as_ref())
    }

    fn check_code(code: &EnrollmentCode) -> bool {
        let (_, org) = org();
        let canonical = code.signed_text();
        let verdict = code.verify(org);
        let genuine = genuinely_signed(&canonical, &code.org_fingerprint, &code.signature)
            && code
                .relay_url
                .as_deref()
                .is_none_or(amanat_protocol::is_valid_relay_url);
        assert_eq!(verdict.is_ok(), genuine, "enrollment code verdict");
        if code.org_fingerprint != org.fingerprint {
            assert_eq!(verdict, Err(WireError::WrongOrganisation));
        }
        if verdict.is_ok() {
            // Any change to a signed field breaks the signature.
            let mut c = code.clone();
            c.role = match c.role {
                DeviceRole::Field => DeviceRole::Hq,
                DeviceRole::Hq => DeviceRole::Field,
            };
            assert!(c.verify(org).is_err(), "role is not bound");
            let mut c = code.clone();
            c.expires_at = c.expires_at.wrapping_add(1);
            assert!(c.verify(org).is_err(), "expiry is not bound");
            let mut c = code.clone();
            c.code_id.push('0');
            assert!(c.verify(org).is_err(), "code id is not bound");
        }
        verdict.is_ok()
    }

    fn check_revocation(rev: &Revocation) -> bool {
        let (_, org) = org();
        let canonical = Revocation::canonical(&rev.device_id, &rev.org_fingerprint, rev.revoked_at);
        let verdict = rev.verify(org);
        let genuine = genuinely_signed(&canonical, &rev.org_fingerprint, &rev.signature);
        assert_eq!(verdict.is_ok(), genuine, "revocation verdict");
        if verdict.is_ok() {
            let mut r = rev.clone();
            r.device_id.push('0');
            assert!(r.verify(org).is_err(), "device id is not bound");
            let mut r = rev.clone();
            r.revoked_at = r.revoked_at.wrapping_add(1);
            assert!(r.verify(org).is_err(), "time is not bound");
        }
        verdict.is_ok()
    }

    fn round_trip<T>(v: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
    {
        let json = serde_json::to_vec(v).expect("serialises");
        let back: T = serde_json::from_slice(&json).expect("parses back");
        assert!(back == *v, "changed through JSON");
    }

    /// Returns whether `data` is a statement that verifies (or an `org.pub` that loads).
    pub fn run(data: &[u8]) -> bool {
        let mut accepted = false;
        if let Ok(code) = serde_json::from_slice::<EnrollmentCode>(data) {
            round_trip(&code);
            accepted |= check_code(&code);
        }
        if let Ok(req) = serde_json::from_slice::<EnrollRequest>(data) {
            round_trip(&req);
            accepted |= check_code(&req.code);
        }
        if let Ok(rev) = serde_json::from_slice::<Revocation>(data) {
            round_trip(&rev);
            accepted |= check_revocation(&rev);
        }
        if let Ok(o) = OrgPublic::from_json(data) {
            assert_eq!(o.compute_fingerprint(), o.fingerprint);
            assert_eq!(o.signing_key_bytes().map(|k| k.len()), Ok(32));
            let json = serde_json::to_vec(&o).expect("serialises");
            assert_eq!(OrgPublic::from_json(&json).as_ref(), Ok(&o));
            accepted = true;
        }
        accepted
    }

    /// Real statements of the fixture organisation.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let (key, org) = org();
        let code = EnrollmentCode {
            code_id: "00112233445566778899aabbccddeeff".into(),
            org_fingerprint: org.fingerprint.clone(),
            expires_at: 1_900_000_000,
            role: DeviceRole::Field,
            relay_url: None,
            signature: String::new(),
        };
        let sign = |c: &str| amanat_protocol::to_hex(key.sign(c.as_bytes()).as_ref());
        let code = EnrollmentCode {
            signature: sign(&EnrollmentCode::canonical(
                &code.code_id,
                &code.org_fingerprint,
                code.expires_at,
                code.role,
            )),
            ..code
        };
        let rev = Revocation::issue(key, &org.fingerprint, "ffeeddccbbaa99887766554433221100", 7);
        let req = EnrollRequest {
            code: code.clone(),
            signing_public_key: "11".repeat(32),
            age_recipient: org.groups["legal"].clone(),
        };
        vec![
            ("code", serde_json::to_vec(&code).expect("json")),
            ("revocation", serde_json::to_vec(&rev).expect("json")),
            ("enroll-request", serde_json::to_vec(&req).expect("json")),
            ("org-pub", serde_json::to_vec(org).expect("json")),
        ]
    }
}

/// Bodies of push and pull as parsed by the relay (requests) and by devices (responses, which
/// come from a server that is not trusted).
pub mod envelopes {
    use amanat_protocol::{
        Envelope, PullResponse, PulledEnvelope, PushAck, PushRequest, PushResponse,
    };

    fn round_trip<T>(v: &T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
    {
        let json = serde_json::to_vec(v).expect("serialises");
        let back: T = serde_json::from_slice(&json).expect("parses back");
        assert!(back == *v, "changed through JSON");
        assert_eq!(serde_json::to_vec(&back).expect("serialises"), json);
    }

    fn one<T>(data: &[u8]) -> bool
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
    {
        match serde_json::from_slice::<T>(data) {
            Ok(v) => {
                round_trip(&v);
                true
            }
            Err(_) => false,
        }
    }

    /// Returns whether `data` parses as any of the bodies.
    pub fn run(data: &[u8]) -> bool {
        let mut any = false;
        any |= one::<PushRequest>(data);
        any |= one::<Envelope>(data);
        any |= one::<PushResponse>(data);
        any |= one::<PushAck>(data);
        any |= one::<PullResponse>(data);
        any |= one::<PulledEnvelope>(data);
        any
    }

    /// Bodies as the relay and devices exchange them.
    pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let push = PushRequest {
            envelopes: vec![Envelope {
                id: "01932c07-8e4c-7a3b-9f1e-2b3c4d5e6f70".into(),
                recipients: vec!["hq".into(), "00112233445566778899aabbccddeeff".into()],
                payload: "YWdlLWVuY3J5cHRpb24ub3JnL3Yx".into(),
            }],
        };
        let ack = PushResponse {
            acks: vec![PushAck {
                id: push.envelopes[0].id.clone(),
                seq: 42,
                duplicate: false,
            }],
        };
        let pull = PullResponse {
            envelopes: vec![PulledEnvelope {
                seq: 42,
                id: push.envelopes[0].id.clone(),
                sender: "00112233445566778899aabbccddeeff".into(),
                payload: push.envelopes[0].payload.clone(),
            }],
            next_after: 42,
            more: true,
        };
        vec![
            ("push", serde_json::to_vec(&push).expect("json")),
            ("push-response", serde_json::to_vec(&ack).expect("json")),
            ("pull-response", serde_json::to_vec(&pull).expect("json")),
        ]
    }
}
