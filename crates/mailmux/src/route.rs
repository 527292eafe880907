//! From a directory entry to the store's address.
//!
//! `MailHostAttrs` names the attributes to try, in order; the first present gives the store.
//! Its value is `host`, `host:port`, `[v6addr]:port` or a bare IPv6 address; without a port,
//! `BacksidePort` applies.

use std::fmt;

use crate::directory::Entry;

/// Where a user's store listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreAddr {
    /// Host name or address, as the directory gave it (without IPv6 brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for StoreAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The store of an entry, or `None` when no mail-host attribute holds a usable value.
pub fn store_of(entry: &Entry, mail_host_attrs: &[String], default_port: u16) -> Option<StoreAddr> {
    mail_host_attrs.iter().find_map(|attr| entry.first(attr)).and_then(|value| parse_mail_host(value, default_port))
}

/// Parses one mail-host value.
pub fn parse_mail_host(value: &str, default_port: u16) -> Option<StoreAddr> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some(StoreAddr { host: host.to_owned(), port });
    }
    match value.matches(':').count() {
        0 => Some(StoreAddr { host: value.to_owned(), port: default_port }),
        1 => {
            let (host, port) = value.split_once(':')?;
            Some(StoreAddr { host: host.to_owned(), port: port.parse().ok().filter(|p| *p != 0)? })
        }
        // A bare IPv6 address.
        _ => Some(StoreAddr { host: value.to_owned(), port: default_port }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_host_forms() {
        let p = |v| parse_mail_host(v, 143).map(|a| a.to_string());
        assert_eq!(p("store1.example.com").as_deref(), Some("store1.example.com:143"));
        assert_eq!(p("127.0.0.2:1143").as_deref(), Some("127.0.0.2:1143"));
        assert_eq!(p("[::1]:993").as_deref(), Some("[::1]:993"));
        assert_eq!(p("::1").as_deref(), Some("[::1]:143"));
        assert_eq!(p("h:0"), None);
        assert_eq!(p("h:x"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn first_present_attribute_wins() {
        let e = Entry::new("uid=a", [("mailhost", "b.example"), ("maildeliveryhost", "c.example")]);
        let attrs = vec!["mailroutinghost".to_owned(), "maildeliveryhost".to_owned(), "mailhost".to_owned()];
        assert_eq!(store_of(&e, &attrs, 110).unwrap().to_string(), "c.example:110");
        assert_eq!(store_of(&e, &["x".to_owned()], 110), None);
    }
}
