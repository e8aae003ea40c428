//! Talking to the relay: signed requests, classification of answers, revocation.

use super::*;

pub(super) fn signed_request(
    key: &Ed25519KeyPair,
    base_url: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
    now_ms: u64,
) -> Result<Request, SyncError> {
    let h = amanat_protocol::sign_request(key, method, path, now_ms, &body)
        .map_err(|_| SyncError::Key)?;
    let mut headers: Vec<(String, String)> = h
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !body.is_empty() {
        // Blob chunks are raw ciphertext; every other body is JSON.
        let kind = if method == "PUT" {
            "application/octet-stream"
        } else {
            "application/json"
        };
        headers.push(("content-type".into(), kind.into()));
    }
    Ok(Request {
        method: method.to_string(),
        base_url: base_url.to_string(),
        path: path.to_string(),
        headers,
        body,
    })
}

/// The relay's error code from a JSON error body, reduced to `[a-z0-9_]{1,64}` (a code, never
/// free text), or `http_<status>`.
pub(super) fn error_code(resp: &Response) -> String {
    let code = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    code.unwrap_or_else(|| format!("http_{}", resp.status))
}

/// How a relay answer is handled.
pub(super) enum Answer {
    Ok(Vec<u8>),
    Transient(Interruption),
    Revoked(Vec<u8>),
    Refused { status: u16, code: String },
}

pub(super) fn classify(result: Result<Response, TransportError>) -> Result<Answer, SyncError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Ok(Answer::Transient(Interruption::Transport(e))),
        Err(e) => return Err(SyncError::Transport(e)),
    };
    Ok(match resp.status {
        200..=299 => Answer::Ok(resp.body),
        429 => Answer::Transient(Interruption::RateLimited),
        // 1xx/3xx: no relay answers so (it never redirects); something between device and relay
        // does, e.g. a captive portal's redirect to its login page. Transient, like a 5xx: a
        // refusal would wedge every entry for a network's whim.
        408 | 500..=599 | 100..=199 | 300..=399 => Answer::Transient(Interruption::Server {
            status: resp.status,
        }),
        status => {
            let code = error_code(&resp);
            if status == 403 && code == "revoked_device" {
                Answer::Revoked(resp.body)
            } else {
                Answer::Refused { status, code }
            }
        }
    })
}

/// Verifies a revocation under the enrolled organisation key; if it is this device's, wipes.
pub(super) fn obey_revocation(vault: &Vault, state: &State, body: &[u8]) -> Result<(), SyncError> {
    #[derive(Deserialize)]
    struct Body {
        revocation: Revocation,
    }
    let valid = serde_json::from_slice::<Body>(body)
        .ok()
        .map(|b| b.revocation)
        .filter(|r| r.device_id == state.device_id && r.verify(&state.org).is_ok());
    match valid {
        Some(_) => {
            vault.panic_wipe()?;
            Err(SyncError::Revoked)
        }
        // Not signed by our organisation for this device: the relay cannot make us wipe.
        None => Err(SyncError::Rejected {
            status: 403,
            code: "revoked_device".into(),
        }),
    }
}

/// What one sync run works with.
pub(super) struct Ctx<'a> {
    pub(super) vault: &'a Vault,
    pub(super) store: &'a Store,
    pub(super) state: State,
    pub(super) key: Ed25519KeyPair,
    pub(super) transport: &'a dyn Transport,
    pub(super) control: &'a Control<'a>,
    /// Request body bytes sent so far in this run.
    pub(super) bytes_up: std::cell::Cell<u64>,
    /// Response body bytes received so far in this run.
    pub(super) bytes_down: std::cell::Cell<u64>,
    /// The largest `Retry-After` (ms, capped) a 429 or 503 answer asked for in this run.
    pub(super) retry_hint_ms: std::cell::Cell<Option<u64>>,
}

/// `Retry-After` of a 429 or 503 answer in seconds (the relay's form), as ms capped at
/// [`BACKOFF_CAP_MS`] (a relay must not silence a device for longer than the schedule would);
/// the HTTP-date form and anything else are ignored.
pub(super) fn retry_after_ms(resp: &Response) -> Option<u64> {
    if resp.status != 429 && resp.status != 503 {
        return None;
    }
    let value = resp
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    if value.is_empty() || value.len() > 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = value.parse().ok()?;
    Some(secs.saturating_mul(1000).min(BACKOFF_CAP_MS))
}

impl<'a> Ctx<'a> {
    /// A run's context with nothing sent yet.
    pub(super) fn new(
        vault: &'a Vault,
        store: &'a Store,
        state: State,
        key: Ed25519KeyPair,
        transport: &'a dyn Transport,
        control: &'a Control<'a>,
    ) -> Self {
        Self {
            vault,
            store,
            state,
            key,
            transport,
            control,
            bytes_up: std::cell::Cell::new(0),
            bytes_down: std::cell::Cell::new(0),
            retry_hint_ms: std::cell::Cell::new(None),
        }
    }

    pub(super) fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Answer, SyncError> {
        self.send_with(method, path, body, &[])
    }

    /// [`Ctx::send`] with extra headers that are not signed (a blob download's `Range`).
    pub(super) fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        extra: &[(String, String)],
    ) -> Result<Answer, SyncError> {
        let now = self.vault.clock().now_ms();
        let mut request =
            signed_request(&self.key, &self.state.relay_url, method, path, body, now)?;
        request.headers.extend(extra.iter().cloned());
        self.bytes_up
            .set(self.bytes_up.get() + request.body.len() as u64);
        let result = self.transport.send(&request);
        if let Ok(resp) = &result {
            self.bytes_down
                .set(self.bytes_down.get() + resp.body.len() as u64);
            if let Some(ms) = retry_after_ms(resp) {
                self.retry_hint_ms
                    .set(Some(self.retry_hint_ms.get().unwrap_or(0).max(ms)));
            }
        }
        classify(result)
    }

    /// `Some(Interruption::Cancelled)` once the caller asked to stop: checked between batches,
    /// pages and chunks, never inside a transaction.
    pub(super) fn cancelled(&self) -> Option<Interruption> {
        self.control
            .cancel
            .filter(|c| c.is_cancelled())
            .map(|_| Interruption::Cancelled)
    }

    /// Reports progress to the observer, if any.
    pub(super) fn progress(&self, phase: Phase, done: u64, total: u64) {
        if let Some(o) = self.control.observer {
            o.progress(&Progress {
                phase,
                done,
                total,
                bytes_up: self.bytes_up.get(),
                bytes_down: self.bytes_down.get(),
            });
        }
    }
}
