//! Sync across the boundary: enrollment, sync runs with progress and cancellation, status,
//! wedged entries, quarantine and case sharing, as methods of [`Vault`] and a [`SyncSession`].
//!
//! Each call converts and calls the core function of the same name in `amanat_core::sync`; the
//! rules (what is sent to whom, verification, classification of failures) stay in the core.
//!
//! The shell's HTTP stack comes in as a foreign [`Transport`] (OkHttp, URLSession: proxies,
//! background transfers, pinning); when none is given, the built-in client of
//! `amanat-transport` is used. Whatever the shell's transport does — return an error, throw an
//! undeclared exception — the run ends with a typed transient interruption (entries stay
//! queued), never a crash. The same holds for a failing [`SyncObserver`]: its failure is
//! ignored and the run goes on.
//!
//! Cancellation is a method of a Rust object, [`SyncSession`], rather than an object passed to
//! `sync`: uniffi 0.32's generated Kotlin does not check that an object *argument* is still
//! alive (docs/API.md, "Known upstream issues"), so no exported call takes a Rust object.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use amanat_core::sync::{self as core_sync, Cancel, Control, Request, Response, TransportError};
use amanat_core::RecordId;

use crate::domain::record_id;
use crate::error::{guard, AmanatError, AmanatResult};
use crate::sync_types::{
    ClashChoice, Enrollment, QuarantinedEnvelope, SyncClash, SyncProgress, SyncReport, SyncStatus,
    TeamDevice,
};
use crate::vault::Vault;

// ---- the shell's transport ----

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Header name (requests: as the core sets them; responses: any case, lowercased on the way
    /// in).
    pub name: String,
    /// Header value.
    pub value: String,
}

/// One request to the relay, for a shell's [`Transport`]. Send it as it is: the signature
/// covers method, path and body.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// `GET`, `POST` or `PUT`.
    pub method: String,
    /// The full URL to call (the enrolled relay URL + `path`), already checked: `https://`, or
    /// plain `http://` to a loopback address only.
    pub url: String,
    /// Path and query, exactly as signed.
    pub path: String,
    /// Headers to send (the signature headers, `content-type`).
    pub headers: Vec<HttpHeader>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Like the core's `Request`: no headers, no body (ciphertext, but not for logs).
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The relay's answer, whatever its status: return a 4xx or 5xx as a response, not an error.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<HttpHeader>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Why a shell's [`Transport`] got no HTTP answer (Kotlin `TransportFfiException`, Swift
/// `TransportFfiError`). Each ends the sync run as a transient interruption; entries stay
/// queued. Any other exception the transport throws counts as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TransportFfiError {
    /// The connection could not be made (DNS, refused, unreachable, offline).
    #[error("could not connect")]
    Connect,
    /// No answer within the timeout.
    #[error("timeout")]
    Timeout,
    /// The TLS handshake failed (certificate, pinning, protocol).
    #[error("TLS failure")]
    Tls,
    /// The connection broke mid-request or mid-response.
    #[error("connection lost")]
    Io,
    /// The answer was not valid HTTP, or too large.
    #[error("invalid HTTP answer")]
    Protocol,
    /// Anything else.
    #[error("transport failure: {reason}")]
    Other {
        /// For the shell's own logs: dropped when it reaches Rust (it may quote URLs).
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportFfiError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        // The foreign exception's text is dropped: it is arbitrary platform output.
        TransportFfiError::Other {
            reason: String::new(),
        }
    }
}

impl From<TransportFfiError> for TransportError {
    fn from(e: TransportFfiError) -> Self {
        match e {
            TransportFfiError::Connect => TransportError::Connect,
            TransportFfiError::Timeout => TransportError::Timeout,
            TransportFfiError::Tls => TransportError::Tls,
            TransportFfiError::Io => TransportError::Io,
            TransportFfiError::Protocol => TransportError::Protocol,
            // The shell's text is dropped here, at the first point it reaches Rust.
            TransportFfiError::Other { reason: _ } => TransportError::Other,
        }
    }
}

/// Moves one request to the relay and returns its answer: implemented by a shell that wants its
/// own HTTP stack (OkHttp, URLSession); pass `null`/`nil`/`None` to use the built-in client.
///
/// Called on the thread that runs the sync, blocking. Apply a timeout to every call, follow no
/// redirects, return non-2xx answers as responses.
#[uniffi::export(with_foreign)]
pub trait Transport: Send + Sync {
    /// Sends `request` and blocks until the answer arrived or the timeout expired.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportFfiError>;
}

/// Adapts a shell's [`Transport`] to the core's trait. The URL rule of the built-in transport
/// (`https://`, plain `http://` to loopback only) is applied before the shell sees a request, so
/// no shell stack can be led to send in clear.
struct ForeignTransport(Arc<dyn Transport>);

