//! Challenge-response: SASL CRAM-MD5 (RFC 2195) and POP3 APOP (RFC 1939 §7).
//!
//! Both prove knowledge of the password without sending it: the server issues a string that
//! is never issued again, in RFC 1939's form `<process-ID.clock@hostname>`, and the client
//! answers with a keyed MD5 digest over it, in 32 lower-case hexadecimal digits. Checking the
//! answer needs the clear password, which only the directory has; the verification functions
//! are here so that whoever fetches it compares in constant time.
//!
//! The machines are sans-I/O, so the session supplies the unique part ([`ChallengeSeed`]):
//! the process id, a clock reading and the session id make it unique, and tests pass a fixed one.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::SaslError;
use crate::Secret;

/// What a connection's challenges are made from: the APOP timestamp is `<unique@host>`, the
/// n-th CRAM-MD5 challenge `<unique.n@host>`, so no two exchanges share a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeSeed {
    unique: String,
    host: String,
}

impl ChallengeSeed {
    /// A seed from a string unique to this connection (e.g. `pid.clock.session`) and the
    /// server's host name. Characters that would break the `<…@…>` form or the line it is
    /// sent in (blanks, controls, `<`, `>`, `@`, non-ASCII) are dropped.
    pub fn new(unique: &str, host: &str) -> Self {
        let clean = |s: &str, fallback: &str| {
            let kept: String = s.chars().filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@')).collect();
            if kept.is_empty() { fallback.to_owned() } else { kept }
        };
        ChallengeSeed { unique: clean(unique, "0"), host: clean(host, "localhost") }
    }

    /// The timestamp a POP3 greeting carries for APOP (RFC 1939 §7).
    pub fn apop_timestamp(&self) -> String {
        format!("<{}@{}>", self.unique, self.host)
    }

    /// The challenge of the connection's `serial`-th SASL exchange (RFC 2195 §2).
    pub fn cram_challenge(&self, serial: u32) -> String {
        format!("<{}.{serial}@{}>", self.unique, self.host)
    }
}

/// Reads a digest as sent: exactly 32 hexadecimal digits, returned lower-cased (RFC 2195 and
/// RFC 1939 ask for lower case; upper case is accepted, as other servers do).
pub fn parse_digest(hex: &[u8]) -> Result<Secret, SaslError> {
    if hex.len() != 32 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(SaslError::BadDigest);
    }
    Ok(Secret::new(hex.to_ascii_lowercase()))
}

/// Splits `user SP digest` (a CRAM-MD5 response, or the arguments of APOP) at the last space,
/// since the digest has none and a user name might.
pub fn parse_user_digest(message: &[u8]) -> Result<(String, Secret), SaslError> {
    let space = message.iter().rposition(|b| *b == b' ').ok_or(SaslError::BadDigest)?;
    let (user, digest) = (&message[..space], &message[space + 1..]);
    let digest = parse_digest(digest)?;
    let user = std::str::from_utf8(user).map_err(|_| SaslError::NotUtf8)?;
    if user.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    Ok((user.to_owned(), digest))
}

/// Whether `digest` (hex, as in the proof) is HMAC-MD5 keyed with `password` over `challenge`
/// (RFC 2195 §2). Compared in constant time.
pub fn verify_cram_md5(challenge: &[u8], password: &[u8], digest: &[u8]) -> bool {
    // HMAC takes keys of any length; the error cannot happen, and refusing is the safe answer.
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(password) else {
        return false;
    };
    Mac::update(&mut mac, challenge);
    matches_hex(&mac.finalize().into_bytes(), digest)
}

/// Whether `digest` (hex) is MD5 over the greeting's `timestamp` followed by `password`
/// (RFC 1939 §7). Compared in constant time.
pub fn verify_apop(timestamp: &[u8], password: &[u8], digest: &[u8]) -> bool {
    let mut md5 = Md5::new();
    Digest::update(&mut md5, timestamp);
    Digest::update(&mut md5, password);
    matches_hex(&md5.finalize(), digest)
}

fn matches_hex(expected: &[u8], digest: &[u8]) -> bool {
    let Some(given) = decode_hex(digest) else { return false };
    expected.ct_eq(&given).into()
}

