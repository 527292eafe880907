//! POP3 before login, both directions (RFC 1939, RFC 2449 CAPA, RFC 3206 response codes,
//! RFC 5034 AUTH).
//!
//! * [`front`] is the client-facing machine: greeting, CAPA, USER/PASS, AUTH … until it has
//!   credentials for the session.
//! * [`replay`] logs into a store with them.
//! * [`maildrop`] serves the administrator's message when the store is down (the spoof maildrop).

pub mod front;
pub mod maildrop;
pub mod replay;

/// Longest command line accepted from a client. RFC 2449 allows 255 octets for commands;
/// SASL responses on AUTH lines are longer, so the cap leaves room for them.
pub const MAX_CLIENT_LINE: usize = 2048;

/// Longest command line accepted when bearer tokens are offered: `AUTH XOAUTH2 ` and a whole
/// bearer response ([`crate::sasl::MAX_RESPONSE`]), so a token that fits the SASL cap is never
/// cut off by the line cap first.
pub const MAX_BEARER_LINE: usize = crate::sasl::MAX_RESPONSE + 32;
