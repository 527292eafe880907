//! Bearer tokens: OAUTHBEARER (RFC 7628) and Google's XOAUTH2, read from clients and written
//! for stores.
//!
//! ```text
//! OAUTHBEARER: gs2-header ^A *(key "=" value ^A) ^A     gs2-header = ("n" / "y") "," ["a=" saslname] ","
//!              n,a=joe@example.org,^Ahost=mx.example.org^Aport=143^Aauth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==^A^A
//! XOAUTH2:     user=joe@example.org^Aauth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg^A^A
//! ```
//!
//! A proxy cannot check a token, so it only needs the user (to find the store) and the token
//! (for the store). Channel binding (`p=`) is refused: the TLS channel the client bound to ends
//! at mailmux. On failure the server sends a JSON error report as a challenge and the client
//! answers with a dummy response (RFC 7628 §3.2.3: `^A`; XOAUTH2: empty), after which the
//! server fails the exchange ([`error_report`], [`error_answer`]).

use super::{SaslError, is_b64token};
use crate::Secret;
use crate::login::BearerMechanism;

/// The user and token of a bearer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerResponse {
    /// The user named (`a=` / `user=`).
    pub user: String,
    /// The token, without the `Bearer` scheme.
    pub token: Secret,
}

/// `kvsep`.
const SEP: u8 = 0x01;

/// Reads a decoded client message of `mechanism`.
pub fn parse(mechanism: BearerMechanism, message: &[u8]) -> Result<BearerResponse, SaslError> {
    match mechanism {
        BearerMechanism::OAuthBearer => parse_oauthbearer(message),
        BearerMechanism::XOAuth2 => parse_xoauth2(message),
    }
}

/// Reads an OAUTHBEARER client message (RFC 7628 §3.1). The user is the GS2 authzid.
pub fn parse_oauthbearer(message: &[u8]) -> Result<BearerResponse, SaslError> {
    let bad = SaslError::BadBearerMessage;
    let comma = message.iter().position(|b| *b == b',').ok_or(bad)?;
    match &message[..comma] {
        b"n" | b"y" => {}
        flag if flag.starts_with(b"p=") => return Err(SaslError::ChannelBinding),
        _ => return Err(bad),
    }
    let rest = &message[comma + 1..];
    let comma = rest.iter().position(|b| *b == b',').ok_or(bad)?;
    let user = match &rest[..comma] {
        b"" => String::new(),
        authzid => unescape_saslname(authzid.strip_prefix(b"a=").ok_or(bad)?)?,
    };
    let pairs = rest[comma + 1..].strip_prefix(&[SEP]).ok_or(bad)?;
    let token = find_token(pairs, None)?.1;
    if user.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    Ok(BearerResponse { user, token })
}

/// Reads an XOAUTH2 client message.
pub fn parse_xoauth2(message: &[u8]) -> Result<BearerResponse, SaslError> {
    let (user, token) = find_token(message, Some(b"user"))?;
    let user = user.unwrap_or_default();
    if user.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    Ok(BearerResponse { user, token })
}

/// Reads `*(key "=" value ^A) ^A`: the `auth` pair's token and, if `user_key` is given, that
/// pair's value. Other keys (`host`, `port`, extensions) are allowed and ignored; a key given
/// twice, a pair without `=`, or bytes after the final `^A` are refused.
fn find_token(pairs: &[u8], user_key: Option<&[u8]>) -> Result<(Option<String>, Secret), SaslError> {
    let bad = SaslError::BadBearerMessage;
    // Every pair ends with ^A and one more ^A ends the list: the split's last two are empty.
    let body = pairs.strip_suffix(&[SEP, SEP]).filter(|body| !body.is_empty()).ok_or(bad)?;
    let (mut user, mut token) = (None, None);
    for pair in body.split(|b| *b == SEP) {
        let eq = pair.iter().position(|b| *b == b'=').ok_or(bad)?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) || !value.iter().all(|b| value_byte(*b)) {
            return Err(bad);
        }
        if key == b"auth" {
            if token.is_some() {
                return Err(bad);
            }
            token = Some(bearer_credentials(value)?);
        } else if Some(key) == user_key {
            if user.is_some() {
                return Err(bad);
            }
            user = Some(std::str::from_utf8(value).map_err(|_| SaslError::NotUtf8)?.to_owned());
        }
    }
    Ok((user, token.ok_or(bad)?))
}

