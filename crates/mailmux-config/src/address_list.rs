//! Address ranges: the [`IpNet`] shared by `TCPAccess`, `ConnLimits` and `BGExcluded`, and
//! the `BGExcluded` list itself (clients never penalised for failed logins).
//!
//! # One range
//!
//! ```text
//! net    = addr [ ("/" | "|") mask ]
//! addr   = IPv4 | IPv6 | "[" IPv6 "]"
//! mask   = length | IPv4-mask | IPv6-mask | "[" IPv6-mask "]"
//! ```
//!
//! | written | means |
//! | --- | --- |
//! | `192.0.2.7` | that address only (`/32`) |
//! | `192.168.1.0/24`, `192.168.1.0/255.255.255.0`, `192.168.1.0\|255.255.255.0` | the 256 addresses |
//! | `2001:db8::/32`, `[2001:db8::]/32`, `[2001:db8::]\|[ffff:ffff::]` | an IPv6 range |
//! | `0.0.0.0\|0.0.0.0`, `::/0` | every address of the family |
//!
//! `|` is the MMP's separator (`ConnLimits`, `BGExcluded`); `/` is the tcp_wrappers one
//! (`TCPAccess`); both are accepted everywhere so an operator never has to remember which.
//! A mask must be contiguous (`255.0.255.0` is refused) because "most specific range" is
//! only defined for prefixes, and the address must not have bits outside the mask
//! (`192.168.1.5/24` is refused with the range it probably meant): tcp_wrappers silently
//! never matched such a pattern, and a filter that silently matches nothing is a hole.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`, what a dual-stack socket reports for an
//! IPv4 client) are the IPv4 addresses they carry: as clients and, with a length of 96 or
//! more, as ranges. An IPv6 range never matches an IPv4 client otherwise, so `::/0` means
//! "every IPv6 client", not everybody.
//!
//! # `BGExcluded`
//!
//! The value is either the list itself or the name of a file holding it
//! ([`BgExcluded::parse`] tells which):
//!
//! ```text
//! default:BGExcluded 127.0.0.1 10.0.0.0/8, 192.168.0.0|255.255.0.0 [2001:db8::]/48
//! default:BGExcluded /opt/SUNWmsgsr/config/bgexcl.cfg
//! ```
//!
//! In the list, ranges are separated by spaces and/or commas. The file ([`AddressList::parse_file`])
//! has the same ranges, any number per line; `#` starts a comment that runs to the end of
//! the line:
//!
//! ```text
//! # monitoring and the webmail front ends
//! 192.0.2.10
//! 198.51.100.0|255.255.255.0   # webmail pool
//! ```
//!
//! Source for the meaning: msg.wikidoc.info `Bgexcluded_Option` ("a list of excluded IP/mask
//! pairs, or the name of a file to read for these pairs; these client addresses will not be
//! penalized for authentication failure"). The file syntax is not documented anywhere we
//! could find; the one above is the most lenient reading of "IP/mask pairs".

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A range of addresses: an address and a prefix length, with no bits set past the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The range of `prefix` leading bits of `addr`. Refuses a prefix longer than the
    /// address and an address with bits set past the prefix.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, String> {
        let bits = family_bits(addr);
        if prefix > bits {
            return Err(format!("/{prefix} is longer than the {bits} bits of {}", family_name(addr)));
        }
        let masked = mask(addr, prefix);
        if masked != addr {
            return Err(format!(
                "{addr}/{prefix} has bits set outside the mask (did you mean {}?)",
                IpNet::normalized(masked, prefix)
            ));
        }
        Ok(IpNet::normalized(addr, prefix))
    }

    /// The range holding `addr` only.
    pub fn host(addr: IpAddr) -> IpNet {
        let addr = addr.to_canonical();
        IpNet { addr, prefix: family_bits(addr) }
    }

    /// Every address of `addr`'s family (`0.0.0.0/0` or `::/0`).
    pub fn catch_all(addr: IpAddr) -> IpNet {
        IpNet { addr: mask(addr, 0), prefix: 0 }
    }

    /// Parses one range; see the module documentation for the forms.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let (addr_text, mask_text) = match text.find(['/', '|']) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let addr = parse_addr(addr_text).ok_or_else(|| format!("'{addr_text}' is not an IP address"))?;
        let prefix = match mask_text {
            None => family_bits(addr),
            Some(m) => parse_mask(m, addr)?,
        };
        IpNet::new(addr, prefix)
    }

    /// The first address of the range.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// How many leading bits are fixed.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether the range covers every address of its family.
    pub fn is_catch_all(&self) -> bool {
        self.prefix == 0
    }

    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        family_bits(ip) == family_bits(self.addr) && mask(ip, self.prefix) == self.addr
    }

    /// An IPv4-mapped range of 96 bits or more is the IPv4 range it maps, so it matches the
    /// canonical (IPv4) form of mapped clients.
    fn normalized(addr: IpAddr, prefix: u8) -> IpNet {
        match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => IpNet { addr: IpAddr::V4(v4), prefix: prefix - 96 },
                None => IpNet { addr, prefix },
            },
            _ => IpNet { addr, prefix },
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == family_bits(self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// 32 or 128.
pub(crate) fn family_bits(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family_name(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "an IPv4 address",
        IpAddr::V6(_) => "an IPv6 address",
    }
}

/// `addr` with every bit past `prefix` cleared. `prefix` is at most the family's width.
pub(crate) fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            // A shift by the full width overflows, so /0 is its own case.
            let m = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// An address, IPv6 optionally in brackets.
fn parse_addr(text: &str) -> Option<IpAddr> {
    match text.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse().ok(),
    }
}

