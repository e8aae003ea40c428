//! The review console's security pieces: where it may listen, random tokens compared in constant
//! time, the cookie, the checks every POST passes (Origin, `Sec-Fetch-Site`, CSRF token) and the
//! headers every response carries.

use axum::http::{HeaderMap, HeaderValue};
use std::net::SocketAddr;

/// Name of the session cookie.
pub const COOKIE: &str = "amanat_console";

/// The Content-Security-Policy of every response: nothing from anywhere but the console itself,
/// no inline script or style, no framing, forms post only to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       media-src 'self'; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Refuses a non-loopback address unless the operator says TLS terminates in front of it.
pub fn check_listen(addr: &SocketAddr, behind_tls_proxy: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || behind_tls_proxy {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve the console on {} (not a loopback address): the pages carry \
             decrypted testimony. Use 127.0.0.1, or --behind-tls-proxy when a TLS proxy on this \
             machine terminates connections in front of it",
            addr.ip()
        ))
    }
}

/// A random 256-bit token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

impl Token {
    /// 32 bytes from the system's random source.
    pub fn random() -> Result<Token, String> {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| "no random source".to_owned())?;
        Ok(Token(b))
    }

    /// Hex text (in the cookie or the form).
    pub fn hex(&self) -> String {
        amanat_protocol::to_hex(&self.0)
    }

    /// Compares with `text` in constant time (over the token's length; a wrong length is refused
    /// at once, which reveals only the length, which is public).
    pub fn matches(&self, text: &str) -> bool {
        use subtle::ConstantTimeEq;
        let given = text.as_bytes();
        let ours = self.hex();
        given.len() == ours.len() && bool::from(ours.as_bytes().ct_eq(given))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The session cookie's value from the request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value for a session (`Secure` when TLS terminates in front).
pub fn set_cookie(token: &Token, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
        token.hex(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a POST comes from the console's own pages. `Sec-Fetch-Site`, which pages cannot set,
/// must say `same-origin` when the browser sends it; `Origin` must be the console's own — or
/// `null` together with `Sec-Fetch-Site: same-origin`, since under `Referrer-Policy: no-referrer`
/// Chromium sends `Origin: null` even for the page's own forms. A request with neither is refused.
pub fn same_origin_post(headers: &HeaderMap, expected_origin: &str) -> bool {
    let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if site.is_some_and(|s| s != b"same-origin") {
        return false;
    }
    match headers
        .get(axum::http::header::ORIGIN)
        .map(|v| v.as_bytes())
    {
        Some(o) if o == expected_origin.as_bytes() => true,
        Some(b"null") => site == Some(b"same-origin"),
        _ => false,
    }
}

/// Adds the headers every response carries.
pub fn harden(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "cache-control", "no-store");
    set(headers, "pragma", "no-cache");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    set(
        headers,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_loopback_unless_behind_a_tls_proxy() {
        for ok in ["127.0.0.1:8080", "[::1]:9000", "127.0.0.2:1"] {
            assert!(check_listen(&ok.parse().unwrap(), false).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:8080", "192.168.1.10:80", "[::]:80", "10.0.0.1:1"] {
            let e = check_listen(&bad.parse().unwrap(), false).unwrap_err();
            assert!(e.contains("--behind-tls-proxy"), "{e}");
            assert!(check_listen(&bad.parse().unwrap(), true).is_ok(), "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_match_only_themselves() {
        let a = Token::random().unwrap();
        let b = Token::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.hex().len(), 64);
        assert!(a.matches(&a.hex()));
        assert!(!a.matches(&b.hex()));
        assert!(!a.matches(&a.hex()[..63]));
        assert!(!a.matches(""));
        let mut flipped = a.hex().into_bytes();
        flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
        assert!(!a.matches(std::str::from_utf8(&flipped).unwrap()));
        assert_eq!(format!("{a:?}"), "Token(<redacted>)");
    }

    #[test]
    fn a_post_passes_only_from_the_consoles_own_origin() {
        let origin = "http://127.0.0.1:5000";
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(same_origin_post(
            &h(&[("origin", origin), ("sec-fetch-site", "same-origin")]),
            origin
        ));
        assert!(same_origin_post(&h(&[("origin", origin)]), origin));
        assert!(!same_origin_post(&h(&[]), origin));
        assert!(!same_origin_post(
            &h(&[("origin", "http://127.0.0.1:5001")]),
            origin
        ));
        assert!(!same_origin_post(
            &h(&[("origin", origin), ("sec-fetch-site", "same-site")]),
            origin
        ));
        assert!(!same_origin_post(
            &h(&[("origin", origin), ("sec-fetch-site", "cross-site")]),
            origin
        ));
        assert!(!same_origin_post(&h(&[("origin", "null")]), origin));
        assert!(same_origin_post(
            &h(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            origin
        ));
        assert!(!same_origin_post(
            &h(&[("origin", "null"), ("sec-fetch-site", "same-site")]),
            origin
        ));
        assert!(!same_origin_post(
            &h(&[("sec-fetch-site", "same-origin")]),
            origin
        ));
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let t = Token::random().unwrap();
        let c = set_cookie(&t, false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie(&t, true).ends_with("; Secure"));
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("other=1; {COOKIE}={}", t.hex())).unwrap(),
        );
        assert_eq!(session_cookie(&h), Some(t.hex()));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
