//! The vocabulary of a login shared by both protocols: what the client sent, why the
//! client is refused, and why a store refused.

use crate::Secret;

/// What the client proved, and how: the one value a front machine hands to the session.
///
/// Each variant holds what its verification needs and nothing else; the secrets are
/// [`Secret`]s, so a `?proof` in a log line prints `<redacted>` for them. For logs use
/// [`Proof::login`] and [`Proof::mechanism_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A password in the clear: IMAP `LOGIN`, POP3 `USER`/`PASS`, SASL PLAIN and LOGIN.
    Password {
        /// The login name exactly as the client sent it (the MMP's `%o`).
        login: String,
        /// The password.
        password: Secret,
    },
    /// A digest over a challenge mailmux issued (CRAM-MD5, APOP): checking it needs the
    /// user's clear password from the directory ([`crate::sasl::verify_cram_md5`],
    /// [`crate::sasl::verify_apop`]), and the store is then logged into as `StoreAdmin`.
    ChallengeResponse {
        /// The login name as sent.
        login: String,
        /// The challenge (CRAM-MD5) or greeting timestamp (APOP) the digest was made over.
        challenge: Secret,
        /// The client's digest: 32 lower-case hexadecimal digits.
        digest: Secret,
        /// Which digest it is.
        kind: ChallengeKind,
    },
    /// SASL EXTERNAL (RFC 4422 appendix A): the TLS client certificate is the proof; it stays
    /// with the session, which maps it to a user.
    Certificate {
        /// The identity the client asked to act as, if it named one.
        authzid: Option<String>,
    },
    /// An OAuth 2.0 bearer token (RFC 7628 OAUTHBEARER, or Google's XOAUTH2), which only the
    /// store (or the token's issuer) can check.
    BearerToken {
        /// The user the client named (`a=` / `user=`).
        login: String,
        /// The token, without the `Bearer ` scheme.
        token: Secret,
        /// The mechanism it came in.
        mechanism: BearerMechanism,
        /// The client's whole decoded response, so the token can reach the store unchanged
        /// (with the client's own `host`/`port` pairs) when mailmux presents it as is.
        raw_response: Secret,
    },
}

impl Proof {
    /// The login name the client gave, for logs and the session summary: empty for a
    /// certificate login that named no identity.
    pub fn login(&self) -> &str {
        match self {
            Proof::Password { login, .. }
            | Proof::ChallengeResponse { login, .. }
            | Proof::BearerToken { login, .. } => login,
            Proof::Certificate { authzid } => authzid.as_deref().unwrap_or(""),
        }
    }

    /// What kind of proof it is, for logs: `password`, `CRAM-MD5`, `APOP`, `EXTERNAL`,
    /// `OAUTHBEARER` or `XOAUTH2`.
    pub fn mechanism_name(&self) -> &'static str {
        match self {
            Proof::Password { .. } => "password",
            Proof::ChallengeResponse { kind, .. } => kind.as_str(),
            Proof::Certificate { .. } => "EXTERNAL",
            Proof::BearerToken { mechanism, .. } => mechanism.as_str(),
        }
    }

    /// Whether the proof hands mailmux a reusable secret (a password or a bearer token), which
    /// `RestrictPlainPasswords` keeps off unencrypted connections.
    pub fn exposes_secret(&self) -> bool {
        matches!(self, Proof::Password { .. } | Proof::BearerToken { .. })
    }
}

/// Which challenge-response digest a [`Proof::ChallengeResponse`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    /// SASL CRAM-MD5 (RFC 2195): HMAC-MD5 keyed with the password, over the challenge.
    CramMd5,
    /// POP3 APOP (RFC 1939 §7): MD5 of the greeting's timestamp followed by the password.
    Apop,
}

impl ChallengeKind {
    /// Name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::CramMd5 => "CRAM-MD5",
            ChallengeKind::Apop => "APOP",
        }
    }
}

/// The SASL mechanism a bearer token travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerMechanism {
    /// RFC 7628: GS2 header `n,a=user,`, then `^Aauth=Bearer <token>^A^A`.
    OAuthBearer,
    /// Google's XOAUTH2: `user=<user>^Aauth=Bearer <token>^A^A`.
    XOAuth2,
}

impl BearerMechanism {
    /// The SASL name (also for logs).
    pub fn as_str(self) -> &'static str {
        match self {
            BearerMechanism::OAuthBearer => "OAUTHBEARER",
            BearerMechanism::XOAuth2 => "XOAUTH2",
        }
    }
}

/// Why a client's login was refused; each front end turns it into its protocol's response
/// code (IMAP RFC 5530, POP3 RFC 3206).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Wrong password or unknown user: indistinguishable to the client.
    AuthenticationFailed,
    /// A temporary failure (directory or store unreachable): try again later.
    Unavailable {
        /// An operator's message for the user (the MMP's `ServerDownAlert`).
        alert: Option<String>,
    },
}

/// Why a store did not let the user in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreFailure {
    /// The store refused the credentials.
    Rejected {
        /// The store's text, for the log.
        text: String,
    },
    /// The store is in trouble (BYE, `[UNAVAILABLE]`, `[SYS/TEMP]`, `[IN-USE]` …).
    Temporary {
        /// The store's text, for the log.
        text: String,
    },
    /// The store said something that is not the protocol as expected.
    Protocol {
        /// What was wrong, for the log.
        reason: String,
    },
}

