//! `amanat hq console`: the HQ review console — a web page on loopback that decrypts only on this
//! machine, for the groups whose identities the installation holds (docs/HQ.md, "The review
//! console").
//!
//! What may be shown is decided by the core (`amanat_core::hq::view`, the export's own rules);
//! this module renders HTML on the server, streams attachments decrypted chunk by chunk (nothing
//! decrypted is written to disk), and guards the page: loopback only, one session with a random
//! 256-bit id compared in constant time, a CSRF token plus `Origin`/`Sec-Fetch-Site` checks on
//! every POST, strict CSP and `Cache-Control: no-store` on every response, the vault dropped after
//! `--idle-secs` without a request. Logs name the route pattern and the status only (no ids, no
//! query strings).

pub mod html;
pub mod i18n;
pub mod security;

use amanat_core::hq::view::{self, Access};
use amanat_core::sync::{self as clashes, Choice};
use amanat_core::{RecordId, Vault};
use amanat_transport::HttpTransport;
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use i18n::Ui;
use security::Token;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Options of `amanat hq console`.
#[derive(Clone, Debug)]
pub struct Options {
    /// HQ data directory.
    pub data: PathBuf,
    /// Where to listen (loopback unless `behind_tls_proxy`).
    pub listen: SocketAddr,
    /// Lock (drop the vault) after this long without a request.
    pub idle: Duration,
    /// A TLS proxy on this machine terminates connections in front of the console.
    pub behind_tls_proxy: bool,
}

/// The unlocked installation and the browser session holding it.
struct Session {
    id: Token,
    csrf: Token,
    vault: Vault,
    access: Access,
    last: Instant,
    /// Cases whose identity answers the operator revealed (audited) in this session.
    revealed: BTreeSet<String>,
    /// The `amanat verify` report of the last export made from the console.
    last_verify: Option<String>,
    /// The language of the console's own words.
    ui: Ui,
    /// The last custody walk (it decrypts every recording: made once, then again on the custody
    /// report page).
    custody: Option<amanat_core::sync::CustodyReport>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.vault.lock();
    }
}

#[derive(Default)]
struct Inner {
    /// The login form's CSRF token (before any session exists).
    login_csrf: Option<Token>,
    session: Option<Session>,
}

/// The console's state: one operator, one session.
pub struct Console {
    opts: Options,
    origin: Mutex<String>,
    inner: Mutex<Inner>,
    log: Option<Mutex<Vec<String>>>,
}

type Shared = Arc<Console>;

