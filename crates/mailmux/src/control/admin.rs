//! What each path of the control endpoints answers.
//!
//! | method, path | endpoint | answer |
//! | --- | --- | --- |
//! | `GET /metrics` | both | the Prometheus text format |
//! | `GET /health` | both | `200 ok` while the process runs |
//! | `GET /ready` | both | `200 ready` while it accepts connections; `503` before, and from the start of a shutdown |
//! | `GET /sessions` | admin | the relayed sessions, one tab-separated line each |
//! | `POST /kick?user=U` | admin | ends every relayed session of `U`; IMAP clients get `* BYE` |
//! | `GET /explain?user=U[&service=imap\|pop3][&address=IP]` | admin | the user's route, as a login on `address` would find it |
//! | `POST /reload` | admin | re-reads the configuration (as `SIGHUP`); `503` with the reason if refused |
//!
//! Answers are plain text. Acting paths want `POST`, so a link followed by a browser or a
//! proxy prefetch cannot kick anybody.

use mailmux_config::Protocol;
use mailmux_proto::http::{Method, RequestHead};

use super::Surface;
use crate::server::ServerHandle;

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// Its media type.
    pub content_type: &'static str,
    /// Its body.
    pub body: String,
}

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }
}

/// Answers one request.
pub async fn answer(surface: Surface, head: &RequestHead, server: &ServerHandle) -> Answer {
    let reading = matches!(head.method, Method::Get | Method::Head);
    match (head.path.as_str(), surface) {
        ("/metrics", _) if reading => Answer {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: server.render_metrics(),
        },
        ("/health", _) if reading => Answer::text(200, "ok\n"),
        ("/ready", _) if reading => {
            if server.is_ready() {
                Answer::text(200, "ready\n")
            } else {
                Answer::text(503, "not ready\n")
            }
        }
        ("/sessions", Surface::Admin) if reading => Answer::text(200, server.sessions().table()),
        ("/explain", Surface::Admin) if reading => explain(head, server).await,
        ("/kick", Surface::Admin) if head.method == Method::Post => match head.param("user") {
            Some(user) if !user.is_empty() => {
                let kicked = server.sessions().kick(user);
                tracing::info!(user, sessions = ?kicked, "admin: kick");
                let ids: Vec<String> = kicked.iter().map(ToString::to_string).collect();
                Answer::text(200, format!("kicked {} session(s): {}\n", kicked.len(), ids.join(" ")))
            }
            _ => Answer::text(400, "kick needs user=NAME\n"),
        },
        ("/reload", Surface::Admin) if head.method == Method::Post => {
            tracing::info!("admin: reloading the configuration");
            match super::reload::from_files(server).await {
                Ok(summary) => Answer::text(200, format!("reloaded: {summary}\n")),
                Err(e) => Answer::text(503, format!("reload refused, nothing changed: {e}\n")),
            }
        }
        ("/metrics" | "/health" | "/ready", _) => Answer::text(405, "use GET\n"),
        ("/sessions" | "/explain", Surface::Admin) => Answer::text(405, "use GET\n"),
        ("/kick" | "/reload", Surface::Admin) => Answer::text(405, "use POST\n"),
        _ => Answer::text(404, "not found\n"),
    }
}

async fn explain(head: &RequestHead, server: &ServerHandle) -> Answer {
    let Some(user) = head.param("user").filter(|u| !u.is_empty()) else {
        return Answer::text(400, "explain needs user=NAME\n");
    };
    let protocol = match head.param("service").unwrap_or("imap") {
        "imap" => Protocol::Imap,
        "pop3" | "pop" => Protocol::Pop3,
        other => return Answer::text(400, format!("unknown service '{}': imap or pop3\n", other.escape_debug())),
    };
    let address = match head.param("address").map(str::parse::<std::net::IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => return Answer::text(400, "address=IP is not an IP address\n"),
    };
    match super::explain::explain(server, protocol, user, address).await {
        Ok(text) => Answer::text(200, text),
        Err(text) => Answer::text(404, text),
    }
}
