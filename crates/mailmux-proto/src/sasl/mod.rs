//! SASL (RFC 4422) as a server sees it, written once for IMAP `AUTHENTICATE` (RFC 9051 §6.2.2,
//! RFC 4959 SASL-IR) and POP3 `AUTH` (RFC 5034).
//!
//! | mechanism | spec | what the client sends | cap (base64) | proof |
//! | --- | --- | --- | --- | --- |
//! | PLAIN | RFC 4616 | `authzid NUL authcid NUL passwd` | 4 KiB | [`Proof::Password`] |
//! | LOGIN | draft-murchison-sasl-login | user, then password, each after a prompt | 4 KiB | [`Proof::Password`] |
//! | EXTERNAL | RFC 4422 App. A | the authorization identity (may be empty) | 4 KiB | [`Proof::Certificate`] |
//! | CRAM-MD5 | RFC 2195 | `user SP hexdigest` after the server's challenge | 4 KiB | [`Proof::ChallengeResponse`] |
//! | OAUTHBEARER | RFC 7628 | `n,a=user,^Aauth=Bearer token^A^A` | 16 KiB | [`Proof::BearerToken`] |
//! | XOAUTH2 | Google | `user=user^Aauth=Bearer token^A^A` | 16 KiB | [`Proof::BearerToken`] |
//!
//! [`Exchange`] runs one exchange: it takes the client's lines as they came (base64, `=` for an
//! empty response, `*` to cancel) and says what to do next — send a challenge (raw bytes; the
//! front base64-encodes them and frames them `+ …` in either protocol), hand a proof to the
//! session, or fail with a reason for the client. [`Offer`] decides which mechanisms a
//! connection offers, so the capability lists and the mechanisms accepted cannot disagree.
//! The fronts keep only their framing and response codes.
//!
//! The wire forms live in one file per family: [`password`] (PLAIN, LOGIN, EXTERNAL),
//! [`cram`] (CRAM-MD5 and POP3 APOP, with the verification functions), [`bearer`]
//! (OAUTHBEARER, XOAUTH2; both directions, since the store replays use them too).

pub mod bearer;
pub mod cram;
mod exchange;
pub mod password;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use self::cram::{ChallengeSeed, verify_apop, verify_cram_md5};
pub use self::exchange::{Exchange, Step};
pub use self::password::{PlainResponse, encode_plain, parse_plain};
#[cfg(doc)]
use crate::Proof;
use crate::Secret;

/// Why a SASL exchange failed, or could not start. [`SaslError::text`] is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The mechanism is unknown, or known but not offered on this connection (not configured,
    /// no certificate).
    NotOffered,
    /// The mechanism would put a password or token on an unencrypted connection, which
    /// `RestrictPlainPasswords` forbids; it is offered once TLS is on.
    NeedsTls,
    /// A response longer than the mechanism's cap ([`SaslMechanism::max_response`]).
    TooLong,
    /// The client sent `*`.
    Cancelled,
    /// An initial response for a mechanism where the server speaks first (CRAM-MD5).
    UnexpectedInitialResponse,
    /// A CRAM-MD5 response (or APOP argument) that is not `user SP 32-hex-digits`.
    BadDigest,
    /// An OAUTHBEARER or XOAUTH2 message that does not follow its grammar.
    BadBearerMessage,
    /// OAUTHBEARER with channel binding (`p=`), which a proxy that terminates TLS cannot give.
    ChannelBinding,
    /// A response after the exchange ended (a caller's mistake, answered safely).
    OutOfSequence,
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
            SaslError::NeedsTls => "Plaintext authentication is disabled",
            SaslError::TooLong => "SASL response too long",
            SaslError::Cancelled => "Authentication cancelled",
            SaslError::UnexpectedInitialResponse => "This mechanism takes no initial response",
            SaslError::BadDigest => "Malformed challenge response",
            SaslError::BadBearerMessage => "Malformed bearer token message",
            SaslError::ChannelBinding => "Channel binding is not supported",
            SaslError::OutOfSequence => "Unexpected SASL response",
        }
    }
}

/// The SASL mechanisms the fronts know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616.
    Plain,
    /// The obsolete but widespread LOGIN mechanism.
    Login,
    /// RFC 2195 challenge-response.
    CramMd5,
    /// RFC 7628 bearer token.
    OAuthBearer,
    /// Google's bearer token.
    XOAuth2,
    /// RFC 4422 appendix A: authentication by the TLS client certificate.
    External,
}

