//! # amanat-transport
//!
//! The built-in implementation of the core's [`Transport`] trait: a blocking HTTP client (ureq)
//! with TLS by rustls on ring (no OpenSSL; Mozilla's roots from `webpki-roots`). It lives outside
//! amanat-core so the core never opens a socket and shells that bring their own HTTP stack
//! (OkHttp, URLSession) do not carry this one. Tests, the CLI and desktop use it.
//!
//! Rules it enforces on every request:
//! * `https://` anywhere; plain `http://` only to a loopback IP literal (`127.0.0.0/8`, `[::1]`),
//!   so a test relay on 127.0.0.1 works and nothing else goes out in clear. `localhost` is refused
//!   as well: it is a name, and names resolve where the resolver says.
//! * a timeout on the whole call (connect, send, receive), redirects never followed, answers
//!   larger than [`MAX_RESPONSE_BYTES`] refused;
//! * non-2xx statuses are returned as responses (the sync engine classifies them).

use amanat_core::sync::{Request, Response, Transport, TransportError};
use std::net::IpAddr;
use std::time::Duration;

/// Largest answer accepted: guards memory against a hostile or broken server (the sync engine asks
/// for pull pages of 100 envelopes, at most 256 KiB each).
pub const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Default limit for one whole call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Blocking HTTP transport (ureq + rustls/ring). Cheap to clone the agent inside; keep one per app.
pub struct HttpTransport {
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport").finish_non_exhaustive()
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl HttpTransport {
    /// A transport whose every call (connect to last byte) must finish within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
        }
    }
}

/// Checks the scheme rule; returns the URL to call.
pub fn check_url(base_url: &str, path: &str) -> Result<String, TransportError> {
    let (scheme, rest) = base_url
        .split_once("://")
        .ok_or(TransportError::InvalidUrl)?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || !path.starts_with('/') {
        return Err(TransportError::InvalidUrl);
    }
    match scheme {
        "https" => {}
        "http" => {
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            };
            let ip: IpAddr = host.parse().map_err(|_| TransportError::InsecureUrl)?;
            if !ip.is_loopback() {
                return Err(TransportError::InsecureUrl);
            }
        }
        _ => return Err(TransportError::InvalidUrl),
    }
    Ok(format!("{}{}", base_url.trim_end_matches('/'), path))
}

fn map_error(e: ureq::Error) -> TransportError {
    match e {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportError::Connect,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
            TransportError::Tls
        }
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::NotConnected => TransportError::Connect,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                TransportError::Timeout
            }
            _ => TransportError::Io,
        },
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => TransportError::InvalidUrl,
        ureq::Error::Protocol(_) | ureq::Error::BodyExceedsLimit(_) => TransportError::Protocol,
        _ => TransportError::Other,
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let url = check_url(&request.base_url, &request.path)?;
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http_request = builder
            .body(request.body.clone())
            .map_err(|_| TransportError::InvalidUrl)?;
        let mut response = self.agent.run(http_request).map_err(map_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(map_error)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_ip_literals() {
        for ok in [
            "http://127.0.0.1:8443",
            "http://127.9.9.9",
            "http://[::1]:80",
            "https://relay.example.org",
            "https://10.0.0.5:8443",
        ] {
            assert!(check_url(ok, "/v1/envelopes").is_ok(), "{ok}");
        }
        for insecure in [
            "http://relay.example.org",
            "http://10.0.0.5:8443",
            "http://localhost:8443",
            "http://[2001:db8::1]:80",
            "http://0.0.0.0:80",
        ] {
            assert_eq!(
                check_url(insecure, "/v1/envelopes"),
                Err(TransportError::InsecureUrl),
                "{insecure}"
            );
        }
        for invalid in ["ftp://127.0.0.1", "127.0.0.1:80", "http://", "https://u@h"] {
            assert_eq!(
                check_url(invalid, "/x"),
                Err(TransportError::InvalidUrl),
                "{invalid}"
            );
        }
    }

    #[test]
    fn refused_url_sends_nothing_and_is_typed() {
        let t = HttpTransport::new(Duration::from_secs(2));
        let req = Request {
            method: "GET".into(),
            base_url: "http://192.0.2.1:9".into(),
            path: "/healthz".into(),
            headers: vec![],
            body: vec![],
        };
        // 192.0.2.1 is TEST-NET-1: were the rule not checked first, this would try to connect.
        assert_eq!(t.send(&req), Err(TransportError::InsecureUrl));
    }

    #[test]
    fn closed_port_is_a_connect_error_within_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = HttpTransport::new(Duration::from_secs(5));
        let req = Request {
            method: "GET".into(),
            base_url: format!("http://127.0.0.1:{port}"),
            path: "/healthz".into(),
            headers: vec![],
            body: vec![],
        };
        let started = std::time::Instant::now();
        let err = t.send(&req).unwrap_err();
        assert!(
            matches!(err, TransportError::Connect | TransportError::Io),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn silent_server_times_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(conn);
        });
        let t = HttpTransport::new(Duration::from_millis(500));
        let req = Request {
            method: "GET".into(),
            base_url: format!("http://{addr}"),
            path: "/healthz".into(),
            headers: vec![],
            body: vec![],
        };
        assert_eq!(t.send(&req), Err(TransportError::Timeout));
        holder.join().unwrap();
    }
}
