//! The endpoints. Each signed handler reads the body bytes (the signature covers them), then
//! authenticates, and only then parses the path, the query and the JSON — see [`super::auth`].

use super::auth::{AuthHeaders, Deferral};
use super::config::RelayConfig;
use super::errors::{json_ok, json_response, ApiError, ErrorCode};
use super::state::{now_ms, Shared};
use super::storage::{self, NewEnvelope, Storage};
use super::validate::{self, ByteRange};
use amanat_protocol::{
    DeviceRole, EnrollRequest, Envelope, PullResponse, PulledEnvelope, PushRequest, PushResponse,
    Revocation, HQ_RECIPIENT,
};
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::BTreeSet;

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorCode::BodyTooLarge.into()
        } else {
            ErrorCode::MalformedBody.into()
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // The serde message can quote the input; it is dropped, only the code goes back.
    serde_json::from_slice(body).map_err(|_| ErrorCode::MalformedBody.into())
}

/// The `{sha256}` segment of `/v1/blobs/{sha256}[/…]`, read from the raw path: never
/// percent-decoded, so the address used is the text that was signed.
fn blob_address(uri: &Uri) -> Result<&str, ApiError> {
    uri.path()
        .split('/')
        .nth(3)
        .filter(|s| validate::is_sha256(s))
        .ok_or_else(|| ErrorCode::MalformedBlobAddress.into())
}

fn org_error(e: amanat_protocol::WireError) -> ApiError {
    match e {
        amanat_protocol::WireError::WrongOrganisation => ErrorCode::WrongOrganisation.into(),
        _ => ErrorCode::InvalidOrgSignature.into(),
    }
}

/// The formats of an enrollment request that serde cannot express.
fn check_enroll_format(req: &EnrollRequest) -> Result<(), ApiError> {
    let c = &req.code;
    let ok = validate::is_lower_hex(&c.code_id, 32, 32)
        && validate::is_lower_hex(&c.org_fingerprint, 64, 64)
        && c.expires_at <= validate::MAX_INTEGER
        && validate::is_signature(&c.signature)
        && c.relay_url
            .as_deref()
            .is_none_or(amanat_protocol::is_valid_relay_url)
        && validate::is_lower_hex(&req.signing_public_key, 64, 64)
        && validate::is_age_recipient(&req.age_recipient);
    if ok {
        Ok(())
    } else {
        Err(ErrorCode::MalformedBody.into())
    }
}

/// `POST /v1/enroll`: signed by the key being registered (proof of possession).
pub async fn enroll<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let a = AuthHeaders::parse(&headers)?;
    if a.expires.is_some() {
        return Err(ErrorCode::DeferredNotAllowed.into());
    }
    app.check_clock(a.timestamp)?;
    // The key that signed is in the body: it has to be read before the signature can be checked.
    let req: EnrollRequest = parse_json(&body)?;
    check_enroll_format(&req)?;
    let key = amanat_protocol::from_hex(&req.signing_public_key)
        .filter(|k| k.len() == 32)
        .ok_or(ErrorCode::MalformedBody)?;
    let device_id = amanat_protocol::device_id(&key);
    if device_id != a.device {
        return Err(ErrorCode::BadSignature.into());
    }
    app.check_signature(&a, &key, &method, &uri, &body)?;
    req.code.verify(&app.org).map_err(org_error)?;
    let now_s = now_ms() / 1000;
    if now_s >= req.code.expires_at {
        return Err(ErrorCode::CodeExpired.into());
    }
    app.rate_limit(a.device)?;
    app.consume_nonce(&a).await?;
    let record = storage::DeviceRecord {
        device_id: device_id.clone(),
        signing_public_key: key,
        age_recipient: req.age_recipient,
        role: req.code.role,
        revocation: None,
    };
    app.storage
        .enroll(&req.code.code_id, &record, now_s)
        .await?;
    tracing::info!(device = %device_id, role = record.role.as_str(), "device enrolled");
    Ok(json_ok(&serde_json::json!({
        "device_id": device_id,
        "role": record.role,
        "org": app.org,
    })))
}

