//! `ConnLimits`: simultaneous connections per client address.
//!
//! Each admitted connection holds a [`ConnSlot`] for its address (IPv6 per /64, see
//! [`IpKey`]); dropping the slot gives it back. The counts live in the server, outside any
//! configuration generation; the limit for an address comes from the session's generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailmux_config::Protocol;

use super::IpKey;

/// Connection counts per service and address.
#[derive(Debug, Default)]
pub struct ConnCounts {
    counts: Mutex<HashMap<(Protocol, IpKey), u32>>,
}

impl ConnCounts {
    /// Takes a slot for `key` unless it already has `limit` connections.
    pub fn try_take(self: &Arc<Self>, protocol: Protocol, key: IpKey, limit: Option<u32>) -> Option<ConnSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry((protocol, key)).or_insert(0);
        if limit.is_some_and(|l| *count >= l) {
            if *count == 0 {
                counts.remove(&(protocol, key));
            }
            return None;
        }
        *count += 1;
        Some(ConnSlot { counts: self.clone(), key: (protocol, key) })
    }

    /// Connections counted for `key` now.
    pub fn count(&self, protocol: Protocol, key: IpKey) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(&(protocol, key)).copied().unwrap_or(0)
    }

    /// Addresses with at least one connection.
    pub fn addresses(&self) -> usize {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnSlot {
    counts: Arc<ConnCounts>,
    key: (Protocol, IpKey),
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let counts = Arc::new(ConnCounts::default());
        let a = IpKey::of("192.0.2.1".parse().unwrap());
        let b = IpKey::of("192.0.2.2".parse().unwrap());
        let held: Vec<_> = (0..3).map(|_| counts.try_take(Protocol::Imap, a, Some(3)).unwrap()).collect();
        assert!(counts.try_take(Protocol::Imap, a, Some(3)).is_none());
        assert!(counts.try_take(Protocol::Pop3, a, Some(3)).is_some(), "per service");
        assert!(counts.try_take(Protocol::Imap, b, Some(3)).is_some(), "per address");
        assert!(counts.try_take(Protocol::Imap, a, Some(0)).is_none());
        drop(held);
        assert_eq!(counts.count(Protocol::Imap, a), 0);
        assert_eq!(counts.addresses(), 0, "nothing left behind");
        assert!(counts.try_take(Protocol::Imap, a, None).is_some());
    }
}
