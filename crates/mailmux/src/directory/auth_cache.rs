//! The AuthCache (`AuthCacheSize`, `AuthCacheTTL`): successful pre-authentications,
//! remembered so that a user who logs in again within the TTL is not bound again.
//!
//! ```text
//! verify(user, password) ── remembered, younger than the TTL, same password? ──yes──▶ Cached
//!                                   │ no
//!                                   ▼
//!                one bind per user at a time (single-flight): the others wait, then look again
//!                                   │
//!                 right ──▶ remembered, Bound      wrong ──▶ Refused (never remembered)
//! ```
//!
//! **What is kept is not the password**: a random 16-byte salt per entry and
//! PBKDF2-HMAC-SHA256 of the password with it ([`ITERATIONS`] rounds), compared in constant
//! time. Reading the process's memory gives an attacker neither the password nor a fast way
//! to test guesses against it. The cost is paid on every cached login; the figure chosen
//! keeps a cached login well below the LDAP bind it replaces (see the issue notes for the
//! measurement).
//!
//! A password changed in the directory takes effect at the TTL: until then the old one is
//! still accepted from the cache (the MMP behaves the same; the TTL is the operator's
//! choice between directory load and how soon a change is seen). Wrong passwords are never
//! cached: each one reaches the directory (and counts for BadGuy).
//!
//! Entries are keyed by the directory they were proven against and the user's DN, so two
//! vdmap entries with different `LdapURL`s never share a proof. The cache belongs to the
//! server, not to a configuration generation: a reload keeps it.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mailmux_proto::Secret;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use super::DirectoryError;

/// PBKDF2 rounds per remembered password.
pub const ITERATIONS: u32 = 256;

/// How a password was found right, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A remembered proof, younger than the TTL.
    Cached,
    /// The directory said yes (and the proof is now remembered).
    Bound,
    /// The directory said no.
    Refused,
}

/// What the cache has done, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct AuthCounters {
    /// Logins answered from the cache.
    pub hits: AtomicU64,
    /// Binds made (cache misses and wrong passwords).
    pub binds: AtomicU64,
}

/// A remembered proof.
struct Proof {
    salt: [u8; 16],
    hash: [u8; 32],
    at: Instant,
}

impl Proof {
    fn of(password: &Secret) -> Option<Proof> {
        let mut salt = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut salt).ok()?;
        Some(Proof { salt, hash: derive(&salt, password), at: Instant::now() })
    }

    fn proves(&self, password: &Secret, ttl: Duration) -> bool {
        self.at.elapsed() < ttl && bool::from(derive(&self.salt, password).ct_eq(&self.hash))
    }
}

fn derive(salt: &[u8; 16], password: &Secret) -> [u8; 32] {
    let mut out = [0u8; 32];
    let rounds = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt, password.expose(), &mut out);
    out
}

/// The successful pre-authentications of one service, for the life of the server.
pub struct AuthCache {
    proofs: moka::sync::Cache<String, Arc<Proof>>,
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// What it has done.
    pub counters: AuthCounters,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache").field("entries", &self.proofs.entry_count()).finish()
    }
}

impl AuthCache {
    /// A cache of at most `size` proofs, none kept longer than `keep` (the longest TTL of the
    /// service and its vdmap entries; each lookup applies its own).
    pub fn new(size: u64, keep: Duration) -> Arc<AuthCache> {
        Arc::new(AuthCache {
            proofs: moka::sync::Cache::builder()
                .max_capacity(size)
                .time_to_live(keep.max(Duration::from_secs(1)))
                .build(),
            flights: Mutex::new(HashMap::new()),
            counters: AuthCounters::default(),
        })
    }

    /// Whether `password` is right for `key` (the directory and the user's DN): from a proof
    /// younger than `ttl`, else by `bind`. `ttl` zero turns the cache off for this lookup.
    pub async fn verify<F>(
        &self,
        key: &str,
        password: &Secret,
        ttl: Duration,
        bind: F,
    ) -> Result<Verdict, DirectoryError>
    where
        F: Future<Output = Result<bool, DirectoryError>>,
    {
        if self.remembers(key, password, ttl) {
            return Ok(Verdict::Cached);
        }
        let flight = self.flight(key);
        let _turn = flight.lock().await;
        // Whoever held the turn may have proven this very password meanwhile.
        if self.remembers(key, password, ttl) {
            return Ok(Verdict::Cached);
        }
        self.counters.binds.fetch_add(1, Ordering::Relaxed);
        if !bind.await? {
            return Ok(Verdict::Refused);
        }
        if !ttl.is_zero()
            && let Some(proof) = Proof::of(password)
        {
            self.proofs.insert(key.to_owned(), Arc::new(proof));
        }
        Ok(Verdict::Bound)
    }

