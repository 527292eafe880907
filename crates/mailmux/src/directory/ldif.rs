//! The embedded directory: entries of an LDIF file (RFC 2849), searched in memory with the
//! same RFC 4515 filters an LDAP server would evaluate.
//!
//! Supported LDIF: `dn:` records separated by blank lines, `attr: value`, base64
//! `attr:: value` (binary values such as `userCertificate;binary` kept as bytes),
//! continuation lines starting with one space, `#` comments, `version: 1`.
//! Change records and `attr:< URL` values are refused with the line number.
//!
//! # Equality indexes
//!
//! A login's search is `SearchFormat` filled in, typically `(uid=joe)` or
//! `(&(objectClass=inetOrgPerson)(mail=joe@example.com))`. Scanning a million entries for it
//! takes about a third of a second; an equality index answers it in microseconds
//! (`examples/ldif_lookup.rs`, figures in `bench/README.md`).
//!
//! * **When.** A filter that is an equality term `(attr=value)` (or `~=`, which is evaluated as
//!   equality), or an AND containing at least one (nested ANDs count: they are conjunctions
//!   too). Anything else (OR or NOT at the top, only presence, substrings or ordering terms)
//!   scans every entry as before.
//! * **How.** Every equality term's index yields its candidates; the shortest list wins, and
//!   the whole filter and the scope are then evaluated on those candidates only, in file
//!   order. The answer is therefore the scan's answer, including `Ambiguous(n)` with the same
//!   `n`. An equality term on an attribute no entry has matches nothing, so such a search
//!   returns no entry without looking at any.
//! * **What.** One index per attribute: the sorted pairs (64-bit hash of a lower-cased value,
//!   entry number), stored as two parallel arrays, and a table of where each range of hashes
//!   (by their top bits) starts, so a lookup reads one bucket of 8 to 16 hashes rather than
//!   binary-searching megabytes. Values are not stored again: hashes are keyed randomly per
//!   directory ([`RandomState`]), so neither the file nor a login name can aim values at one
//!   hash, and a collision only adds a candidate, which the filter then rejects.
//! * **Cost.** 12 bytes per value of the attribute (8 for the hash, 4 for the entry number),
//!   plus at most one byte per value for the bucket table: about 12.5 MB for `uid` over a
//!   million entries, 25 MB for a two-valued `objectClass` (an AND builds the index of each of
//!   its equality attributes). Building one needs 16 more bytes per value while it sorts,
//!   then drops them, and takes about half a second per million values.
//! * **Built when.** Lazily, the first time a search uses an attribute, behind a
//!   [`OnceLock`] per attribute: concurrent first searches wait for one build, never run two.
//!   The slots are created at load for the attributes present in the file, so nothing locks
//!   a shared map. [`super::from_config`] builds the indexes `SearchFormat` needs at start-up
//!   ([`LdifDirectory::prepare_index`]), so no login waits for one.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::OnceLock;

use mailmux_proto::Secret;
use mailmux_proto::ldap_filter::{self, Filter};

use super::{Base, BoxFuture, Directory, DirectoryError, Entry, Query, Scope, normalize_dn};

/// Entries loaded from an LDIF file.
#[derive(Debug)]
pub struct LdifDirectory {
    /// Each entry, prepared once at load time so a search allocates nothing per entry.
    entries: Vec<Indexed>,
    /// Lower-cased, space-free base DN; empty means every entry.
    base: String,
    /// One equality index slot per attribute some entry has, filled on first use. `None` when
    /// entry numbers do not fit the index's `u32` (more than 4 billion entries): then every
    /// search scans.
    indexes: Option<HashMap<String, OnceLock<EqIndex>>>,
    /// Keys the value hashes of the indexes.
    hasher: RandomState,
    /// Indexes built so far (a test checks concurrent first searches build once).
    builds: std::sync::atomic::AtomicUsize,
}

