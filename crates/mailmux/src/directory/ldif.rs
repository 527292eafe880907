//! The embedded directory: entries of an LDIF file (RFC 2849), searched in memory with the
//! same RFC 4515 filters an LDAP server would evaluate.
//!
//! Supported LDIF: `dn:` records separated by blank lines, `attr: value`, base64
//! `attr:: value` (binary values such as `userCertificate;binary` kept as bytes),
//! continuation lines starting with one space, `#` comments, `version: 1`.
//! Change records and `attr:< URL` values are refused with the line number.

use std::collections::HashMap;
use std::path::Path;

use mailmux_proto::ldap_filter;

use super::{Base, BoxFuture, Directory, DirectoryError, Entry, Query, Scope};

/// Entries loaded from an LDIF file.
#[derive(Debug)]
pub struct LdifDirectory {
    /// Each entry, prepared once at load time so a search allocates nothing per entry.
    entries: Vec<Indexed>,
    /// Lower-cased, space-free base DN; empty means every entry.
    base: String,
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
        let entries = entries.into_iter().map(Indexed::new).collect();
        LdifDirectory { entries, base: normalize_dn(base) }
    }

    fn search(&self, query: &Query<'_>) -> Result<Option<Entry>, DirectoryError> {
        let filter = ldap_filter::parse(query.filter).map_err(|e| DirectoryError::Rejected(e.to_string()))?;
        let base = match &query.base {
            Base::Configured => self.base.clone(),
            Base::Dn(dn) => normalize_dn(dn),
        };
        let below = format!(",{base}");
        let mut found = self.entries.iter().filter(|e| {
            let in_scope = match query.scope {
                Scope::Base => e.dn == base,
                Scope::Subtree => base.is_empty() || e.dn == base || e.dn.ends_with(&below),
            };
            in_scope && filter.matches_lowercased(&|attr| e.values(attr))
        });
        let first = found.next();
        let extra = found.count();
        if extra > 0 {
            return Err(DirectoryError::Ambiguous(extra + 1));
        }
        Ok(first.map(|e| e.entry.clone()))
    }
}

impl Directory for LdifDirectory {
    fn find<'a>(&'a self, query: Query<'a>) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(async move { self.search(&query) })
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

fn normalize_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_lowercase()).collect::<Vec<_>>().join(",")
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
        Query { base: Base::Configured, scope: Scope::Subtree, filter, attrs: &[] }
    }

    #[test]
    fn base_scope_finds_one_dn() {
        let all = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "");
        let query = Query {
            base: Base::Dn("UID=ann, ou=People,dc=example,dc=com".into()),
            scope: Scope::Base,
            filter: "(objectClass=*)",
            attrs: &[],
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
    fn errors_have_lines() {
        assert_eq!(parse("uid: x\n").unwrap_err().0, 1);
        assert_eq!(parse("dn: a\nchangetype: add\n").unwrap_err().0, 2);
        assert_eq!(parse("dn: a\nx:: !!!\n").unwrap_err().0, 2);
        assert_eq!(parse("x:: /wAB\n").unwrap_err().0, 1);
        assert_eq!(parse("dn: a\nb\n").unwrap_err().0, 2);
    }
}
