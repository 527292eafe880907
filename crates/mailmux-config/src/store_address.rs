//! A store's address as `mailHost` values and `CapabilityStores` write it: `host`,
//! `host:port`, `[IPv6]`, `[IPv6]:port` or a bare IPv6 address. One reading for both, so a
//! store configured and the same store routed to are the same address.

/// The host (IPv6 without its brackets) and the port when one is written; `None` when
/// `value` is empty or malformed (a port that is not 1-65535, text after `]` that is not
/// `:port`).
pub fn split(value: &str) -> Option<(&str, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(port(p)?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match value.matches(':').count() {
        0 if value.is_empty() => None,
        0 => Some((value, None)),
        1 => {
            let (host, p) = value.split_once(':')?;
            Some((host, Some(port(p)?)))
        }
        // A bare IPv6 address.
        _ => Some((value, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn every_form_and_no_port_zero() {
        assert_eq!(split("store1.example.com"), Some(("store1.example.com", None)));
        assert_eq!(split("127.0.0.3:1143"), Some(("127.0.0.3", Some(1143))));
        assert_eq!(split("[::1]"), Some(("::1", None)));
        assert_eq!(split("[::1]:143"), Some(("::1", Some(143))));
        assert_eq!(split("fe80::1"), Some(("fe80::1", None)));
        for bad in ["", "host:0", "[::1]:0", "host:x", "host:70000", "[::1]x", "[::1"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