impl core_sync::Transport for ForeignTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let url = amanat_transport::check_url(&request.base_url, &request.path)?;
        let ffi_request = HttpRequest {
            method: request.method.clone(),
            url,
            path: request.path.clone(),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| HttpHeader {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body: request.body.clone(),
        };
        // uniffi turns a foreign exception into an error or a panic; either way the run sees a
        // transient transport failure.
        match catch_unwind(AssertUnwindSafe(|| self.0.send(ffi_request))) {
            Ok(Ok(r)) => Ok(Response {
                status: r.status,
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value))
                    .collect(),
                body: r.body,
            }),
            Ok(Err(e)) => Err(e.into()),
            Err(_panic) => Err(TransportError::Other),
        }
    }
}

/// Timeout of one call of the built-in transport.
const BUILT_IN_TIMEOUT: Duration = amanat_transport::DEFAULT_TIMEOUT;

/// Runs `f` with the shell's transport, or the built-in one when none was given.
fn with_transport<T>(
    transport: Option<Arc<dyn Transport>>,
    f: impl FnOnce(&dyn core_sync::Transport) -> T,
) -> T {
    match transport {
        Some(t) => f(&ForeignTransport(t)),
        None => f(&amanat_transport::HttpTransport::new(BUILT_IN_TIMEOUT)),
    }
}

// ---- progress ----

/// Why a [`SyncObserver`] failed (Kotlin `SyncObserverException`). Thrown or not, the run goes
/// on: an observer cannot stop or crash a sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SyncObserverError {
    /// The observer failed (any exception it throws counts as this).
    #[error("the sync observer failed")]
    Failed,
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SyncObserverError {
    fn from(_: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SyncObserverError::Failed
    }
}

/// Receives progress during a sync run (to update a notification). Called on the syncing
/// thread between steps; keep it quick and do not call the vault from it.
#[uniffi::export(with_foreign)]
pub trait SyncObserver: Send + Sync {
    /// One progress report: phase, items done of items known, bytes so far.
    fn on_progress(&self, progress: SyncProgress) -> Result<(), SyncObserverError>;
}

/// Adapts a shell's [`SyncObserver`]; its failures and panics are swallowed.
struct ForeignObserver(Arc<dyn SyncObserver>);

impl core_sync::Observer for ForeignObserver {
    fn progress(&self, progress: &SyncProgress) {
        // An observer is a display concern: whatever it does, the sync goes on.
        let _ignored = catch_unwind(AssertUnwindSafe(|| self.0.on_progress(progress.clone())));
    }
}

// ---- sync runs ----

/// A cancellable sync run: made by `Vault.syncSession(transport)`, run with `run(observer)` on a
/// background worker, cancelled with `cancel()` from any thread — before or during the run.
///
/// A cancelled session stays cancelled: every later `run` returns at once with
/// `interrupted = Cancelled` (nothing lost); make a new session for the next run. Holds its
/// vault alive until it is freed.
#[derive(uniffi::Object)]
pub struct SyncSession {
    vault: Arc<Vault>,
    transport: Option<Arc<dyn Transport>>,
    cancel: Cancel,
}

impl std::fmt::Debug for SyncSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncSession")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl SyncSession {
    /// Runs one sync (prepare, push, pull, apply) and blocks until it ends. Transient failures
    /// and cancellation come back as `SyncReport.interrupted`, never as an error; errors are
    /// for what a retry does not fix (`NotEnrolled`, `Rejected`, `Revoked` …).
    pub fn run(&self, observer: Option<Arc<dyn SyncObserver>>) -> AmanatResult<SyncReport> {
        guard(|| {
            self.vault
                .run_sync(self.transport.clone(), observer, &self.cancel)
        })
    }

    /// Asks the run to stop at its next step boundary (between prepare, push or pull batches; never
    /// inside a transaction). Safe from any thread, any number of times.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Whether `cancel()` was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl Vault {
    /// One sync run; runs on one vault are serialised (a second waits for the first).
    fn run_sync(
        &self,
        transport: Option<Arc<dyn Transport>>,
        observer: Option<Arc<dyn SyncObserver>>,
        cancel: &Cancel,
    ) -> AmanatResult<SyncReport> {
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        let observer = observer.map(ForeignObserver);
        let control = Control {
            observer: observer.as_ref().map(|o| o as &dyn core_sync::Observer),
            cancel: Some(cancel),
        };
        with_transport(transport, |t| {
            Ok(core_sync::sync_with(&self.inner, t, &control)?)
        })
    }
}

