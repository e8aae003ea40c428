//! The sync relay (`amanat serve`): stores and forwards what devices push, seeing only ciphertext
//! and routing metadata. The protocol is documented in `docs/PROTOCOL.md`; the OpenAPI document is
//! served at `/openapi.json`.
//!
//! Layers: [`storage::Storage`] (one contract, [`sqlite`] and [`postgres`] backends) ← handlers in
//! this module (validation, request authentication, rate limits, metrics) ← axum.

pub mod metrics;
mod openapi;
pub mod postgres;
pub mod sqlite;
pub mod storage;

use amanat_protocol::{
    sha256_hex, DeviceRole, EnrollRequest, Envelope, OrgPublic, PullResponse, PulledEnvelope,
    PushRequest, PushResponse, Revocation, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, HQ_RECIPIENT, MAX_CLOCK_SKEW_MS,
};
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine as _;
use metrics::Metrics;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage::{NewEnvelope, Storage, StorageError};
use tokio::sync::watch;

/// Limits and policies of a relay; every one has a safe default ([`RelayConfig::default`]).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Largest decoded envelope payload accepted (bytes).
    pub max_envelope_bytes: usize,
    /// Most envelopes in one push.
    pub max_batch_envelopes: usize,
    /// Largest request body of a push (bytes, JSON as sent).
    pub max_batch_bytes: usize,
    /// Largest blob chunk in one upload request (bytes).
    pub max_chunk_bytes: usize,
    /// Largest blob (bytes).
    pub max_blob_bytes: u64,
    /// Largest slice of a blob returned by one download (bytes).
    pub max_download_bytes: u64,
    /// Most envelopes per pull page.
    pub max_pull_limit: u32,
    /// Per-device sustained request rate (requests per second).
    pub rate_per_sec: f64,
    /// Per-device burst (token bucket size).
    pub rate_burst: f64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            max_envelope_bytes: 256 * 1024,
            max_batch_envelopes: 500,
            max_batch_bytes: 4 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            max_blob_bytes: 1024 * 1024 * 1024,
            max_download_bytes: 8 * 1024 * 1024,
            max_pull_limit: 1000,
            rate_per_sec: 50.0,
            rate_burst: 100.0,
        }
    }
}

/// An API error: HTTP status plus a stable JSON error code (`{"error":"replayed_nonce"}`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str) -> Self {
        Self {
            status,
            code,
            extra: None,
        }
    }

    fn with(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code.into());
        if let Some((k, v)) = self.extra {
            body.insert(k.into(), v);
        }
        let mut resp = json_response(self.status, &serde_json::Value::Object(body));
        resp.extensions_mut().insert(ErrorCode(self.code));
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The error code of a response, for the metrics and log middleware.
#[derive(Clone, Copy)]
struct ErrorCode(&'static str);

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Backend(msg) => {
                tracing::error!(error = %msg, "storage failure");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            StorageError::CodeUsed => ApiError::new(StatusCode::CONFLICT, "code_used"),
            StorageError::AlreadyEnrolled => {
                ApiError::new(StatusCode::CONFLICT, "already_enrolled")
            }
            StorageError::UnknownDevice => ApiError::new(StatusCode::NOT_FOUND, "unknown_device"),
            StorageError::IdConflict(id) => {
                ApiError::new(StatusCode::CONFLICT, "envelope_id_conflict").with("id", id.into())
            }
            StorageError::OffsetMismatch { held } => {
                ApiError::new(StatusCode::CONFLICT, "offset_mismatch").with("offset", held.into())
            }
            StorageError::BlobComplete => ApiError::new(StatusCode::CONFLICT, "blob_complete"),
            StorageError::BlobTooLarge => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "blob_too_large")
            }
        }
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn json_ok<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_value(value) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal").into_response(),
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Shared state of one relay process.
pub struct App<S: Storage> {
    storage: S,
    org: OrgPublic,
    config: RelayConfig,
    metrics: Metrics,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The authenticated caller of a request.
struct Caller {
    device_id: String,
    role: DeviceRole,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let v = h
        .get(name)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unsigned_request"))?;
    v.to_str()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed_auth"))
}

fn is_hex(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_device_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A UUID in text form whose version nibble is 7 (the client's time-ordered envelope id).
fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
        && b[14] == b'7'
}

struct AuthHeaders<'a> {
    device: &'a str,
    timestamp: u64,
    nonce: &'a str,
    signature: &'a str,
}

fn parse_auth(h: &HeaderMap) -> Result<AuthHeaders<'_>, ApiError> {
    let device = header_str(h, HEADER_DEVICE)?;
    let timestamp = header_str(h, HEADER_TIMESTAMP)?;
    let nonce = header_str(h, HEADER_NONCE)?;
    let signature = header_str(h, HEADER_SIGNATURE)?;
    let malformed = || ApiError::new(StatusCode::BAD_REQUEST, "malformed_auth");
    if !is_device_id(device) || !is_hex(nonce, 16, 64) || !is_hex(signature, 128, 128) {
        return Err(malformed());
    }
    let timestamp: u64 = timestamp.parse().map_err(|_| malformed())?;
    Ok(AuthHeaders {
        device,
        timestamp,
        nonce,
        signature,
    })
}

