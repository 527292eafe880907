//! The line syntax shared by `AService.cfg` and the service files.
//!
//! ```text
//! # comment
//! default:LdapURL ldap://ldap.example.com/o=internet
//! default:BindDN "cn=Directory Manager"
//! default:SSLKeyPasswdFile ""
//! myinstance:Timeout 600
//! ```
//!
//! * `section:Name value`; `default` applies to every instance, a named section only to the
//!   instance started with that name, and overrides `default`.
//! * Names are case-insensitive; the value is separated by white space.
//! * A value in double quotes may contain spaces; `""` is the empty value. The vendor samples
//!   break long quoted values over two lines, so an unterminated quote continues on the next
//!   line, the line break folded into a space.
//! * `#` starts a comment line; blank lines are ignored.
//!
//! [`lines`] does the part shared with the vdmap file ([`crate::vdmap`]), whose lines start
//! with a keyword or a domain name instead of a section.

use std::collections::HashMap;
use std::path::Path;

use crate::Diagnostics;

/// One `Name value` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as written.
    pub name: String,
    /// The name lower-cased, for matching.
    pub key: String,
    /// The value, unquoted.
    pub value: String,
    /// Where it was written.
    pub line: usize,
}

/// One logical line of a file in this syntax: its first word and the rest, with quotes
/// removed and quoted continuation lines folded. The `.cfg` files and the vdmap file share it;
/// only what the first word means differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The first word: `section:Name`, or a keyword such as `vdmap`.
    pub head: String,
    /// The rest of the line after white space, unquoted (`""` gives the empty value).
    pub value: String,
    /// Where the line starts (1-based).
    pub line: usize,
}

/// Splits a file into its logical lines, skipping comments and blank lines. A value with a
/// bad quote is an error at its line, and the line is dropped.
pub fn lines(file: &Path, text: &str, diags: &mut Diagnostics) -> Vec<Line> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let number = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (head, rest) = match trimmed.find(char::is_whitespace) {
            Some(at) => (&trimmed[..at], trimmed[at..].trim_start()),
            None => (trimmed, ""),
        };
        let mut value = rest.to_owned();
        if value.starts_with('"') {
            // Fold continuation lines until the closing quote.
            while value.matches('"').count() < 2 {
                match lines.next() {
                    Some((_, next)) => {
                        value.push(' ');
                        value.push_str(next.trim());
                    }
                    None => break,
                }
            }
            match unquote(&value) {
                Some(v) => value = v,
                None => {
                    let name = head.split_once(':').map_or(head, |(_, name)| name);
                    diags.error(file, number, format!("{name}: unterminated or misplaced quote"));
                    continue;
                }
            }
        }
        out.push(Line { head: head.to_owned(), value, line: number });
    }
    out
}

/// Parses a file into the entries that apply to `instance`, one per name (a later line or
/// an instance-specific line overrides an earlier `default` one).
pub fn parse(file: &Path, text: &str, instance: Option<&str>, diags: &mut Diagnostics) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, (usize, bool)> = HashMap::new();
    for Line { head, value, line: number } in lines(file, text, diags) {
        let (section, name) = match head.split_once(':') {
            Some((section, name)) => (section, name),
            None => {
                diags.warn(file, number, format!("'{head}' has no section prefix; read as 'default:{head}'"));
                ("default", head.as_str())
            }
        };
        if name.is_empty() {
            diags.error(file, number, "missing parameter name after ':'");
            continue;
        }
        let specific = if section.eq_ignore_ascii_case("default") {
            false
        } else if instance.is_some_and(|inst| inst.eq_ignore_ascii_case(section)) {
            true
        } else {
            continue;
        };
        let key = name.to_ascii_lowercase();
        let entry = Entry { name: name.to_owned(), key: key.clone(), value, line: number };
        match index.get(&key).copied() {
            Some((at, was_specific)) => {
                if was_specific && !specific {
                    continue;
                }
                if was_specific == specific {
                    diags.warn(file, number, format!("{name} set again; this replaces line {}", entries[at].line));
                }
                entries[at] = entry;
                index.insert(key, (at, specific));
            }
            None => {
                index.insert(key, (entries.len(), specific));
                entries.push(entry);
            }
        }
    }
    entries
}

/// `"text"` → `text`; anything after the closing quote is an error.
fn unquote(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?;
    let end = inner.find('"')?;
    inner[end + 1..].trim().is_empty().then(|| inner[..end].to_owned())
}

/// A size in bytes: a number, optionally followed by `K`, `M` or `G` (powers of 1024).
pub fn parse_size(value: &str) -> Result<usize, String> {
    let v = value.trim();
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => v.split_at(at),
        None => (v, ""),
    };
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("'{value}' is not a size (a number of bytes, or with K, M or G)")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{value}' is not a size (a number of bytes, or with K, M or G)"))
}

/// Parses a boolean the way the MMP's files and its 7.x successor write them.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" | "on" => Ok(true),
        "no" | "0" | "false" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not a boolean (yes/no, 1/0, true/false, on/off)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_bytes_or_with_a_binary_unit() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size(" 1 MiB "), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        for bad in ["", "K", "-1", "1.5M", "1T", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    fn entries(text: &str, instance: Option<&str>) -> (Vec<(String, String, usize)>, Diagnostics) {
        let mut d = Diagnostics::default();
        let e =
            parse(Path::new("t.cfg"), text, instance, &mut d).into_iter().map(|e| (e.key, e.value, e.line)).collect();
        (e, d)
    }

    #[test]
    fn quoting_comments_and_case() {
        let (e, d) = entries(
            "# c\n\ndefault:BindDN \"cn=Directory Manager\"\nDEFAULT:bindpass   s3cret \ndefault:SSLKeyPasswdFile \"\"\n",
            None,
        );
        assert!(d.is_empty(), "{d}");
        assert_eq!(
            e,
            vec![
                ("binddn".into(), "cn=Directory Manager".into(), 3),
                ("bindpass".into(), "s3cret".into(), 4),
                ("sslkeypasswdfile".into(), "".into(), 5)
            ]
        );
    }

    #[test]
    fn quoted_value_folded_over_lines() {
        let (e, _) = entries("default:Capability \"IMAP4 IMAP4rev1\n  ACL QUOTA\"\ndefault:X y\n", None);
        assert_eq!(e[0].1, "IMAP4 IMAP4rev1 ACL QUOTA");
        assert_eq!(e[1], ("x".into(), "y".into(), 3));
    }

    #[test]
    fn instance_sections_override_default_in_any_order() {
        let text = "two:Timeout 5\ndefault:Timeout 10\none:Timeout 20\n";
        assert_eq!(entries(text, None).0[0].1, "10");
        assert_eq!(entries(text, Some("one")).0[0].1, "20");
        assert_eq!(entries(text, Some("two")).0[0].1, "5");
    }

    #[test]
    fn problems_are_reported_with_lines() {
        let (_, d) = entries("default:A \"x\" y\nB c\ndefault:B d\n", None);
        let text = d.to_string();
        assert!(text.contains("t.cfg:1: error: A: unterminated or misplaced quote"), "{text}");
        assert!(text.contains("t.cfg:2: warning: 'B' has no section prefix"), "{text}");
        assert!(text.contains("t.cfg:3: warning: B set again; this replaces line 2"), "{text}");
    }

    #[test]
    fn booleans() {
        for t in ["yes", "1", "TRUE", "on"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["no", "0", "False", "off"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        assert!(parse_bool("maybe").is_err());
    }
}
