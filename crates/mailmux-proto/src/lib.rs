//! Sans-I/O protocol codecs for mailmux.
//!
//! Nothing in this crate touches a socket or a runtime: every machine takes bytes with
//! `feed`, is asked for its next event with `next_event`, and leaves the bytes it wants
//! written in an output buffer. The server drives these machines; tests and fuzzers drive
//! them directly.
//!
//! | module | what it speaks |
//! | --- | --- |
//! | [`imap`] | the client side of IMAP before login (RFC 9051 / 3501) and the replay of a login to a store |
//! | [`pop3`] | the same for POP3 (RFC 1939, 2449, 5034), and the spoof maildrop served when a store is down |
//! | [`probe`] | asking a store for its pre-login capabilities (IMAP `CAPABILITY`, POP3 `CAPA`) without logging in |
//! | [`http`] | one HTTP/1.x request head, for the metrics and admin endpoints |
//! | [`proxy`] | the PROXY protocol header (v1, v2) from a trusted load balancer |
//! | [`sasl`] | one SASL exchange (PLAIN, LOGIN, EXTERNAL, CRAM-MD5, OAUTHBEARER, XOAUTH2) shared by IMAP AUTHENTICATE and POP3 AUTH |
//! | [`login`] | [`Proof`]: what a client proved; why a login was refused; what is replayed to a store |
//! | [`ldap_filter`] | RFC 4515 search filters: escaping values, and parsing/evaluating filters for the LDIF directory |
//! | [`secret`] | [`Secret`]: a password that never prints |
//! | [`buffer`] | [`buffer::InputBuffer`]: unparsed input, compacted and wiped |
//! | [`line`] | [`line::LineBuffer`]: CRLF lines with a cap |

pub mod buffer;
pub mod http;
pub mod imap;
pub mod ldap_filter;
pub mod line;
pub mod login;
pub mod pop3;
pub mod probe;
pub mod proxy;
pub mod sasl;
pub mod secret;

pub use login::{BearerMechanism, ChallengeKind, Proof, Rejection, ReplayCredentials, ReplayMechanism, StoreFailure};
pub use secret::Secret;