/// RFC 7628 `value = *(VCHAR / SP / HTAB / CR / LF)`; 8-bit bytes are let through for
/// XOAUTH2's UTF-8 user names (checked as UTF-8 where a name is read).
fn value_byte(b: u8) -> bool {
    (b >= 0x20 || matches!(b, b'\t' | b'\r' | b'\n')) && b != 0x7f
}

/// `auth` value: `Bearer` (any case, RFC 6750 §2.1) 1*SP b64token.
fn bearer_credentials(value: &[u8]) -> Result<Secret, SaslError> {
    let bad = SaslError::BadBearerMessage;
    let scheme = value.get(..6).ok_or(bad)?;
    let rest = value.get(6..).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case(b"Bearer") || rest.first() != Some(&b' ') {
        return Err(bad);
    }
    let token = rest.trim_ascii_start();
    if !is_b64token(token) {
        return Err(bad);
    }
    Ok(Secret::new(token))
}

/// RFC 5801 `saslname`: `,` is written `=2C` and `=` `=3D`; nothing else may follow `=`.
fn unescape_saslname(name: &[u8]) -> Result<String, SaslError> {
    let mut out = Vec::with_capacity(name.len());
    let mut rest = name;
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'=' => {
                let escaped = match tail.get(..2) {
                    Some(b"2C" | b"2c") => b',',
                    Some(b"3D" | b"3d") => b'=',
                    _ => return Err(SaslError::BadBearerMessage),
                };
                out.push(escaped);
                rest = tail.get(2..).unwrap_or_default();
            }
            b',' | 0 => return Err(SaslError::BadBearerMessage),
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).map_err(|_| SaslError::NotUtf8)
}

/// The decoded message that presents `token` as `user` in `mechanism`.
pub fn message(mechanism: BearerMechanism, user: &str, token: &Secret) -> Secret {
    let mut m = Secret::new(Vec::with_capacity(user.len() + token.len() + 32));
    match mechanism {
        BearerMechanism::OAuthBearer => {
            m.extend_from_slice(b"n,a=");
            for b in user.bytes() {
                match b {
                    b',' => m.extend_from_slice(b"=2C"),
                    b'=' => m.extend_from_slice(b"=3D"),
                    _ => m.extend_from_slice(&[b]),
                }
            }
            m.extend_from_slice(b",\x01auth=Bearer ");
        }
        BearerMechanism::XOAuth2 => {
            m.extend_from_slice(b"user=");
            m.extend_from_slice(user.as_bytes());
            m.extend_from_slice(b"\x01auth=Bearer ");
        }
    }
    m.extend_from_slice(token.expose());
    m.extend_from_slice(b"\x01\x01");
    m
}

/// [`message`], base64-encoded for the wire.
pub fn encode(mechanism: BearerMechanism, user: &str, token: &Secret) -> Secret {
    super::encode_secret(message(mechanism, user, token).expose())
}

/// The error report a server sends as its last challenge when it refuses a token (RFC 7628
/// §3.2.2; Google's XOAUTH2 sends the same kind of JSON).
pub fn error_report(mechanism: BearerMechanism) -> &'static [u8] {
    match mechanism {
        BearerMechanism::OAuthBearer => br#"{"status":"invalid_token","schemes":"bearer"}"#,
        BearerMechanism::XOAuth2 => br#"{"status":"401","schemes":"bearer"}"#,
    }
}

/// What a client sends after an error report (decoded): `^A` for OAUTHBEARER (RFC 7628
/// §3.2.3), an empty response for XOAUTH2 (Google's documentation).
pub fn error_answer(mechanism: BearerMechanism) -> &'static [u8] {
    match mechanism {
        BearerMechanism::OAuthBearer => &[SEP],
        BearerMechanism::XOAuth2 => b"",
    }
}