impl Console {
    /// A console over `opts.data`; `capture_log` keeps log lines in memory (tests) instead of
    /// printing them.
    pub fn new(opts: Options, capture_log: bool) -> Shared {
        let origin = format!(
            "{}://{}",
            if opts.behind_tls_proxy {
                "https"
            } else {
                "http"
            },
            opts.listen
        );
        Arc::new(Console {
            opts,
            origin: Mutex::new(origin),
            inner: Mutex::new(Inner::default()),
            log: capture_log.then(|| Mutex::new(Vec::new())),
        })
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn origin(&self) -> String {
        self.origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the origin POSTs must come from (after binding port 0, or the proxy's name).
    pub fn set_origin(&self, origin: String) {
        *self.origin.lock().unwrap_or_else(|p| p.into_inner()) = origin;
    }

    /// The log lines kept (when capturing).
    pub fn logged(&self) -> Vec<String> {
        self.log
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    fn write_log(&self, line: String) {
        match &self.log {
            Some(l) => l.lock().unwrap_or_else(|p| p.into_inner()).push(line),
            None => eprintln!("{line}"),
        }
    }

    /// Whether a session is open (the vault unlocked).
    pub fn unlocked(&self) -> bool {
        self.lock_inner().session.is_some()
    }

    /// Drops the session (and locks the vault) if it has been idle too long.
    pub fn expire_idle(&self) {
        let mut inner = self.lock_inner();
        if inner
            .session
            .as_ref()
            .is_some_and(|s| s.last.elapsed() > self.opts.idle)
        {
            inner.session = None;
        }
    }

    /// Installs an unlocked vault as the session (tests of the routes); returns the session
    /// cookie and CSRF token.
    pub fn install_session(
        &self,
        vault: Vault,
        access: Access,
    ) -> Result<(String, String), String> {
        let (id, csrf) = (Token::random()?, Token::random()?);
        let out = (id.hex(), csrf.hex());
        self.lock_inner().session = Some(Session {
            id,
            csrf,
            vault,
            access,
            last: Instant::now(),
            revealed: BTreeSet::new(),
            last_verify: None,
            ui: Ui::En,
            custody: None,
        });
        Ok(out)
    }
}

/// The router: every page and action, with the hardening headers and the log line.
pub fn router(console: Shared) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/login", get(login_page).post(login))
        .route("/lock", post(lock))
        .route("/ui", post(set_ui))
        .route("/cases", get(cases))
        .route("/cases/{id}", get(case))
        .route("/cases/{id}/reveal", post(reveal))
        .route("/cases/{id}/export", post(export))
        .route("/cases/{id}/clash", post(resolve_clash))
        .route("/cases/{id}/refer", post(refer))
        .route("/attachments/{id}", get(attachment))
        .route("/custody", get(custody))
        .route("/ack", post(ack))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            harden_and_log,
        ))
        .with_state(console)
}

async fn harden_and_log(
    State(c): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    // The route pattern, never the path itself (ids) or the query (a searched code).
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".to_owned());
    let method = req.method().clone();
    // DNS rebinding: a page of another name resolving to 127.0.0.1 is refused by its Host.
    let host_ok = c.opts.behind_tls_proxy
        || req
            .headers()
            .get(header::HOST)
            .is_some_and(|h| c.origin().strip_prefix("http://") == h.to_str().ok());
    let mut resp = if host_ok {
        next.run(req).await
    } else {
        page(
            StatusCode::MISDIRECTED_REQUEST,
            html::message("Refused", "Open the console at the address it printed."),
        )
    };
    security::harden(resp.headers_mut());
    c.write_log(log_line(method.as_str(), &route, resp.status()));
    resp
}

/// One log line: method, route pattern, status.
pub fn log_line(method: &str, route: &str, status: StatusCode) -> String {
    format!("console {method} {route} {}", status.as_u16())
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        html::message(
            "Refused (403)",
            "This request did not come from the console's own page, or its form token is wrong. \
             Nothing was done.",
        ),
    )
}

fn error_page(text: &str) -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        html::message("Error", text),
    )
}

/// Runs `f` with the live session (refreshing its idle timer), or redirects to the login page
/// when there is none, its cookie does not match, or it has been idle too long.
fn with_session(
    c: &Console,
    headers: &HeaderMap,
    f: impl FnOnce(&mut Session) -> Response,
) -> Response {
    let mut inner = c.lock_inner();
    let cookie = security::session_cookie(headers);
    let alive = match &inner.session {
        Some(s) => {
            if s.last.elapsed() > c.opts.idle {
                inner.session = None;
                false
            } else {
                cookie.as_deref().is_some_and(|v| s.id.matches(v))
            }
        }
        None => false,
    };
    match inner.session.as_mut() {
        Some(s) if alive => {
            s.last = Instant::now();
            f(s)
        }
        _ => redirect("/login"),
    }
}

/// As [`with_session`], for a POST: also checks the origin and the form's CSRF token (403).
fn with_post_session(
    c: &Console,
    headers: &HeaderMap,
    csrf: &str,
    f: impl FnOnce(&mut Session) -> Response,
) -> Response {
    if !security::same_origin_post(headers, &expected_origin(c, headers)) {
        return forbidden();
    }
    with_session(c, headers, |s| {
        if !s.csrf.matches(csrf) {
            return forbidden();
        }
        f(s)
    })
}

/// The origin a POST must come from: the printed address, or behind a TLS proxy the name the
/// proxy was reached by (its `Host`, over https).
fn expected_origin(c: &Console, headers: &HeaderMap) -> String {
    if c.opts.behind_tls_proxy {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        format!("https://{host}")
    } else {
        c.origin()
    }
}

