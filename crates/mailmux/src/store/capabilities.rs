//! What the stores offer before login, learned from them, and what mailmux advertises in
//! their place (must-have 6: `Capability` without writing it).
//!
//! **Which stores.** The directory names stores one user at a time, so the set is: the stores
//! listed in `CapabilityStores`, plus every store a user has been routed to since start (all
//! candidate `mailHost`s of each login), at most [`MAX_STORES`]. A store once known stays
//! known for the life of the process, across reloads: the set lives beside the route cache,
//! outside configuration generations.
//!
//! **What is advertised.** IMAP: `IMAP4rev1`, then every item all stores that answered share,
//! in the first store's order, without the items that depend on the connection and that
//! mailmux adds itself (`STARTTLS`, `LOGINDISABLED`, `AUTH=`). POP3 CAPA: the lines all
//! stores share, without those mailmux writes itself or that describe one server (`USER`,
//! `STLS`, `SASL`, `RESP-CODES`, `AUTH-RESP-CODE`, `XCLIENT`, `IMPLEMENTATION`, `CAPA`). Until a
//! store has answered, IMAP says [`mailmux_config::service::DEFAULT_IMAP_CAPABILITY`] and
//! POP3 lists only its own lines. Items are compared without regard to case.
//!
//! **When stores disagree**, the items some store offers and another lacks are logged, per
//! store, whenever what a store says changes (not at every refresh).
//!
//! Probing itself is in [`super::probe`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailmux_config::{Protocol, StoreTlsMode};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::route::StoreAddr;

/// Most stores whose capabilities are kept (configured and routed together).
pub const MAX_STORES: usize = 256;

/// How to reach a store for a probe: as its service reaches it for a login.
#[derive(Clone)]
pub struct ProbeSetup {
    /// Plain, implicit TLS or STARTTLS (probed in plaintext: what STARTTLS changes, mailmux
    /// does not take from stores anyway).
    pub tls_mode: StoreTlsMode,
    /// The service's connector toward stores, for implicit TLS.
    pub connector: Option<TlsConnector>,
    /// Limit for one probe, connecting included (`BacksideTimeout`).
    pub timeout: Duration,
}

impl std::fmt::Debug for ProbeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSetup")
            .field("tls_mode", &self.tls_mode)
            .field("connector", &self.connector.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug)]
struct Known {
    setup: ProbeSetup,
    /// What the store said last, once it has answered a probe.
    items: Option<Vec<String>>,
    /// When it is asked (again); `None`: never again (`CapabilityRefresh 0`, asked once).
    next: Option<Instant>,
}

#[derive(Debug, Default)]
struct Learned {
    stores: HashMap<StoreAddr, Known>,
    /// What the fronts advertise now; `None` until a store has answered.
    advertised: Option<Arc<[String]>>,
    refresh: Duration,
    /// Whether the "too many stores" warning was logged.
    full_said: bool,
    /// A store said something new since the last [`StoreCapabilities::publish`].
    changed: bool,
}

/// The learned capabilities of one protocol's stores, shared by every service of that
/// protocol and every generation.
#[derive(Debug)]
pub struct StoreCapabilities {
    protocol: Protocol,
    learned: Mutex<Learned>,
    /// Wakes the prober: a new store, or a refresh interval changed.
    pub(super) wake: Arc<Notify>,
    prober_started: AtomicBool,
}

impl StoreCapabilities {
    /// Nothing known yet.
    pub fn new(protocol: Protocol) -> Arc<StoreCapabilities> {
        Arc::new(StoreCapabilities {
            protocol,
            learned: Mutex::new(Learned {
                refresh: mailmux_config::store_capabilities::DEFAULT_REFRESH,
                ..Learned::default()
            }),
            wake: Arc::new(Notify::new()),
            prober_started: AtomicBool::new(false),
        })
    }