/// A prefix length, or a contiguous mask written as an address of the same family.
fn parse_mask(text: &str, addr: IpAddr) -> Result<u8, String> {
    let bits = family_bits(addr);
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u8>() {
            Ok(n) if n <= bits => Ok(n),
            _ => Err(format!("prefix length '{text}' is not a number from 0 to {bits}")),
        };
    }
    let ones = match parse_addr(text) {
        Some(IpAddr::V4(m)) if bits == 32 => contiguous(u128::from(u32::from(m)), 32),
        Some(IpAddr::V6(m)) if bits == 128 => contiguous(u128::from(m), 128),
        Some(_) => return Err(format!("mask '{text}' is not of the same family as the address")),
        None => return Err(format!("'{text}' is neither a prefix length nor a mask")),
    };
    ones.ok_or_else(|| format!("mask '{text}' is not contiguous (ones followed by zeros)"))
}

/// The number of leading ones of a `width`-bit mask, if all its ones lead.
fn contiguous(m: u128, width: u32) -> Option<u8> {
    let m = m << (128 - width);
    let ones = m.leading_ones();
    let rest_zero = ones == 128 || m << ones == 0;
    let ones = ones.min(width);
    rest_zero.then(|| u8::try_from(ones).unwrap_or(u8::MAX))
}

/// A set of ranges, such as `BGExcluded`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList {
    nets: Vec<IpNet>,
}

/// A problem on one line of an address file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl AddressList {
    /// Parses ranges separated by spaces and/or commas. An empty text is an empty list.
    pub fn parse(text: &str) -> Result<AddressList, String> {
        let mut nets = Vec::new();
        for token in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
            nets.push(IpNet::parse(token)?);
        }
        Ok(AddressList { nets })
    }

    /// Parses the contents of an address file: ranges as in [`AddressList::parse`], `#`
    /// comments. Every bad line is reported, not only the first.
    pub fn parse_file(contents: &str) -> Result<AddressList, Vec<LineError>> {
        let mut nets = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in contents.lines().enumerate() {
            let data = line.split_once('#').map_or(line, |(before, _)| before);
            match AddressList::parse(data) {
                Ok(list) => nets.extend(list.nets),
                Err(message) => errors.push(LineError { line: i + 1, message }),
            }
        }
        if errors.is_empty() { Ok(AddressList { nets }) } else { Err(errors) }
    }

    /// Whether any range holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The ranges, in the order written.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether the list has no range.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl fmt::Display for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// What a `BGExcluded` value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgExcluded {
    /// The ranges, written in the value.
    List(AddressList),
    /// A file holding the ranges, as written (the caller resolves it against the
    /// configuration directory and reads it with [`AddressList::parse_file`]).
    File(String),
}

impl BgExcluded {
    /// Tells a list from a file name: several tokens, or one that parses as a range, are a
    /// list; one token that only has address characters (`0-9a-f.:/|[]`) and starts like an
    /// address is a list with a mistake in it (reported as such, rather than as a missing
    /// file named `10.0.0.300`); any other single token is a file name.
    pub fn parse(value: &str) -> Result<BgExcluded, String> {
        let mut tokens = value.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty());
        let (Some(first), None) = (tokens.next(), tokens.next()) else {
            return AddressList::parse(value).map(BgExcluded::List);
        };
        match IpNet::parse(first) {
            Ok(net) => Ok(BgExcluded::List(AddressList { nets: vec![net] })),
            Err(e) if looks_like_address(first) => Err(e),
            Err(_) => Ok(BgExcluded::File(first.to_owned())),
        }
    }
}