async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| error_page("the request failed"))
}

async fn root(State(c): State<Shared>) -> Response {
    if c.unlocked() {
        redirect("/cases")
    } else {
        redirect("/login")
    }
}

async fn login_page(State(c): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ui = q.get("ui").and_then(|l| Ui::parse(l)).unwrap_or_default();
    login_form(&c, ui, StatusCode::OK, None)
}

fn login_form(c: &Console, ui: Ui, status: StatusCode, error: Option<&str>) -> Response {
    let token = match Token::random() {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let hex = token.hex();
    c.lock_inner().login_csrf = Some(token);
    page(status, html::login(ui, &hex, error))
}

/// A posted form: the CSRF token and the fields of each action.
#[derive(serde::Deserialize)]
pub struct PostForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    passphrase: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    clash: String,
    #[serde(default)]
    keep: usize,
    #[serde(default)]
    ui: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    take_back: String,
    #[serde(default)]
    org_dir: String,
    #[serde(default)]
    org_pass: String,
}

impl Drop for PostForm {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.passphrase);
        zeroize::Zeroize::zeroize(&mut self.org_pass);
    }
}

async fn login(
    State(c): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<PostForm>,
) -> Response {
    if !security::same_origin_post(&headers, &expected_origin(&c, &headers)) {
        return forbidden();
    }
    let token_ok = c
        .lock_inner()
        .login_csrf
        .take()
        .is_some_and(|t| t.matches(&form.csrf));
    if !token_ok {
        return forbidden();
    }
    let pass = age::secrecy::SecretString::from(form.passphrase.clone());
    let ui = Ui::parse(&form.ui).unwrap_or_default();
    blocking(move || {
        // Argon2 and the store open off the async threads.
        let vault = match crate::hq::open(&c.opts.data, &pass) {
            Ok(v) => v,
            Err(e) => {
                // The vault's own words: a count of attempts or the seconds to wait, no data.
                let text = format!(
                    "The passphrase was not accepted: {e}. Each wrong attempt makes the next one \
                     wait longer."
                );
                return login_form(&c, ui, StatusCode::UNAUTHORIZED, Some(&text));
            }
        };
        let access = match view::access_of(&vault) {
            Ok(a) => a,
            Err(e) => return error_page(&e.to_string()),
        };
        let Some(access) = access else {
            vault.lock();
            return login_form(
                &c,
                ui,
                StatusCode::FORBIDDEN,
                Some("This installation holds no group identity: there is nothing it may show."),
            );
        };
        let (id, csrf) = match (Token::random(), Token::random()) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return error_page("no random source"),
        };
        let cookie = security::set_cookie(&id, c.opts.behind_tls_proxy);
        c.lock_inner().session = Some(Session {
            id,
            csrf,
            vault,
            access,
            last: Instant::now(),
            revealed: BTreeSet::new(),
            last_verify: None,
            ui,
            custody: None,
        });
        let mut resp = redirect("/cases");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        resp
    })
    .await
}

