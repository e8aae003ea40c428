//! Strict parsers for every field the relay reads from a request, and the OpenAPI patterns that
//! say the same thing (kept side by side so the document cannot drift from the check).
//!
//! Rule: one value has exactly one accepted text. A signed field must be read back as the very
//! text that was signed (`+123` or `0123` would be verified against `123`), and a value used as a
//! key (nonce, envelope id, blob address) must not have two spellings. So numbers are plain ASCII
//! decimals without sign or leading zero, hex is lowercase, and nothing is percent-decoded.

/// Largest integer any field accepts: `i64::MAX`, what PostgreSQL `BIGINT` and JSON clients hold.
pub const MAX_INTEGER: u64 = i64::MAX as u64;

/// OpenAPI pattern of a canonical decimal (what [`decimal`] accepts, before the range check).
pub const DECIMAL_PATTERN: &str = "^(0|[1-9][0-9]{0,18})$";
/// OpenAPI pattern of a device id.
pub const DEVICE_ID_PATTERN: &str = "^[0-9a-f]{32}$";
/// OpenAPI pattern of a blob address (lowercase hex SHA-256).
pub const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";
/// OpenAPI pattern of a request nonce.
pub const NONCE_PATTERN: &str = "^[0-9a-f]{16,64}$";
/// OpenAPI pattern of an Ed25519 signature (hex).
pub const SIGNATURE_PATTERN: &str = "^[0-9a-f]{128}$";
/// OpenAPI pattern of an Ed25519 public key (hex).
pub const PUBLIC_KEY_PATTERN: &str = "^[0-9a-f]{64}$";
/// OpenAPI pattern of an enrollment code id (128 bits, hex).
pub const CODE_ID_PATTERN: &str = "^[0-9a-f]{32}$";
/// OpenAPI pattern of an organisation fingerprint (SHA-256, hex).
pub const FINGERPRINT_PATTERN: &str = "^[0-9a-f]{64}$";
/// OpenAPI pattern of an envelope id: a lowercase UUID of version 7 and RFC 9562 variant.
pub const UUID_V7_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";
/// OpenAPI pattern of a recipient: a device id or `hq`.
pub const RECIPIENT_PATTERN: &str = "^(hq|[0-9a-f]{32})$";
/// OpenAPI pattern of canonical standard base64 with padding (unused trailing bits zero).
pub const BASE64_PATTERN: &str =
    "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";
/// OpenAPI pattern of an age X25519 recipient (bech32, lowercase).
pub const AGE_RECIPIENT_PATTERN: &str = "^age1[02-9ac-hj-np-z]{58}$";

/// Most recipients one envelope may list.
pub const MAX_RECIPIENTS: usize = 64;

/// A canonical decimal: ASCII digits only, no sign, no leading zero unless `0`, at most
/// [`MAX_INTEGER`]. `None` for anything else.
pub fn decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= MAX_INTEGER)
}

