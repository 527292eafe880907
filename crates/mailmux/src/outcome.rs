//! How a session ended, as one bounded vocabulary.
//!
//! Every session's summary line carries one of these words, and nothing else: log readers can
//! count them, and metric labels built from them stay a fixed set however hostile the peers.
//! Connections turned away at the door ([`Refusal`]) have no session and no summary line: they
//! are logged by kind, at most 20 lines a second each (see [`crate::access`]).

use crate::relay::RelayEnd;

/// Why a connection was turned away before its greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The process is serving as many sessions as its descriptors allow.
    SessionLimit,
    /// Too many connections are still before login (the pre-login budget).
    PreLoginBudget,
    /// Too many connections from the client's network are still before login.
    PreLoginNetwork,
    /// `ConnLimits`: this client address has too many connections.
    ConnLimit,
    /// `TCPAccess`: the client may not use this service.
    Access,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The TLS handshake (implicit or after STARTTLS) failed.
    TlsFailed,
    /// The client went away (or could not be written to) before login.
    ClientGone,
    /// The client logged out or broke the protocol before login.
    ClosedBeforeLogin,
    /// The client did not log in within `PreAuthTimeout`.
    LoginTimeout,
    /// The server shut down before the client logged in.
    Shutdown,
    /// The last login attempt was refused and the client left.
    AuthFailed,
    /// The last login attempt failed for want of a directory or store, and the client left.
    Unavailable,
    /// The client failed to log in too many times on this connection.
    TooManyFailures,
    /// The store was down and the client was served the spoof maildrop (POP3).
    Spoofed,
    /// Logged in and relayed until this happened.
    Relayed(RelayEnd),
}

impl Outcome {
    /// The word in the summary line.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::TlsFailed => "tls-failed",
            Outcome::ClientGone => "client-gone",
            Outcome::ClosedBeforeLogin => "closed-before-login",
            Outcome::LoginTimeout => "login-timeout",
            Outcome::Shutdown => "shutdown",
            Outcome::AuthFailed => "auth-failed",
            Outcome::Unavailable => "unavailable",
            Outcome::TooManyFailures => "too-many-failures",
            Outcome::Spoofed => "spoofed",
            Outcome::Relayed(end) => end.as_str(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
