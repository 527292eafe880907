//! Connections counted by who they come from: per service and address for `ConnLimits`
//! (IPv6 per /64, see [`super::IpKey`]), and per network for the pre-login share
//! ([`super::NetKey`]).
//!
//! Each counted connection holds a [`ConnSlot`]; dropping the slot gives it back. The counts
//! live in the server, outside any configuration generation; the limits come from the
//! session's generation.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Connection counts per key.
#[derive(Debug)]
pub struct ConnCounts<K> {
    counts: Mutex<HashMap<K, u32>>,
}

impl<K> Default for ConnCounts<K> {
    fn default() -> Self {
        ConnCounts { counts: Mutex::new(HashMap::new()) }
    }
}

impl<K: Copy + Eq + Hash> ConnCounts<K> {
    /// Takes a slot for `key` unless it already has `limit` connections.
    pub fn try_take(self: &Arc<Self>, key: K, limit: Option<u32>) -> Option<ConnSlot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        if limit.is_some_and(|l| *count >= l) {
            if *count == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(ConnSlot { counts: self.clone(), key })
    }

    /// Connections counted for `key` now.
    pub fn count(&self, key: K) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.get(&key).copied().unwrap_or(0)
    }

    /// Addresses with at least one connection.
    pub fn addresses(&self) -> usize {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnSlot<K: Copy + Eq + Hash> {
    counts: Arc<ConnCounts<K>>,
    key: K,
}

impl<K: Copy + Eq + Hash> Drop for ConnSlot<K> {
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

    use crate::access::IpKey;
    use mailmux_config::Protocol;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let counts = Arc::new(ConnCounts::default());
        let a = IpKey::of("192.0.2.1".parse().unwrap());
        let b = IpKey::of("192.0.2.2".parse().unwrap());
        let held: Vec<_> = (0..3).map(|_| counts.try_take((Protocol::Imap, a), Some(3)).unwrap()).collect();
        assert!(counts.try_take((Protocol::Imap, a), Some(3)).is_none());
        assert!(counts.try_take((Protocol::Pop3, a), Some(3)).is_some(), "per service");
        assert!(counts.try_take((Protocol::Imap, b), Some(3)).is_some(), "per address");
        assert!(counts.try_take((Protocol::Imap, a), Some(0)).is_none());
        drop(held);
        assert_eq!(counts.count((Protocol::Imap, a)), 0);
        assert_eq!(counts.addresses(), 0, "nothing left behind");
        assert!(counts.try_take((Protocol::Imap, a), None).is_some());
    }
}
