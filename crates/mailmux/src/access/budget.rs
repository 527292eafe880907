//! How many sessions the process can hold: derived from its descriptor limit.
//!
//! A logged-in session holds two descriptors (client and store); one still before login
//! holds one, two while it logs in. At start-up the soft `RLIMIT_NOFILE` is raised to the
//! hard limit (1,024 is a common soft default, which ~500 sessions would exhaust), and the
//! session limit is what the result allows after a reserve for listeners, LDAP connections
//! and log files. Because sessions stay within the limit, `accept` does not meet `EMFILE`
//! in normal operation, and a connection over the limit can still be accepted and told so
//! instead of waiting unanswered in the kernel's queue.

use std::io;

/// Descriptors kept out of the session budget: listeners, LDAP connections, log files,
/// resolver sockets, and the descriptor each refused connection needs to be told why.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// The process's descriptor limit, before and after raising it.
#[derive(Debug)]
pub struct DescriptorLimit {
    /// The soft limit found at start-up.
    pub was: u64,
    /// The soft limit now (what the session limit is derived from).
    pub soft: u64,
    /// The hard limit.
    pub hard: Option<u64>,
    /// Why the soft limit could not be raised, if it could not.
    pub error: Option<io::Error>,
}

/// Raises the soft descriptor limit to the hard one; when that fails, reports the limit in
/// force and why.
pub fn raise_descriptor_limit() -> DescriptorLimit {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let was = limit.current.unwrap_or(u64::MAX);
    let mut error = None;
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        error = setrlimit(Resource::Nofile, limit).err().map(io::Error::from);
    }
    let now = getrlimit(Resource::Nofile);
    DescriptorLimit { was, soft: now.current.unwrap_or(u64::MAX), hard: now.maximum, error }
}

/// Sessions the process serves at once: what `descriptors` allow, or `configured` if lower.
pub fn session_limit(descriptors: u64, configured: Option<usize>) -> usize {
    let allowed = descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 2;
    let allowed = usize::try_from(allowed).unwrap_or(usize::MAX).max(1);
    configured.map_or(allowed, |c| c.min(allowed))
}

/// Sessions before login at once: `configured`, or half the session limit.
pub fn prelogin_limit(sessions: usize, configured: Option<usize>) -> usize {
    configured.unwrap_or(sessions / 2).clamp(1, sessions)
}

/// Sessions before login at once from one network: `configured`, or an eighth of the
/// pre-login limit, so it takes eight networks to fill it.
pub fn prelogin_per_network(prelogin: usize, configured: Option<usize>) -> u32 {
    let share = configured.unwrap_or(prelogin / 8).clamp(1, prelogin.max(1));
    u32::try_from(share).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_descriptors() {
        assert_eq!(session_limit(20_000, None), 9_872);
        assert_eq!(session_limit(1_024, None), 384);
        assert_eq!(session_limit(20_000, Some(100)), 100);
        assert_eq!(session_limit(20_000, Some(50_000)), 9_872, "never above what the descriptors allow");
        assert_eq!(session_limit(100, None), 1);
        assert_eq!(prelogin_limit(9_872, None), 4_936);
        assert_eq!(prelogin_limit(100, Some(500)), 100);
        assert_eq!(prelogin_per_network(4_936, None), 617);
        assert_eq!(prelogin_per_network(4, None), 1);
        assert_eq!(prelogin_per_network(4_936, Some(50)), 50);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let limit = raise_descriptor_limit();
        assert!(limit.error.is_none(), "{:?}", limit.error);
        assert_eq!(Some(limit.soft), limit.hard.or(Some(u64::MAX)));
        assert!(limit.soft >= limit.was);
    }
}
