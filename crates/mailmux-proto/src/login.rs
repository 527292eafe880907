//! The vocabulary of a login shared by both protocols: what the client sent, why the
//! client is refused, and why a store refused.

use crate::Secret;

/// How the client proved who it is; decides how mailmux logs into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// IMAP `LOGIN` or POP3 `USER`/`PASS`.
    Password,
    /// SASL PLAIN (IMAP `AUTHENTICATE PLAIN`, POP3 `AUTH PLAIN`).
    Plain,
    /// SASL LOGIN.
    Login,
    /// SASL EXTERNAL: the TLS client certificate is the proof; the login name is the
    /// requested authorization identity (empty: whoever the certificate maps to), and there
    /// is no password.
    External,
}

impl Mechanism {
    /// Name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Password => "password",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::External => "EXTERNAL",
        }
    }
}

/// A login name and password taken from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The login name exactly as the client sent it (the MMP's `%o`).
    pub login: String,
    /// The password; never printed.
    pub password: Secret,
    /// The mechanism the client used.
    pub mechanism: Mechanism,
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

/// Who logs in, as whom.
#[derive(Debug, Clone)]
pub struct ReplayCredentials {
    /// The authorization identity, when a store administrator logs in on a user's behalf
    /// (forces SASL PLAIN).
    pub authzid: Option<String>,
    /// The identity whose password is presented.
    pub authcid: String,
    /// The password.
    pub password: Secret,
}

impl ReplayCredentials {
    /// Why these cannot be presented to a store: a NUL anywhere (no login form carries it).
    pub fn problem(&self) -> Option<StoreFailure> {
        let nul = self.authcid.contains('\0')
            || self.authzid.as_deref().is_some_and(|a| a.contains('\0'))
            || self.password.expose().contains(&0);
        nul.then(|| StoreFailure::Rejected { text: "credentials contain NUL, which no login form carries".into() })
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
        let replay = |pw: &str| ReplayCredentials { authzid: None, authcid: "joe".into(), password: Secret::new(pw) };
        assert!(replay("p\0w").problem().is_some());
        assert!(replay("p\r\nw").problem().is_none());
    }
}
