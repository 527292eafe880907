//! `ConnLimits`: how many connections one client may hold open at once, by address range.
//!
//! ```text
//! default:ConnLimits 0.0.0.0|0.0.0.0:20                              (the MMP default)
//! default:ConnLimits 192.0.2.10|255.255.255.255:500,10.0.0.0/8:50,0.0.0.0|0.0.0.0:20
//! default:ConnLimits 0.0.0.0/0:20, [2001:db8:1::]/48:100, ::/0:10     (mailmux: IPv6 realms)
//! ```
//!
//! # Grammar
//!
//! ```text
//! value  = realm *( ("," | white space) realm )
//! realm  = net ":" limit
//! net    = IPv4 [ ("|" | "/") (IPv4-mask | length) ]
//!        | "[" IPv6 "]" [ ("|" | "/") ("[" IPv6-mask "]" | IPv6-mask | length) ]
//!        | IPv6 ("|" | "/") (IPv6-mask | length)
//! limit  = 0 .. 4294967295
//! ```
//!
//! The MMP wrote `IP|MASK:NUM` ([`crate::address_list`] has every accepted range form). The
//! limit is what follows the **last** colon, so an IPv6 range must be bracketed or carry a
//! mask: `2001:db8::5:10` could be the host `2001:db8::5` with limit 10 or a range that forgot
//! its limit, and is refused; write `[2001:db8::5]:10` or `2001:db8::/64:10`.
//!
//! # Meaning
//!
//! * Every realm gives the maximum number of simultaneous connections **per client** whose
//!   address is in its range (msg.wikidoc.info `Connlimits_Option`: "maximum number of
//!   connections per IP address ... a realm has the form of address ranges and maximum number
//!   of connections ... there should be at least 1 realm of the form `0.0.0.0|0.0.0.0:n` to
//!   cover the default case"). It is not a budget shared by the range.
//! * When several realms hold the client, the **most specific** one (longest prefix) decides,
//!   whatever the order written: `10.0.0.0/8:50,0.0.0.0|0.0.0.0:20` gives 10.1.2.3 fifty and
//!   everyone else twenty. The MMP docs do not say how overlapping realms combine; "most
//!   specific wins" is the only reading under which the documented catch-all can coexist with
//!   any other realm. A range written twice is an error rather than a silent pick.
//! * A limit of `0` refuses every connection from the range. (`0` is not "unlimited": a
//!   typo'd `:0` then shows at once as refused connections instead of silently removing the
//!   protection; for a generous range write a large number.)
//! * A client no realm holds is not limited ([`ConnLimits::limit_for`] is `None`), except
//!   that a catch-all of one family (`0.0.0.0|0.0.0.0` or `::/0`) also covers clients of the
//!   other family that no realm of their own family holds. The MMP predates IPv6; its
//!   documented catch-all means "every client", and an IPv6 client must not escape the
//!   default limit just because the file was written for IPv4.
//! * IPv4-mapped IPv6 clients (`::ffff:192.0.2.7`) are IPv4 clients.
//!
//! # Counting
//!
//! The server counts open connections per [`IpKey`] ([`ConnLimits::key`]): the address for
//! IPv4, and for IPv6 the address cut to its first 64 bits
//! ([`DEFAULT_IPV6_COUNT_PREFIX`]). A /64 is what one subscriber line or one host usually
//! gets, and any address in it is the client's to use, so counting per address would let a
//! single client multiply its allowance by rotating source addresses. The count of the key is
//! compared with the limit of the client's own realm.

use std::fmt;
use std::net::IpAddr;

use crate::address_list::{IpNet, family_bits, mask};

/// The MMP's default value.
pub const DEFAULT: &str = "0.0.0.0|0.0.0.0:20";

/// IPv6 clients are counted per this many leading bits unless told otherwise.
pub const DEFAULT_IPV6_COUNT_PREFIX: u8 = 64;

/// One `net:limit` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Realm {
    /// The clients it applies to.
    pub net: IpNet,
    /// The most connections one of them may hold open at once; 0 refuses them all.
    pub limit: u32,
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.net.addr() {
            // Brackets keep the limit's colon apart from the address's colons.
            IpAddr::V6(a) => write!(f, "[{a}]/{}:{}", self.net.prefix_len(), self.limit),
            IpAddr::V4(_) => write!(f, "{}:{}", self.net, self.limit),
        }
    }
}

/// What the server counts connections by: one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpKey {
    addr: IpAddr,
    prefix: u8,
}

impl IpKey {
    /// The key of an address counted the default way: IPv4 (IPv4-mapped IPv6 included) as
    /// it is, IPv6 by its /64, since one host usually holds a whole /64 and could otherwise
    /// rotate through it. BadGuy counts this way too.
    pub fn of(ip: IpAddr) -> IpKey {
        let ip = ip.to_canonical();
        let prefix = match ip {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => DEFAULT_IPV6_COUNT_PREFIX,
        };
        IpKey { addr: mask(ip, prefix), prefix }
    }