/// `POST /v1/revocations`: org-signed, no device signature.
pub async fn revoke<S: Storage>(
    State(app): State<Shared<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let rev: Revocation = parse_json(&body)?;
    if !validate::is_device_id(&rev.device_id)
        || !validate::is_lower_hex(&rev.org_fingerprint, 64, 64)
        || rev.revoked_at > validate::MAX_INTEGER
        || !validate::is_signature(&rev.signature)
    {
        return Err(ErrorCode::MalformedBody.into());
    }
    rev.verify(&app.org).map_err(org_error)?;
    let text = serde_json::to_string(&rev).map_err(|_| ErrorCode::Internal)?;
    app.storage.revoke(&rev.device_id, &text).await?;
    tracing::info!(device = %rev.device_id, "device revoked");
    Ok(json_ok(
        &serde_json::json!({ "device_id": rev.device_id, "revoked": true }),
    ))
}

/// `GET /v1/revocations`.
pub async fn revocations<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
    validate::query_numbers(uri.query(), []).map_err(|_| ErrorCode::MalformedQuery)?;
    let list: Vec<serde_json::Value> = app
        .storage
        .revocations()
        .await?
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    Ok(json_ok(&serde_json::json!({ "revocations": list })))
}

fn validate_envelope(cfg: &RelayConfig, e: Envelope) -> Result<NewEnvelope, ApiError> {
    if !validate::is_uuid_v7(&e.id) {
        return Err(ErrorCode::MalformedEnvelopeId.into());
    }
    // Counted as sent (duplicates included), so the schema's maxItems means what it says.
    if e.recipients.is_empty()
        || e.recipients.len() > validate::MAX_RECIPIENTS
        || !e.recipients.iter().all(|r| validate::is_recipient(r))
    {
        return Err(ErrorCode::MalformedRecipients.into());
    }
    let recipients: BTreeSet<String> = e.recipients.into_iter().collect();
    let too_large = |id: String| ApiError::new(ErrorCode::EnvelopeTooLarge).with("id", id.into());
    // Before decoding: the text length bounds the decoded size exactly (see envelope_cap).
    if e.payload.len() > cfg.envelope_cap_base64() {
        return Err(too_large(e.id));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(e.payload.as_bytes())
        .map_err(|_| ErrorCode::MalformedPayload)?;
    if payload.is_empty() {
        return Err(ErrorCode::MalformedPayload.into());
    }
    if payload.len() > cfg.envelope_cap() {
        return Err(too_large(e.id));
    }
    Ok(NewEnvelope {
        id: e.id,
        recipients: recipients.into_iter().collect(),
        payload,
    })
}

/// `POST /v1/envelopes`: a batch, stored atomically.
pub async fn push<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let caller = app.authenticate(&method, &uri, &headers, &body).await?;
    validate::query_numbers(uri.query(), []).map_err(|_| ErrorCode::MalformedQuery)?;
    let req: PushRequest = parse_json(&body)?;
    if req.envelopes.is_empty() {
        return Err(ErrorCode::EmptyBatch.into());
    }
    if req.envelopes.len() > app.config.max_batch_envelopes {
        return Err(ErrorCode::BatchTooLarge.into());
    }
    let envs = req
        .envelopes
        .into_iter()
        .map(|e| validate_envelope(&app.config, e))
        .collect::<Result<Vec<_>, _>>()?;
    let acks = app.storage.push(&caller.device_id, &envs, now_ms()).await?;
    let fresh = acks.iter().filter(|a| !a.duplicate).count() as u64;
    app.metrics
        .envelopes_stored(fresh, acks.len() as u64 - fresh);
    Ok(json_ok(&PushResponse { acks }))
}

/// `GET /v1/envelopes?after=SEQ&limit=N`.
pub async fn pull<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = app.authenticate(&method, &uri, &headers, b"").await?;
    let [after, limit] = validate::query_numbers(uri.query(), ["after", "limit"])
        .map_err(|_| ErrorCode::MalformedQuery)?;
    if limit == Some(0) {
        return Err(ErrorCode::MalformedQuery.into());
    }
    let after = after.unwrap_or(0);
    let max = u64::from(app.config.max_pull_limit.max(1));
    let limit = u32::try_from(limit.unwrap_or(100).min(max)).unwrap_or(1);
    let mut recipients = vec![caller.device_id.clone()];
    if caller.role == DeviceRole::Hq {
        recipients.push(HQ_RECIPIENT.to_owned());
    }
    let (rows, more) = app.storage.pull(&recipients, after, limit).await?;
    let next_after = rows.last().map(|r| r.seq).unwrap_or(after);
    app.metrics.envelopes_pulled(rows.len() as u64);
    let envelopes = rows
        .into_iter()
        .map(|r| PulledEnvelope {
            seq: r.seq,
            id: r.id,
            sender: r.sender,
            payload: base64::engine::general_purpose::STANDARD.encode(&r.payload),
        })
        .collect();
    Ok(json_ok(&PullResponse {
        envelopes,
        next_after,
        more,
    }))
}

