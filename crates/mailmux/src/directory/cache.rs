//! The route cache (`LdapCacheSize`, `LdapCacheTTL`, `LdapCacheMaxStale`): a [`Directory`]
//! that remembers another's answers.
//!
//! ```text
//! find(query) ── fresh answer cached? ──yes──▶ the answer (the directory is not asked)
//!                     │ no (absent, or older than LdapCacheTTL)
//!                     ▼
//!              one lookup per query at a time (single-flight): the others wait for it
//!                     │
//!        ok ──▶ cached, answered          unavailable ──▶ an entry cached less than
//!                                                         LdapCacheMaxStale ago is answered
//!                                                         (logged, counted); else the error
//! ```
//!
//! Entries (and "no such entry" answers, for at most [`MISS_TTL`]) are cached whole, shared
//! (`Arc`), keyed by the whole query (base, scope, filter, attributes). Passwords are never
//! cached here: a cached route still sends the client's credentials to the store. The
//! storage ([`RouteCache`]) belongs to the server, not to a configuration generation, so a
//! reload will keep it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use mailmux_proto::Secret;

use super::{Aliases, Base, BoxFuture, CacheState, Directory, DirectoryError, Entry, Query, Scope};
use crate::control::metrics::{CacheResult, Metrics};

/// How long "no such entry" is remembered at most: a user created a moment ago should not
/// wait a whole `LdapCacheTTL` to log in.
pub const MISS_TTL: Duration = Duration::from_secs(30);

/// A cached answer.
#[derive(Debug)]
struct Cached {
    found: Option<Arc<Entry>>,
    at: Instant,
}

/// What the cache has done, for logs, metrics and tests.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Answered from the cache, fresh.
    pub hits: AtomicU64,
    /// Asked the directory (absent or expired).
    pub lookups: AtomicU64,
    /// Answered from the cache past the TTL because the directory could not answer.
    pub stale: AtomicU64,
}

/// The cached answers of one service, for the life of the server.
pub struct RouteCache {
    answers: moka::sync::Cache<String, Arc<Cached>>,
    /// One lock per query being looked up: the single flight.
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// What it has done.
    pub counters: CacheCounters,
}

impl std::fmt::Debug for RouteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteCache").field("entries", &self.answers.entry_count()).finish()
    }
}

impl RouteCache {
    /// A cache of at most `size` answers, each kept at most `keep` (the TTL plus the
    /// staleness allowed while the directory is down).
    pub fn new(size: u64, keep: Duration) -> Arc<RouteCache> {
        Arc::new(RouteCache {
            answers: moka::sync::Cache::builder().max_capacity(size).time_to_live(keep).build(),
            flights: Mutex::new(HashMap::new()),
            counters: CacheCounters::default(),
        })
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = flights.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        // Forget the flights nobody holds any more, so the map stays as small as the
        // lookups in progress.
        flights.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

/// A directory with a route cache in front.
#[derive(Debug)]
pub struct CachedDirectory {
    inner: Arc<dyn Directory>,
    cache: Arc<RouteCache>,
    ttl: Duration,
    max_stale: Duration,
    /// Where hits and misses are counted, and under which service.
    metrics: Option<(Arc<Metrics>, mailmux_config::Protocol)>,
}

impl CachedDirectory {
    /// Counts hits, misses and stale answers into `metrics` as `service`'s.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>, service: mailmux_config::Protocol) -> Self {
        self.metrics = Some((metrics, service));
        self
    }

    fn count(&self, result: CacheResult) {
        if let Some((metrics, service)) = &self.metrics {
            metrics.route_cache(*service, result);
        }
    }

    /// `inner`'s answers, kept in `cache` for `ttl`, used up to `max_stale` past it when
    /// `inner` cannot answer.
    pub fn new(inner: Arc<dyn Directory>, cache: Arc<RouteCache>, ttl: Duration, max_stale: Duration) -> Self {
        CachedDirectory { inner, cache, ttl, max_stale, metrics: None }
    }

    fn fresh(&self, cached: &Cached, now: Instant) -> bool {
        let ttl = if cached.found.is_some() { self.ttl } else { self.ttl.min(MISS_TTL) };
        now.duration_since(cached.at) < ttl
    }

    async fn find_cached(&self, query: Query<'_>) -> Result<Option<Arc<Entry>>, DirectoryError> {
        let key = key_of(&query);
        let counters = &self.cache.counters;
        if let Some(cached) = self.cache.answers.get(&key).filter(|c| self.fresh(c, Instant::now())) {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            self.count(CacheResult::Hit);
            return Ok(cached.found.clone());
        }
        let flight = self.cache.flight(&key);
        let _turn = flight.lock().await;
        // Whoever held the turn before may have just answered this very query.
        let cached = self.cache.answers.get(&key);
        if let Some(cached) = cached.as_ref().filter(|c| self.fresh(c, Instant::now())) {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            self.count(CacheResult::Hit);
            return Ok(cached.found.clone());
        }
        counters.lookups.fetch_add(1, Ordering::Relaxed);
        self.count(CacheResult::Miss);
        match self.inner.find(query).await {
            Ok(found) => {
                let found = found.map(Arc::new);
                self.cache.answers.insert(key, Arc::new(Cached { found: found.clone(), at: Instant::now() }));
                Ok(found)
            }
            Err(DirectoryError::Unavailable(reason)) => match cached.filter(|c| c.found.is_some()) {
                Some(stale) if stale.at.elapsed() < self.ttl + self.max_stale => {
                    counters.stale.fetch_add(1, Ordering::Relaxed);
                    self.count(CacheResult::Stale);
                    tracing::warn!(
                        age_s = stale.at.elapsed().as_secs(),
                        %reason,
                        "directory unavailable; using a cached route past its TTL"
                    );
                    Ok(stale.found.clone())
                }
                _ => Err(DirectoryError::Unavailable(reason)),
            },
            Err(e) => Err(e),
        }
    }
}

impl Directory for CachedDirectory {
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(async move { self.find_cached(query).await.map(|found| found.map(|e| Entry::clone(&e))) })
    }