    /// The first address of the counted block.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

impl fmt::Display for IpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == family_bits(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// A parsed `ConnLimits` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    realms: Vec<Realm>,
}

impl Default for ConnLimits {
    /// `0.0.0.0|0.0.0.0:20`, IPv6 clients counted per /64.
    fn default() -> Self {
        ConnLimits { realms: vec![Realm { net: IpNet::catch_all(IpAddr::from([0u8; 4])), limit: 20 }] }
    }
}

impl ConnLimits {
    /// Parses a value; the error names the realm that is wrong.
    pub fn parse(value: &str) -> Result<ConnLimits, String> {
        let mut realms: Vec<Realm> = Vec::new();
        let tokens = value.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty());
        for (i, token) in tokens.enumerate() {
            let realm = parse_realm(token).map_err(|e| format!("realm {} '{token}': {e}", i + 1))?;
            if let Some(earlier) = realms.iter().find(|r| r.net == realm.net) {
                return Err(format!("realm {} '{token}': the range {} is already given ({earlier})", i + 1, realm.net));
            }
            realms.push(realm);
        }
        if realms.is_empty() {
            return Err(format!("no realm given; the MMP default is {DEFAULT}"));
        }
        Ok(ConnLimits { realms })
    }

    /// The realms, in the order written.
    pub fn realms(&self) -> &[Realm] {
        &self.realms
    }

    /// The realm that decides for `ip`: the most specific one holding it, else the other
    /// family's catch-all, else none.
    pub fn realm_for(&self, ip: IpAddr) -> Option<&Realm> {
        let ip = ip.to_canonical();
        let own = self.realms.iter().filter(|r| r.net.contains(ip)).max_by_key(|r| r.net.prefix_len());
        own.or_else(|| self.realms.iter().find(|r| r.net.is_catch_all()))
    }

    /// How many connections the client at `ip` may hold open at once: `None` when no realm
    /// covers it (unlimited), `Some(0)` when its range is refused.
    pub fn limit_for(&self, ip: IpAddr) -> Option<u32> {
        self.realm_for(ip).map(|r| r.limit)
    }

    /// The key the server counts the client's connections under ([`IpKey::of`]).
    pub fn key(&self, ip: IpAddr) -> IpKey {
        IpKey::of(ip)
    }
}

impl fmt::Display for ConnLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, realm) in self.realms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{realm}")?;
        }
        Ok(())
    }
}

fn parse_realm(token: &str) -> Result<Realm, String> {
    // A whole realm that reads as a range has lost its limit, unless it is a bare IPv6 text
    // (`2001:db8::5:10`), which the bracket rule below refuses with the better message.
    if IpNet::parse(token).is_ok() && !is_bare_v6(token) {
        return Err("no ':NUM' limit after the range".to_owned());
    }
    let Some((net_text, limit_text)) = token.rsplit_once(':') else {
        return Err("expected NET:NUM, such as 0.0.0.0|0.0.0.0:20".to_owned());
    };
    let net = IpNet::parse(net_text)?;
    if is_bare_v6(net_text) {
        return Err(format!("write an IPv6 range in brackets or with a mask, as [{net_text}]:{limit_text}"));
    }
    if limit_text.is_empty() || !limit_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("limit '{limit_text}' is not a number"));
    }
    let limit = limit_text.parse::<u32>().map_err(|_| format!("limit '{limit_text}' is larger than {}", u32::MAX))?;
    Ok(Realm { net, limit })
}