/// `GET /v1/blobs/{sha256}/status`.
pub async fn blob_status<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
    let sha = blob_address(&uri)?;
    validate::query_numbers(uri.query(), []).map_err(|_| ErrorCode::MalformedQuery)?;
    let st = app.storage.blob_status(sha).await?;
    Ok(json_ok(&serde_json::json!({
        "sha256": sha, "offset": st.held, "complete": st.complete
    })))
}

/// `PUT /v1/blobs/{sha256}?offset=N`: appends a chunk.
pub async fn blob_upload<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    app.authenticate_with(Deferral::Accepted, &method, &uri, &headers, &body)
        .await?;
    let sha = blob_address(&uri)?;
    let [offset] =
        validate::query_numbers(uri.query(), ["offset"]).map_err(|_| ErrorCode::MalformedQuery)?;
    let offset = offset.ok_or(ErrorCode::MalformedQuery)?;
    if body.is_empty() {
        return Err(ErrorCode::EmptyChunk.into());
    }
    let held = app
        .storage
        .blob_append(sha, offset, &body, app.config.max_blob_bytes)
        .await?;
    app.metrics.blob_bytes(body.len() as u64);
    Ok(json_ok(
        &serde_json::json!({ "sha256": sha, "offset": held }),
    ))
}

/// `POST /v1/blobs/{sha256}/complete`: verifies the hash of what is held.
pub async fn blob_complete<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    app.authenticate(&method, &uri, &headers, &body).await?;
    let sha = blob_address(&uri)?;
    validate::query_numbers(uri.query(), []).map_err(|_| ErrorCode::MalformedQuery)?;
    match app.storage.blob_complete(sha).await? {
        Some(size) => Ok(json_ok(
            &serde_json::json!({ "sha256": sha, "size": size, "complete": true }),
        )),
        None => Err(ErrorCode::HashMismatch.into()),
    }
}

/// Resolves the `Range` header against `total`: `Ok(None)` for no header, `Err` if it is not one
/// well-formed satisfiable byte range.
fn parse_range(h: &HeaderMap, total: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = h.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::new(ErrorCode::RangeNotSatisfiable).with("size", total.into());
    let range = v
        .to_str()
        .ok()
        .and_then(validate::byte_range)
        .ok_or_else(bad)?;
    let last = total.saturating_sub(1);
    let (start, end) = match range {
        ByteRange::Suffix(0) => return Err(bad()),
        ByteRange::Suffix(n) => (total.saturating_sub(n), last),
        ByteRange::From(a, None) => (a, last),
        ByteRange::From(a, Some(b)) => (a, b.min(last)),
    };
    if total == 0 || start >= total || start > end {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

/// `GET /v1/blobs/{sha256}`: a complete blob, whole or by range.
pub async fn blob_download<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
    let sha = blob_address(&uri)?;
    validate::query_numbers(uri.query(), []).map_err(|_| ErrorCode::MalformedQuery)?;
    let st = app.storage.blob_status(sha).await?;
    if !st.complete {
        return Err(ErrorCode::BlobNotFound.into());
    }
    let total = st.held;
    let cap = app.config.max_download_bytes.max(1);
    let range = parse_range(&headers, total)?;
    let (start, end, partial) = match range {
        Some((s, e)) => (s, e.min(s.saturating_add(cap - 1)), true),
        None if total <= cap => (0, total.saturating_sub(1), false),
        // Larger than one response may be: the first slice, as a range, so the client continues.
        None => (0, cap - 1, true),
    };
    let len = if total == 0 { 0 } else { end - start + 1 };
    let Some((_, bytes)) = app.storage.blob_read(sha, start, len).await? else {
        return Err(ErrorCode::BlobNotFound.into());
    };
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if partial {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// `GET /healthz`: a store round trip.
pub async fn healthz<S: Storage>(State(app): State<Shared<S>>) -> Response {
    match app.storage.max_seq().await {
        Ok(_) => json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics_text<S: Storage>(State(app): State<Shared<S>>) -> Response {
    let seq = app.storage.max_seq().await.ok();
    let mut resp = Response::new(Body::from(app.metrics.render(seq)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
