//! SASL mechanisms a proxy has to understand: PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login), decoded from what the client sends and encoded for the store.
//!
//! Only the wire forms live here; the IMAP and POP3 machines decide when a response is due.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Secret;

/// Why a SASL exchange could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The response was not valid base64.
    Base64,
    /// PLAIN without the two NUL separators.
    Malformed,
    /// A name that is not UTF-8.
    NotUtf8,
    /// An empty authentication identity.
    EmptyUser,
    /// The client asked to act as another user (authzid ≠ authcid), which a proxy does not grant.
    AuthzidMismatch,
    /// The mechanism is known but not offered on this connection (no TLS yet, no certificate).
    NotOffered,
    /// A response longer than [`MAX_RESPONSE`].
    TooLong,
}

impl SaslError {
    /// Short text for the client.
    pub fn text(&self) -> &'static str {
        match self {
            SaslError::Base64 => "Invalid base64 data",
            SaslError::Malformed => "Malformed SASL PLAIN response",
            SaslError::NotUtf8 => "User name is not UTF-8",
            SaslError::EmptyUser => "Empty user name",
            SaslError::AuthzidMismatch => "Acting as another user is not permitted",
            SaslError::NotOffered => "Unsupported authentication mechanism",
            SaslError::TooLong => "SASL response too long",
        }
    }
}

/// SASL mechanisms the front ends accept from clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616.
    Plain,
    /// The obsolete but widespread LOGIN mechanism.
    Login,
    /// RFC 4422 appendix A: authentication by the TLS client certificate.
    External,
}

impl SaslMechanism {
    /// Parses a mechanism name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Self> {
        if name.eq_ignore_ascii_case(b"PLAIN") {
            Some(SaslMechanism::Plain)
        } else if name.eq_ignore_ascii_case(b"LOGIN") {
            Some(SaslMechanism::Login)
        } else if name.eq_ignore_ascii_case(b"EXTERNAL") {
            Some(SaslMechanism::External)
        } else {
            None
        }
    }
}

/// Base64 challenge `Username:` sent by servers for SASL LOGIN.
pub const LOGIN_USER_CHALLENGE: &str = "VXNlcm5hbWU6";
/// Base64 challenge `Password:` sent by servers for SASL LOGIN.
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

/// Longest base64 client response accepted: PLAIN's three fields of at most 255 octets each
/// (RFC 4616 §2) are 1,024 characters of base64; the rest is headroom.
pub const MAX_RESPONSE: usize = 4096;

/// Decodes one base64 client response. `=` stands for an empty response (RFC 4959, RFC 5034).
pub fn decode_response(line: &[u8]) -> Result<Secret, SaslError> {
    let line = line.trim_ascii();
    if line.len() > MAX_RESPONSE {
        return Err(SaslError::TooLong);
    }
    if line == b"=" {
        return Ok(Secret::new(Vec::new()));
    }
    STANDARD.decode(line).map(Secret::new).map_err(|_| SaslError::Base64)
}

/// Encodes bytes as base64 for the wire.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A decoded PLAIN response: the authentication identity and the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainResponse {
    /// Authentication identity (the login name).
    pub authcid: String,
    /// The password.
    pub password: Secret,
}

/// Splits a decoded PLAIN message `authzid NUL authcid NUL passwd`.
///
/// An authzid equal to the authcid is accepted (some clients always send one); any other
/// non-empty authzid is refused, because the client would be asking the proxy for rights
/// only a store administrator has.
pub fn parse_plain(message: &[u8]) -> Result<PlainResponse, SaslError> {
    let mut parts = message.splitn(3, |b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SaslError::Malformed);
    };
    let authzid = std::str::from_utf8(authzid).map_err(|_| SaslError::NotUtf8)?;
    let authcid = std::str::from_utf8(authcid).map_err(|_| SaslError::NotUtf8)?;
    if authcid.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok(PlainResponse { authcid: authcid.to_owned(), password: Secret::new(password) })
}

/// Builds the PLAIN message for a store: `authzid NUL authcid NUL password`, base64-encoded.
pub fn encode_plain(authzid: &str, authcid: &str, password: &Secret) -> Secret {
    let mut raw =
        zeroize::Zeroizing::new(Vec::with_capacity(authzid.len() + authcid.len() + password.expose().len() + 2));
    raw.extend_from_slice(authzid.as_bytes());
    raw.push(0);
    raw.extend_from_slice(authcid.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.expose());
    Secret::new(STANDARD.encode(&raw[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let blob = encode_plain("", "joe", &Secret::new("pw d"));
        let decoded = decode_response(blob.expose()).unwrap();
        let plain = parse_plain(decoded.expose()).unwrap();
        assert_eq!(plain.authcid, "joe");
        assert_eq!(plain.password.expose(), b"pw d");
    }

    #[test]
    fn plain_accepts_same_authzid_refuses_other() {
        assert!(parse_plain(b"joe\0joe\0pw").is_ok());
        assert_eq!(parse_plain(b"admin\0joe\0pw"), Err(SaslError::AuthzidMismatch));
    }

    #[test]
    fn plain_rejects_malformed() {
        assert_eq!(parse_plain(b"joe\0pw"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::EmptyUser));
        assert_eq!(parse_plain(b"\0\xff\0pw"), Err(SaslError::NotUtf8));
    }

    #[test]
    fn empty_response_and_bad_base64() {
        assert!(decode_response(b"=").unwrap().is_empty());
        assert_eq!(decode_response(b"!!!"), Err(SaslError::Base64));
        assert_eq!(decode_response(&[b'A'; MAX_RESPONSE + 4]), Err(SaslError::TooLong));
    }

    #[test]
    fn login_challenges_decode_to_prompts() {
        assert_eq!(decode_response(LOGIN_USER_CHALLENGE.as_bytes()).unwrap().expose(), b"Username:");
        assert_eq!(decode_response(LOGIN_PASSWORD_CHALLENGE.as_bytes()).unwrap().expose(), b"Password:");
    }
}