async fn lock(State(c): State<Shared>, headers: HeaderMap, Form(form): Form<PostForm>) -> Response {
    let mut locked = false;
    let resp = with_post_session(&c, &headers, &form.csrf, |_| {
        locked = true;
        redirect("/login")
    });
    // Only the session's own page locks it (a stale or foreign cookie changes nothing).
    if locked {
        c.lock_inner().session = None;
        let mut resp = resp;
        if let Ok(v) = HeaderValue::from_str(&security::clear_cookie()) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    resp
}

async fn set_ui(
    State(c): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<PostForm>,
) -> Response {
    with_post_session(&c, &headers, &form.csrf, |s| {
        if let Some(ui) = Ui::parse(&form.lang) {
            s.ui = ui;
        }
        redirect("/cases")
    })
}

async fn cases(State(c): State<Shared>, headers: HeaderMap) -> Response {
    blocking(move || {
        with_session(&c, &headers, |s| {
            let rows = match view::case_rows(&s.vault) {
                Ok(r) => r,
                Err(e) => return error_page(&e.to_string()),
            };
            let clashes = clashes::clashes(&s.vault).unwrap_or_default();
            // Filtering by code happens in the page (console.js): no code in any address.
            let rows: Vec<_> = rows
                .into_iter()
                .map(|r| {
                    let n = clashes
                        .iter()
                        .filter(|k| k.case_id.to_string() == r.case_id)
                        .count();
                    (r, n)
                })
                .collect();
            page(
                StatusCode::OK,
                html::cases(s.ui, &rows, &s.csrf.hex(), &s.access),
            )
        })
    })
    .await
}

async fn case(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    blocking(move || {
        with_session(&c, &headers, |s| {
            let Some(case_id) = RecordId::parse(&id) else {
                return not_found_page();
            };
            let language = q
                .get("lang")
                .filter(|l| ["en", "ru", "uz"].contains(&l.as_str()))
                .cloned();
            let revealed = s.revealed.contains(&case_id.to_string());
            let opts = view::ViewOptions {
                reveal: revealed,
                language: language.clone(),
            };
            if s.custody.is_none() {
                match view::custody(&s.vault) {
                    Ok(r) => s.custody = Some(r),
                    Err(e) => return error_page(&e.to_string()),
                }
            }
            let v = match view::case_view(&s.vault, case_id, &opts, s.custody.as_ref()) {
                Ok(Some(v)) => v,
                Ok(None) => return not_found_page(),
                Err(e) => return error_page(&e.to_string()),
            };
            let identity = match view::identity_fields(&s.vault, case_id, revealed) {
                Ok(i) => i,
                Err(e) => return error_page(&e.to_string()),
            };
            let devices: Vec<String> = amanat_core::sync::hq::devices(&s.vault)
                .unwrap_or_default()
                .into_iter()
                .filter(|d| d.profile)
                .map(|d| d.device_id)
                .collect();
            let clashes: Vec<_> = clashes::clashes(&s.vault)
                .unwrap_or_default()
                .into_iter()
                .filter(|k| k.case_id == case_id)
                .collect();
            page(
                StatusCode::OK,
                html::case(&html::CasePage {
                    ui: s.ui,
                    view: &v,
                    csrf: &s.csrf.hex(),
                    access: &s.access,
                    revealed,
                    language: language.as_deref(),
                    clashes: &clashes,
                    identity: &identity,
                    devices: &devices,
                }),
            )
        })
    })
    .await
}

async fn reveal(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<PostForm>,
) -> Response {
    blocking(move || {
        with_post_session(&c, &headers, &form.csrf, |s| {
            let Some(case_id) = RecordId::parse(&id) else {
                return not_found_page();
            };
            // The core refuses unless this installation may reveal (caseworkers only).
            match view::record_reveal(&s.vault, case_id) {
                Ok(()) => {}
                Err(amanat_core::hq::HqError::NotAllowed) => {
                    return page(
                        StatusCode::FORBIDDEN,
                        html::message(
                            "Not allowed",
                            "This installation does not hold the caseworkers identity: identity \
                             answers stay hidden.",
                        ),
                    )
                }
                Err(e) => return error_page(&e.to_string()),
            }
            s.revealed.insert(case_id.to_string());
            redirect(&format!("/cases/{case_id}"))
        })
    })
    .await
}

async fn export(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<PostForm>,
) -> Response {
    blocking(move || {
        with_post_session(&c, &headers, &form.csrf, |s| {
            let Some(case_id) = RecordId::parse(&id) else {
                return not_found_page();
            };
            let dir = PathBuf::from(form.dir.trim());
            if form.dir.trim().is_empty() || !dir.is_absolute() {
                return page(
                    StatusCode::BAD_REQUEST,
                    html::message("Export", "Name the export folder as an absolute path."),
                );
            }
            let revealed = s.revealed.contains(&case_id.to_string());
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            match view::export_case(&s.vault, case_id, &dir, revealed, now_ms) {
                Ok(Some(_)) => {}
                Ok(None) => return not_found_page(),
                Err(e) => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        html::message("Export failed", &e.to_string()),
                    )
                }
            }
            let text = match amanat_core::hq::verify_export(&dir, None) {
                Ok(r) => crate::hq::verify_text(&dir, &r),
                Err(e) => format!("verification failed: {e}"),
            };
            s.last_verify = Some(text);
            redirect("/custody")
        })
    })
    .await
}

