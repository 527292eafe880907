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
    /// The stores a login tries, in order: those not marked down, or only the first when
    /// every one is (one attempt is enough to say so). `mailmux admin explain` shows the
    /// same choice.
    pub fn candidates<'a>(&self, stores: &'a [StoreAddr]) -> Vec<&'a StoreAddr> {
        let up: Vec<&StoreAddr> = stores.iter().filter(|s| !self.is_down(s)).collect();
        if up.is_empty() { stores.first().into_iter().collect() } else { up }
    }

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

    #[test]
    fn candidates_skip_stores_marked_down_or_keep_the_first_when_all_are() {
        let health = StoreHealth::default();
        let stores: Vec<StoreAddr> =
            ["127.0.0.9", "127.0.0.10", "127.0.0.11"].map(|h| StoreAddr { host: h.into(), port: 143 }).into();
        assert_eq!(health.candidates(&stores).len(), 3);
        health.failed(&stores[0]);
        assert_eq!(health.candidates(&stores), [&stores[1], &stores[2]]);
        health.failed(&stores[1]);
        health.failed(&stores[2]);
        assert_eq!(health.candidates(&stores), [&stores[0]]);
        assert!(health.candidates(&[]).is_empty());
    }
}