impl LdifDirectory {
    /// Reads and parses the file.
    pub fn load(path: &Path, base: &str) -> Result<LdifDirectory, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let entries = parse(&text).map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))?;
        Ok(LdifDirectory::from_entries(entries, base))
    }

    /// Builds a directory from entries already in memory.
    pub fn from_entries(entries: Vec<Entry>, base: &str) -> LdifDirectory {
        let entries: Vec<Indexed> = entries.into_iter().map(Indexed::new).collect();
        let indexes = u32::try_from(entries.len()).is_ok().then(|| {
            let names: HashSet<&String> = entries.iter().flat_map(|e| e.lowercased.keys()).collect();
            names.into_iter().map(|name| (name.clone(), OnceLock::new())).collect()
        });
        LdifDirectory {
            entries,
            base: normalize_dn(base),
            indexes,
            hasher: RandomState::new(),
            builds: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Builds now the equality indexes of these attributes (names in any case), so the first
    /// searches using them do not wait. Attributes no entry has need none and are skipped.
    pub fn prepare_index<S: AsRef<str>>(&self, attrs: &[S]) {
        for attr in attrs {
            self.index(&attr.as_ref().to_ascii_lowercase());
        }
    }

    /// How many indexes have been built.
    #[cfg(test)]
    pub(super) fn indexes_built(&self) -> usize {
        self.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The index of an attribute, built on first use; `None` when no entry has the attribute
    /// (or the directory is too large to index).
    fn index(&self, attr: &str) -> Option<&EqIndex> {
        let slot = self.indexes.as_ref()?.get(attr)?;
        Some(slot.get_or_init(|| self.build_index(attr)))
    }

    fn build_index(&self, attr: &str) -> EqIndex {
        self.builds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        for (number, e) in self.entries.iter().enumerate() {
            // from_entries made no slots when numbers do not fit, so this never stops early.
            let Ok(number) = u32::try_from(number) else { break };
            pairs.extend(e.values(attr).iter().map(|v| (self.hasher.hash_one(v.as_str()), number)));
        }
        // Sorting by (hash, entry) keeps each hash's entries in file order; dedup drops an
        // entry listed twice for values equal once lower-cased ("Joe", "joe"), which would
        // otherwise be counted twice and make a search ambiguous.
        pairs.sort_unstable();
        pairs.dedup();
        EqIndex::new(pairs)
    }

    fn search(&self, query: &Query<'_>) -> Result<Option<Entry>, DirectoryError> {
        self.search_with(query, true)
    }

    /// `use_index: false` is the plain scan the indexes must agree with (tests compare them).
    fn search_with(&self, query: &Query<'_>, use_index: bool) -> Result<Option<Entry>, DirectoryError> {
        let filter = ldap_filter::parse(query.filter).map_err(|e| DirectoryError::Rejected(e.to_string()))?;
        let base = match &query.base {
            Base::Configured => self.base.clone(),
            Base::Dn(dn) => normalize_dn(dn),
        };
        let below = format!(",{base}");
        let matches = |e: &Indexed| {
            let in_scope = match query.scope {
                Scope::Base => e.dn == base,
                Scope::Subtree => base.is_empty() || e.dn == base || e.dn.ends_with(&below),
            };
            in_scope && filter.matches_lowercased(&|attr| e.values(attr))
        };
        let candidates = if use_index { self.candidates(&filter) } else { None };
        let found = match candidates {
            Some(numbers) => one(numbers.iter().filter_map(|&n| self.entries.get(n as usize)).filter(|e| matches(e))),
            None => one(self.entries.iter().filter(|e| matches(e))),
        }?;
        Ok(found.map(|e| e.entry.selected(query.attrs)))
    }

    /// The entries that may match `filter`, in file order, from the most selective equality
    /// index it allows; `None` when no index applies and every entry must be looked at.
    fn candidates(&self, filter: &Filter) -> Option<&[u32]> {
        self.indexes.as_ref()?;
        let mut terms = Vec::new();
        equality_terms(filter, &mut terms);
        let mut best: Option<&[u32]> = None;
        for (attr, value) in terms {
            // No entry has the attribute: the term, hence the conjunction, matches nothing.
            let Some(index) = self.index(attr) else { return Some(&[]) };
            let found = index.lookup(self.hasher.hash_one(value));
            if best.is_none_or(|b| found.len() < b.len()) {
                best = Some(found);
            }
        }
        best
    }
}

/// Collects the equality terms a filter requires of every matching entry: the filter itself,
/// or the terms of an AND (nested ANDs included). Under OR or NOT a term is not required.
fn equality_terms<'f>(filter: &'f Filter, out: &mut Vec<(&'f str, &'f str)>) {
    match filter {
        Filter::Equal(attr, value) => out.push((attr, value)),
        Filter::And(list) => list.iter().for_each(|f| equality_terms(f, out)),
        _ => {}
    }
}

/// The attributes whose index a search with this filter would use (none for a filter that
/// does not parse or that scans). For `SearchFormat`, pass it expanded with any value.
pub fn index_attributes(filter: &str) -> Vec<String> {
    let Ok(filter) = ldap_filter::parse(filter) else { return Vec::new() };
    let mut terms = Vec::new();
    equality_terms(&filter, &mut terms);
    let mut attrs: Vec<String> = Vec::new();
    for (attr, _) in terms {
        if !attrs.iter().any(|a| a == attr) {
            attrs.push(attr.to_owned());
        }
    }
    attrs
}

/// The one entry of a search, or `Ambiguous` with how many matched.
fn one<'e>(mut found: impl Iterator<Item = &'e Indexed>) -> Result<Option<&'e Indexed>, DirectoryError> {
    let first = found.next();
    let extra = found.count();
    if extra > 0 {
        return Err(DirectoryError::Ambiguous(extra + 1));
    }
    Ok(first)
}