/// How to present the credentials to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMechanism {
    /// IMAP `LOGIN`, POP3 `USER`/`PASS`.
    Login,
    /// SASL PLAIN: IMAP `AUTHENTICATE PLAIN`, POP3 `AUTH PLAIN`.
    Plain,
}

/// Why a login name or password cannot be used, whatever the directory says: no IMAP or
/// POP3 login form can carry a NUL (RFC 9051 literals exclude it, SASL PLAIN uses it as the
/// separator), and control characters in a name are never a real user's (they would forge
/// log lines or, in a POP3 `USER` line, commands). Checked before anything is looked up.
pub fn credentials_problem(login: &str, password: &[u8]) -> Option<&'static str> {
    if login.len() > MAX_LOGIN_NAME {
        return Some("login name longer than 255 bytes");
    }
    if login.chars().any(char::is_control) {
        return Some("login name contains control characters");
    }
    if password.contains(&0) {
        return Some("password contains NUL");
    }
    None
}

/// Operator text (a `ServerDownAlert`) made one line: control characters become spaces, so
/// it cannot break the response it is put in.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Longest login name accepted (RFC 4616 sets 255 octets for SASL identities).
pub const MAX_LOGIN_NAME: usize = 255;

/// What is presented to the store, as whom.
#[derive(Debug, Clone)]
pub enum ReplayCredentials {
    /// A password: the user's own, or `StoreAdmin`'s on the user's behalf.
    Password {
        /// The authorization identity, when a store administrator logs in on a user's behalf
        /// (forces SASL PLAIN).
        authzid: Option<String>,
        /// The identity whose password is presented.
        authcid: String,
        /// The password.
        password: Secret,
    },
    /// The client's bearer token, presented in the mechanism the client used; the store must
    /// advertise it (`AUTH=OAUTHBEARER`, `SASL XOAUTH2` …), since no other form carries a token.
    Bearer {
        /// The user named in the SASL message (`a=` / `user=`): the replay user id.
        user: String,
        /// The token, unchanged.
        token: Secret,
        /// OAUTHBEARER or XOAUTH2.
        mechanism: BearerMechanism,
    },
}

impl ReplayCredentials {
    /// Why these cannot be presented to a store: a NUL anywhere (no login form carries it), or
    /// a user or token a bearer message cannot carry (a `^A` or line break would end its
    /// field; the token must be an RFC 6750 `b64token`).
    pub fn problem(&self) -> Option<StoreFailure> {
        match self {
            ReplayCredentials::Password { authzid, authcid, password } => {
                let nul = authcid.contains('\0')
                    || authzid.as_deref().is_some_and(|a| a.contains('\0'))
                    || password.expose().contains(&0);
                nul.then(|| StoreFailure::Rejected {
                    text: "credentials contain NUL, which no login form carries".into(),
                })
            }
            ReplayCredentials::Bearer { user, token, .. } => {
                let bad_user = user.is_empty() || user.chars().any(char::is_control);
                let bad_token = !crate::sasl::is_b64token(token.expose());
                (bad_user || bad_token).then(|| StoreFailure::Rejected {
                    text: "a bearer message cannot carry this user name or token".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_that_no_login_form_carries() {
        assert_eq!(credentials_problem("joe@x.org", b"p w\r\nd"), None);
        assert!(credentials_problem("joe\r\nadmin", b"pw").is_some());
        assert!(credentials_problem("joe\u{0}", b"pw").is_some());
        assert!(credentials_problem("joe", b"p\0w").is_some());
        assert!(credentials_problem(&"j".repeat(256), b"pw").is_some());
        let replay =
            |pw: &str| ReplayCredentials::Password { authzid: None, authcid: "joe".into(), password: Secret::new(pw) };
        assert!(replay("p\0w").problem().is_some());
        assert!(replay("p\r\nw").problem().is_none());
        let bearer = |user: &str, token: &str| ReplayCredentials::Bearer {
            user: user.into(),
            token: Secret::new(token),
            mechanism: BearerMechanism::OAuthBearer,
        };
        assert!(bearer("joe@x.org", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==").problem().is_none());
        assert!(bearer("joe", "tok\x01en").problem().is_some());
        assert!(bearer("joe\r\n", "token").problem().is_some());
        assert!(bearer("", "token").problem().is_some());
    }

    #[test]
    fn proofs_name_themselves_without_their_secrets() {
        let proof = Proof::BearerToken {
            login: "joe".into(),
            token: Secret::new("hunter2"),
            mechanism: BearerMechanism::XOAuth2,
            raw_response: Secret::new("user=joe\x01auth=Bearer hunter2\x01\x01"),
        };
        assert_eq!((proof.login(), proof.mechanism_name()), ("joe", "XOAUTH2"));
        assert!(!format!("{proof:?}").contains("hunter2"));
        assert_eq!(Proof::Certificate { authzid: None }.login(), "");
        let cram = Proof::ChallengeResponse {
            login: "tim".into(),
            challenge: Secret::new("<1.2@x>"),
            digest: Secret::new("b913a602c7eda7a495b4e6e7334d3890"),
            kind: ChallengeKind::CramMd5,
        };
        assert_eq!(cram.mechanism_name(), "CRAM-MD5");
        assert!(!cram.exposes_secret());
    }
}
