//! Watching and steering a running server: metrics, the admin endpoint, reload.
//!
//! ```text
//!                  MetricsListen (TCP)           AdminListen (loopback TCP or unix:)
//!                        │                                │
//!                        ▼                                ▼
//!                 http::serve_connection: one request head (8 KiB, 5 s), one answer, close;
//!                 at most 16 connections per endpoint at once
//!                        │                                │
//!   GET /metrics /health /ready              the same, and GET /sessions, POST /kick?user=U,
//!                                            GET /explain?user=U[&service=pop3][&address=IP],
//!                                            POST /reload
//! ```
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`metrics`] | the counters, gauges and histograms, bounded labels, the text format |
//! | [`sessions`] | the relayed sessions: list, kick |
//! | [`http`] | the endpoints' listeners and their strict one-request HTTP/1.x responder |
//! | [`admin`] | what each path answers |
//! | [`explain`] | a user's route, looked up the way a login would, without logging in |
//! | [`reload`] | re-reading the configuration files (SIGHUP, `POST /reload`) |
//!
//! Everything here belongs to the server, not to a configuration generation: a reload keeps
//! the counts, the sessions and the endpoints (`MetricsListen` and `AdminListen` change at a
//! restart only).

pub mod admin;
pub mod explain;
pub mod http;
pub mod metrics;
pub mod reload;
pub mod sessions;

pub use http::{ControlListener, bind_all, serve};
pub use mailmux_config::control::ControlAddr;

/// Which endpoint: what it may be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `MetricsListen`: `/metrics`, `/health`, `/ready`.
    Metrics,
    /// `AdminListen`: those and the admin commands.
    Admin,
}