async fn resolve_clash(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<PostForm>,
) -> Response {
    blocking(move || {
        with_post_session(&c, &headers, &form.csrf, |s| {
            let Some(case_id) = RecordId::parse(&id) else {
                return not_found_page();
            };
            match clashes::resolve_clash(&s.vault, &form.clash, Choice::Keep(form.keep)) {
                Ok(()) => match view::record_action(
                    &s.vault,
                    view::ConsoleAction::ClashResolve,
                    Some(case_id),
                ) {
                    Ok(()) => redirect(&format!("/cases/{case_id}")),
                    Err(e) => error_page(&e.to_string()),
                },
                Err(e) => page(
                    StatusCode::CONFLICT,
                    html::message("The clash was not resolved", &e.to_string()),
                ),
            }
        })
    })
    .await
}

/// Refers the case to a device, or takes it back: `amanat hq refer`, signed with the
/// organisation key the operator names (directory and passphrase typed in the page, used for this
/// one order and dropped).
async fn refer(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<PostForm>,
) -> Response {
    blocking(move || {
        with_post_session(&c, &headers, &form.csrf, |s| {
            let Some(case_id) = RecordId::parse(&id) else {
                return not_found_page();
            };
            let code = match view::case_rows(&s.vault) {
                Ok(rows) => rows
                    .into_iter()
                    .find(|r| r.case_id == case_id.to_string())
                    .map(|r| r.code),
                Err(e) => return error_page(&e.to_string()),
            };
            let Some(code) = code else {
                return not_found_page();
            };
            let pass = age::secrecy::SecretString::from(form.org_pass.clone());
            let sign =
                match crate::org::order_signer(std::path::Path::new(form.org_dir.trim()), &pass) {
                    Ok(f) => f,
                    Err(e) => {
                        return page(StatusCode::BAD_REQUEST, html::message("Not referred", &e))
                    }
                };
            let to = vec![form.to.trim().to_owned()];
            let (add, remove): (&[String], &[String]) = if form.take_back.is_empty() {
                (&to, &[])
            } else {
                (&[], &to)
            };
            let transport = HttpTransport::new(Duration::from_secs(60));
            let done =
                amanat_core::sync::hq::assign_case(&s.vault, &transport, &code, add, remove, &sign)
                    .map_err(|e| e.to_string())
                    .and_then(|d| {
                        view::record_action(&s.vault, view::ConsoleAction::Refer, Some(case_id))
                            .map(|()| d)
                            .map_err(|e| e.to_string())
                    });
            match done {
                Ok(d) => page(
                    StatusCode::OK,
                    html::message(
                        "Referred",
                        &format!(
                            "The case is now shared by {} devices ({}); {} devices told, {} \
                             records handed to the devices joining; each obeys on its next sync.",
                            d.devices.len(),
                            d.devices.join(", "),
                            d.told.len(),
                            d.records
                        ),
                    ),
                ),
                Err(e) => page(StatusCode::BAD_REQUEST, html::message("Not referred", &e)),
            }
        })
    })
    .await
}

async fn ack(State(c): State<Shared>, headers: HeaderMap, Form(form): Form<PostForm>) -> Response {
    blocking(move || {
        with_post_session(&c, &headers, &form.csrf, |s| {
            let transport = HttpTransport::new(Duration::from_secs(60));
            let sent = amanat_core::sync::hq::send_receipts(&s.vault, &transport)
                .map_err(|e| e.to_string())
                .and_then(|n| {
                    view::record_action(&s.vault, view::ConsoleAction::Acknowledge, None)
                        .map(|()| n)
                        .map_err(|e| e.to_string())
                });
            match sent {
                Ok(n) => page(
                    StatusCode::OK,
                    html::message(
                        "Acknowledged",
                        &format!("Acknowledged {n} records to the devices that sent them."),
                    ),
                ),
                Err(e) => page(
                    StatusCode::BAD_GATEWAY,
                    html::message("Not acknowledged", &e),
                ),
            }
        })
    })
    .await
}

