//! mailmux: an IMAP and POP3 multiplexor in the manner of the iPlanet/Sun Messaging
//! Multiplexor (MMP).
//!
//! Every client connects to mailmux; mailmux reads the login, asks the directory which store
//! holds the user, logs into that store with the client's credentials and from then on
//! copies bytes both ways. The modules follow one connection's life:
//!
//! ```text
//! listen ─▶ session (front machine from mailmux-proto) ─▶ identity ─▶ directory ─▶ route
//!        ─▶ store (connect + replay) ─▶ relay
//! ```
//!
//! | module | phase |
//! | --- | --- |
//! | [`server`] | builds the runtime from a [`mailmux_config::Config`], binds, runs, reloads, drains |
//! | [`service`] | one service of one configuration generation: what its sessions share |
//! | [`listen`] | accept loop: connection permits, accept back-off, one task per session |
//! | [`proxy_header`] | the PROXY protocol header from a trusted load balancer: the real addresses |
//! | [`access`] | the edge: session budgets from the descriptor limit, `ConnLimits`, BadGuy |
//! | [`session`] | drives the IMAP / POP3 front machines until the client is logged in |
//! | [`identity`] | login name → user and domain (`VirtualDomainDelim`, `DefaultDomain`, canonical delimiter) |
//! | [`hosted`] | hosted domains: the domain's entry, its user base and overrides |
//! | [`status`] | user and domain status attributes that refuse a login |
//! | [`certificate`] | client certificate → directory search (`certmap.conf`) |
//! | [`directory`] | the user's entry: LDAP or an embedded LDIF file, same filters |
//! | [`route`] | entry → store address (`MailHostAttrs`, `BacksidePort`) |
//! | [`store`] | connect to the store and replay the login |
//! | [`relay`] | bytes both ways, half-close, idle timeout, counters |
//! | [`tls`] | rustls configurations per generation, STARTTLS-capable streams |
//! | [`control`] | metrics, the admin endpoint, reload from the files |
//! | [`error`] | what went wrong in a login: what the client is told, what is logged |
//! | [`outcome`] | how a session ended: the bounded words of the summary line |
//! | [`logging`] | `LogDir` / `LogLevel` / `LogFormat` to a tracing subscriber |
//! | [`log_severity`] | `LogLevel`'s syslog scale over tracing's levels |
//! | [`log_json`] | `LogFormat json`: one JSON object per line |
//! | [`log_safe`] | peer data escaped in every log line |

pub mod access;
pub mod certificate;
pub mod control;
pub mod directory;
pub mod error;
pub mod hosted;
pub mod identity;
pub mod listen;
pub mod log_json;
pub mod log_safe;
pub mod log_severity;
pub mod logging;
pub mod outcome;
pub mod proxy_header;
pub mod relay;
pub mod route;
pub mod server;
pub mod service;
pub mod session;
pub mod status;
pub mod store;
pub mod tls;

pub use server::Server;
