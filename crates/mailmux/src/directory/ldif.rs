//! The embedded directory: entries of an LDIF file (RFC 2849), searched in memory with the
//! same RFC 4515 filters an LDAP server would evaluate.
//!
//! Supported LDIF: `dn:` records separated by blank lines, `attr: value`, base64
//! `attr:: value`, continuation lines starting with one space, `#` comments, `version: 1`.
//! Change records and `attr:< URL` values are refused with the line number.

use std::path::Path;

use mailmux_proto::ldap_filter;

use super::{BoxFuture, Directory, DirectoryError, Entry};

/// Entries loaded from an LDIF file.
#[derive(Debug)]
pub struct LdifDirectory {
    entries: Vec<Entry>,
    /// Lower-cased, space-free base DN; empty means every entry.
    base: String,
}

impl LdifDirectory {
    /// Reads and parses the file.
    pub fn load(path: &Path, base: &str) -> Result<LdifDirectory, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let entries = parse(&text).map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))?;
        Ok(LdifDirectory { entries, base: normalize_dn(base) })
    }

    /// Builds a directory from entries already in memory.
    pub fn from_entries(entries: Vec<Entry>, base: &str) -> LdifDirectory {
        LdifDirectory { entries, base: normalize_dn(base) }
    }

    /// How many entries were loaded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file held no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn search(&self, filter: &str) -> Result<Option<Entry>, DirectoryError> {
        let filter = ldap_filter::parse(filter).map_err(|e| DirectoryError::Rejected(e.to_string()))?;
        let mut found = self.entries.iter().filter(|e| {
            let dn = normalize_dn(&e.dn);
            (self.base.is_empty() || dn == self.base || dn.ends_with(&format!(",{}", self.base)))
                && filter.matches(&|attr| e.values(attr))
        });
        let first = found.next();
        let extra = found.count();
        if extra > 0 {
            return Err(DirectoryError::Ambiguous(extra + 1));
        }
        Ok(first.cloned())
    }
}

impl Directory for LdifDirectory {
    fn find_user<'a>(
        &'a self,
        filter: &'a str,
        _attrs: &'a [String],
    ) -> BoxFuture<'a, Result<Option<Entry>, DirectoryError>> {
        Box::pin(async move { self.search(filter) })
    }
}

fn normalize_dn(dn: &str) -> String {
    dn.split(',').map(|rdn| rdn.trim().to_lowercase()).collect::<Vec<_>>().join(",")
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
            String::from_utf8(bytes).map_err(|_| (number, format!("{name}: value is not UTF-8")))?
        } else if rest.starts_with('<') {
            return Err((number, format!("{name}: URL values are not supported")));
        } else {
            rest.trim_start().to_owned()
        };
        let lname = name.to_ascii_lowercase();
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

    #[test]
    fn search_respects_base_and_ambiguity() {
        let all = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "");
        assert!(matches!(all.search("(uid=joe)"), Err(DirectoryError::Ambiguous(2))));
        let people = LdifDirectory::from_entries(parse(SAMPLE).unwrap(), "ou=people, dc=example,dc=com");
        let joe = people.search("(uid=JOE)").unwrap().unwrap();
        assert_eq!(joe.first("mailhost"), Some("store1.example.com"));
        assert_eq!(people.search("(uid=nobody)").unwrap(), None);
        assert!(matches!(people.search("(uid=x"), Err(DirectoryError::Rejected(_))));
    }

    #[test]
    fn errors_have_lines() {
        assert_eq!(parse("uid: x\n").unwrap_err().0, 1);
        assert_eq!(parse("dn: a\nchangetype: add\n").unwrap_err().0, 2);
        assert_eq!(parse("dn: a\nx:: !!!\n").unwrap_err().0, 2);
        assert_eq!(parse("dn: a\nb\n").unwrap_err().0, 2);
    }
}
