//! The rule languages (`TCPAccess`, `ConnLimits`, `BGExcluded`) on random and mangled input:
//! never a panic, and whatever parses reads back the same from its canonical form.
//!
//! A deterministic stand-in for the fuzz targets `tcp_access`, `conn_limits` and
//! `address_list` in `fuzz/`, so every test run checks the same properties.

use std::net::IpAddr;

use mailmux_config::address_list::{AddressList, BgExcluded, IpNet};
use mailmux_config::conn_limits::ConnLimits;
use mailmux_config::tcp_access::{Client, HostName, Service, TcpAccess};

const ROUNDS: usize = 20_000;

/// xorshift64*: small, deterministic, good enough to generate input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Pieces of all three languages, valid and not, so random joins reach deep into the parsers.
const VOCABULARY: &[&str] = &[
    "+",
    "-",
    "$",
    ":",
    ",",
    " ",
    "  ",
    "\t",
    "|",
    "/",
    "[",
    "]",
    "@",
    ".",
    "*",
    "?",
    "EXCEPT",
    "except",
    "ALL",
    "all",
    "imap",
    "imaps",
    "pop",
    "POPS",
    "smtp",
    "http",
    "smime",
    "imap4",
    "LOCAL",
    "KNOWN",
    "UNKNOWN",
    "DNSSPOOFER",
    "PARANOID",
    "10.",
    "192.168.",
    "192.168.1.0",
    "10.0.0.1",
    "255.255.255.0",
    "255.0.255.0",
    "0.0.0.0",
    "24",
    "8",
    "0",
    "20",
    "33",
    "129",
    "4294967296",
    "99999999999999999999",
    "::",
    "::1",
    "2001:db8::",
    "ffff:ffff::",
    "::ffff:192.0.2.7",
    "fe80::1%eth0",
    ".example.com",
    "mail.example.com",
    "mail*.example.com",
    "a..b",
    "xn--bcher-kva",
    "é",
    "ｉｍａｐ",
    "\u{0}",
    "\n",
    "#",
    "bgexcl.cfg",
    "/opt/bgexcl.cfg",
    "-1",
    "+5",
];

/// Words that are valid somewhere, so rule-shaped soup parses often enough to matter.
const WORDS: &[&str] = &[
    "ALL",
    "*",
    "imap",
    "pops",
    "EXCEPT",
    "LOCAL",
    "UNKNOWN",
    "10.",
    "192.168.1.0/24",
    "2001:db8::/32",
    "[::1]",
    ".example.com",
    "mail*.example.com",
    "10.0.0.1",
];

/// Half plain token soup, half rule-shaped (`sign words : words`, joined by `$`) with a
/// little noise mixed into the words.
fn soup(rng: &mut Rng) -> String {
    if rng.below(2) == 0 {
        return (0..=rng.below(24)).map(|_| rng.pick(VOCABULARY)).collect();
    }
    let words = |rng: &mut Rng| -> String {
        let n = 1 + rng.below(3);
        let picked: Vec<&str> =
            (0..n).map(|_| if rng.below(12) == 0 { rng.pick(VOCABULARY) } else { rng.pick(WORDS) }).collect();
        picked.join(if rng.below(2) == 0 { "," } else { " " })
    };
    let rules: Vec<String> = (0..=rng.below(3))
        .map(|_| {
            let sign = rng.pick(&["+", "-", "+", "-", ""]);
            format!("{sign}{}:{}", words(rng), words(rng))
        })
        .collect();
    rules.join("$")
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(160)).map(|_| rng.next() as u8).collect()
}

fn clients(rng: &mut Rng) -> Vec<(IpAddr, HostName<'static>)> {
    let addrs = ["192.168.1.7", "10.1.2.3", "203.0.113.9", "::1", "2001:db8::7", "::ffff:10.0.0.1", "0.0.0.0"];
    let hosts = [
        HostName::NotLookedUp,
        HostName::Unknown,
        HostName::Unconfirmed,
        HostName::Known("mail.example.com"),
        HostName::Known("mailhost"),
        HostName::Known(""),
    ];
    (0..3).map(|_| (addrs[rng.below(addrs.len())].parse().expect("address"), hosts[rng.below(hosts.len())])).collect()
}

const SERVICES: [Service; 8] = [
    Service::Imap,
    Service::Imaps,
    Service::Pop,
    Service::Pops,
    Service::Smtp,
    Service::Smtps,
    Service::Http,
    Service::Smime,
];

