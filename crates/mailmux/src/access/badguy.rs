//! BadGuy: addresses that fail to log in wait longer for their next answer.
//!
//! The MMP's scheme (`BGPenalty`, `BGMaxBadness`, `BGDecay`, `BGLinear`, `BGMax`,
//! `BGExcluded`): each failed login from an address adds `BGPenalty` to its *badness*, up to
//! `BGMaxBadness`; the address's next authentication waits for its badness before it is
//! looked at (a success still waits, then clears the record). Authentications from one
//! address take turns: each starts a full badness after the one before it, so twenty
//! parallel connections guess no faster than one. Badness lasts `BGDecay` after
//! the last failure — all of it until then, or shrinking linearly with `BGLinear`. IPv6
//! addresses count per /64, since one host usually holds a whole /64.
//!
//! The table lives in the server, outside any configuration generation, so a reload keeps
//! it; the parameters come with each call from the session's generation. It tracks at most
//! `BGMax` addresses: past that, the address whose record is oldest is forgotten first (a
//! FIFO with lazy deletion, so a flood of new addresses costs O(1) each).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use mailmux_config::edge::BadGuyConfig;
use tokio::time::Instant;

use super::IpKey;

#[derive(Debug, Clone, Copy)]
struct Record {
    /// Badness at the last failure.
    badness: Duration,
    last_failure: Instant,
    /// Which entry of the FIFO is this record's current one.
    stamp: u64,
    /// When the last authentication given a turn may start.
    last_turn: Instant,
}

#[derive(Debug, Default)]
struct Table {
    records: HashMap<IpKey, Record>,
    /// Insertion order, oldest first; entries whose stamp no longer matches are stale.
    order: VecDeque<(IpKey, u64)>,
    next_stamp: u64,
}

/// The penalty table of one service.
#[derive(Debug, Default)]
pub struct BadGuys {
    table: Mutex<Table>,
}

impl BadGuys {
    /// An empty table.
    pub fn new() -> BadGuys {
        BadGuys::default()
    }

    /// How long an authentication from `key` must wait now (its badness, without taking a
    /// turn).
    pub fn penalty(&self, cfg: &BadGuyConfig, key: IpKey, now: Instant) -> Duration {
        let table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        table.records.get(&key).map_or(Duration::ZERO, |r| current(cfg, r, now))
    }

    /// Gives an authentication from `key` its turn: how long it must wait, a full badness
    /// after the turn before it.
    pub fn take_turn(&self, cfg: &BadGuyConfig, key: IpKey, now: Instant) -> Duration {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(record) = table.records.get_mut(&key) else { return Duration::ZERO };
        let badness = current(cfg, record, now);
        if badness.is_zero() {
            return Duration::ZERO;
        }
        let start = record.last_turn.max(now) + badness;
        record.last_turn = start;
        start - now
    }

    /// Records a failed login; returns the address's new badness.
    pub fn failed(&self, cfg: &BadGuyConfig, key: IpKey, now: Instant) -> Duration {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (before, last_turn) =
            table.records.get(&key).map_or((Duration::ZERO, now), |r| (current(cfg, r, now), r.last_turn));
        let badness = (before + cfg.penalty).min(cfg.max_badness);
        let stamp = table.next_stamp;
        table.next_stamp += 1;
        table.records.insert(key, Record { badness, last_failure: now, stamp, last_turn });
        table.order.push_back((key, stamp));
        while table.records.len() > cfg.max_tracked.max(1) {
            let Some((oldest, stamp)) = table.order.pop_front() else { break };
            if table.records.get(&oldest).is_some_and(|r| r.stamp == stamp) {
                table.records.remove(&oldest);
            }
        }
        // Stale FIFO entries (re-failures) are dropped as they reach the front; keep the queue
        // from growing past twice the table when one address fails over and over.
        if table.order.len() > 2 * table.records.len() + 64 {
            let Table { records, order, .. } = &mut *table;
            order.retain(|(k, s)| records.get(k).is_some_and(|r| r.stamp == *s));
        }
        badness
    }

