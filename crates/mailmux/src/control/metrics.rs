//! The Prometheus metrics: counters, gauges and histograms with bounded labels, rendered in
//! the text exposition format (version 0.0.4).
//!
//! Hand-rolled rather than taken from a crate: every label value comes from a closed enum
//! (`service`, `phase`, `outcome`, `reason`, `direction`, `op`, `result`) or from the capped
//! table of store names, so each metric is a fixed array of atomics indexed by those enums.
//! Nothing is registered at run time and nothing is allocated per event; a scrape walks the
//! arrays. The crates that would do this (`prometheus-client`, `metrics` with its exporter)
//! bring a registry to thread through or a global recorder, which would mix the counts of the
//! several servers a test binary runs.
//!
//! No user name, client address or other peer-chosen text is ever a label. Store names come
//! from the directory (operator data) and are capped at [`MAX_STORES`]; past that, stores
//! are counted as `store="other"`.
//!
//! The [`Metrics`] belong to the server, outside any configuration generation, so a reload
//! does not reset them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailmux_config::Protocol;

use crate::directory::auth_cache::Verdict;
use crate::outcome::{LoginOutcome, Outcome, Refusal};
use crate::relay::Direction;
use crate::route::StoreAddr;

/// Distinct store labels at most; further stores share `store="other"`.
pub const MAX_STORES: usize = 256;

/// Upper bounds of the latency histograms' buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

const SERVICES: [Protocol; 2] = [Protocol::Imap, Protocol::Pop3];

fn service_index(protocol: Protocol) -> usize {
    match protocol {
        Protocol::Imap => 0,
        Protocol::Pop3 => 1,
    }
}

/// Where a session is in its life: the `phase` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Admitted, not logged in yet.
    PreLogin,
    /// Logged in, relaying.
    Relay,
}

impl Phase {
    const ALL: [Phase; 2] = [Phase::PreLogin, Phase::Relay];

    fn as_str(self) -> &'static str {
        match self {
            Phase::PreLogin => "prelogin",
            Phase::Relay => "relay",
        }
    }
}

/// A directory operation: the `op` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryOp {
    /// A search (routing, hosted domains, certificate mapping, passwords for CRAMs).
    Search,
    /// A bind as the user (PreAuth).
    Bind,
}

/// How a directory operation ended: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryResult {
    /// An entry found, or a bind accepted.
    Found,
    /// No entry, or a bind refused.
    NotFound,
    /// The directory could not answer.
    Error,
}

/// What the route cache did for a lookup: the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Answered from the cache.
    Hit,
    /// Asked the directory.
    Miss,
    /// Answered from the cache past its TTL because the directory could not answer.
    Stale,
}

/// A histogram with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative), the last one for values above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of the observations, in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let i = LATENCY_BUCKETS.iter().position(|&le| seconds <= le).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        cumulative += self.buckets[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// The latencies of one store.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// TCP connects (failed ones included).
    pub connect: Histogram,
    /// Logins, TLS to the store included (failed ones included).
    pub login: Histogram,
}

/// Every metric of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: [AtomicU64; 2],
    live: [[AtomicI64; 2]; 2],
    sessions_ended: [[AtomicU64; Outcome::ALL.len()]; 2],
    logins: [[AtomicU64; LoginOutcome::ALL.len()]; 2],
    refusals: [[AtomicU64; Refusal::ALL.len()]; 2],
    badguy_delays: [AtomicU64; 2],
    badguy_penalties: [AtomicU64; 2],
    route_cache: [[AtomicU64; 3]; 2],
    preauth: [[AtomicU64; 3]; 2],
    directory: [[[Histogram; 3]; 2]; 2],
    bytes: [[AtomicU64; 2]; 2],
    reloads: [AtomicU64; 2],
    stores: Mutex<HashMap<StoreAddr, Arc<StoreMetrics>>>,
    other_store: Arc<StoreMetrics>,
}

/// Counts a session in a phase while it is held: dropped, the session leaves the gauge.
#[derive(Debug)]
pub struct PhaseGuard {
    metrics: Arc<Metrics>,
    service: usize,
    phase: Phase,
}