#[uniffi::export]
impl Vault {
    /// Enrolls this device using the org-signed `code` (the line `amanat device enroll`
    /// prints). `relay_url`: `null` to use the relay the organisation signed into the code;
    /// given, it must equal that one (`RelayUrlMismatch`), and is required for a code that names
    /// none (`NoRelayUrl`). Checks the organisation the relay returns against the code
    /// (`OrgMismatch` if substituted; nothing stored). `transport`: the shell's HTTP stack, or
    /// `null` for the built-in client. Blocking (one request).
    pub fn enroll(
        &self,
        code: String,
        relay_url: Option<String>,
        transport: Option<Arc<dyn Transport>>,
    ) -> AmanatResult<Enrollment> {
        guard(|| {
            with_transport(transport, |t| match &relay_url {
                Some(url) => Ok(core_sync::enroll(&self.inner, &code, url, t)?),
                None => Ok(core_sync::enroll_with_code(&self.inner, &code, t)?),
            })
        })
    }

    /// This device's enrollment, or `null` before `enroll`.
    pub fn enrollment(&self) -> AmanatResult<Option<Enrollment>> {
        guard(|| Ok(core_sync::enrollment(&self.inner)?))
    }

    /// One sync run that cannot be cancelled (use `syncSession` for one that can). Blocking:
    /// call it from a background worker.
    pub fn sync(
        &self,
        transport: Option<Arc<dyn Transport>>,
        observer: Option<Arc<dyn SyncObserver>>,
    ) -> AmanatResult<SyncReport> {
        guard(|| self.run_sync(transport, observer, &Cancel::new()))
    }

    /// A cancellable sync run over `transport` (`null`: the built-in client); see
    /// [`SyncSession`].
    pub fn sync_session(self: Arc<Self>, transport: Option<Arc<dyn Transport>>) -> SyncSession {
        SyncSession {
            vault: self,
            transport,
            cancel: Cancel::new(),
        }
    }

    /// Pending count, wedged entries, last success and enrollment, for the sync screen.
    pub fn sync_status(&self) -> AmanatResult<SyncStatus> {
        guard(|| Ok(core_sync::status(&self.inner)?))
    }

    /// Clears every wedged mark: the next sync pushes those entries again (same envelopes).
    /// Returns how many were cleared.
    pub fn retry_wedged(&self) -> AmanatResult<u64> {
        guard(|| Ok(core_sync::retry_wedged(&self.inner)?))
    }

    /// Removes the wedged entry `seq` for good (the user's explicit choice); `false` if there is
    /// no wedged entry with that number.
    pub fn discard_wedged(&self, seq: u64) -> AmanatResult<bool> {
        guard(|| Ok(core_sync::discard_wedged(&self.inner, seq)?))
    }

    /// Pulled envelopes that failed verification, in arrival order (never applied).
    pub fn quarantined(&self) -> AmanatResult<Vec<QuarantinedEnvelope>> {
        guard(|| Ok(core_sync::quarantined(&self.inner)?))
    }

    /// Every clash (a field two devices edited concurrently), case fields then identity fields.
    /// Values are survivor data: show them only on the unlocked, `FLAG_SECURE` screen.
    pub fn clashes(&self) -> AmanatResult<Vec<SyncClash>> {
        guard(|| {
            Ok(core_sync::clashes(&self.inner)?
                .into_iter()
                .map(SyncClash::from)
                .collect())
        })
    }

    /// Resolves the clash `clash_id` (from `clashes()`) by keeping one of its values, writing a
    /// new one or clearing the field: an ordinary local edit that travels with the next sync and
    /// ends the clash on every device. A clash resolved or changed by a sync since it was listed
    /// is `NotFound{what: "clash"}`; an index outside `values` is `InvalidInput{field: "choice"}`.
    pub fn resolve_clash(&self, clash_id: String, choice: ClashChoice) -> AmanatResult<()> {
        guard(|| {
            Ok(core_sync::resolve_clash(
                &self.inner,
                &clash_id,
                choice.into(),
            )?)
        })
    }