/// A store's error report (the base64 text of its challenge), decoded for the log and cut
/// short, since it is the store's text; what does not decode is shown as it came.
pub fn describe_report(challenge: &str) -> String {
    const SHOWN: usize = 200;
    let decoded = super::decode_response(challenge.as_bytes(), super::MAX_RESPONSE)
        .map(|r| String::from_utf8_lossy(r.expose()).into_owned())
        .unwrap_or_else(|_| challenge.to_owned());
    let mut text: String = decoded.chars().filter(|c| !c.is_control()).take(SHOWN).collect();
    if decoded.chars().filter(|c| !c.is_control()).nth(SHOWN).is_some() {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";

    #[test]
    fn rfc_7628_example() {
        // RFC 7628 §4.1, with its host and port pairs.
        let m = b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
        let r = parse_oauthbearer(m).unwrap();
        assert_eq!((r.user.as_str(), r.token.expose()), ("user@example.com", TOKEN.as_bytes()));
        // The base64 of the RFC's §4.1 example decodes to the same message.
        let wire = "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
        assert_eq!(crate::sasl::decode_response(wire.as_bytes(), 16384).unwrap().expose(), &m[..]);
    }

    #[test]
    fn oauthbearer_forms() {
        let ok = |m: &[u8]| parse_oauthbearer(m).map(|r| (r.user, r.token.expose().to_vec()));
        assert_eq!(ok(b"y,a=joe,\x01auth=bearer   abc\x01\x01"), Ok(("joe".into(), b"abc".to_vec())));
        assert_eq!(ok(b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01").unwrap().0, "a,b=c");
        assert_eq!(ok(b"n,,\x01auth=Bearer t\x01\x01"), Err(SaslError::EmptyUser));
        assert_eq!(ok(b"p=tls-unique,a=joe,\x01auth=Bearer t\x01\x01"), Err(SaslError::ChannelBinding));
        for bad in [
            &b""[..],
            b"n,a=joe,",
            b"n,a=joe,\x01\x01",
            b"n,a=joe,\x01auth=Bearer t\x01",
            b"n,a=joe,\x01auth=Bearer t\x01\x01x",
            b"n,a=joe,\x01auth=Basic t\x01\x01",
            b"n,a=joe,\x01auth=Bearer\x01\x01",
            b"n,a=joe,\x01auth=Bearert\x01\x01",
            b"n,a=joe,\x01auth=Bearer t t\x01\x01",
            b"n,a=joe,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
            b"n,a=joe,\x01host\x01auth=Bearer t\x01\x01",
            b"n,a=joe,\x01h0st=x\x01auth=Bearer t\x01\x01",
            b"n,a=jo=65,\x01auth=Bearer t\x01\x01",
            b"n,u=joe,\x01auth=Bearer t\x01\x01",
            b"x,a=joe,\x01auth=Bearer t\x01\x01",
            b"n,a=joe,\x01host=a\x00b\x01auth=Bearer t\x01\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_err(), "{:?}", bad.escape_ascii().to_string());
        }
        assert_eq!(parse_oauthbearer(b"n,a=\xff,\x01auth=Bearer t\x01\x01").err(), Some(SaslError::NotUtf8));
    }

    #[test]
    fn xoauth2_forms() {
        let r = parse_xoauth2(
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01",
        )
        .unwrap();
        assert_eq!(r.user, "someuser@example.com");
        assert_eq!(r.token.expose(), b"ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
        assert_eq!(parse_xoauth2(b"auth=Bearer t\x01\x01").err(), Some(SaslError::EmptyUser));
        assert_eq!(parse_xoauth2(b"user=j\xc3\xb6e\x01auth=Bearer t\x01\x01").unwrap().user, "j\u{f6}e");
        assert!(parse_xoauth2(b"user=joe\x01user=ann\x01auth=Bearer t\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=joe\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=joe\x01auth=Bearer t").is_err());
    }

    #[test]
    fn what_is_written_reads_back() {
        for mechanism in [BearerMechanism::OAuthBearer, BearerMechanism::XOAuth2] {
            for user in ["joe@example.org", "a,b=c", "j\u{f6}e"] {
                let token = Secret::new(TOKEN);
                let m = message(mechanism, user, &token);
                let r = parse(mechanism, m.expose()).unwrap();
                assert_eq!((r.user.as_str(), &r.token), (user, &token), "{mechanism:?}");
            }
        }
        assert_eq!(
            encode(BearerMechanism::XOAuth2, "u", &Secret::new("t")).expose(),
            crate::sasl::encode(b"user=u\x01auth=Bearer t\x01\x01").as_bytes()
        );
        assert_eq!(crate::sasl::encode(error_answer(BearerMechanism::OAuthBearer)), "AQ==");
    }

    #[test]
    fn store_reports_are_shown_decoded_one_line_and_short() {
        assert_eq!(describe_report("eyJzdGF0dXMiOiI0MDEifQ=="), r#"{"status":"401"}"#);
        assert_eq!(describe_report("not base64!"), "not base64!");
        assert_eq!(describe_report(&crate::sasl::encode(b"a\r\nb")), "ab");
        let long = describe_report(&"x".repeat(1000));
        assert_eq!(long.chars().count(), 201);
    }
}
