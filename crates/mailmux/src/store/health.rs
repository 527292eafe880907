//! Stores that could not be reached, shared by every session: a store that refused a
//! connection or did not answer it is skipped for [`DOWN_FOR`], so the users it holds fail
//! over to their next `mailHost` at once instead of each paying `BacksideTimeout` again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::route::StoreAddr;

/// How long an unreachable store is skipped.
pub const DOWN_FOR: Duration = Duration::from_secs(10);

/// Which stores are skipped, until when.
#[derive(Debug, Default)]
pub struct StoreHealth {
    down: Mutex<HashMap<StoreAddr, Instant>>,
}

impl StoreHealth {
    /// Whether `store` failed within the last [`DOWN_FOR`].
    pub fn is_down(&self, store: &StoreAddr) -> bool {
        let down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        down.get(store).is_some_and(|until| Instant::now() < *until)
    }

    /// `store` could not be reached.
    pub fn failed(&self, store: &StoreAddr) {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        // Stores are few (they come from the directory's mailHost values); expired marks
        // are dropped here so the map cannot grow with every store that ever failed.
        down.retain(|_, until| *until > now);
        down.insert(store.clone(), now + DOWN_FOR);
    }

    /// `store` answered.
    pub fn reached(&self, store: &StoreAddr) {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        down.remove(store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_stores_are_skipped_until_they_answer() {
        let health = StoreHealth::default();
        let a = StoreAddr { host: "127.0.0.9".into(), port: 143 };
        assert!(!health.is_down(&a));
        health.failed(&a);
        assert!(health.is_down(&a));
        health.reached(&a);
        assert!(!health.is_down(&a));
    }
}