    fn find_shared<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Arc<Entry>>, DirectoryError>> {
        Box::pin(self.find_cached(query))
    }

    fn peek(&self, query: &Query<'_>) -> CacheState {
        match self.cache.answers.get(&key_of(query)) {
            None => CacheState::Absent,
            Some(cached) if self.fresh(&cached, Instant::now()) => CacheState::Fresh,
            Some(_) => CacheState::Expired,
        }
    }

    fn authenticate<'a>(&'a self, dn: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        self.inner.authenticate(dn, password)
    }

    /// Straight from the directory: passwords are never cached here.
    fn stored_passwords<'a>(&'a self, dn: &'a str) -> BoxFuture<'a, Result<Vec<Secret>, DirectoryError>> {
        self.inner.stored_passwords(dn)
    }

    fn password_probe<'a>(
        &'a self,
        bind_dn: Option<&'a str>,
    ) -> BoxFuture<'a, Result<super::PasswordProbe, DirectoryError>> {
        self.inner.password_probe(bind_dn)
    }
}

/// The whole query as one string: NUL cannot occur in a filter (user input is escaped) or a
/// DN, so it separates the parts unambiguously.
fn key_of(query: &Query<'_>) -> String {
    let base = match &query.base {
        Base::Configured => "",
        Base::Dn(dn) => dn.as_str(),
    };
    let scope = match query.scope {
        Scope::Base => "base",
        Scope::Subtree => "sub",
    };
    let aliases = match query.aliases {
        Aliases::AtBase => "base",
        Aliases::Everywhere => "always",
    };
    format!("{base}\0{scope}\0{aliases}\0{}\0{}", query.filter, query.attrs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A directory that counts its searches, answers slowly, and can be taken down.
    #[derive(Debug, Default)]
    struct Counting {
        searches: AtomicU64,
        down: AtomicBool,
    }

    impl Directory for Counting {
        fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
            Box::pin(async move {
                self.searches.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.down.load(Ordering::Relaxed) {
                    return Err(DirectoryError::Unavailable("down".into()));
                }
                let joe = query.filter.contains("joe") || matches!(&query.base, Base::Dn(dn) if dn.contains("joe"));
                Ok(joe.then(|| Entry::new("uid=joe", [("mailhost", "store1"), ("userpassword", "secret")])))
            })
        }

        fn authenticate<'a>(&'a self, _: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>> {
            Box::pin(async move { Ok(password.expose() == b"secret") })
        }
    }

    #[tokio::test]
    async fn passwords_and_binds_go_past_the_cache() {
        let (inner, cached) = cached(Duration::from_secs(60));
        for _ in 0..3 {
            let passwords = cached.stored_passwords("uid=joe").await.unwrap();
            assert_eq!(passwords.iter().map(|p| p.expose().to_vec()).collect::<Vec<_>>(), vec![b"secret".to_vec()]);
            assert!(cached.authenticate("uid=joe", &Secret::new("secret")).await.unwrap());
        }
        assert_eq!(inner.searches.load(Ordering::Relaxed), 3, "every read of the password asked the directory");
    }

    fn query(filter: &str) -> Query<'_> {
        Query { base: Base::Configured, scope: Scope::Subtree, filter, attrs: &[], aliases: Aliases::AtBase }
    }

    fn cached(ttl: Duration) -> (Arc<Counting>, CachedDirectory) {
        let inner = Arc::new(Counting::default());
        let cache = RouteCache::new(100, ttl + Duration::from_secs(3600));
        (inner.clone(), CachedDirectory::new(inner, cache, ttl, Duration::from_secs(3600)))
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_query_cause_one_search() {
        let (inner, dir) = cached(Duration::from_secs(60));
        let dir = Arc::new(dir);
        let lookups: Vec<_> = (0..100)
            .map(|_| {
                let dir = dir.clone();
                tokio::spawn(async move { dir.find(query("(uid=joe)")).await })
            })
            .collect();
        for l in lookups {
            assert_eq!(l.await.unwrap().unwrap().unwrap().dn, "uid=joe");
        }
        assert_eq!(inner.searches.load(Ordering::Relaxed), 1);
        assert_eq!(dir.cache.counters.hits.load(Ordering::Relaxed), 99);
        // Another query is another search; a miss is cached too.
        assert!(dir.find(query("(uid=ann)")).await.unwrap().is_none());
        assert!(dir.find(query("(uid=ann)")).await.unwrap().is_none());
        assert_eq!(inner.searches.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn expired_routes_are_refreshed_and_used_stale_while_the_directory_is_down() {
        let (inner, dir) = cached(Duration::from_millis(100));
        assert!(dir.find(query("(uid=joe)")).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(dir.find(query("(uid=joe)")).await.unwrap().is_some());
        assert_eq!(inner.searches.load(Ordering::Relaxed), 2, "expired: asked again");
        inner.down.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(dir.find(query("(uid=joe)")).await.unwrap().is_some(), "stale but usable");
        assert_eq!(dir.cache.counters.stale.load(Ordering::Relaxed), 1);
        // Never cached: the directory's error.
        assert!(matches!(dir.find(query("(uid=ann)")).await, Err(DirectoryError::Unavailable(_))));
    }

    #[tokio::test]
    async fn staleness_has_a_limit() {
        let inner = Arc::new(Counting::default());
        let dir = CachedDirectory::new(
            inner.clone(),
            RouteCache::new(100, Duration::from_secs(60)),
            Duration::from_millis(50),
            Duration::from_millis(50),
        );
        assert!(dir.find(query("(uid=joe)")).await.unwrap().is_some());
        inner.down.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(dir.find(query("(uid=joe)")).await, Err(DirectoryError::Unavailable(_))));
    }

    #[test]
    fn keys_tell_queries_apart() {
        let attrs = ["mailhost".to_owned()];
        let a = key_of(&Query {
            base: Base::Configured,
            scope: Scope::Subtree,
            filter: "(uid=a)",
            attrs: &attrs,
            aliases: Aliases::AtBase,
        });
        let b = key_of(&Query {
            base: Base::Dn("o=x".into()),
            scope: Scope::Subtree,
            filter: "(uid=a)",
            attrs: &attrs,
            aliases: Aliases::AtBase,
        });
        let c = key_of(&Query {
            base: Base::Configured,
            scope: Scope::Base,
            filter: "(uid=a)",
            attrs: &attrs,
            aliases: Aliases::AtBase,
        });
        let d = key_of(&Query {
            base: Base::Configured,
            scope: Scope::Subtree,
            filter: "(uid=a)",
            attrs: &[],
            aliases: Aliases::AtBase,
        });
        assert!(a != b && a != c && a != d && b != c);
    }
}