    /// The protocol whose stores these are.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `stores` exist (configured, or a user was routed there): probe the new ones soon, in
    /// one round. Cheap when they are known; starts the prober on first use (inside a runtime).
    pub fn note<'a>(self: &Arc<Self>, stores: impl IntoIterator<Item = &'a StoreAddr>, setup: &ProbeSetup) {
        let mut learned = self.lock();
        let mut added = false;
        for store in stores {
            if let Some(known) = learned.stores.get_mut(store) {
                // A reload may have changed how it is reached (TLS mode, timeout, CA or
                // client certificate): the latest generation's way; keep what it said.
                known.setup = setup.clone();
                continue;
            }
            if learned.stores.len() >= MAX_STORES {
                if !learned.full_said {
                    learned.full_said = true;
                    tracing::warn!(
                        protocol = self.protocol.as_str(),
                        max = MAX_STORES,
                        store = %store,
                        "capabilities are learned from at most {MAX_STORES} stores; this one and later ones are not asked"
                    );
                }
                continue;
            }
            let known = Known { setup: setup.clone(), items: None, next: Some(Instant::now()) };
            learned.stores.insert(store.clone(), known);
            added = true;
        }
        drop(learned);
        if added {
            self.start_prober();
            self.wake.notify_one();
        }
    }

    /// Sets how often stores are asked again (the latest configuration's `CapabilityRefresh`).
    pub fn set_refresh(&self, refresh: Duration) {
        let mut learned = self.lock();
        if learned.refresh != refresh {
            learned.refresh = refresh;
            let next = (!refresh.is_zero()).then(|| Instant::now() + refresh);
            for known in learned.stores.values_mut().filter(|k| k.items.is_some()) {
                known.next = next;
            }
            drop(learned);
            self.wake.notify_one();
        }
    }

    /// What the fronts advertise from the stores: IMAP items or POP3 CAPA lines; `None` while
    /// no store has answered.
    pub fn advertised(&self) -> Option<Arc<[String]>> {
        self.lock().advertised.clone()
    }

    fn start_prober(self: &Arc<Self>) {
        if self.prober_started.load(Ordering::Relaxed) {
            return;
        }
        // Outside a runtime (`mailmux check`), nothing is probed.
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.prober_started.swap(true, Ordering::Relaxed)
        {
            runtime.spawn(super::probe::run(Arc::downgrade(self), self.wake.clone()));
        }
    }

    /// The stores due for a probe now, and when the next one is due after them.
    pub(super) fn due(&self) -> Vec<(StoreAddr, ProbeSetup)> {
        let learned = self.lock();
        let now = Instant::now();
        learned
            .stores
            .iter()
            .filter(|(_, k)| k.next.is_some_and(|at| at <= now))
            .map(|(store, k)| (store.clone(), k.setup.clone()))
            .collect()
    }

    /// When the next store is due (perhaps already), or `None` when no store is to be asked
    /// again. Read after a round, so the times that round's answers set count.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.lock().stores.values().filter_map(|k| k.next).min()
    }

    /// A probe of `store` ended: `Some` with what it said, `None` if it could not be asked
    /// (what it said before is kept; it is asked again at the next refresh).
    pub(super) fn record(&self, store: &StoreAddr, items: Option<Vec<String>>) {
        let mut learned = self.lock();
        let refresh = learned.refresh;
        let Some(known) = learned.stores.get_mut(store) else { return };
        // An unreachable store is asked again sooner than a refresh: at most a minute.
        let wait = match &items {
            Some(_) => refresh,
            None if refresh.is_zero() => Duration::from_secs(60),
            None => refresh.min(Duration::from_secs(60)),
        };
        known.next = (!wait.is_zero()).then(|| Instant::now() + wait);
        let Some(items) = items else { return };
        let items = keep_comparable(self.protocol, items);
        if known.items.as_ref() == Some(&items) {
            return;
        }
        known.items = Some(items);
        learned.changed = true;
    }

    /// The end of a round of probes: if a store said something new, recompute what is
    /// advertised and log how the stores differ. Published once per round, so clients never
    /// see the list of the first store to answer while the others are still being asked.
    pub(super) fn publish(&self) {
        let mut learned = self.lock();
        if !std::mem::take(&mut learned.changed) {
            return;
        }
        let answered: Vec<(&StoreAddr, &Vec<String>)> =
            learned.stores.iter().filter_map(|(s, k)| k.items.as_ref().map(|i| (s, i))).collect();
        let (shared, extras) = shared_items(self.protocol, &answered);
        for (store, only_here) in &extras {
            tracing::warn!(
                protocol = self.protocol.as_str(),
                store = %store,
                only_here = only_here.join(" "),
                "stores differ in what they offer before login; advertising what all of them share"
            );
        }
        tracing::info!(
            protocol = self.protocol.as_str(),
            stores = answered.len(),
            advertised = shared.join(" "),
            "capabilities learned from the stores"
        );
        learned.advertised = Some(shared.into());
    }
}