impl PhaseGuard {
    /// The session moved on to `phase`.
    pub fn advance(&mut self, phase: Phase) {
        self.metrics.live[self.service][self.phase as usize].fetch_sub(1, Ordering::Relaxed);
        self.phase = phase;
        self.metrics.live[self.service][phase as usize].fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.metrics.live[self.service][self.phase as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// New, all zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// A connection was accepted.
    pub fn connection(&self, service: Protocol) {
        inc(&self.connections[service_index(service)]);
    }

    /// A session was admitted: counted in `phase` until the guard is dropped.
    pub fn enter(self: &Arc<Self>, service: Protocol, phase: Phase) -> PhaseGuard {
        let service = service_index(service);
        self.live[service][phase as usize].fetch_add(1, Ordering::Relaxed);
        PhaseGuard { metrics: self.clone(), service, phase }
    }

    /// A session ended.
    pub fn session_ended(&self, service: Protocol, outcome: Outcome) {
        inc(&self.sessions_ended[service_index(service)][outcome.index()]);
    }

    /// A login attempt ended.
    pub fn login(&self, service: Protocol, outcome: LoginOutcome) {
        inc(&self.logins[service_index(service)][outcome.index()]);
    }

    /// A connection was turned away.
    pub fn refused(&self, service: Protocol, refusal: Refusal) {
        inc(&self.refusals[service_index(service)][refusal.index()]);
    }

    /// BadGuy held a login attempt back.
    pub fn badguy_delay(&self, service: Protocol) {
        inc(&self.badguy_delays[service_index(service)]);
    }

    /// BadGuy recorded a bad guess.
    pub fn badguy_penalty(&self, service: Protocol) {
        inc(&self.badguy_penalties[service_index(service)]);
    }

    /// The route cache answered (or not).
    pub fn route_cache(&self, service: Protocol, result: CacheResult) {
        inc(&self.route_cache[service_index(service)][result as usize]);
    }

    /// PreAuth checked a password: from the AuthCache, by a bind, or refused.
    pub fn preauth(&self, service: Protocol, verdict: Verdict) {
        let i = match verdict {
            Verdict::Cached => 0,
            Verdict::Bound => 1,
            Verdict::Refused => 2,
        };
        inc(&self.preauth[service_index(service)][i]);
    }

    /// A directory operation took `took`.
    pub fn directory(&self, service: Protocol, op: DirectoryOp, result: DirectoryResult, took: Duration) {
        self.directory[service_index(service)][op as usize][result as usize].observe(took);
    }

    /// Bytes relayed.
    pub fn bytes(&self, service: Protocol, direction: Direction, n: u64) {
        self.bytes[service_index(service)][direction as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// A reload was made (`ok`) or refused.
    pub fn reload(&self, ok: bool) {
        inc(&self.reloads[usize::from(!ok)]);
    }

    /// The latencies of a store, or of `other` past [`MAX_STORES`]. Keyed by the address
    /// itself: a login formats nothing here (the label is written when metrics are read).
    pub fn store(&self, store: &StoreAddr) -> Arc<StoreMetrics> {
        let mut stores = self.stores.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = stores.get(store) {
            return found.clone();
        }
        if stores.len() >= MAX_STORES {
            return self.other_store.clone();
        }
        let fresh = Arc::new(StoreMetrics::default());
        stores.insert(store.clone(), fresh.clone());
        fresh
    }

    /// Renders every metric; `live_per_store` lists the store of each relayed session.
    pub fn render(&self, live_per_store: &[String], session_limit: usize) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        header(&mut out, "mailmux_connections_total", "counter", "Connections accepted, by service.");
        for s in SERVICES {
            let _ = writeln!(
                out,
                "mailmux_connections_total{{service=\"{}\"}} {}",
                s.as_str(),
                load(&self.connections[service_index(s)])
            );
        }
        header(&mut out, "mailmux_sessions", "gauge", "Sessions now, by service and phase (prelogin, relay).");
        for s in SERVICES {
            for p in Phase::ALL {
                let n = self.live[service_index(s)][p as usize].load(Ordering::Relaxed).max(0);
                let _ = writeln!(out, "mailmux_sessions{{service=\"{}\",phase=\"{}\"}} {n}", s.as_str(), p.as_str());
            }
        }
        header(
            &mut out,
            "mailmux_session_limit",
            "gauge",
            "Sessions allowed at once (MaxSessions or the descriptor limit).",
        );
        let _ = writeln!(out, "mailmux_session_limit {session_limit}");
        header(
            &mut out,
            "mailmux_sessions_ended_total",
            "counter",
            "Sessions ended, by service and outcome (the summary line's word).",
        );
        for s in SERVICES {
            for o in Outcome::ALL {
                let n = load(&self.sessions_ended[service_index(s)][o.index()]);
                let _ = writeln!(out, "mailmux_sessions_ended_total{{service=\"{}\",outcome=\"{o}\"}} {n}", s.as_str());
            }
        }
        header(&mut out, "mailmux_logins_total", "counter", "Login attempts, by service and outcome.");
        for s in SERVICES {
            for o in LoginOutcome::ALL {
                let n = load(&self.logins[service_index(s)][o.index()]);
                let _ =
                    writeln!(out, "mailmux_logins_total{{service=\"{}\",outcome=\"{}\"}} {n}", s.as_str(), o.as_str());
            }
        }
        header(
            &mut out,
            "mailmux_refusals_total",
            "counter",
            "Connections turned away before the greeting, by service and reason.",
        );
        for s in SERVICES {
            for r in Refusal::ALL {
                let n = load(&self.refusals[service_index(s)][r.index()]);
                let _ =
                    writeln!(out, "mailmux_refusals_total{{service=\"{}\",reason=\"{}\"}} {n}", s.as_str(), r.as_str());
            }
        }
        header(
            &mut out,
            "mailmux_badguy_delays_total",
            "counter",
            "Login attempts held back by a BadGuy penalty, by service.",
        );
        for s in SERVICES {
            let _ = writeln!(
                out,
                "mailmux_badguy_delays_total{{service=\"{}\"}} {}",
                s.as_str(),
                load(&self.badguy_delays[service_index(s)])
            );
        }
        header(
            &mut out,
            "mailmux_badguy_penalties_total",
            "counter",
            "Bad guesses that added BadGuy badness, by service.",
        );
        for s in SERVICES {
            let _ = writeln!(
                out,
                "mailmux_badguy_penalties_total{{service=\"{}\"}} {}",
                s.as_str(),
                load(&self.badguy_penalties[service_index(s)])
            );
        }
        header(
            &mut out,
            "mailmux_route_cache_total",
            "counter",
            "Route cache lookups, by service and result (hit, miss, stale).",
        );
        for s in SERVICES {
            for (i, r) in ["hit", "miss", "stale"].iter().enumerate() {
                let n = load(&self.route_cache[service_index(s)][i]);
                let _ = writeln!(out, "mailmux_route_cache_total{{service=\"{}\",result=\"{r}\"}} {n}", s.as_str());
            }
        }
        header(
            &mut out,
            "mailmux_preauth_total",
            "counter",
            "PreAuth password checks, by service and result (cached: the AuthCache; bound: a bind; refused).",
        );
        for s in SERVICES {
            for (i, r) in ["cached", "bound", "refused"].iter().enumerate() {
                let n = load(&self.preauth[service_index(s)][i]);
                let _ = writeln!(out, "mailmux_preauth_total{{service=\"{}\",result=\"{r}\"}} {n}", s.as_str());
            }
        }
        header(
            &mut out,
            "mailmux_directory_seconds",
            "histogram",
            "Directory operations (the route cache's misses), by service, op and result.",
        );
        for s in SERVICES {
            for (o, op) in ["search", "bind"].iter().enumerate() {
                for (r, result) in ["found", "not-found", "error"].iter().enumerate() {
                    let labels = format!("service=\"{}\",op=\"{op}\",result=\"{result}\"", s.as_str());
                    self.directory[service_index(s)][o][r].render(&mut out, "mailmux_directory_seconds", &labels);
                }
            }
        }
        header(
            &mut out,
            "mailmux_relayed_bytes_total",
            "counter",
            "Bytes relayed after login, by service and direction.",
        );
        for s in SERVICES {
            for (d, direction) in ["client-to-store", "store-to-client"].iter().enumerate() {
                let n = load(&self.bytes[service_index(s)][d]);
                let _ = writeln!(
                    out,
                    "mailmux_relayed_bytes_total{{service=\"{}\",direction=\"{direction}\"}} {n}",
                    s.as_str()
                );
            }
        }
        header(&mut out, "mailmux_reloads_total", "counter", "Configuration reloads, by result (ok, refused).");
        let _ = writeln!(out, "mailmux_reloads_total{{result=\"ok\"}} {}", load(&self.reloads[0]));
        let _ = writeln!(out, "mailmux_reloads_total{{result=\"refused\"}} {}", load(&self.reloads[1]));
        self.render_stores(&mut out, live_per_store);
        out
    }

    fn render_stores(&self, out: &mut String, live_per_store: &[String]) {
        let mut stores: Vec<(String, Arc<StoreMetrics>)> = self
            .stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(store, m)| (store.to_string(), m.clone()))
            .collect();
        stores.sort_by(|a, b| a.0.cmp(&b.0));
        if self.other_store.connect.count() > 0 || self.other_store.login.count() > 0 {
            stores.push(("other".to_owned(), self.other_store.clone()));
        }
        let mut live: HashMap<&str, u64> = stores.iter().map(|(name, _)| (name.as_str(), 0)).collect();
        for store in live_per_store {
            // Stores past the cap have no label of their own.
            match live.get_mut(store.as_str()) {
                Some(count) => *count += 1,
                None => *live.entry("other").or_insert(0) += 1,
            }
        }
        header(out, "mailmux_store_sessions", "gauge", "Relayed sessions now, by store.");
        let mut names: Vec<&&str> = live.keys().collect();
        names.sort();
        for name in names {
            let _ = writeln!(out, "mailmux_store_sessions{{store=\"{}\"}} {}", escape(name), live[*name]);
        }
        header(
            out,
            "mailmux_store_connect_seconds",
            "histogram",
            "TCP connects to stores (failures included), by store.",
        );
        for (name, m) in &stores {
            m.connect.render(out, "mailmux_store_connect_seconds", &format!("store=\"{}\"", escape(name)));
        }
        header(
            out,
            "mailmux_store_login_seconds",
            "histogram",
            "Logins at stores, TLS included (failures included), by store.",
        );
        for (name, m) in &stores {
            m.login.render(out, "mailmux_store_login_seconds", &format!("store=\"{}\"", escape(name)));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format quotes it (backslash, quote and newline escaped).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{series} missing"))
            .parse()
            .unwrap_or_else(|e| panic!("{series}: {e}"))
    }

    #[test]
    fn counters_gauges_and_histograms_render() {
        let m = Metrics::new();
        m.connection(Protocol::Imap);
        m.login(Protocol::Pop3, LoginOutcome::AuthFailed);
        m.refused(Protocol::Imap, Refusal::ConnLimit);
        m.bytes(Protocol::Imap, Direction::Down, 1000);
        m.route_cache(Protocol::Imap, CacheResult::Hit);
        m.directory(Protocol::Imap, DirectoryOp::Search, DirectoryResult::Found, Duration::from_millis(3));
        m.store(&StoreAddr { host: "127.0.0.2".into(), port: 143 }).connect.observe(Duration::from_millis(20));
        let mut guard = m.enter(Protocol::Imap, Phase::PreLogin);
        let text = m.render(&[], 100);
        assert_eq!(value(&text, "mailmux_connections_total{service=\"imap\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_sessions{service=\"imap\",phase=\"prelogin\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_logins_total{service=\"pop3\",outcome=\"auth-failed\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_refusals_total{service=\"imap\",reason=\"conn-limit\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_relayed_bytes_total{service=\"imap\",direction=\"store-to-client\"}"), 1000.0);
        assert_eq!(value(&text, "mailmux_route_cache_total{service=\"imap\",result=\"hit\"}"), 1.0);
        let dir = "service=\"imap\",op=\"search\",result=\"found\"";
        assert_eq!(value(&text, &format!("mailmux_directory_seconds_bucket{{{dir},le=\"0.0025\"}}")), 0.0);
        assert_eq!(value(&text, &format!("mailmux_directory_seconds_bucket{{{dir},le=\"0.005\"}}")), 1.0);
        assert_eq!(value(&text, &format!("mailmux_directory_seconds_bucket{{{dir},le=\"+Inf\"}}")), 1.0);
        assert_eq!(value(&text, &format!("mailmux_directory_seconds_count{{{dir}}}")), 1.0);
        assert_eq!(value(&text, "mailmux_store_connect_seconds_count{store=\"127.0.0.2:143\"}"), 1.0);
        guard.advance(Phase::Relay);
        let text = m.render(&["127.0.0.2:143".into(), "elsewhere:143".into()], 100);
        assert_eq!(value(&text, "mailmux_sessions{service=\"imap\",phase=\"prelogin\"}"), 0.0);
        assert_eq!(value(&text, "mailmux_sessions{service=\"imap\",phase=\"relay\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_store_sessions{store=\"127.0.0.2:143\"}"), 1.0);
        assert_eq!(value(&text, "mailmux_store_sessions{store=\"other\"}"), 1.0);
        drop(guard);
        let text = m.render(&[], 100);
        assert_eq!(value(&text, "mailmux_sessions{service=\"imap\",phase=\"relay\"}"), 0.0);
        // Every sample line belongs to a declared metric.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let base = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")) || text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }

    #[test]
    fn store_labels_are_capped_and_escaped() {
        let m = Metrics::new();
        for i in 0..MAX_STORES + 50 {
            m.store(&StoreAddr { host: format!("store{i}"), port: 143 }).login.observe(Duration::from_millis(1));
        }
        m.store(&StoreAddr { host: "evil\"\n}".into(), port: 143 }).login.observe(Duration::from_millis(1));
        let text = m.render(&[], 1);
        let labelled = text.lines().filter(|l| l.starts_with("mailmux_store_login_seconds_count{")).count();
        assert_eq!(labelled, MAX_STORES + 1, "capped, plus other");
        assert_eq!(value(&text, "mailmux_store_login_seconds_count{store=\"other\"}"), 51.0);
        assert_eq!(escape("evil\"\n}\\"), "evil\\\"\\n}\\\\");
    }
}