impl<S: Storage> App<S> {
    /// Builds the shared state.
    pub fn new(storage: S, org: OrgPublic, config: RelayConfig) -> Result<Self, String> {
        org.signing_key_bytes().map_err(|e| e.to_string())?;
        Ok(Self {
            storage,
            org,
            config,
            metrics: Metrics::default(),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The storage backend (tests inspect it directly).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    fn check_clock(&self, ts: u64) -> Result<(), ApiError> {
        if now_ms().abs_diff(ts) > MAX_CLOCK_SKEW_MS {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "stale_timestamp"));
        }
        Ok(())
    }

    fn check_signature(
        &self,
        a: &AuthHeaders<'_>,
        key: &[u8],
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let canonical = amanat_protocol::canonical_request(
            method.as_str(),
            path,
            a.timestamp,
            a.nonce,
            &sha256_hex(body),
        );
        amanat_protocol::verify_ed25519(key, canonical.as_bytes(), a.signature)
            .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature"))
    }

    fn rate_limit(&self, device: &str) -> Result<(), ApiError> {
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let burst = self.config.rate_burst;
        let bucket = b.entry(device.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.config.rate_per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    async fn consume_nonce(&self, a: &AuthHeaders<'_>) -> Result<(), ApiError> {
        if !self
            .storage
            .record_nonce(a.device, a.nonce, a.timestamp)
            .await?
        {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "replayed_nonce"));
        }
        Ok(())
    }

    /// Authenticates a request from an enrolled device. Order matters: cheap checks first, the
    /// nonce is recorded only for a request whose signature verified (an attacker cannot burn a
    /// device's nonces), and nothing else is stored for a rejected request.
    async fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Caller, ApiError> {
        let a = parse_auth(headers)?;
        self.check_clock(a.timestamp)?;
        let device = self
            .storage
            .device(a.device)
            .await?
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown_device"))?;
        self.check_signature(&a, &device.signing_public_key, method, uri, body)?;
        if let Some(rev) = &device.revocation {
            // Signed by the organisation: the device can verify it before wiping itself.
            let rev: serde_json::Value = serde_json::from_str(rev).unwrap_or_default();
            return Err(
                ApiError::new(StatusCode::FORBIDDEN, "revoked_device").with("revocation", rev)
            );
        }
        self.rate_limit(a.device)?;
        self.consume_nonce(&a).await?;
        Ok(Caller {
            device_id: device.device_id,
            role: device.role,
        })
    }
}

type Shared<S> = Arc<App<S>>;

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_body")
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // The serde message can quote the input; it is dropped, only the code goes back.
    serde_json::from_slice(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body"))
}

async fn enroll<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let a = parse_auth(&headers)?;
    app.check_clock(a.timestamp)?;
    let req: EnrollRequest = parse_json(&body)?;
    let key = amanat_protocol::from_hex(&req.signing_public_key)
        .filter(|k| k.len() == 32)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "malformed_body"))?;
    if !req.age_recipient.starts_with("age1") || req.age_recipient.len() > 128 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_body"));
    }
    let device_id = amanat_protocol::device_id(&key);
    if device_id != a.device {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature"));
    }
    // Proof of possession: the request is signed by the key being registered.
    app.check_signature(&a, &key, &method, &uri, &body)?;
    match req.code.verify(&app.org) {
        Ok(()) => {}
        Err(amanat_protocol::WireError::WrongOrganisation) => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_organisation"))
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_org_signature",
            ))
        }
    }
    let now_s = now_ms() / 1000;
    if now_s >= req.code.expires_at {
        return Err(ApiError::new(StatusCode::GONE, "code_expired"));
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

async fn revoke<S: Storage>(
    State(app): State<Shared<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let rev: Revocation = parse_json(&body)?;
    if !is_device_id(&rev.device_id) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_body"));
    }
    match rev.verify(&app.org) {
        Ok(()) => {}
        Err(amanat_protocol::WireError::WrongOrganisation) => {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "wrong_organisation"))
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_org_signature",
            ))
        }
    }
    let text = serde_json::to_string(&rev)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal"))?;
    app.storage.revoke(&rev.device_id, &text).await?;
    tracing::info!(device = %rev.device_id, "device revoked");
    Ok(json_ok(
        &serde_json::json!({ "device_id": rev.device_id, "revoked": true }),
    ))
}