/// One attribute's equality index: `hashes[i]` is the hash of a lower-cased value of entry
/// `entries[i]`; sorted by hash, then entry. Two arrays rather than one of pairs, because a
/// `(u64, u32)` pair is padded to 16 bytes.
#[derive(Debug, Default)]
struct EqIndex {
    hashes: Vec<u64>,
    entries: Vec<u32>,
    /// Where each bucket of hashes starts, a bucket being the hashes that share their top
    /// `bits` bits; one more item marks the end. A search then reads one small bucket instead
    /// of binary-searching the whole array, whose every step is a cache miss once it is
    /// megabytes long (at a million entries, about 1 µs of the 5.5 µs a search took in
    /// `examples/ldif_lookup.rs`). 8 to 16 values per bucket on average, so the table costs
    /// 0.5 to 1 byte per value.
    starts: Vec<usize>,
    bits: u32,
}

impl EqIndex {
    fn new(pairs: Vec<(u64, u32)>) -> EqIndex {
        let (hashes, entries): (Vec<u64>, Vec<u32>) = pairs.into_iter().unzip();
        let bits = (hashes.len() / 8).checked_ilog2().unwrap_or(0).min(24);
        let mut index = EqIndex { hashes, entries, starts: Vec::new(), bits };
        let mut at = 0;
        for bucket in 0..=1usize << bits {
            while index.hashes.get(at).is_some_and(|h| index.bucket(*h) < bucket) {
                at += 1;
            }
            index.starts.push(at);
        }
        index
    }

    fn bucket(&self, hash: u64) -> usize {
        // No bits: one bucket (a shift by 64 would overflow).
        hash.checked_shr(64 - self.bits).unwrap_or(0) as usize
    }

    /// The entries with a value of this hash, in file order.
    fn lookup(&self, hash: u64) -> &[u32] {
        let bucket = self.bucket(hash);
        let (Some(&low), Some(&high)) = (self.starts.get(bucket), self.starts.get(bucket + 1)) else {
            return &[];
        };
        let in_bucket = self.hashes.get(low..high).unwrap_or(&[]);
        let start = in_bucket.partition_point(|h| *h < hash);
        // Counted one by one: the run is one value long but for shared values.
        let len = in_bucket.get(start..).map_or(0, |rest| rest.iter().take_while(|h| **h == hash).count());
        self.entries.get(low + start..low + start + len).unwrap_or(&[])
    }
}