/// Items that say nothing about the stores' common software: those mailmux writes itself
/// or that depend on the connection or name one server.
fn is_own(protocol: Protocol, item: &str) -> bool {
    let word = item.split(' ').next().unwrap_or_default().to_ascii_uppercase();
    match protocol {
        Protocol::Imap => {
            matches!(word.as_str(), "STARTTLS" | "LOGINDISABLED" | "IMAP4REV1") || word.starts_with("AUTH=")
        }
        Protocol::Pop3 => matches!(
            word.as_str(),
            "USER" | "STLS" | "SASL" | "RESP-CODES" | "AUTH-RESP-CODE" | "XCLIENT" | "IMPLEMENTATION" | "CAPA"
        ),
    }
}

/// Longest item kept (a Dovecot item is under 30 characters).
const MAX_ITEM: usize = 128;

/// Whether a store's item may reach clients as it is: an IMAP atom (RFC 9051 `atom`: no
/// control, space, `(){%*"\]` or 8-bit character, so it cannot end the `[CAPABILITY …]` code or
/// the line), or a POP3 CAPA line of printable ASCII.
fn is_clean(protocol: Protocol, item: &str) -> bool {
    !item.is_empty()
        && item.len() <= MAX_ITEM
        && match protocol {
            Protocol::Imap => item.bytes().all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)),
            Protocol::Pop3 => item.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        }
}

/// A store's items, mailmux's own and unclean ones dropped, repeats removed (first spelling kept).
fn keep_comparable(protocol: Protocol, items: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for item in items {
        if is_clean(protocol, &item) && !is_own(protocol, &item) && !kept.iter().any(|k| k.eq_ignore_ascii_case(&item))
        {
            kept.push(item);
        }
    }
    kept
}