    /// Shares `case_id` with a team device given its signing key (hex) and age recipient (from
    /// its `enrollment()`): that case's future envelopes are also encrypted and routed to it,
    /// and what it signs is accepted. The caller vouches for the keys (phase 1).
    pub fn share_case(
        &self,
        case_id: String,
        signing_public_key: String,
        age_recipient: String,
    ) -> AmanatResult<TeamDevice> {
        guard(|| {
            let id: RecordId = record_id(&case_id, "case")?;
            match core_sync::share_case(&self.inner, id, &signing_public_key, &age_recipient) {
                Ok(peer) => Ok(peer.into()),
                // Here the only keys are the ones given: a malformed one is the caller's input.
                Err(core_sync::SyncError::Key) => Err(AmanatError::invalid(
                    "team_device_keys",
                    "the signing key or age recipient is malformed",
                )),
                Err(other) => Err(other.into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use amanat_core::sync::Transport as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A shell transport as a Rust test double: answers, fails, or panics.
    struct Shell {
        calls: AtomicUsize,
        answer: fn(&HttpRequest) -> Result<HttpResponse, TransportFfiError>,
    }

    impl Transport for Shell {
        fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportFfiError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            (self.answer)(&request)
        }
    }

    fn shell(
        answer: fn(&HttpRequest) -> Result<HttpResponse, TransportFfiError>,
    ) -> (Arc<Shell>, ForeignTransport) {
        let s = Arc::new(Shell {
            calls: AtomicUsize::new(0),
            answer,
        });
        (s.clone(), ForeignTransport(s))
    }

    fn request(base_url: &str) -> Request {
        Request {
            method: "POST".into(),
            base_url: base_url.into(),
            path: "/v1/envelopes".into(),
            headers: vec![("X-Amanat-Device".into(), "d".into())],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn the_shell_transport_gets_the_checked_url_and_its_answer_comes_back() {
        let (s, t) = shell(|r| {
            assert_eq!(r.url, "http://127.0.0.1:9/v1/envelopes");
            assert_eq!(r.path, "/v1/envelopes");
            assert_eq!(r.headers[0].name, "X-Amanat-Device");
            Ok(HttpResponse {
                status: 201,
                headers: vec![HttpHeader {
                    name: "Content-Type".into(),
                    value: "application/json".into(),
                }],
                body: b"ok".to_vec(),
            })
        });
        let resp = t.send(&request("http://127.0.0.1:9")).unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(
            resp.headers,
            [("content-type".into(), "application/json".into())]
        );
        assert_eq!(resp.body, b"ok");
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn an_insecure_url_never_reaches_the_shell_transport() {
        let (s, t) = shell(|_| unreachable!("must not be called"));
        assert_eq!(
            t.send(&request("http://192.0.2.1:8443")),
            Err(TransportError::InsecureUrl)
        );
        assert_eq!(
            t.send(&request("ftp://127.0.0.1")),
            Err(TransportError::InvalidUrl)
        );
        assert_eq!(s.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn failing_and_panicking_shell_transports_are_transient_and_typed() {
        let (_, t) = shell(|_| Err(TransportFfiError::Timeout));
        let e = t.send(&request("http://127.0.0.1:9")).unwrap_err();
        assert_eq!(e, TransportError::Timeout);
        assert!(e.is_transient());
        let (_, t) = shell(|_| {
            Err(TransportFfiError::Other {
                reason: "SECRET https://relay/?token".into(),
            })
        });
        let e = t.send(&request("http://127.0.0.1:9")).unwrap_err();
        assert_eq!(e, TransportError::Other);
        let (s, t) = shell(|_| panic!("SECRET in a panicking transport"));
        let e = t.send(&request("http://127.0.0.1:9")).unwrap_err();
        assert_eq!(e, TransportError::Other);
        assert!(e.is_transient());
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
        // An undeclared foreign exception arrives as this, its text dropped.
        let e: TransportFfiError = uniffi::UnexpectedUniFFICallbackError {
            reason: "java.lang.IllegalStateException: SECRET".into(),
        }
        .into();
        assert_eq!(TransportError::from(e), TransportError::Other);
    }

    struct Panicking(AtomicUsize);

    impl SyncObserver for Panicking {
        fn on_progress(&self, _: SyncProgress) -> Result<(), SyncObserverError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("observer bug")
        }
    }

    #[test]
    fn a_panicking_observer_is_contained() {
        let inner = Arc::new(Panicking(AtomicUsize::new(0)));
        let o = ForeignObserver(inner.clone());
        let p = SyncProgress {
            phase: amanat_core::sync::Phase::Push,
            done: 1,
            total: 2,
            bytes_up: 3,
            bytes_down: 4,
        };
        core_sync::Observer::progress(&o, &p);
        core_sync::Observer::progress(&o, &p);
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn request_and_response_debug_leave_out_headers_and_body() {
        let r = HttpRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:9/v1/envelopes".into(),
            path: "/v1/envelopes".into(),
            headers: vec![HttpHeader {
                name: "x-amanat-signature".into(),
                value: "SIG".into(),
            }],
            body: b"CIPHERTEXT".to_vec(),
        };
        let d = format!("{r:?}");
        assert!(!d.contains("SIG") && !d.contains("CIPHERTEXT"), "{d}");
        let d = format!(
            "{:?}",
            HttpResponse {
                status: 200,
                headers: vec![],
                body: b"CIPHERTEXT".to_vec()
            }
        );
        assert!(!d.contains("CIPHERTEXT"), "{d}");
    }
}