/// A password mechanism's fields are at most 255 octets each (RFC 4616 §2): 1,024 characters
/// of base64; the rest is headroom.
const SMALL_RESPONSE: usize = 4096;
/// Bearer tokens are issuer-defined and JWTs with many claims run to several KiB.
const BEARER_RESPONSE: usize = 16 * 1024;

impl SaslMechanism {
    /// Every mechanism, in the order capability lists name them.
    pub const ALL: [SaslMechanism; 6] = [
        SaslMechanism::Plain,
        SaslMechanism::Login,
        SaslMechanism::CramMd5,
        SaslMechanism::OAuthBearer,
        SaslMechanism::XOAuth2,
        SaslMechanism::External,
    ];

    /// Parses a mechanism name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|m| name.eq_ignore_ascii_case(m.name().as_bytes()))
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Login => "LOGIN",
            SaslMechanism::CramMd5 => "CRAM-MD5",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::XOAuth2 => "XOAUTH2",
            SaslMechanism::External => "EXTERNAL",
        }
    }

    /// Longest client response accepted, in base64 characters (the initial response included).
    pub fn max_response(self) -> usize {
        match self {
            SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2 => BEARER_RESPONSE,
            SaslMechanism::Plain | SaslMechanism::Login | SaslMechanism::CramMd5 | SaslMechanism::External => {
                SMALL_RESPONSE
            }
        }
    }

    /// Whether the client hands over a reusable secret (password, token): such mechanisms
    /// wait for TLS under `RestrictPlainPasswords`.
    pub fn exposes_secret(self) -> bool {
        matches!(
            self,
            SaslMechanism::Plain | SaslMechanism::Login | SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2
        )
    }
}

/// The longest response any mechanism accepts, in base64 characters: what a line-based
/// front must be able to hold when bearer tokens are offered.
pub const MAX_RESPONSE: usize = BEARER_RESPONSE;

/// Which mechanisms one connection offers right now, from the front's settings and the
/// connection's state. Both the capability list and [`Offer::start`] read it.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// Mechanisms that hand over a password or token may be used: the connection is TLS, or
    /// `RestrictPlainPasswords` is off.
    pub secrets_allowed: bool,
    /// The client presented a verified certificate that can be mapped (EXTERNAL).
    pub certificate: bool,
    /// `CRAMs`: CRAM-MD5, with the seed its challenges are made from.
    pub crams: Option<&'a ChallengeSeed>,
    /// OAUTHBEARER and XOAUTH2.
    pub bearer: bool,
}

impl Offer<'_> {
    /// Whether `mechanism` is configured for this connection, TLS aside.
    fn configured(&self, mechanism: SaslMechanism) -> bool {
        match mechanism {
            SaslMechanism::Plain | SaslMechanism::Login => true,
            SaslMechanism::CramMd5 => self.crams.is_some(),
            SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2 => self.bearer,
            SaslMechanism::External => self.certificate,
        }
    }

    /// Whether `mechanism` may be used now.
    pub fn offers(&self, mechanism: SaslMechanism) -> bool {
        self.configured(mechanism) && (self.secrets_allowed || !mechanism.exposes_secret())
    }

    /// The mechanisms offered now, in capability-list order.
    pub fn mechanisms(self) -> impl Iterator<Item = SaslMechanism> {
        SaslMechanism::ALL.into_iter().filter(move |m| self.offers(*m))
    }

    /// Starts an exchange for the mechanism the client named. `serial` numbers the
    /// connection's exchanges, so each CRAM-MD5 challenge is different.
    pub fn start(&self, name: &[u8], initial: Option<&[u8]>, serial: u32) -> Result<(Exchange, Step), SaslError> {
        let mechanism = SaslMechanism::parse(name).filter(|m| self.configured(*m)).ok_or(SaslError::NotOffered)?;
        if !self.offers(mechanism) {
            return Err(SaslError::NeedsTls);
        }
        let challenge = match (mechanism, self.crams) {
            (SaslMechanism::CramMd5, Some(seed)) => Some(seed.cram_challenge(serial)),
            _ => None,
        };
        Ok(Exchange::start(mechanism, initial, challenge))
    }
}