fn exercise(rng: &mut Rng, text: &str) {
    if let Ok(filter) = TcpAccess::parse(text) {
        let canonical = filter.to_string();
        assert_eq!(TcpAccess::parse(&canonical).as_ref(), Ok(&filter), "{text:?} -> {canonical:?}");
        // Allow rules go first whatever the order: reversing the rules changes no decision.
        let reversed: Vec<String> = filter.rules().iter().rev().map(ToString::to_string).collect();
        let reversed = TcpAccess::parse(&reversed.join("$")).expect("reversed rules parse");
        for (ip, host) in clients(rng) {
            let client = Client::with_host(ip, host);
            let service = SERVICES[rng.below(SERVICES.len())];
            let verdict = filter.verdict(service, &client);
            assert_eq!(verdict.decision, filter.decide(service, &client));
            assert_eq!(reversed.decide(service, &client), verdict.decision, "{canonical:?} reversed");
            if let Some(i) = verdict.rule {
                assert_eq!(filter.rules()[i].decision(), verdict.decision);
                assert!(filter.rules()[i].matches(service, &client));
            }
            if !filter.needs_host_name_for(service) {
                // Without name rules, the lookup cannot change the decision.
                let blind = Client::with_host(ip, HostName::NotLookedUp);
                assert_eq!(filter.decide(service, &blind), verdict.decision, "{canonical:?} {ip} {host:?}");
            }
        }
    }
    if let Ok(limits) = ConnLimits::parse(text) {
        let canonical = limits.to_string();
        assert_eq!(ConnLimits::parse(&canonical).as_ref(), Ok(&limits), "{text:?} -> {canonical:?}");
        let reversed: Vec<String> = limits.realms().iter().rev().map(ToString::to_string).collect();
        let reversed = ConnLimits::parse(&reversed.join(",")).expect("reversed realms parse");
        for (ip, _) in clients(rng) {
            assert_eq!(limits.limit_for(ip), reversed.limit_for(ip), "{canonical:?} {ip}");
            let _ = limits.key(ip).to_string();
        }
    }
    if let Ok(list) = AddressList::parse(text) {
        assert_eq!(AddressList::parse(&list.to_string()).as_ref(), Ok(&list), "{text:?}");
        for (ip, _) in clients(rng) {
            assert_eq!(list.contains(ip), list.nets().iter().any(|n| n.contains(ip)));
        }
    }
    if let Ok(net) = IpNet::parse(text) {
        assert_eq!(IpNet::parse(&net.to_string()), Ok(net), "{text:?}");
    }
    let _ = AddressList::parse_file(text);
    let _ = BgExcluded::parse(text);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x00ac_ce55_5eed);
    for _ in 0..ROUNDS {
        let bytes = random_bytes(&mut rng);
        exercise(&mut rng, &String::from_utf8_lossy(&bytes));
        if let Ok(text) = std::str::from_utf8(&bytes) {
            exercise(&mut rng, text);
        }
    }
}

#[test]
fn token_soup_never_panics_and_reads_back() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut parsed = 0;
    for _ in 0..ROUNDS {
        let text = soup(&mut rng);
        exercise(&mut rng, &text);
        parsed += usize::from(TcpAccess::parse(&text).is_ok_and(|f| !f.is_empty()));
    }
    // The vocabulary must reach past the first error now and then, or the test proves little.
    assert!(parsed > 20, "only {parsed} non-empty filters parsed");
}

#[test]
fn structured_filters_read_back_and_ignore_rule_order() {
    let mut rng = Rng(0xfeed_f00d);
    let services = ["imap", "imaps", "pop", "pops", "smtp", "ALL", "*", "http"];
    let clients = [
        "ALL",
        "10.",
        "192.168.1.0/24",
        "192.168.1.7",
        "2001:db8::/32",
        "[::1]",
        ".example.com",
        "mail.example.com",
        "mail*.example.com",
        "LOCAL",
        "KNOWN",
        "UNKNOWN",
        "DNSSPOOFER",
        "10.1.2.*",
        "203.0.113.0/255.255.255.0",
    ];
    let list = |rng: &mut Rng, from: &[&str]| -> String {
        let mut out: Vec<&str> = (0..=rng.below(2)).map(|_| rng.pick(from)).collect();
        if rng.below(3) == 0 {
            out.push("EXCEPT");
            out.push(rng.pick(from));
        }
        out.join(if rng.below(2) == 0 { "," } else { " " })
    };
    for _ in 0..ROUNDS / 4 {
        let rules: Vec<String> = (0..=rng.below(4))
            .map(|_| {
                let sign = if rng.below(2) == 0 { "+" } else { "-" };
                format!("{sign}{}:{}", list(&mut rng, &services), list(&mut rng, &clients))
            })
            .collect();
        let text = rules.join("$");
        assert!(TcpAccess::parse(&text).is_ok(), "{text:?}: {:?}", TcpAccess::parse(&text));
        exercise(&mut rng, &text);
    }
}
