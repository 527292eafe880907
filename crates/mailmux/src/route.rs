//! From a directory entry to the store's address.
//!
//! `MailHostAttrs` names the attributes to try, in order. A value is `host`, `host:port`,
//! `[v6addr]:port` or a bare IPv6 address; without a port, `BacksidePort` applies. The
//! candidate stores are every usable value of every attribute, in that order (the
//! attributes as listed, each attribute's values as the directory returns them), without
//! repeats: the first is the user's store, the others are tried in turn when it cannot be
//! reached (see `session::login`).

use std::fmt;

use crate::directory::Entry;

/// Where a user's store listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// The candidate stores of an entry, in order (empty when no mail-host attribute holds a
/// usable value).
pub fn stores_of(entry: &Entry, mail_host_attrs: &[String], default_port: u16) -> Vec<StoreAddr> {
    let mut stores: Vec<StoreAddr> = Vec::new();
    for value in mail_host_attrs.iter().flat_map(|attr| entry.values(attr)) {
        if let Some(store) = parse_mail_host(value, default_port)
            && !stores.contains(&store)
        {
            stores.push(store);
        }
    }
    stores
}

/// Parses one mail-host value.
pub fn parse_mail_host(value: &str, default_port: u16) -> Option<StoreAddr> {
    let (host, port) = mailmux_config::store_address::split(value.trim())?;
    Some(StoreAddr { host: host.to_owned(), port: port.unwrap_or(default_port) })
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
    fn candidates_in_attribute_then_value_order_without_repeats() {
        let e = Entry::new(
            "uid=a",
            [
                ("mailhost", "b.example"),
                ("maildeliveryhost", "c.example"),
                ("mailhost", "d.example:1143"),
                ("mailhost", "c.example"),
                ("mailhost", "h:0"),
            ],
        );
        let attrs = vec!["mailroutinghost".to_owned(), "maildeliveryhost".to_owned(), "mailhost".to_owned()];
        let stores: Vec<String> = stores_of(&e, &attrs, 110).iter().map(ToString::to_string).collect();
        assert_eq!(stores, ["c.example:110", "b.example:110", "d.example:1143"]);
        assert!(stores_of(&e, &["x".to_owned()], 110).is_empty());
    }
}