impl Directory for LdifDirectory {
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(async move { self.search(&query) })
    }

    /// Checks the entry's `userPassword` values, as slapd's bind would.
    fn authenticate<'a>(&'a self, dn: &'a str, password: &'a Secret) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(async move {
            if password.is_empty() {
                return Ok(false);
            }
            let mut unknown = false;
            for stored in self.stored_passwords(dn).await? {
                let check = match std::str::from_utf8(stored.expose()) {
                    Ok(text) => super::password::check(text, password.expose()),
                    Err(_) => super::password::Check::Mismatch,
                };
                match check {
                    super::password::Check::Match => return Ok(true),
                    super::password::Check::Mismatch => {}
                    super::password::Check::UnknownScheme => unknown = true,
                }
            }
            if unknown {
                tracing::warn!(%dn, "userPassword uses a scheme the LDIF directory cannot check; PreAuth refuses");
            }
            Ok(false)
        })
    }
}

/// An entry with what searches compare, computed once.
#[derive(Debug)]
struct Indexed {
    /// The DN, normalized.
    dn: String,
    /// Every text value lower-cased, by attribute.
    lowercased: HashMap<String, Vec<String>>,
    entry: Entry,
}

impl Indexed {
    fn new(entry: Entry) -> Indexed {
        let lowercased =
            entry.attrs().map(|(k, vs)| (k.clone(), vs.iter().map(|v| v.to_lowercase()).collect())).collect();
        Indexed { dn: normalize_dn(&entry.dn), lowercased, entry }
    }

    fn values(&self, attr: &str) -> &[String] {
        self.lowercased.get(attr).map(Vec::as_slice).unwrap_or(&[])
    }
}

enum Value {
    Text(String),
    Binary(Vec<u8>),
}

