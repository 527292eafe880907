//! The password mechanisms, PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), and
//! EXTERNAL (RFC 4422 appendix A), which carries only an authorization identity.

use super::SaslError;
use crate::Secret;

/// The prompt LOGIN sends before the user name.
pub const LOGIN_USER_PROMPT: &[u8] = b"Username:";
/// The prompt LOGIN sends before the password.
pub const LOGIN_PASSWORD_PROMPT: &[u8] = b"Password:";

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

/// A name sent as a whole response (LOGIN's user, EXTERNAL's authzid): UTF-8.
pub(super) fn parse_name(response: &Secret) -> Result<String, SaslError> {
    std::str::from_utf8(response.expose()).map(str::to_owned).map_err(|_| SaslError::NotUtf8)
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
    super::encode_secret(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::decode_response;

    #[test]
    fn plain_round_trip() {
        let blob = encode_plain("", "joe", &Secret::new("pw d"));
        let decoded = decode_response(blob.expose(), 4096).unwrap();
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
    fn login_prompts_encode_as_servers_send_them() {
        assert_eq!(crate::sasl::encode(LOGIN_USER_PROMPT), "VXNlcm5hbWU6");
        assert_eq!(crate::sasl::encode(LOGIN_PASSWORD_PROMPT), "UGFzc3dvcmQ6");
    }
}