async fn revocations<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
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
    let bad = |code| ApiError::new(StatusCode::BAD_REQUEST, code);
    if !is_uuid_v7(&e.id) {
        return Err(bad("malformed_envelope_id"));
    }
    let recipients: BTreeSet<String> = e.recipients.into_iter().collect();
    if recipients.is_empty()
        || recipients.len() > 64
        || !recipients
            .iter()
            .all(|r| r == HQ_RECIPIENT || is_device_id(r))
    {
        return Err(bad("malformed_recipients"));
    }
    // Cheap bound before decoding: base64 is 4/3 of the payload.
    if e.payload.len() > cfg.max_envelope_bytes / 3 * 4 + 4 {
        return Err(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "envelope_too_large")
                .with("id", e.id.into()),
        );
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(e.payload.as_bytes())
        .map_err(|_| bad("malformed_payload"))?;
    if payload.is_empty() {
        return Err(bad("malformed_payload"));
    }
    if payload.len() > cfg.max_envelope_bytes {
        return Err(
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "envelope_too_large")
                .with("id", e.id.into()),
        );
    }
    Ok(NewEnvelope {
        id: e.id,
        recipients: recipients.into_iter().collect(),
        payload,
    })
}

async fn push<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    let caller = app.authenticate(&method, &uri, &headers, &body).await?;
    let req: PushRequest = parse_json(&body)?;
    if req.envelopes.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "empty_batch"));
    }
    if req.envelopes.len() > app.config.max_batch_envelopes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ));
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

#[derive(Deserialize)]
struct PullQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

async fn pull<S: Storage>(
    State(app): State<Shared<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = app.authenticate(&method, &uri, &headers, b"").await?;
    let Query(q) = query.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed_query"))?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).clamp(1, app.config.max_pull_limit);
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

fn check_sha(sha: &str) -> Result<(), ApiError> {
    if is_sha256(sha) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_blob_address",
        ))
    }
}

async fn blob_status<S: Storage>(
    State(app): State<Shared<S>>,
    Path(sha): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
    check_sha(&sha)?;
    let st = app.storage.blob_status(&sha).await?;
    Ok(json_ok(&serde_json::json!({
        "sha256": sha, "offset": st.held, "complete": st.complete
    })))
}

#[derive(Deserialize)]
struct OffsetQuery {
    offset: u64,
}

async fn blob_upload<S: Storage>(
    State(app): State<Shared<S>>,
    Path(sha): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<OffsetQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    app.authenticate(&method, &uri, &headers, &body).await?;
    check_sha(&sha)?;
    let Query(q) = query.map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed_query"))?;
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "empty_chunk"));
    }
    let held = app
        .storage
        .blob_append(&sha, q.offset, &body, app.config.max_blob_bytes)
        .await?;
    app.metrics.blob_bytes(body.len() as u64);
    Ok(json_ok(
        &serde_json::json!({ "sha256": sha, "offset": held }),
    ))
}

async fn blob_complete<S: Storage>(
    State(app): State<Shared<S>>,
    Path(sha): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body)?;
    app.authenticate(&method, &uri, &headers, &body).await?;
    check_sha(&sha)?;
    match app.storage.blob_complete(&sha).await? {
        Some(size) => Ok(json_ok(
            &serde_json::json!({ "sha256": sha, "size": size, "complete": true }),
        )),
        None => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "hash_mismatch",
        )),
    }
}