fn decode_hex(hex: &[u8]) -> Option<[u8; 16]> {
    let nibble = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = [0u8; 16];
    if hex.len() != 32 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(*pair.first()?)? << 4) | nibble(*pair.get(1)?)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2195_test_vector() {
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        assert!(verify_cram_md5(challenge, b"tanstaaftanstaaf", b"b913a602c7eda7a495b4e6e7334d3890"));
        assert!(verify_cram_md5(challenge, b"tanstaaftanstaaf", b"B913A602C7EDA7A495B4E6E7334D3890"));
        assert!(!verify_cram_md5(challenge, b"tanstaaf", b"b913a602c7eda7a495b4e6e7334d3890"));
        assert!(!verify_cram_md5(challenge, b"tanstaaftanstaaf", b"b913a602c7eda7a495b4e6e7334d3891"));
        assert!(!verify_cram_md5(challenge, b"tanstaaftanstaaf", b"b913a602"));
        assert!(!verify_cram_md5(challenge, b"tanstaaftanstaaf", b"zz13a602c7eda7a495b4e6e7334d3890"));
        // The client's whole response, base64 as in the RFC's example.
        let response = crate::sasl::decode_response(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", 4096).unwrap();
        let (user, digest) = parse_user_digest(response.expose()).unwrap();
        assert_eq!(user, "tim");
        assert!(verify_cram_md5(challenge, b"tanstaaftanstaaf", digest.expose()));
    }

    #[test]
    fn rfc_1939_apop_example() {
        let timestamp = b"<1896.697170952@dbc.mtview.ca.us>";
        let (user, digest) = parse_user_digest(b"mrose c4c9334bac560ecc979e58001b3e22fb").unwrap();
        assert_eq!(user, "mrose");
        assert!(verify_apop(timestamp, b"tanstaaf", digest.expose()));
        assert!(!verify_apop(timestamp, b"tanstaaF", digest.expose()));
        assert!(!verify_apop(b"<1896.697170953@dbc.mtview.ca.us>", b"tanstaaf", digest.expose()));
    }

    #[test]
    fn malformed_answers() {
        assert_eq!(parse_user_digest(b"c4c9334bac560ecc979e58001b3e22fb"), Err(SaslError::BadDigest));
        assert_eq!(parse_user_digest(b" c4c9334bac560ecc979e58001b3e22fb"), Err(SaslError::EmptyUser));
        assert_eq!(parse_user_digest(b"joe c4c9334bac560ecc979e58001b3e22f"), Err(SaslError::BadDigest));
        assert_eq!(parse_user_digest(b"joe c4c9334bac560ecc979e58001b3e22fbb"), Err(SaslError::BadDigest));
        assert_eq!(parse_user_digest(b"joe c4c9334bac560ecc979e58001b3e22fg"), Err(SaslError::BadDigest));
        assert_eq!(parse_user_digest(b"\xff c4c9334bac560ecc979e58001b3e22fb"), Err(SaslError::NotUtf8));
        let (user, digest) = parse_user_digest(b"joe smith C4C9334BAC560ECC979E58001B3E22FB").unwrap();
        assert_eq!((user.as_str(), digest.expose()), ("joe smith", &b"c4c9334bac560ecc979e58001b3e22fb"[..]));
    }

    #[test]
    fn seeds_make_distinct_well_formed_challenges() {
        let seed = ChallengeSeed::new("4711.1700000000123.9", "mx.example.org");
        assert_eq!(seed.apop_timestamp(), "<4711.1700000000123.9@mx.example.org>");
        assert_eq!(seed.cram_challenge(1), "<4711.1700000000123.9.1@mx.example.org>");
        assert_ne!(seed.cram_challenge(1), seed.cram_challenge(2));
        let hostile = ChallengeSeed::new("1 2\r\n>", "a@b <c>\u{e9}");
        assert_eq!(hostile.apop_timestamp(), "<12@abc>");
        assert_eq!(ChallengeSeed::new("", "").apop_timestamp(), "<0@localhost>");
    }
}
