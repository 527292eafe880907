//! `LdapURL` entries: where the directory is.
//!
//! * `ldap://host[:port]/base-dn` — an LDAP server (port 389 by default) and the search base;
//!   `ldaps://host[:port]/base-dn` the same over TLS (port 636 by default).
//! * `ldif:path[?base-dn]` — mailmux's embedded directory: the entries of an LDIF file,
//!   searched with the same filters. A relative path is relative to the configuration
//!   directory. Meant for trying mailmux and for small sites; it is read at start-up.
//!
//! `LdapURL` may list several `ldap://` URLs separated by spaces: they are tried in order.
//! It names at most one `ldif:` file, and never mixes the two kinds (see [`check_list`]).

use std::path::{Path, PathBuf};

/// One parsed directory URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryUrl {
    /// An LDAP server.
    Ldap {
        /// `ldap://host:port`, without the path.
        server: String,
        /// The search base (may be empty).
        base: String,
    },
    /// An LDIF file.
    Ldif {
        /// The file.
        path: PathBuf,
        /// Only entries at or below this DN are searched (empty: all).
        base: String,
    },
}

impl std::fmt::Display for DirectoryUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryUrl::Ldap { server, base } => write!(f, "{server}/{base}"),
            DirectoryUrl::Ldif { path, base } if base.is_empty() => {
                write!(f, "ldif:{}", path.display())
            }
            DirectoryUrl::Ldif { path, base } => write!(f, "ldif:{}?{base}", path.display()),
        }
    }
}

/// Parses one URL; `dir` resolves relative LDIF paths.
pub fn parse(url: &str, dir: &Path) -> Result<DirectoryUrl, String> {
    if let Some(rest) = url.strip_prefix("ldif:") {
        let (path, base) = rest.split_once('?').unwrap_or((rest, ""));
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(format!("'{url}' names no LDIF file"));
        }
        return Ok(DirectoryUrl::Ldif { path: crate::resolve(dir, path), base: percent_decode(base)? });
    }
    let lower = url.to_ascii_lowercase();
    let (scheme, default_port, rest) = if lower.starts_with("ldap://") {
        ("ldap", 389, &url[7..])
    } else if lower.starts_with("ldaps://") {
        ("ldaps", 636, &url[8..])
    } else {
        return Err(format!("'{url}' is not an ldap://, ldaps:// or ldif: URL"));
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    if hostport.is_empty() {
        return Err(format!("'{url}' names no host"));
    }
    let has_port = match hostport.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => hostport.contains(':'),
    };
    let hostport = if has_port { hostport.to_owned() } else { format!("{hostport}:{default_port}") };
    // Anything after '?' (attributes, scope, filter) is not used by the MMP.
    let base = path.split('?').next().unwrap_or("");
    Ok(DirectoryUrl::Ldap { server: format!("{scheme}://{hostport}"), base: percent_decode(base)? })
}

/// Checks the URLs of one `LdapURL` as a whole: several `ldap://` servers are fail-overs of
/// one directory, but a second LDIF file would be a second directory, and mailmux searches
/// one. Refused at load time so `mailmux check` reports it, rather than the server quietly
/// using the first file.
pub fn check_list(urls: &[DirectoryUrl]) -> Result<(), String> {
    let ldif = urls.iter().filter(|u| matches!(u, DirectoryUrl::Ldif { .. })).count();
    if ldif > 0 && ldif != urls.len() {
        return Err("mixes ldap:// and ldif: entries; use one kind".into());
    }
    if ldif > 1 {
        return Err(format!(
            "names {ldif} ldif: files; the embedded directory reads one file (concatenate them into one)"
        ));
    }
    Ok(())
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_urls() {
        let d = Path::new("/etc/mailmux");
        assert_eq!(
            parse("ldap://phonebook.siroe.com/o=internet", d).unwrap(),
            DirectoryUrl::Ldap { server: "ldap://phonebook.siroe.com:389".into(), base: "o=internet".into() }
        );
        assert_eq!(
            parse("LDAP://127.0.0.1:3890/dc=example,dc=com?uid?sub", d).unwrap(),
            DirectoryUrl::Ldap { server: "ldap://127.0.0.1:3890".into(), base: "dc=example,dc=com".into() }
        );
        assert_eq!(
            parse("ldap://h/o=a%20b", d).unwrap(),
            DirectoryUrl::Ldap { server: "ldap://h:389".into(), base: "o=a b".into() }
        );
    }

    #[test]
    fn ldif_urls() {
        let d = Path::new("/etc/mailmux");
        assert_eq!(
            parse("ldif:users.ldif?ou=people,dc=x", d).unwrap(),
            DirectoryUrl::Ldif { path: "/etc/mailmux/users.ldif".into(), base: "ou=people,dc=x".into() }
        );
        assert_eq!(
            parse("ldif:///var/lib/u.ldif", d).unwrap(),
            DirectoryUrl::Ldif { path: "/var/lib/u.ldif".into(), base: String::new() }
        );
    }

    #[test]
    fn bad_urls() {
        let d = Path::new("/");
        assert_eq!(
            parse("ldaps://ldap.example.com/o=x", d).unwrap(),
            DirectoryUrl::Ldap { server: "ldaps://ldap.example.com:636".into(), base: "o=x".into() }
        );
        for bad in ["http://x", "ldap:///o=x", "ldif:", "ldaps:///o=x", "ldap://h/%zz"] {
            assert!(parse(bad, d).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_ldif_file_or_ldap_servers_only() {
        let d = Path::new("/cfg");
        let list = |urls: &[&str]| check_list(&urls.iter().map(|u| parse(u, d).unwrap()).collect::<Vec<_>>());
        assert_eq!(list(&["ldif:a.ldif"]), Ok(()));
        assert_eq!(list(&["ldap://a/o=x", "ldaps://b/o=x"]), Ok(()));
        assert_eq!(list(&[]), Ok(()));
        let several = list(&["ldif:a.ldif", "ldif:b.ldif?o=x"]).unwrap_err();
        assert!(several.contains("names 2 ldif: files"), "{several}");
        for mixed in [["ldap://a/o=x", "ldif:a.ldif"], ["ldif:a.ldif", "ldap://a/o=x"]] {
            assert!(list(&mixed).unwrap_err().contains("mixes ldap:// and ldif:"), "{mixed:?}");
        }
        // Mixed and several at once: the mix is the first thing to fix.
        assert!(list(&["ldif:a", "ldif:b", "ldap://h/o=x"]).unwrap_err().contains("mixes"));
    }
}