/// What every store offers (IMAP: `IMAP4rev1` first), and per store what it offers alone or
/// with only some of the others. Stores in a stable order, so the result does not depend on
/// hashing.
fn shared_items(
    protocol: Protocol,
    answered: &[(&StoreAddr, &Vec<String>)],
) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut stores: Vec<(String, &Vec<String>)> = answered.iter().map(|(s, i)| (s.to_string(), *i)).collect();
    stores.sort_by(|a, b| a.0.cmp(&b.0));
    let everywhere = |item: &String| stores.iter().all(|(_, items)| items.iter().any(|i| i.eq_ignore_ascii_case(item)));
    let mut shared: Vec<String> = match protocol {
        Protocol::Imap => vec!["IMAP4rev1".to_owned()],
        Protocol::Pop3 => Vec::new(),
    };
    if let Some((_, first)) = stores.first() {
        shared.extend(first.iter().filter(|i| everywhere(i)).cloned());
    }
    let extras = stores
        .iter()
        .map(|(store, items)| (store.clone(), items.iter().filter(|i| !everywhere(i)).cloned().collect::<Vec<_>>()))
        .filter(|(_, only)| !only.is_empty())
        .collect();
    (shared, extras)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(last: u8) -> StoreAddr {
        StoreAddr { host: format!("127.0.0.{last}"), port: 143 }
    }

    fn items(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    fn setup() -> ProbeSetup {
        ProbeSetup { tls_mode: StoreTlsMode::Off, connector: None, timeout: Duration::from_secs(1) }
    }

    #[test]
    fn imap_advertises_what_all_share_without_connection_items() {
        let caps = StoreCapabilities::new(Protocol::Imap);
        assert_eq!(caps.advertised(), None);
        caps.note(&[store(2), store(3)], &setup());
        caps.record(&store(2), Some(items("IMAP4rev1 SASL-IR ID IDLE STARTTLS AUTH=PLAIN LITERAL+ XSTORE-A")));
        assert_eq!(caps.advertised(), None, "published at the end of a round");
        caps.publish();
        assert_eq!(caps.advertised().unwrap().join(" "), "IMAP4rev1 SASL-IR ID IDLE LITERAL+ XSTORE-A");
        caps.record(&store(3), Some(items("imap4rev1 id literal+ idle logindisabled AUTH=LOGIN")));
        caps.publish();
        assert_eq!(caps.advertised().unwrap().join(" "), "IMAP4rev1 ID IDLE LITERAL+");
        // A store that cannot be asked keeps what it said.
        caps.record(&store(3), None);
        caps.publish();
        assert_eq!(caps.advertised().unwrap().join(" "), "IMAP4rev1 ID IDLE LITERAL+");
    }

    #[test]
    fn pop3_capa_lines() {
        let caps = StoreCapabilities::new(Protocol::Pop3);
        caps.note(&[store(2)], &setup());
        caps.record(
            &store(2),
            Some(
                "CAPA|TOP|UIDL|RESP-CODES|PIPELINING|AUTH-RESP-CODE|STLS|USER|SASL PLAIN LOGIN|XCLIENT|IMPLEMENTATION x"
                    .split('|')
                    .map(str::to_owned)
                    .collect(),
            ),
        );
        caps.publish();
        assert_eq!(caps.advertised().unwrap().join("|"), "TOP|UIDL|PIPELINING");
    }

    #[test]
    fn items_that_could_break_a_line_or_a_code_are_dropped() {
        let hostile = ["X]Y", "A\rB", "QUOTA\"", "UTF8=ÄCCEPT", "(X", "", &"L".repeat(MAX_ITEM + 1), "IDLE"];
        let kept = keep_comparable(Protocol::Imap, hostile.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(kept, items("IDLE"));
        let kept =
            keep_comparable(Protocol::Pop3, ["TOP", "EXPIRE NEVER", "X\rY", "\u{7f}"].map(str::to_owned).to_vec());
        assert_eq!(kept, ["TOP", "EXPIRE NEVER"]);
    }

    #[test]
    fn differences_are_per_store() {
        let (a, b) = (store(2), store(3));
        let (ia, ib) = (items("ID XA CHILDREN"), items("CHILDREN ID XB"));
        let (shared, extras) = shared_items(Protocol::Imap, &[(&b, &ib), (&a, &ia)]);
        assert_eq!(shared, items("IMAP4rev1 ID CHILDREN"));
        assert_eq!(extras, vec![(a.to_string(), items("XA")), (b.to_string(), items("XB"))]);
    }

    /// The probe loop reads the next due time after a round: a lone store that was just asked
    /// must have one (before, the loop read it before the round, found none, and slept for
    /// good).
    #[test]
    fn a_store_just_asked_is_due_again_at_the_refresh() {
        let caps = StoreCapabilities::new(Protocol::Imap);
        caps.set_refresh(Duration::from_secs(300));
        caps.note(&[store(2)], &setup());
        let due = caps.due();
        assert_eq!(due.len(), 1);
        let before = Instant::now();
        caps.record(&due[0].0, Some(items("IMAP4rev1")));
        let next = caps.next_due().expect("asked again");
        assert!(next >= before + Duration::from_secs(299), "{:?}", next - before);
        assert!(caps.due().is_empty());
        caps.record(&due[0].0, None);
        let retry = caps.next_due().expect("an unreachable store is asked again");
        assert!(retry <= Instant::now() + Duration::from_secs(60));
    }

    #[test]
    fn the_store_set_is_bounded_and_due_times_follow_refresh() {
        let caps = StoreCapabilities::new(Protocol::Imap);
        for i in 0..MAX_STORES + 5 {
            caps.note(&[StoreAddr { host: format!("s{i}"), port: 143 }], &setup());
        }
        let due = caps.due();
        assert_eq!(due.len(), MAX_STORES);
        caps.set_refresh(Duration::ZERO);
        caps.record(&due[0].0, Some(items("IMAP4rev1")));
        let due_after = caps.due();
        assert_eq!(due_after.len(), MAX_STORES - 1, "asked once with CapabilityRefresh 0");
    }
}