/// IPv6 text with neither brackets nor a mask, whose last group could be a limit.
fn is_bare_v6(text: &str) -> bool {
    text.contains(':') && !text.starts_with('[') && !text.contains(['/', '|'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn default_is_the_mmp_default() {
        assert_eq!(ConnLimits::parse(DEFAULT), Ok(ConnLimits::default()));
        let d = ConnLimits::default();
        assert_eq!(d.to_string(), "0.0.0.0/0:20");
        assert_eq!(d.limit_for(ip("203.0.113.5")), Some(20));
        // The IPv4 catch-all covers IPv6 clients too.
        assert_eq!(d.limit_for(ip("2001:db8::1")), Some(20));
    }

    #[test]
    fn most_specific_realm_wins_whatever_the_order() {
        let value = "0.0.0.0|0.0.0.0:20, 10.0.0.0/8:50 192.0.2.10|255.255.255.255:500,10.1.0.0/16:0";
        let limits = ConnLimits::parse(value).expect("limits");
        for (client, expected) in [
            ("192.0.2.10", Some(500)),
            ("192.0.2.11", Some(20)),
            ("10.9.9.9", Some(50)),
            ("10.1.2.3", Some(0)),
            ("::ffff:10.9.9.9", Some(50)),
            ("2001:db8::1", Some(20)),
        ] {
            assert_eq!(limits.limit_for(ip(client)), expected, "{client}");
        }
        assert_eq!(limits.to_string(), "0.0.0.0/0:20,10.0.0.0/8:50,192.0.2.10:500,10.1.0.0/16:0");
        assert_eq!(ConnLimits::parse(&limits.to_string()), Ok(limits));
    }

    #[test]
    fn ipv6_realms_and_fallbacks() {
        let limits = ConnLimits::parse("[2001:db8:1::]/48:100, 2001:db8::/32:30, [2001:db8::7]:3").expect("limits");
        assert_eq!(limits.limit_for(ip("2001:db8:1:5::9")), Some(100));
        assert_eq!(limits.limit_for(ip("2001:db8:2::9")), Some(30));
        assert_eq!(limits.limit_for(ip("2001:db8::7")), Some(3));
        // No catch-all anywhere: uncovered clients are unlimited.
        assert_eq!(limits.limit_for(ip("2001:db9::1")), None);
        assert_eq!(limits.limit_for(ip("192.0.2.1")), None);
        assert_eq!(ConnLimits::parse(&limits.to_string()), Ok(limits));

        let zero_mask = ConnLimits::parse("::|::0:20").expect("::|::0:20");
        assert_eq!(zero_mask.limit_for(ip("2001:db8::1")), Some(20));
        assert_eq!(zero_mask.to_string(), "[::]/0:20");

        let both = ConnLimits::parse("::/0:10,10.0.0.0/8:40").expect("limits");
        assert_eq!(both.limit_for(ip("192.0.2.1")), Some(10), "IPv6 catch-all covers IPv4");
        assert_eq!(both.limit_for(ip("10.0.0.1")), Some(40));
        assert_eq!(both.limit_for(ip("2001:db8::1")), Some(10));

        let mask_form = ConnLimits::parse("[2001:db8::]|[ffff:ffff::]:7,2001:db8::|ffff:ffff:ffff:::8").expect("mask");
        assert_eq!(mask_form.limit_for(ip("2001:db8:0:1::1")), Some(8));
        assert_eq!(mask_form.limit_for(ip("2001:db8:1::1")), Some(7));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let limits = ConnLimits::default();
        let a = limits.key(ip("2001:db8:1:2:aaaa::1"));
        let b = limits.key(ip("2001:db8:1:2:bbbb::2"));
        let c = limits.key(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(limits.key(ip("::ffff:192.0.2.7")), limits.key(ip("192.0.2.7")));
        assert_eq!(limits.key(ip("192.0.2.7")).to_string(), "192.0.2.7");
    }

    #[test]
    fn bad_values_name_the_realm() {
        for (value, needle) in [
            ("", "no realm given"),
            (" , ", "no realm given"),
            ("0.0.0.0|0.0.0.0", "realm 1 '0.0.0.0|0.0.0.0': no ':NUM' limit"),
            ("10.0.0.0/8", "no ':NUM' limit"),
            ("[::1]", "no ':NUM' limit"),
            ("10.0.0.0", "no ':NUM' limit"),
            ("nonsense", "expected NET:NUM"),
            ("0.0.0.0|0.0.0.0:", "limit '' is not a number"),
            ("0.0.0.0|0.0.0.0:-1", "limit '-1' is not a number"),
            ("0.0.0.0|0.0.0.0:+1", "limit '+1' is not a number"),
            ("0.0.0.0|0.0.0.0:twenty", "is not a number"),
            ("0.0.0.0|0.0.0.0:99999999999", "larger than 4294967295"),
            ("0.0.0.0|0.0.0.0:20,10.0.0.1|255.0.0.0:5", "realm 2 '10.0.0.1|255.0.0.0:5': 10.0.0.1/8 has bits set"),
            ("0.0.0.0|0.0.0.0:20,0.0.0.0/0:30", "realm 2 '0.0.0.0/0:30': the range 0.0.0.0/0 is already given"),
            ("10.0.0.0|255.0.0.0:5|6", "limit '5|6'"),
            ("2001:db8::5:10", "write an IPv6 range in brackets or with a mask"),
            ("::ffff:1.2.3.4:10", "write an IPv6 range in brackets"),
            ("10.0.0.0/33:5", "not a number from 0 to 32"),
            ("[2001:db8::]/999:5", "not a number from 0 to 128"),
            ("ünïcode:5", "not an IP address"),
            ("0.0.0.0|0.0.0.0:２０", "is not a number"),
            (":", "not an IP address"),
        ] {
            match ConnLimits::parse(value) {
                Ok(l) => panic!("{value:?} parsed as {l}"),
                Err(e) => assert!(e.contains(needle), "{value:?}: {e}"),
            }
        }
    }
}
