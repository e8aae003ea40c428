//! Enrollment: device key, proof of possession, organisation check, one transaction.

use super::*;

#[derive(Deserialize)]
pub(super) struct EnrollAnswer {
    pub(super) device_id: String,
    pub(super) role: DeviceRole,
    pub(super) org: OrgPublic,
}

/// `http(s)://host[:port]` without a trailing slash; the transport checks the loopback rule.
pub(super) fn normalize_url(url: &str) -> Result<String, SyncError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or(SyncError::InvalidRelayUrl)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(SyncError::InvalidRelayUrl);
    }
    Ok(trimmed.to_string())
}

/// Enrolls this device with the relay at `relay_url` using the org-signed `code_json` (the line
/// `amanat device enroll` prints).
///
/// A code issued with `--relay` names its relay under the organisation's signature: then
/// `relay_url` must be the same relay (after normalisation), else [`SyncError::RelayUrlMismatch`]
/// and nothing is sent. [`enroll_with_code`] takes the URL from the code alone.
pub fn enroll(
    vault: &Vault,
    code_json: &str,
    relay_url: &str,
    transport: &dyn Transport,
) -> Result<Enrollment, SyncError> {
    enroll_inner(vault, code_json, Some(relay_url), transport)
}

/// Enrolls with the relay the org-signed code names (codes from `amanat device enroll --relay`);
/// [`SyncError::NoRelayUrl`] for a code without one.
pub fn enroll_with_code(
    vault: &Vault,
    code_json: &str,
    transport: &dyn Transport,
) -> Result<Enrollment, SyncError> {
    enroll_inner(vault, code_json, None, transport)
}

/// The relay to enroll with: the signed one if the code has it (a separately given one must
/// match), else the given one.
pub(super) fn choose_relay(
    code: &EnrollmentCode,
    given: Option<&str>,
) -> Result<String, SyncError> {
    match (&code.relay_url, given) {
        (Some(signed), Some(given)) => {
            let signed = normalize_url(signed)?;
            if normalize_url(given)? != signed {
                return Err(SyncError::RelayUrlMismatch);
            }
            Ok(signed)
        }
        (Some(signed), None) => normalize_url(signed),
        (None, Some(given)) => normalize_url(given),
        (None, None) => Err(SyncError::NoRelayUrl),
    }
}

fn enroll_inner(
    vault: &Vault,
    code_json: &str,
    relay_url: Option<&str>,
    transport: &dyn Transport,
) -> Result<Enrollment, SyncError> {
    let code: EnrollmentCode =
        serde_json::from_str(code_json.trim()).map_err(|_| SyncError::BadCode)?;
    let base = choose_relay(&code, relay_url)?;
    let store = vault.store()?;
    let (enrolled, age_recipient) = store.write(|tx| {
        let enrolled = tx.get(SYNC_STATE, STATE_ID)?.is_some();
        let identity = attachments::device_identity(tx)?;
        Ok::<_, StoreError>((enrolled, identity.to_public().to_string()))
    })?;
    if enrolled {
        return Err(SyncError::AlreadyEnrolled);
    }
    let pkcs8 =
        Zeroizing::new(amanat_protocol::generate_ed25519_pkcs8().map_err(|_| SyncError::Key)?);
    let key = amanat_protocol::ed25519_from_pkcs8(&pkcs8).map_err(|_| SyncError::Key)?;
    let public = key.public_key().as_ref();
    let device_id = amanat_protocol::device_id(public);
    let request_recipient = age_recipient.clone();
    let body = serde_json::to_vec(&EnrollRequest {
        code: code.clone(),
        signing_public_key: amanat_protocol::to_hex(public),
        age_recipient,
    })
    .map_err(|_| SyncError::BadCode)?;
    let now = vault.clock().now_ms();
    let request = signed_request(&key, &base, "POST", "/v1/enroll", body, now)?;
    let resp = transport.send(&request)?;
    if resp.status != 200 {
        return Err(SyncError::Rejected {
            status: resp.status,
            code: error_code(&resp),
        });
    }
    let answer: EnrollAnswer =
        serde_json::from_slice(&resp.body).map_err(|_| SyncError::UnexpectedResponse)?;
    // The relay could hand out any org.pub: only one whose fingerprint is the code's, and under
    // whose key the code verifies, is the organisation that issued the code.
    let org = answer.org;
    if org.version != 1
        || org.compute_fingerprint() != org.fingerprint
        || org.fingerprint != code.org_fingerprint
        || code.verify(&org).is_err()
    {
        return Err(SyncError::OrgMismatch);
    }
    if answer.device_id != device_id || answer.role != code.role {
        return Err(SyncError::UnexpectedResponse);
    }
    let state = State {
        relay_url: base.clone(),
        device_id: device_id.clone(),
        role: answer.role,
        org: org.clone(),
        cursor: 0,
        last_ack_seq: 0,
        last_success_ms: None,
        failures: 0,
        retry_at_ms: None,
    };
    store.write(|tx| {
        attachments::set_org_recipients_in(tx, &org.groups)?;
        tx.insert_with_id(DEVICE_KEYS, SIGNING_KEY_ID, &pkcs8)?;
        tx.insert_json_with_id(SYNC_STATE, STATE_ID, &state)?;
        // A field device tells HQ its keys once (kind `device`), so HQ can seal case
        // assignments to it; an HQ installation needs no such thing.
        if state.role == DeviceRole::Field {
            outbox::enqueue(tx, EntryKind::Device, SYNC_STATE, STATE_ID)?;
        }
        Ok::<_, SyncError>(())
    })?;
    Ok(Enrollment {
        device_id,
        role: answer.role,
        org_fingerprint: org.fingerprint,
        relay_url: base,
        signing_public_key: amanat_protocol::to_hex(public),
        age_recipient: request_recipient,
    })
}