async fn custody(State(c): State<Shared>, headers: HeaderMap) -> Response {
    blocking(move || {
        with_session(&c, &headers, |s| {
            let report = match view::custody(&s.vault) {
                Ok(r) => r,
                Err(e) => return error_page(&e.to_string()),
            };
            s.custody = Some(report.clone());
            let quarantined = amanat_core::sync::quarantined(&s.vault).unwrap_or_default();
            page(
                StatusCode::OK,
                html::custody(
                    s.ui,
                    &report,
                    &quarantined,
                    s.last_verify.as_deref(),
                    &s.csrf.hex(),
                    &s.access,
                ),
            )
        })
    })
    .await
}

/// A body fed chunk by chunk from a blocking thread that decrypts.
struct Chunks(tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<axum::body::Bytes, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn attachment(
    State(c): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let opened = {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = None;
            let resp = with_session(&c, &headers, |s| {
                match view::open_attachment(&s.vault, &id) {
                    Ok(Some((media_type, mut r))) => {
                        // Learn the length (authenticated by the last chunk) and rewind.
                        let size = match (r.seek(u64::MAX), r.seek(0)) {
                            (Ok(end), Ok(0)) => Some(end),
                            _ => None,
                        };
                        out = Some((media_type, r, size));
                        StatusCode::OK.into_response()
                    }
                    Ok(None) => not_found_page(),
                    Err(e) => error_page(&e.to_string()),
                }
            });
            (resp, out)
        })
        .await
    };
    let Ok((resp, opened)) = opened else {
        return error_page("the request failed");
    };
    let Some((media_type, mut reader, size)) = opened else {
        return resp;
    };
    // A `Range: bytes=…` request (the audio element seeking) decrypts from the chunk holding its
    // start; anything else gets the whole recording.
    let range = match (range_header, size) {
        (Some(h), Some(n)) => match parse_range(&h, n) {
            Some(Ok(r)) => Some(r),
            Some(Err(())) => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{n}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
            None => None,
        },
        _ => None,
    };
    let (start, len) = match (range, size) {
        (Some((a, b)), _) => (a, Some(b - a + 1)),
        (None, n) => (0, n),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len.unwrap_or(u64::MAX);
        let sought = if start > 0 {
            reader.seek(start).map(|_| ())
        } else {
            Ok(())
        };
        if sought.is_err() {
            let _ = tx.blocking_send(Err(std::io::Error::other("attachment unreadable")));
            left = 0;
        }
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    left -= n as u64;
                    let chunk = axum::body::Bytes::copy_from_slice(&buf[..n]);
                    if tx.blocking_send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                Err(_) => {
                    // A damaged file: the stream ends in an error, never with wrong bytes.
                    let _ = tx.blocking_send(Err(std::io::Error::other("attachment unreadable")));
                    break;
                }
            }
        }
        zeroize::Zeroize::zeroize(&mut buf);
    });
    let mut resp = Response::new(axum::body::Body::from_stream(Chunks(rx)));
    let safe_type = if media_type.starts_with("audio/") || media_type.starts_with("image/") {
        media_type
    } else {
        "application/octet-stream".to_owned()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&safe_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(n) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if size.is_some() {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let (Some((a, b)), Some(n)) = (range, size) {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{n}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// Parses a single `bytes=START-[END]` or `bytes=-SUFFIX` range against `size`: `None` for no
/// range or one this console does not serve (several ranges: the whole body then), `Some(Err)`
/// when unsatisfiable, else the inclusive bounds.
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let suffix: u64 = b.parse().ok()?;
        if suffix == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(suffix), size - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(size.saturating_sub(1))
        };
        if start >= size || end < start {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(range))
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        html::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        html::JS,
    )
        .into_response()
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        html::message("Not found", "Nothing here."),
    )
}

async fn not_found() -> Response {
    not_found_page()
}