/// Parses LDIF content records; errors carry the 1-based line.
pub fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    // Unfold continuation lines first, remembering where each logical line started.
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(cont) = line.strip_prefix(' ') {
            match logical.last_mut() {
                Some((_, prev)) if !prev.is_empty() => prev.push_str(cont),
                _ => return Err((i + 1, "continuation line without a line to continue".into())),
            }
        } else {
            logical.push((i + 1, line.to_owned()));
        }
    }
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for (number, line) in logical {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            entries.extend(current.take());
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            return Err((number, format!("'{line}' is not 'attribute: value'")));
        };
        let value = if let Some(b64) = rest.strip_prefix(':') {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| (number, format!("{name}: invalid base64")))?;
            match String::from_utf8(bytes) {
                Ok(text) => Value::Text(text),
                Err(e) => Value::Binary(e.into_bytes()),
            }
        } else if rest.starts_with('<') {
            return Err((number, format!("{name}: URL values are not supported")));
        } else {
            Value::Text(rest.trim_start().to_owned())
        };
        let lname = name.to_ascii_lowercase();
        let value = match (value, &mut current) {
            (Value::Text(text), _) => text,
            (Value::Binary(bytes), Some(entry)) => {
                entry.push_binary(&lname, bytes);
                continue;
            }
            (Value::Binary(_), None) => return Err((number, format!("{name}: value is not UTF-8"))),
        };
        match (&mut current, lname.as_str()) {
            (None, "version") => {}
            (None, "dn") => current = Some(Entry::new(&value, [])),
            (None, _) => return Err((number, format!("'{name}' before any dn:"))),
            (Some(_), "changetype") => {
                return Err((number, "change records are not supported".into()));
            }
            (Some(_), "dn") => {
                return Err((number, "dn: inside a record (missing blank line?)".into()));
            }
            (Some(entry), _) => entry.push(&lname, value),
        }
    }
    entries.extend(current);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Aliases;

    const SAMPLE: &str = "version: 1\n\n# people\ndn: uid=joe,ou=People,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: joe\nmailHost: store1.exa\n mple.com\ncn:: Sm/Dqw==\n\ndn: uid=ann,ou=People,dc=example,dc=com\nuid: ann\nmailHost: 127.0.0.3:1143\n\ndn: uid=joe,ou=Other,dc=example,dc=com\nuid: joe\n";

    #[test]
    fn parses_records_continuations_and_base64() {
        let entries = parse(SAMPLE).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].first("mailhost"), Some("store1.example.com"));
        assert_eq!(entries[0].first("cn"), Some("Joë"));
        assert_eq!(entries[1].dn, "uid=ann,ou=People,dc=example,dc=com");
    }

    fn q(filter: &str) -> Query<'_> {
        Query { base: Base::Configured, scope: Scope::Subtree, filter, attrs: &[], aliases: Aliases::AtBase }
    }

    #[test]
    fn a_search_answers_the_attributes_it_asked_for_as_ldap_does() {
        let all = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "ou=People,dc=example,dc=com");
        let attrs = ["MailHost".to_owned(), "nosuch".to_owned()];
        let found = all.search(&Query { attrs: &attrs, ..q("(uid=joe)") }).unwrap().unwrap();
        assert_eq!(found.first("mailhost"), Some("store1.example.com"));
        assert_eq!((found.first("cn"), found.first("uid"), found.first("objectclass")), (None, None, None));
        assert_eq!(found.dn, "uid=joe,ou=People,dc=example,dc=com");
        // No names, or `*`: every attribute.
        for attrs in [Vec::new(), vec!["*".to_owned()]] {
            let found = all.search(&Query { attrs: &attrs, ..q("(uid=joe)") }).unwrap().unwrap();
            assert_eq!((found.first("cn"), found.first("uid")), (Some("Joë"), Some("joe")));
        }
    }

    #[test]
    fn base_scope_finds_one_dn() {
        let all = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "");
        let query = Query {
            base: Base::Dn("UID=ann, ou=People,dc=example,dc=com".into()),
            scope: Scope::Base,
            filter: "(objectClass=*)",
            attrs: &[],
            aliases: Aliases::AtBase,
        };
        // (objectClass=*) does not match ann: she has no objectClass in the sample.
        assert_eq!(all.search(&query).unwrap(), None);
        let query = Query { filter: "(uid=*)", ..query };
        assert_eq!(all.search(&query).unwrap().unwrap().first("uid"), Some("ann"));
    }

    #[test]
    fn binary_values_are_kept_apart() {
        let e = parse("dn: uid=a\nuid: a\nuserCertificate;binary:: /wAB\n").unwrap();
        assert_eq!(e[0].binary_values("usercertificate"), &[vec![0xff, 0x00, 0x01]]);
        assert!(e[0].values("usercertificate;binary").is_empty());
    }

    #[test]
    fn search_respects_base_and_ambiguity() {
        let all = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "");
        assert!(matches!(all.search(&q("(uid=joe)")), Err(DirectoryError::Ambiguous(2))));
        let people = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "ou=people, dc=example,dc=com");
        let joe = people.search(&q("(uid=JOE)")).unwrap().unwrap();
        assert_eq!(joe.first("mailhost"), Some("store1.example.com"));
        assert_eq!(people.search(&q("(uid=nobody)")).unwrap(), None);
        assert!(matches!(people.search(&q("(uid=x")), Err(DirectoryError::Rejected(_))));
    }

    #[test]
    fn equality_searches_use_the_index_and_others_scan() {
        let dir = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "");
        let uses = |f: &str| dir.candidates(&ldap_filter::parse(f).unwrap()).map(<[u32]>::len);
        assert_eq!(uses("(uid=joe)"), Some(2));
        assert_eq!(uses("(uid~=JOE)"), Some(2));
        // The most selective term wins, whatever its place in the AND.
        assert_eq!(uses("(&(uid=joe)(mailhost=store1.example.com))"), Some(1));
        assert_eq!(uses("(&(objectclass=*)(&(uid=ann)(!(uid=joe))))"), Some(1));
        // No entry has the attribute: nothing can match, nothing is looked at.
        assert_eq!(uses("(&(uid=joe)(nosuch=x))"), Some(0));
        for scans in ["(|(uid=joe)(uid=ann))", "(!(uid=joe))", "(uid=*)", "(uid=jo*)", "(uid>=a)"] {
            assert_eq!(uses(scans), None, "{scans}");
        }
        assert_eq!(index_attributes("(&(objectClass=x)(|(mail=a)(cn=b))(uid=a)(uid=b))"), ["objectclass", "uid"]);
        assert_eq!(index_attributes("(|(uid=a)(mail=a))"), Vec::<String>::new());
        assert_eq!(index_attributes("(uid=a"), Vec::<String>::new());
    }

    #[test]
    fn index_buckets_find_every_hash() {
        assert_eq!(EqIndex::new(Vec::new()).lookup(7), &[] as &[u32]);
        // From one bucket (under 16 values) to 2^10; the extremes of the hash range included.
        for n in [1u64, 15, 16, 1000, 8200] {
            let step = u64::MAX / n;
            let mut pairs: Vec<(u64, u32)> = (0..n).map(|i| (i * step, i as u32)).collect();
            pairs.push((u64::MAX, 1));
            pairs.push((u64::MAX, 2));
            pairs.sort_unstable();
            let index = EqIndex::new(pairs);
            for i in 0..n {
                assert_eq!(index.lookup(i * step), [i as u32], "n={n} i={i}");
                assert_eq!(index.lookup(i * step + 1), &[] as &[u32]);
            }
            assert_eq!(index.lookup(u64::MAX), [1, 2]);
        }
    }

    #[test]
    fn values_equal_once_lower_cased_list_an_entry_once() {
        let entries = parse("dn: uid=a\nuid: Joe\nuid: JOE\nuid: joe\n\ndn: uid=b\nuid: ann\n").unwrap();
        let dir = LdifDirectory::from_entries(entries, "");
        assert_eq!(dir.search(&q("(uid=joe)")).unwrap().map(|e| e.dn), Some("uid=a".to_owned()));
    }

    #[test]
    fn concurrent_first_searches_build_one_index() {
        let entries = (0..20_000).map(|n| Entry::new(&format!("uid=u{n}"), [("uid", format!("u{n}").as_str())]));
        let dir = LdifDirectory::from_entries(entries.collect(), "");
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for t in 0..8 {
                let (dir, start) = (&dir, &start);
                s.spawn(move || {
                    start.wait();
                    let filter = format!("(uid=u{t})");
                    assert!(dir.search(&q(&filter)).unwrap().is_some());
                });
            }
        });
        assert_eq!(dir.indexes_built(), 1);
        dir.prepare_index(&["UID", "nosuch"]);
        assert_eq!(dir.indexes_built(), 1);
    }

    /// xorshift64*: deterministic, so a failure replays; no dependency for a test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        /// Changes the case of some letters: searches and values differ in case in life.
        fn recase(&mut self, s: &str) -> String {
            s.chars().map(|c| if self.below(4) == 0 { c.to_uppercase().next().unwrap_or(c) } else { c }).collect()
        }
    }

    const OUS: &[&str] = &["people", "Other", "staff"];
    const CNS: &[&str] = &["Ann", "bob", "Joë", "ZOË", "a*b(c)\\d", "x y"];
    const HOSTS: &[&str] = &["store1", "store2", "127.0.0.3:1143"];
    const CLASSES: &[&str] = &["inetOrgPerson", "person", "top"];
    const ATTRS: &[&str] = &["uid", "mail", "cn", "objectclass", "mailhost", "nosuch"];

    fn random_entries(rng: &mut Rng, n: usize) -> Vec<Entry> {
        let mut entries: Vec<Entry> =
            OUS.iter().map(|ou| Entry::new(&format!("ou={ou},dc=example,dc=com"), [("ou", *ou)])).collect();
        for _ in 0..n {
            // A narrow range of uids, so some are shared and searches turn out ambiguous.
            let uid = format!("user{}", rng.below(n * 3 / 4));
            let ou = rng.pick(OUS);
            let dn = if rng.below(5) == 0 {
                format!("UID={uid}, ou={ou},DC=Example,dc=com")
            } else {
                format!("uid={uid},ou={ou},dc=example,dc=com")
            };
            let mut e = Entry::new(&dn, []);
            for _ in 0..rng.below(3) {
                e.push("objectClass", rng.pick(CLASSES).to_owned());
            }
            if rng.below(10) != 0 {
                e.push("uid", rng.recase(&uid));
            }
            if rng.below(10) == 0 {
                e.push("uid", uid.to_uppercase());
            }
            e.push("mail", format!("{uid}@{}", rng.pick(&["example.com", "Example.org"])));
            let cn = rng.pick(CNS);
            e.push("cn", rng.recase(cn));
            if rng.below(3) != 0 {
                e.push("mailHost", rng.pick(HOSTS).to_owned());
            }
            entries.push(e);
        }
        entries
    }

    /// A value to search for: one an entry has (in another case, maybe) or one none has.
    fn random_value(rng: &mut Rng, entries: &[Entry], attr: &str) -> String {
        let e = &entries[rng.below(entries.len())];
        match e.values(attr) {
            [] => "user1".to_owned(),
            _ if rng.below(8) == 0 => "nobody".to_owned(),
            values => {
                let value = &values[rng.below(values.len())];
                rng.recase(value)
            }
        }
    }

    fn random_filter(rng: &mut Rng, entries: &[Entry], depth: usize) -> String {
        let attr = rng.pick(ATTRS);
        let kind = if depth >= 3 { 5 + rng.below(5) } else { rng.below(10) };
        match kind {
            0..=2 => {
                let n = 1 + rng.below(3);
                let op = if kind == 2 { "|" } else { "&" };
                let terms: String = (0..n).map(|_| random_filter(rng, entries, depth + 1)).collect();
                format!("({op}{terms})")
            }
            3 => format!("(!{})", random_filter(rng, entries, depth + 1)),
            4 => format!("({attr}=*)"),
            5 => {
                let value = random_value(rng, entries, attr);
                let prefix: String = value.chars().take(3).collect();
                format!("({attr}={}*)", ldap_filter::escape_value(&prefix))
            }
            6 => format!("({attr}>={})", ldap_filter::escape_value(&random_value(rng, entries, attr))),
            7 => format!("({attr}~={})", ldap_filter::escape_value(&random_value(rng, entries, attr))),
            _ => format!("({attr}={})", ldap_filter::escape_value(&random_value(rng, entries, attr))),
        }
    }

    #[test]
    fn index_answers_exactly_as_the_scan_does() {
        let mut rng = Rng(0x006d_6169_6c6d_7578);
        let entries = random_entries(&mut rng, 3000);
        let mut outcomes = HashMap::<&str, usize>::new();
        for base in ["", "ou=people,dc=example,dc=com"] {
            let dir = LdifDirectory::from_entries(entries.clone(), base);
            for _ in 0..1500 {
                let filter = random_filter(&mut rng, &entries, 0);
                let some_dn = &entries[rng.below(entries.len())].dn;
                let (query_base, scope) = match rng.below(6) {
                    0 => (Base::Dn(rng.recase(some_dn)), Scope::Base),
                    1 => (Base::Dn(some_dn.split_once(',').map_or("", |(_, up)| up).to_owned()), Scope::Subtree),
                    _ => (Base::Configured, Scope::Subtree),
                };
                let query = Query { base: query_base, scope, filter: &filter, attrs: &[], aliases: Aliases::AtBase };
                let indexed = dir.search_with(&query, true);
                let scanned = dir.search_with(&query, false);
                assert_eq!(format!("{indexed:?}"), format!("{scanned:?}"), "{query:?}");
                let used = dir.candidates(&ldap_filter::parse(&filter).unwrap()).is_some();
                let outcome = match (used, &scanned) {
                    (false, _) => "scan",
                    (true, Ok(None)) => "index: none",
                    (true, Ok(Some(_))) => "index: one",
                    (true, Err(DirectoryError::Ambiguous(_))) => "index: ambiguous",
                    (true, Err(_)) => "index: error",
                };
                *outcomes.entry(outcome).or_default() += 1;
            }
        }
        // The comparison means something only if every kind of answer came up often.
        for outcome in ["scan", "index: none", "index: one", "index: ambiguous"] {
            assert!(outcomes.get(outcome).copied().unwrap_or(0) >= 50, "{outcomes:?}");
        }
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(parse("uid: x\n").unwrap_err().0, 1);
        assert_eq!(parse("dn: a\nchangetype: add\n").unwrap_err().0, 2);
        assert_eq!(parse("dn: a\nx:: !!!\n").unwrap_err().0, 2);
        assert_eq!(parse("x:: /wAB\n").unwrap_err().0, 1);
        assert_eq!(parse("dn: a\nb\n").unwrap_err().0, 2);
    }
}
