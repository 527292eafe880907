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

impl Refusal {
    /// Every refusal, in the order of [`Refusal::index`].
    pub const ALL: [Refusal; 5] =
        [Refusal::SessionLimit, Refusal::PreLoginBudget, Refusal::PreLoginNetwork, Refusal::ConnLimit, Refusal::Access];

    /// A short word for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::SessionLimit => "session-limit",
            Refusal::PreLoginBudget => "prelogin-budget",
            Refusal::PreLoginNetwork => "prelogin-network",
            Refusal::ConnLimit => "conn-limit",
            Refusal::Access => "tcp-access",
        }
    }

    /// Its place in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How one login attempt ended: the `outcome` label of `mailmux_logins_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The store accepted the login.
    Ok,
    /// Refused: wrong password, unknown user, access filter, and the like.
    AuthFailed,
    /// No directory or store to ask (or a store's temporary failure).
    Unavailable,
    /// The attempt outran its budget.
    Timeout,
}

impl LoginOutcome {
    /// Every login outcome, in the order of [`LoginOutcome::index`].
    pub const ALL: [LoginOutcome; 4] =
        [LoginOutcome::Ok, LoginOutcome::AuthFailed, LoginOutcome::Unavailable, LoginOutcome::Timeout];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::AuthFailed => "auth-failed",
            LoginOutcome::Unavailable => "unavailable",
            LoginOutcome::Timeout => "timeout",
        }
    }

    /// Its place in [`LoginOutcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Outcome {
    /// Every outcome, in the order of [`Outcome::index`].
    pub const ALL: [Outcome; 15] = [
        Outcome::TlsFailed,
        Outcome::ClientGone,
        Outcome::ClosedBeforeLogin,
        Outcome::LoginTimeout,
        Outcome::Shutdown,
        Outcome::AuthFailed,
        Outcome::Unavailable,
        Outcome::TooManyFailures,
        Outcome::Spoofed,
        Outcome::Relayed(RelayEnd::ClientClosed),
        Outcome::Relayed(RelayEnd::StoreClosed),
        Outcome::Relayed(RelayEnd::IdleTimeout),
        Outcome::Relayed(RelayEnd::Error),
        Outcome::Relayed(RelayEnd::Kicked),
        Outcome::Relayed(RelayEnd::DrainDeadline),
    ];

    /// Its place in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        match self {
            Outcome::TlsFailed => 0,
            Outcome::ClientGone => 1,
            Outcome::ClosedBeforeLogin => 2,
            Outcome::LoginTimeout => 3,
            Outcome::Shutdown => 4,
            Outcome::AuthFailed => 5,
            Outcome::Unavailable => 6,
            Outcome::TooManyFailures => 7,
            Outcome::Spoofed => 8,
            Outcome::Relayed(RelayEnd::ClientClosed) => 9,
            Outcome::Relayed(RelayEnd::StoreClosed) => 10,
            Outcome::Relayed(RelayEnd::IdleTimeout) => 11,
            Outcome::Relayed(RelayEnd::Error) => 12,
            Outcome::Relayed(RelayEnd::Kicked) => 13,
            Outcome::Relayed(RelayEnd::DrainDeadline) => 14,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_in_index_order() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i, "{o}");
        }
        for (i, o) in LoginOutcome::ALL.iter().enumerate() {
            assert_eq!(o.index(), i);
        }
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