/// Decodes one base64 client response of at most `max` characters (surrounding blanks aside).
/// `=` stands for an empty response (RFC 4959, RFC 5034).
pub fn decode_response(line: &[u8], max: usize) -> Result<Secret, SaslError> {
    let line = line.trim_ascii();
    if line.len() > max {
        return Err(SaslError::TooLong);
    }
    if line == b"=" {
        return Ok(Secret::new(Vec::new()));
    }
    // Decoded into a buffer wiped on every path: the response holds the password.
    let mut decoded = zeroize::Zeroizing::new(vec![0u8; base64::decoded_len_estimate(line.len())]);
    let n = STANDARD.decode_slice(line, &mut decoded[..]).map_err(|_| SaslError::Base64)?;
    decoded.truncate(n);
    Ok(Secret::new(std::mem::take(&mut *decoded)))
}

/// Encodes bytes as base64 for the wire.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Encodes secret bytes as base64, keeping the result secret.
pub fn encode_secret(bytes: &[u8]) -> Secret {
    let mut out = zeroize::Zeroizing::new(String::new());
    STANDARD.encode_string(bytes, &mut out);
    Secret::new(out.as_bytes())
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`: what a
/// bearer token may be.
pub fn is_b64token(token: &[u8]) -> bool {
    let body = token.iter().rposition(|b| *b != b'=').map_or(&[][..], |last| &token[..=last]);
    !body.is_empty()
        && body.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_response_bad_base64_and_caps() {
        assert!(decode_response(b"=", 4096).unwrap().is_empty());
        assert_eq!(decode_response(b" cHc= ", 4096).unwrap().expose(), b"pw");
        assert_eq!(decode_response(b"!!!", 4096), Err(SaslError::Base64));
        assert_eq!(decode_response(b"cHc", 4096), Err(SaslError::Base64), "padding is required");
        assert_eq!(decode_response(&[b'A'; 4100], 4096), Err(SaslError::TooLong));
        assert!(decode_response(&[b'A'; 4096], 4096).is_ok());
    }

    #[test]
    fn mechanism_names_and_caps() {
        assert_eq!(SaslMechanism::parse(b"cram-md5"), Some(SaslMechanism::CramMd5));
        assert_eq!(SaslMechanism::parse(b"XOAuth2"), Some(SaslMechanism::XOAuth2));
        assert_eq!(SaslMechanism::parse(b"GSSAPI"), None);
        assert_eq!(SaslMechanism::Plain.max_response(), 4096);
        assert_eq!(SaslMechanism::OAuthBearer.max_response(), 16384);
        for m in SaslMechanism::ALL {
            assert_eq!(SaslMechanism::parse(m.name().as_bytes()), Some(m));
        }
    }

    #[test]
    fn the_offer_follows_the_settings() {
        let seed = ChallengeSeed::new("1.2", "mx.example");
        let names = |o: Offer| o.mechanisms().map(SaslMechanism::name).collect::<Vec<_>>().join(" ");
        let base = Offer { secrets_allowed: true, certificate: false, crams: None, bearer: false };
        assert_eq!(names(base), "PLAIN LOGIN");
        let all = Offer { certificate: true, crams: Some(&seed), bearer: true, ..base };
        assert_eq!(names(all), "PLAIN LOGIN CRAM-MD5 OAUTHBEARER XOAUTH2 EXTERNAL");
        let restricted = Offer { secrets_allowed: false, ..all };
        assert_eq!(names(restricted), "CRAM-MD5 EXTERNAL");
        assert_eq!(restricted.start(b"xoauth2", None, 0).err(), Some(SaslError::NeedsTls));
        assert_eq!(restricted.start(b"plain", None, 0).err(), Some(SaslError::NeedsTls));
        assert_eq!(base.start(b"CRAM-MD5", None, 0).err(), Some(SaslError::NotOffered));
        assert_eq!(base.start(b"OAUTHBEARER", None, 0).err(), Some(SaslError::NotOffered));
        assert_eq!(base.start(b"EXTERNAL", None, 0).err(), Some(SaslError::NotOffered));
        assert_eq!(base.start(b"GSSAPI", None, 0).err(), Some(SaslError::NotOffered));
        let (_, first) = restricted.start(b"CRAM-MD5", None, 3).unwrap();
        assert_eq!(first, Step::Challenge(b"<1.2.3@mx.example>".to_vec()));
    }

    #[test]
    fn b64tokens() {
        assert!(is_b64token(b"vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="));
        assert!(is_b64token(b"ya29.a0AfH6SM-x_y~z+/"));
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"=="));
        assert!(!is_b64token(b"a b"));
        assert!(!is_b64token(b"a=b"));
        assert!(!is_b64token(b"tok\x01"));
    }
}
