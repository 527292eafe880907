//! The relayed sessions of the server, for `mailmux admin sessions` and `kick`, and the
//! per-store session gauge.
//!
//! A session registers when its store accepts the login and is removed when its
//! [`Registered`] handle drops, however the session ends. Each entry carries live byte
//! counters (the relay adds to them as it writes) and a kick token: cancelling it ends the
//! relay, and the session says goodbye in its protocol.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use mailmux_config::Protocol;
use tokio_util::sync::CancellationToken;

use crate::log_safe::Escaped;

/// One relayed session.
#[derive(Debug)]
pub struct LiveSession {
    /// The session id of the log lines.
    pub id: u64,
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// Who logged in (`user@domain` when the login had a domain).
    pub user: String,
    /// The client's address.
    pub client: SocketAddr,
    /// The store, `host:port`.
    pub store: String,
    /// When the login succeeded.
    pub since: SystemTime,
    /// Bytes from the client to the store so far.
    pub up: AtomicU64,
    /// Bytes from the store to the client so far.
    pub down: AtomicU64,
    /// Cancelled to end the session.
    pub kick: CancellationToken,
}

/// Every relayed session, by id.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<HashMap<u64, Arc<LiveSession>>>,
}

/// A registered session: removed from the registry when dropped.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<SessionRegistry>,
    /// The entry.
    pub session: Arc<LiveSession>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.session.id);
    }
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> Arc<SessionRegistry> {
        Arc::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<LiveSession>>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a session that just logged in.
    pub fn register(
        self: &Arc<Self>,
        id: u64,
        protocol: Protocol,
        user: &str,
        client: SocketAddr,
        store: String,
    ) -> Registered {
        let session = Arc::new(LiveSession {
            id,
            protocol,
            user: user.to_owned(),
            client,
            store,
            since: SystemTime::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            kick: CancellationToken::new(),
        });
        self.lock().insert(id, session.clone());
        Registered { registry: self.clone(), session }
    }

    /// The sessions now, oldest first.
    pub fn list(&self) -> Vec<Arc<LiveSession>> {
        let mut sessions: Vec<_> = self.lock().values().cloned().collect();
        sessions.sort_by_key(|s| s.id);
        sessions
    }

    /// The store of every session now (for the per-store gauge).
    pub fn stores(&self) -> Vec<String> {
        self.lock().values().map(|s| s.store.clone()).collect()
    }

    /// Ends every session of `user` (compared without regard to ASCII case); returns their ids.
    pub fn kick(&self, user: &str) -> Vec<u64> {
        let mut kicked: Vec<u64> = self
            .lock()
            .values()
            .filter(|s| s.user.eq_ignore_ascii_case(user))
            .map(|s| {
                s.kick.cancel();
                s.id
            })
            .collect();
        kicked.sort_unstable();
        kicked
    }

    /// Ends every session (the drain deadline of a stop); returns how many.
    pub fn kick_all(&self) -> usize {
        let sessions = self.lock();
        sessions.values().for_each(|s| s.kick.cancel());
        sessions.len()
    }

    /// The table `mailmux admin sessions` prints: a header, then one line per session,
    /// tab-separated; peer-chosen text escaped as in the log.
    pub fn table(&self) -> String {
        let now = SystemTime::now();
        let mut out = String::from("id\tservice\tuser\tclient\tstore\tseconds\tbytes_in\tbytes_out\n");
        for s in self.list() {
            let seconds = now.duration_since(s.since).map(|d| d.as_secs()).unwrap_or(0);
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{seconds}\t{}\t{}\n",
                s.id,
                s.protocol.as_str(),
                Escaped(&s.user),
                s.client,
                Escaped(&s.store),
                s.up.load(Ordering::Relaxed),
                s.down.load(Ordering::Relaxed),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_list_kick_and_leave() {
        let registry = SessionRegistry::new();
        let client: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let a = registry.register(7, Protocol::Imap, "Joe@siroe.com", client, "127.0.0.2:143".into());
        let b = registry.register(9, Protocol::Pop3, "joe@siroe.com", client, "127.0.0.2:110".into());
        let _c = registry.register(8, Protocol::Imap, "ann\n", client, "127.0.0.3:143".into());
        a.session.down.fetch_add(42, Ordering::Relaxed);
        let table = registry.table();
        assert!(table.contains("7\timap\tJoe@siroe.com\t192.0.2.1:5000\t127.0.0.2:143\t0\t0\t42\n"), "{table}");
        assert!(table.contains("\tann\\n\t"), "escaped: {table}");
        assert_eq!(registry.kick("joe@SIROE.com"), vec![7, 9]);
        assert!(a.session.kick.is_cancelled() && b.session.kick.is_cancelled());
        drop(a);
        assert_eq!(registry.list().iter().map(|s| s.id).collect::<Vec<_>>(), vec![8, 9]);
        assert_eq!(registry.kick("nobody"), Vec::<u64>::new());
    }
}