/// `amanat hq console`: serves until ctrl-c or SIGTERM; prints `listening on http://ADDR`.
pub fn run(opts: Options) -> Result<(), String> {
    security::check_listen(&opts.listen, opts.behind_tls_proxy)?;
    if !amanat_core::Vault::exists(crate::hq::vault_dir(&opts.data)) {
        return Err(format!(
            "{} holds no HQ vault (amanat hq init)",
            opts.data.display()
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {}", opts.listen, e.kind()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen: {}", e.kind()))?;
        let console = Console::new(
            Options {
                listen: addr,
                ..opts.clone()
            },
            false,
        );
        // Idle sessions are dropped even when no request comes.
        let ticker = console.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ticker.expire_idle();
            }
        });
        println!("listening on http://{addr}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router(console.clone()))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("the console stopped: {}", e.kind()))?;
        console.lock_inner().session = None;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt as _;

    const ORIGIN: &str = "http://127.0.0.1:5000";
    const HOST: &str = "127.0.0.1:5000";

    fn console(dir: &std::path::Path, idle_ms: u64) -> Shared {
        Console::new(
            Options {
                data: dir.to_path_buf(),
                listen: HOST.parse().unwrap(),
                idle: Duration::from_millis(idle_ms),
                behind_tls_proxy: false,
            },
            true,
        )
    }

    /// A session over a fresh (non-HQ) vault reading as research: enough for the guards.
    fn with_session(c: &Console, dir: &std::path::Path) -> (String, String) {
        let v = amanat_core::testing::create_vault(&dir.join("v")).unwrap();
        c.install_session(
            v,
            Access {
                group: "research".into(),
                may_reveal: false,
            },
        )
        .unwrap()
    }

    async fn send(c: &Shared, req: HttpRequest<Body>) -> Response {
        router(c.clone()).oneshot(req).await.unwrap()
    }

    fn get(path: &str, cookie: Option<&str>) -> HttpRequest<Body> {
        let mut b = HttpRequest::get(path).header("host", HOST);
        if let Some(c) = cookie {
            b = b.header("cookie", format!("{}={c}", security::COOKIE));
        }
        b.body(Body::empty()).unwrap()
    }

    fn post(path: &str, cookie: &str, csrf: &str, extra: &[(&str, &str)]) -> HttpRequest<Body> {
        let mut b = HttpRequest::post(path)
            .header("host", HOST)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("{}={cookie}", security::COOKIE));
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(Body::from(format!("csrf={csrf}"))).unwrap()
    }

    fn assert_hardened(r: &Response, what: &str) {
        let h = r.headers();
        assert_eq!(h["content-security-policy"], security::CSP, "{what}");
        assert!(security::CSP.contains("script-src 'self'") && !security::CSP.contains("unsafe"));
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    }

    #[tokio::test]
    async fn every_response_carries_the_hardening_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let c = console(tmp.path(), 60_000);
        let (cookie, csrf) = with_session(&c, tmp.path());
        let mut bad_host = get("/login", None);
        bad_host
            .headers_mut()
            .insert("host", HeaderValue::from_static("evil.example:5000"));
        let cases: Vec<(&str, HttpRequest<Body>, StatusCode)> = vec![
            ("login", get("/login", None), StatusCode::OK),
            ("root", get("/", None), StatusCode::SEE_OTHER),
            // The test session's vault is not an HQ installation: the page fails, hardened too.
            (
                "cases",
                get("/cases", Some(&cookie)),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            ("no session", get("/cases", None), StatusCode::SEE_OTHER),
            ("missing", get("/nothing", None), StatusCode::NOT_FOUND),
            ("js", get("/assets/console.js", None), StatusCode::OK),
            ("css", get("/assets/console.css", None), StatusCode::OK),
            (
                "error page",
                get("/custody", Some(&cookie)),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            ("rebinding", bad_host, StatusCode::MISDIRECTED_REQUEST),
            (
                "refused post",
                post("/ack", &cookie, &csrf, &[]),
                StatusCode::FORBIDDEN,
            ),
        ];
        for (what, req, status) in cases {
            let r = send(&c, req).await;
            assert_eq!(r.status(), status, "{what}");
            assert_hardened(&r, what);
        }
    }

    #[tokio::test]
    async fn a_post_needs_the_consoles_origin_and_the_sessions_csrf_token() {
        let tmp = tempfile::tempdir().unwrap();
        let c = console(tmp.path(), 60_000);
        let (cookie, csrf) = with_session(&c, tmp.path());
        let same = [("origin", ORIGIN), ("sec-fetch-site", "same-origin")];
        let refused = [
            ("no origin", post("/lock", &cookie, &csrf, &[])),
            (
                "other origin",
                post(
                    "/lock",
                    &cookie,
                    &csrf,
                    &[("origin", "http://127.0.0.1:5001")],
                ),
            ),
            (
                "cross-site",
                post(
                    "/lock",
                    &cookie,
                    &csrf,
                    &[("origin", ORIGIN), ("sec-fetch-site", "cross-site")],
                ),
            ),
            (
                "wrong token",
                post("/lock", &cookie, &"0".repeat(64), &same),
            ),
            ("no token", post("/lock", &cookie, "", &same)),
        ];
        for (what, req) in refused {
            let r = send(&c, req).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
            assert!(c.unlocked(), "{what}: nothing done");
        }
        // Wrong cookie with the right token: no session, to the login page.
        let r = send(&c, post("/lock", &"f".repeat(64), &csrf, &same)).await;
        assert_eq!(r.headers()["location"], "/login");
        assert!(c.unlocked());
        // The real thing locks.
        let r = send(&c, post("/lock", &cookie, &csrf, &same)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(!c.unlocked(), "locked");
        assert!(r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        // The login form's own token is checked too.
        let r = send(&c, post("/login", "x", "", &same)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn an_idle_session_expires_and_drops_the_vault() {
        let tmp = tempfile::tempdir().unwrap();
        let c = console(tmp.path(), 300);
        let (cookie, _) = with_session(&c, tmp.path());
        assert_ne!(
            send(&c, get("/cases", Some(&cookie))).await.status(),
            StatusCode::SEE_OTHER,
            "alive (the page itself fails: the test vault is no HQ installation)"
        );
        // Activity keeps it alive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_ne!(
            send(&c, get("/cases", Some(&cookie))).await.status(),
            StatusCode::SEE_OTHER,
            "alive (the page itself fails: the test vault is no HQ installation)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.expire_idle();
        assert!(c.unlocked(), "200 ms after the last request");
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.expire_idle();
        assert!(!c.unlocked(), "dropped by the idle ticker");
        let r = send(&c, get("/cases", Some(&cookie))).await;
        assert_eq!(r.headers()["location"], "/login");
        // Without the ticker, the next request drops it.
        let (cookie, _) = with_session(&c, &tmp.path().join("2"));
        tokio::time::sleep(Duration::from_millis(350)).await;
        let r = send(&c, get("/cases", Some(&cookie))).await;
        assert_eq!(r.headers()["location"], "/login");
        assert!(!c.unlocked());
    }

    #[test]
    fn ranges_are_single_and_within_the_recording() {
        assert_eq!(parse_range("bytes=0-", 100), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=10-19", 100), Some(Ok((10, 19))));
        assert_eq!(parse_range("bytes=90-500", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-500", 100), Some(Ok((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=20-10", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=-0", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
    }

    #[tokio::test]
    async fn logs_name_route_patterns_never_ids_or_searched_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let c = console(tmp.path(), 60_000);
        let (cookie, _) = with_session(&c, tmp.path());
        let id = "0192f1c48a2b7c3d9e4f000000000abc";
        send(&c, get(&format!("/cases/{id}?lang=uz"), Some(&cookie))).await;
        send(&c, get("/cases?code=SECRETCODE", Some(&cookie))).await;
        send(&c, get(&format!("/attachments/{id}"), Some(&cookie))).await;
        let logged = c.logged().join("\n");
        assert!(logged.contains("console GET /cases/{id} "), "{logged}");
        assert!(logged.contains("console GET /cases "), "{logged}");
        assert!(
            logged.contains("console GET /attachments/{id} "),
            "{logged}"
        );
        for secret in [id, "SECRETCODE", "lang", "uz", &cookie] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
    }
}