    fn remembers(&self, key: &str, password: &Secret, ttl: Duration) -> bool {
        let hit = !ttl.is_zero() && self.proofs.get(key).is_some_and(|proof| proof.proves(password, ttl));
        if hit {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = flights.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        // Dead entries go when the map would grow; it holds only users being verified now.
        if flights.len() >= 64 {
            flights.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }

    /// Proofs held now (for tests and metrics).
    pub fn len(&self) -> u64 {
        self.proofs.run_pending_tasks();
        self.proofs.entry_count()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key of a user's proof: the directory (its URLs and bind identity) and the DN. NUL
/// occurs in neither, so it separates them.
pub fn key_of(directory: &str, dn: &str) -> String {
    format!("{directory}\0{}", dn.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pw(s: &str) -> Secret {
        Secret::new(s)
    }

    #[tokio::test]
    async fn a_cached_proof_skips_the_bind_until_the_ttl() {
        let cache = AuthCache::new(100, Duration::from_secs(60));
        let binds = AtomicUsize::new(0);
        let binds = &binds;
        let bind = |ok: bool| async move {
            binds.fetch_add(1, Ordering::Relaxed);
            Ok(ok)
        };
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.verify("k", &pw("right"), ttl, bind(true)).await.unwrap(), Verdict::Bound);
        assert_eq!(cache.verify("k", &pw("right"), ttl, bind(true)).await.unwrap(), Verdict::Cached);
        assert_eq!(binds.load(Ordering::Relaxed), 1);
        // Another password is not proven by the cached one: it goes to the directory.
        assert_eq!(cache.verify("k", &pw("wrong"), ttl, bind(false)).await.unwrap(), Verdict::Refused);
        assert_eq!(binds.load(Ordering::Relaxed), 2);
        // A shorter TTL (a vdmap entry's) makes the same proof too old.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let short = Duration::from_millis(10);
        assert_eq!(cache.verify("k", &pw("right"), short, bind(true)).await.unwrap(), Verdict::Bound);
        // TTL 0: no cache at all.
        assert_eq!(cache.verify("k", &pw("right"), Duration::ZERO, bind(true)).await.unwrap(), Verdict::Bound);
        assert_eq!(binds.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn failures_and_errors_are_not_remembered() {
        let cache = AuthCache::new(100, Duration::from_secs(60));
        let ttl = Duration::from_secs(60);
        assert_eq!(cache.verify("k", &pw("x"), ttl, async { Ok(false) }).await.unwrap(), Verdict::Refused);
        let down = cache.verify("k", &pw("x"), ttl, async { Err(DirectoryError::Unavailable("down".into())) }).await;
        assert!(down.is_err());
        assert!(cache.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_logins_of_one_user_bind_once() {
        let cache = AuthCache::new(100, Duration::from_secs(60));
        let binds = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, binds) = (cache.clone(), binds.clone());
            tasks.push(tokio::spawn(async move {
                let bind = async {
                    binds.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(true)
                };
                cache.verify("k", &pw("right"), Duration::from_secs(60), bind).await.unwrap()
            }));
        }
        let mut verdicts = Vec::new();
        for task in tasks {
            verdicts.push(task.await.unwrap());
        }
        assert_eq!(binds.load(Ordering::Relaxed), 1);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Bound).count(), 1);
        assert_eq!(cache.counters.hits.load(Ordering::Relaxed), 49);
    }

    #[test]
    fn what_is_kept_is_neither_the_password_nor_the_same_for_two_users() {
        let (a, b) = (Proof::of(&pw("hunter2")).unwrap(), Proof::of(&pw("hunter2")).unwrap());
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.hash, b.hash, "salted: equal passwords do not look equal");
        assert!(!a.hash.windows(7).any(|w| w == b"hunter2"));
        assert!(a.proves(&pw("hunter2"), Duration::from_secs(1)));
        assert!(!a.proves(&pw("hunter3"), Duration::from_secs(1)));
        assert_eq!(key_of("ldap://a/o=x", "UID=Joe,o=x"), key_of("ldap://a/o=x", "uid=joe,o=x"));
        assert_ne!(key_of("ldap://a/o=x", "uid=joe,o=x"), key_of("ldap://b/o=x", "uid=joe,o=x"));
    }
}