fn looks_like_address(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit() || c == ':' || c == '[')
        && token.chars().all(|c| c.is_ascii_hexdigit() || ".:/|[]".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn ranges_in_every_spelling() {
        for (text, shown) in [
            ("192.0.2.7", "192.0.2.7"),
            ("192.168.1.0/24", "192.168.1.0/24"),
            ("192.168.1.0/255.255.255.0", "192.168.1.0/24"),
            ("192.168.1.0|255.255.255.0", "192.168.1.0/24"),
            (" 10.0.0.0|8 ", "10.0.0.0/8"),
            ("0.0.0.0|0.0.0.0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("[2001:db8::]/32", "2001:db8::/32"),
            ("[2001:db8::]|[ffff:ffff::]", "2001:db8::/32"),
            ("2001:db8::|ffff:ffff::", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("[::1]", "::1"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("::ffff:192.168.0.0/112", "192.168.0.0/16"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
        ] {
            let net = IpNet::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(net.to_string(), shown, "{text}");
            assert_eq!(IpNet::parse(shown), Ok(net), "{shown} round trip");
        }
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        for (text, needle) in [
            ("", "not an IP address"),
            ("192.168.1.0/33", "not a number from 0 to 32"),
            ("192.168.1.0/99999999999999999999", "not a number from 0 to 32"),
            ("2001:db8::/129", "from 0 to 128"),
            ("192.168.1.5/24", "did you mean 192.168.1.0/24?"),
            ("2001:db8::1/64", "did you mean 2001:db8::/64?"),
            ("192.168.1.0/255.0.255.0", "not contiguous"),
            ("192.168.1.0/ffff::", "same family"),
            ("2001:db8::/255.255.0.0", "same family"),
            ("192.168.1.0/", "neither a prefix length nor a mask"),
            ("192.168.1.0/+8", "neither a prefix length nor a mask"),
            ("256.1.1.1", "not an IP address"),
            ("010.0.0.1", "not an IP address"),
            ("fe80::1%eth0", "not an IP address"),
            ("[192.0.2.1]", "not an IP address"),
            ("[2001:db8::", "not an IP address"),
            ("1.2.3.4/8/8", "neither a prefix length nor a mask"),
            ("ünï.côde", "not an IP address"),
            ("192.168.1.0/２４", "neither a prefix length nor a mask"),
        ] {
            match IpNet::parse(text) {
                Ok(net) => panic!("{text:?} parsed as {net}"),
                Err(e) => assert!(e.contains(needle), "{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn containment_and_mapped_clients() {
        let table = [
            ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.0/24", "192.168.2.0", false),
            ("192.168.1.0/24", "::ffff:192.168.1.9", true),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "192.0.2.1", false),
            ("::/0", "::ffff:192.0.2.1", false),
            ("2001:db8:1:2::/64", "2001:db8:1:2:ffff::1", true),
            ("2001:db8:1:2::/64", "2001:db8:1:3::1", false),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("::1", "::1", true),
        ];
        for (net, client, expected) in table {
            let n = IpNet::parse(net).expect("net");
            assert_eq!(n.contains(ip(client)), expected, "{net} contains {client}");
        }
    }

    #[test]
    fn lists_and_files() {
        let list = AddressList::parse("127.0.0.1 10.0.0.0/8,192.168.0.0|255.255.0.0 , [2001:db8::]/48").expect("list");
        assert_eq!(list.to_string(), "127.0.0.1 10.0.0.0/8 192.168.0.0/16 2001:db8::/48");
        assert!(list.contains(ip("10.9.8.7")));
        assert!(list.contains(ip("::ffff:127.0.0.1")));
        assert!(list.contains(ip("2001:db8:0:ff::1")));
        assert!(!list.contains(ip("172.16.0.1")));
        assert_eq!(AddressList::parse("  "), Ok(AddressList::default()));
        assert!(AddressList::parse("10.0.0.0/8 nonsense").unwrap_err().contains("'nonsense'"));

        let file = "# monitoring\n192.0.2.10\n\n198.51.100.0|255.255.255.0   # webmail pool\n  2001:db8::/32, ::1 #\n";
        let list = AddressList::parse_file(file).expect("file");
        assert_eq!(list.nets().len(), 4);
        assert!(list.contains(ip("198.51.100.77")));

        let errors = AddressList::parse_file("192.0.2.10\n10.0.0.1/8\n# fine\nbogus # comment\n").unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("line 2: 10.0.0.1/8 has bits set"), "{shown:?}");
        assert!(shown[1].starts_with("line 4: 'bogus'"), "{shown:?}");
    }

    #[test]
    fn bg_excluded_tells_lists_from_files() {
        let list = |v: &str| match BgExcluded::parse(v) {
            Ok(BgExcluded::List(l)) => l.to_string(),
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(list("10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(list("10.0.0.0|255.0.0.0 192.0.2.1"), "10.0.0.0/8 192.0.2.1");
        assert_eq!(list("::1"), "::1");
        assert_eq!(list(""), "");
        for file in ["/opt/SUNWmsgsr/config/bgexcl.cfg", "bgexcl.cfg", "2024-excluded.txt", "./excl"] {
            assert_eq!(BgExcluded::parse(file), Ok(BgExcluded::File(file.to_owned())));
        }
        for bad in ["10.0.0.300", "10.0.0.1/8", "[::1", "::1/200"] {
            assert!(BgExcluded::parse(bad).is_err(), "{bad}");
        }
        assert!(BgExcluded::parse("10.0.0.0/8 bgexcl.cfg").is_err());
    }
}