/// Parses a single `bytes=` range against `total`: `Ok(None)` for no header, `Err` if unsatisfiable.
fn parse_range(h: &HeaderMap, total: u64) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = h.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            .with("size", total.into())
    };
    let s = v.to_str().map_err(|_| bad())?;
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(bad());
            }
            (total.saturating_sub(n), total.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| bad())?, total.saturating_sub(1)),
        (a, b) => {
            let a: u64 = a.parse().map_err(|_| bad())?;
            let b: u64 = b.parse().map_err(|_| bad())?;
            (a, b.min(total.saturating_sub(1)))
        }
    };
    if total == 0 || start >= total || start > end {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

async fn blob_download<S: Storage>(
    State(app): State<Shared<S>>,
    Path(sha): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app.authenticate(&method, &uri, &headers, b"").await?;
    check_sha(&sha)?;
    let st = app.storage.blob_status(&sha).await?;
    if !st.complete {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "blob_not_found"));
    }
    let total = st.held;
    let cap = app.config.max_download_bytes;
    let range = parse_range(&headers, total)?;
    let (start, end, partial) = match range {
        Some((s, e)) => (s, e.min(s + cap - 1), true),
        None if total <= cap => (0, total.saturating_sub(1), false),
        // Larger than one response may be: the first slice, as a range, so the client continues.
        None => (0, cap - 1, true),
    };
    let len = if total == 0 { 0 } else { end - start + 1 };
    let Some((_, bytes)) = app.storage.blob_read(&sha, start, len).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "blob_not_found"));
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

async fn healthz<S: Storage>(State(app): State<Shared<S>>) -> Response {
    match app.storage.max_seq().await {
        Ok(_) => json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn metrics_text<S: Storage>(State(app): State<Shared<S>>) -> Response {
    let seq = app.storage.max_seq().await.ok();
    let mut resp = Response::new(Body::from(app.metrics.render(seq)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

async fn openapi_doc() -> Response {
    json_response(StatusCode::OK, &openapi::document())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found")
}

/// Counts and logs every response: method, path, status, error code, duration — never bodies.
async fn observe<S: Storage>(State(app): State<Shared<S>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
    app.metrics.request(status, code);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, error = code.unwrap_or(""), ms, "request");
    } else {
        tracing::info!(%method, %path, status, error = code.unwrap_or(""), ms, "request");
    }
    resp
}

/// The relay's routes over shared state `app`.
pub fn router<S: Storage>(app: Shared<S>) -> Router {
    let cfg = &app.config;
    let small = DefaultBodyLimit::max(64 * 1024);
    Router::new()
        .route("/v1/enroll", post(enroll::<S>).layer(small))
        .route(
            "/v1/revocations",
            post(revoke::<S>).get(revocations::<S>).layer(small),
        )
        .route(
            "/v1/envelopes",
            post(push::<S>)
                .get(pull::<S>)
                .layer(DefaultBodyLimit::max(cfg.max_batch_bytes)),
        )
        .route(
            "/v1/blobs/{sha256}",
            put(blob_upload::<S>)
                .get(blob_download::<S>)
                .layer(DefaultBodyLimit::max(cfg.max_chunk_bytes)),
        )
        .route("/v1/blobs/{sha256}/status", get(blob_status::<S>))
        .route(
            "/v1/blobs/{sha256}/complete",
            post(blob_complete::<S>).layer(small),
        )
        .route("/healthz", get(healthz::<S>))
        .route("/metrics", get(metrics_text::<S>))
        .route("/openapi.json", get(openapi_doc))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), observe::<S>))
        .with_state(app)
}

/// A relay running on a tokio runtime; [`RunningRelay::stop`] shuts it down gracefully.
pub struct RunningRelay {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningRelay {
    /// Stops accepting, lets in-flight requests finish (their commits complete), then returns.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|_| std::io::Error::other("relay task failed"))?
    }
}

/// Binds `listen` and serves the relay on the current tokio runtime.
pub async fn start<S: Storage>(
    listen: SocketAddr,
    org: OrgPublic,
    config: RelayConfig,
    storage: S,
) -> std::io::Result<RunningRelay> {
    let app = Arc::new(App::new(storage, org, config).map_err(std::io::Error::other)?);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    // Purge nonces that can no longer pass the clock check, once a minute.
    let purge_app = app.clone();
    let mut purge_rx = rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = purge_rx.changed() => break,
            }
            let before = now_ms().saturating_sub(MAX_CLOCK_SKEW_MS + 60_000);
            if let Err(e) = purge_app.storage.purge_nonces(before).await {
                tracing::warn!(error = %e, "nonce purge failed");
            }
        }
    });
    let router = router(app);
    let mut rx2 = rx;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx2.changed().await;
            })
            .await
    });
    Ok(RunningRelay {
        addr,
        shutdown: tx,
        task,
    })
}