/// Lowercase hex of a length in `min..=max`.
pub fn is_lower_hex(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A device id (hex of 16 bytes).
pub fn is_device_id(s: &str) -> bool {
    is_lower_hex(s, 32, 32)
}

/// A blob address.
pub fn is_sha256(s: &str) -> bool {
    is_lower_hex(s, 64, 64)
}

/// A request nonce.
pub fn is_nonce(s: &str) -> bool {
    is_lower_hex(s, 16, 64)
}

/// An Ed25519 signature in hex.
pub fn is_signature(s: &str) -> bool {
    is_lower_hex(s, 128, 128)
}

/// A UUID in lowercase text form with version 7 and the RFC 9562 variant (the client's
/// time-ordered envelope id).
pub fn is_uuid_v7(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
        && b[14] == b'7'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// A recipient of an envelope: a device id or [`amanat_protocol::HQ_RECIPIENT`].
pub fn is_recipient(s: &str) -> bool {
    s == amanat_protocol::HQ_RECIPIENT || is_device_id(s)
}

/// An age X25519 recipient in its one canonical (lowercase) spelling.
pub fn is_age_recipient(s: &str) -> bool {
    s.len() == 62
        && s.starts_with("age1")
        && s.parse::<age::x25519::Recipient>()
            .is_ok_and(|r| r.to_string() == s)
}

/// Why a query string was refused (the handler answers `malformed_query` for all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedQuery;

/// Parses a raw query string (as sent, not percent-decoded) made only of `name=decimal` pairs
/// with names from `allowed`, each at most once. Returns the values in the order of `allowed`.
pub fn query_numbers<const N: usize>(
    raw: Option<&str>,
    allowed: [&str; N],
) -> Result<[Option<u64>; N], MalformedQuery> {
    let mut out = [None; N];
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return Ok(out);
    };
    for pair in raw.split('&') {
        let (name, value) = pair.split_once('=').ok_or(MalformedQuery)?;
        let i = allowed
            .iter()
            .position(|a| *a == name)
            .ok_or(MalformedQuery)?;
        if out[i].is_some() {
            return Err(MalformedQuery);
        }
        out[i] = Some(decimal(value).ok_or(MalformedQuery)?);
    }
    Ok(out)
}

/// A `Range` header position: RFC 9110 `1*DIGIT` (leading zeros allowed there), bounded.
fn range_number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= MAX_INTEGER)
}

/// A single byte range as sent (`bytes=a-b`, `bytes=a-`, `bytes=-n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` or `bytes=a-` (`None` end: to the last byte).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// Parses a `Range` header value; `None` if it is not exactly one well-formed byte range.
pub fn byte_range(s: &str) -> Option<ByteRange> {
    let spec = s.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    match (a, b) {
        ("", n) => Some(ByteRange::Suffix(range_number(n)?)),
        (a, "") => Some(ByteRange::From(range_number(a)?, None)),
        (a, b) => Some(ByteRange::From(range_number(a)?, Some(range_number(b)?))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimals_have_one_spelling() {
        for ok in ["0", "1", "10", "1700000000000", "9223372036854775807"] {
            assert_eq!(decimal(ok).map(|v| v.to_string()).as_deref(), Some(ok));
        }
        for bad in [
            "",
            "+1",
            "-1",
            "01",
            "00",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "0x1",
            "١",
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999",
        ] {
            assert_eq!(decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn queries_are_strict() {
        let q = |s| query_numbers(Some(s), ["after", "limit"]);
        assert_eq!(q("after=5&limit=2"), Ok([Some(5), Some(2)]));
        assert_eq!(q("limit=2"), Ok([None, Some(2)]));
        assert_eq!(query_numbers(None, ["after"]), Ok([None]));
        assert_eq!(query_numbers(Some(""), ["after"]), Ok([None]));
        for bad in [
            "after=1&after=1",
            "after",
            "after=",
            "x=1",
            "after=1&",
            "&after=1",
            "after=%31",
            "after=1;limit=1",
        ] {
            assert_eq!(q(bad), Err(MalformedQuery), "{bad}");
        }
    }

    #[test]
    fn ranges_are_strict() {
        assert_eq!(byte_range("bytes=0-1"), Some(ByteRange::From(0, Some(1))));
        assert_eq!(byte_range("bytes=007-"), Some(ByteRange::From(7, None)));
        assert_eq!(byte_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        for bad in [
            "bytes=+0-1",
            "bytes= 0-1",
            "bytes=0-1,2-3",
            "bytes=-",
            "items=0-1",
            "bytes=0x1-",
        ] {
            assert_eq!(byte_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn uuid_v7_needs_version_and_variant() {
        assert!(is_uuid_v7("01890a5d-ac96-774b-bcce-b302099a8057"));
        assert!(
            !is_uuid_v7("01890a5d-ac96-774b-7cce-b302099a8057"),
            "variant"
        );
        assert!(
            !is_uuid_v7("01890a5d-ac96-474b-bcce-b302099a8057"),
            "version"
        );
        assert!(
            !is_uuid_v7("01890A5D-AC96-774B-BCCE-B302099A8057"),
            "uppercase"
        );
    }
}