    /// A successful login clears the address's record.
    pub fn succeeded(&self, key: IpKey) {
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        table.records.remove(&key);
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).records.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A record's badness at `now`.
fn current(cfg: &BadGuyConfig, r: &Record, now: Instant) -> Duration {
    let age = now.saturating_duration_since(r.last_failure);
    if age >= cfg.decay {
        return Duration::ZERO;
    }
    if cfg.linear {
        let left = (cfg.decay - age).as_secs_f64() / cfg.decay.as_secs_f64();
        r.badness.mul_f64(left)
    } else {
        r.badness
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn key(s: &str) -> IpKey {
        IpKey::of(s.parse::<IpAddr>().unwrap())
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn failures_add_up_to_the_maximum_and_decay() {
        let cfg = BadGuyConfig::default(); // 2 s per failure, 60 s at most, 900 s decay
        let t = BadGuys::new();
        let now = Instant::now();
        let a = key("192.0.2.1");
        assert_eq!(t.penalty(&cfg, a, now), Duration::ZERO);
        assert_eq!(t.failed(&cfg, a, now), 2 * S);
        assert_eq!(t.failed(&cfg, a, now), 4 * S);
        assert_eq!(t.penalty(&cfg, a, now + 899 * S), 4 * S, "all of it until the decay");
        assert_eq!(t.penalty(&cfg, a, now + 900 * S), Duration::ZERO);
        for _ in 0..100 {
            t.failed(&cfg, a, now);
        }
        assert_eq!(t.penalty(&cfg, a, now), 60 * S);
        assert_eq!(t.penalty(&cfg, key("192.0.2.2"), now), Duration::ZERO, "others are not touched");
        t.succeeded(a);
        assert_eq!(t.penalty(&cfg, a, now), Duration::ZERO);
    }

    #[test]
    fn parallel_authentications_take_turns() {
        let cfg = BadGuyConfig::default();
        let t = BadGuys::new();
        let now = Instant::now();
        let a = key("192.0.2.1");
        assert_eq!(t.take_turn(&cfg, a, now), Duration::ZERO, "no record, no wait");
        t.failed(&cfg, a, now);
        let waits: Vec<Duration> = (0..4).map(|_| t.take_turn(&cfg, a, now)).collect();
        assert_eq!(waits, vec![2 * S, 4 * S, 6 * S, 8 * S]);
        // Later, once the queue has passed, the wait is one badness again.
        assert_eq!(t.take_turn(&cfg, a, now + 60 * S), 2 * S);
        assert_eq!(t.take_turn(&cfg, key("192.0.2.2"), now), Duration::ZERO);
    }

    #[test]
    fn linear_decay() {
        let cfg = BadGuyConfig { linear: true, decay: 100 * S, ..BadGuyConfig::default() };
        let t = BadGuys::new();
        let now = Instant::now();
        let a = key("192.0.2.1");
        t.failed(&cfg, a, now);
        t.failed(&cfg, a, now);
        assert_eq!(t.penalty(&cfg, a, now + 50 * S), 2 * S);
        // A failure on top of a half-decayed badness adds to what is left.
        assert_eq!(t.failed(&cfg, a, now + 50 * S), 4 * S);
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_is_bounded() {
        let cfg = BadGuyConfig { max_tracked: 100, ..BadGuyConfig::default() };
        let t = BadGuys::new();
        let now = Instant::now();
        t.failed(&cfg, key("2001:db8:1:2::1"), now);
        assert_eq!(t.penalty(&cfg, key("2001:db8:1:2:ffff::9"), now), 2 * S, "same /64");
        assert_eq!(t.penalty(&cfg, key("2001:db8:1:3::1"), now), Duration::ZERO);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0xc000_0000u32 + i));
            t.failed(&cfg, IpKey::of(ip), now);
            // One address failing over and over must not grow the queue either.
            t.failed(&cfg, key("198.51.100.7"), now);
        }
        assert!(t.len() <= 100, "{}", t.len());
        assert!(t.table.lock().unwrap().order.len() <= 2 * 100 + 64 + 2);
    }
}
