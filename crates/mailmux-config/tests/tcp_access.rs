//! `TCPAccess` / `mailAllowedServiceAccess` filters through their public interface: what
//! parses (and how it reads back), what is refused and why, and who gets in.

use std::net::IpAddr;

use mailmux_config::tcp_access::{Client, Decision, HostName, Service, TcpAccess};

use Decision::{Allow, Deny};
use HostName::{Known, NotLookedUp, Unconfirmed, Unknown};

fn filter(text: &str) -> TcpAccess {
    TcpAccess::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn written_forms_and_their_canonical_reading() {
    for (text, canonical) in [
        ("", ""),
        ("   ", ""),
        ("+imap,pop:ALL$-pop:badhost.example", "+imap,pop:ALL$-pop:badhost.example"),
        ("-ALL:ALL EXCEPT server1.sesta.com", "-ALL:ALL EXCEPT server1.sesta.com"),
        ("+imaps,pops:*$+imap,pop:192.0.2.99", "+imaps,pops:ALL$+imap,pop:192.0.2.99"),
        (" + IMAP , Pop : all $ - pop : BadHost.Example ", "+imap,pop:ALL$-pop:badhost.example"),
        ("+imap pop:10.0.0.0/8 192.168.", "+imap,pop:10.0.0.0/8,192.168.0.0/16"),
        ("-ALL EXCEPT pop:contractor.siroe1.com, .siroe.com", "-ALL EXCEPT pop:contractor.siroe1.com,.siroe.com"),
        ("+ALL:10. EXCEPT 10.1.0.0/255.255.0.0 except 10.1.2.3", "+ALL:10.0.0.0/8 EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3"),
        ("+imap:2001:db8::/32,[2001:db8:1::]/48,::1", "+imap:2001:db8::/32,2001:db8:1::/48,::1"),
        ("+imap:::ffff:192.0.2.7", "+imap:192.0.2.7"),
        ("-pop:LOCAL,KNOWN,UNKNOWN,DNSSPOOFER,paranoid", "-pop:LOCAL,KNOWN,UNKNOWN,DNSSPOOFER,DNSSPOOFER"),
        (
            "+smtp,smtps,http,smime:Mail*.Example.COM,192.0.2.*,2001:DB8::?",
            "+smtp,smtps,http,smime:mail*.example.com,192.0.2.*,2001:db8::?",
        ),
        ("+imap:mail_1.example.com", "+imap:mail_1.example.com"),
    ] {
        let parsed = filter(text);
        assert_eq!(parsed.to_string(), canonical, "{text:?}");
        assert_eq!(TcpAccess::parse(canonical), Ok(parsed), "{canonical:?} reads back the same");
    }
}

#[test]
fn mistakes_name_the_rule_and_the_token() {
    for (text, needle) in [
        ("$", "rule 1 '': empty rule"),
        ("+imap:ALL$$-pop:ALL", "rule 2 '': empty rule"),
        ("+imap:ALL$", "rule 2 '': empty rule"),
        ("imap:ALL", "rule 1 'imap:ALL': a rule starts with + (allow) or - (deny)"),
        ("+imap ALL", "missing ':' between the services and the clients"),
        ("+:ALL", "service list '': none given"),
        ("+imap:", "client list '': none given"),
        ("+imap:   ", "client list '': none given"),
        ("+imap,,pop:ALL", "an empty item"),
        ("+imap:a.example,", "an empty item"),
        ("+imap:ALL EXCEPT", "nothing after EXCEPT in the client list"),
        ("+EXCEPT imap:ALL", "nothing before EXCEPT in the service list"),
        ("+imap:ALL EXCEPT EXCEPT x.example", "nothing before EXCEPT"),
        ("+imap4:ALL", "service 'imap4': unknown service"),
        ("+imap@192.0.2.1:ALL", "service@host patterns are not supported"),
        ("+imap:@staff", "netgroups are not supported"),
        ("+imap:joe@host.example", "user@host patterns are not supported"),
        ("+imap:192.168.1.0/33", "not a number from 0 to 32"),
        ("+imap:192.168.1.0/4294967296", "not a number from 0 to 32"),
        ("+imap:10.0.0.1/8", "10.0.0.1/8 has bits set outside the mask (did you mean 10.0.0.0/8?)"),
        ("+imap:10.0.0.0/255.0.255.0", "not contiguous"),
        ("+imap:[2001:db8::]/129", "not a number from 0 to 128"),
        ("+imap:[192.0.2.1]", "not an IP address"),
        ("+imap:300.1.1.1", "not an IPv4 address"),
        ("+imap:1.2.3", "not an IPv4 address"),
        ("+imap:256.", "'256' is not an octet"),
        ("+imap:010.", "'010' is not an octet"),
        ("+imap:1.2.3.4.", "a full address takes no trailing dot"),
        ("+imap:trusted.example.com.", "a trailing dot marks an IPv4 prefix"),
        ("+imap:2001:db8::g", "not an IPv6 address"),
        ("+imap:fe80::1%eth0", "not an IPv6 address"),
        ("+imap:.", "empty label"),
        ("+imap:a..example", "empty label"),
        ("+imap:.*.example.com", "a wildcard cannot follow a leading dot"),
        ("+imap:2001:db8::*/64", "'2001:db8::*' is not an IP address"),
        ("+imap:2001:zz::*", "not an IPv6 address pattern"),
        ("+imap:bücher.example", "not ASCII; write internationalised names in their xn-- form"),
        ("+imap:host\u{0}name", "cannot be in a host name"),
        ("+imap:ho!st", "'!' cannot be in a host name"),
        ("+imap:ｉｍａｐ", "not ASCII"),
        ("+ｉｍａｐ:ALL", "unknown service"),
    ] {
        match TcpAccess::parse(text) {
            Ok(f) => panic!("{text:?} parsed as {f}"),
            Err(e) => assert!(e.contains(needle), "{text:?}: {e}"),
        }
    }
    let long_label = format!("+imap:{}.example", "a".repeat(64));
    assert!(TcpAccess::parse(&long_label).unwrap_err().contains("at most 63"));
    let long_name = format!("+imap:{}", ["abcdefgh"; 40].join("."));
    let e = TcpAccess::parse(&long_name).unwrap_err();
    assert!(e.contains("at most 253") && e.contains('…'), "{e}");
    let deep = format!("+imap:ALL{}", " EXCEPT 10.0.0.1".repeat(9));
    assert!(TcpAccess::parse(&deep).unwrap_err().contains("more than 8 nested EXCEPTs"));
    assert!(TcpAccess::parse(&format!("+imap:ALL{}", " EXCEPT 10.0.0.1".repeat(8))).is_ok());
}

/// One row: filter, service, client address, host name, expected decision.
type Row = (&'static str, Service, &'static str, HostName<'static>, Decision);

fn check(rows: &[Row]) {
    for (text, service, addr, host, expected) in rows {
        let client = Client::with_host(ip(addr), *host);
        assert_eq!(filter(text).decide(*service, &client), *expected, "{text:?} {service} {addr} {host:?}");
    }
}

#[test]
fn allow_rules_first_then_deny_rules_then_the_default() {
    use Service::*;
    check(&[
        // No rule: everyone, every service.
        ("", Imap, "203.0.113.1", NotLookedUp, Allow),
        // Only allow rules: what they do not name is denied (the S/MIME example of the schema).
        ("+imap:ALL", Imap, "203.0.113.1", NotLookedUp, Allow),
        ("+imap:ALL", Pop, "203.0.113.1", NotLookedUp, Deny),
        ("+pop:ALL", Smime, "203.0.113.1", NotLookedUp, Deny),
        ("+imap:ALL$+pop:ALL$+http:ALL", Smtp, "203.0.113.1", NotLookedUp, Deny),
        ("+imap:10.0.0.0/8", Imap, "203.0.113.1", NotLookedUp, Deny),
        // Only deny rules: what they do not name is allowed.
        ("-imap:*$-pop:*$-http:*", Imap, "203.0.113.1", NotLookedUp, Deny),
        ("-imap:*$-pop:*$-http:*", Smtp, "203.0.113.1", NotLookedUp, Allow),
        // Both kinds: no match is allowed.
        ("+imap:10.0.0.0/8$-imap:192.0.2.0/24", Imap, "203.0.113.1", NotLookedUp, Allow),
        ("+imap:10.0.0.0/8$-imap:192.0.2.0/24", Imap, "192.0.2.1", NotLookedUp, Deny),
        ("+imap:10.0.0.0/8$-imap:ALL", Imap, "10.1.1.1", NotLookedUp, Allow),
        ("+imap:10.0.0.0/8$-imap:ALL", Pop, "192.0.2.1", NotLookedUp, Allow),
        // Allow rules win whatever the written order.
        ("-imap:ALL$+imap:192.0.2.1", Imap, "192.0.2.1", NotLookedUp, Allow),
        ("-imap:ALL$+imap:192.0.2.1", Imap, "192.0.2.2", NotLookedUp, Deny),
        ("+imap,pop:ALL$-pop:badhost.example", Pop, "192.0.2.2", Known("badhost.example"), Allow),
    ]);
}

#[test]
fn except_lists_in_clients_and_services() {
    use Service::*;
    let server1 = Known("server1.sesta.com");
    check(&[
        ("-ALL:ALL EXCEPT server1.sesta.com", Imap, "192.0.2.5", server1, Allow),
        ("-ALL:ALL EXCEPT server1.sesta.com", Imap, "192.0.2.5", Known("server2.sesta.com"), Deny),
        ("-ALL:ALL EXCEPT server1.sesta.com", Pop, "192.0.2.5", NotLookedUp, Deny),
        ("-ALL EXCEPT pop:contractor.siroe1.com,.siroe.com", Pop, "192.0.2.5", Known("a.siroe.com"), Allow),
        ("-ALL EXCEPT pop:contractor.siroe1.com,.siroe.com", Imap, "192.0.2.5", Known("a.siroe.com"), Deny),
        ("-ALL EXCEPT pop:contractor.siroe1.com,.siroe.com", Imap, "192.0.2.5", Known("other.example"), Allow),
        // a EXCEPT b EXCEPT c = a EXCEPT (b EXCEPT c).
        ("+ALL:10. EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3", Imap, "10.9.9.9", NotLookedUp, Allow),
        ("+ALL:10. EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3", Imap, "10.1.5.5", NotLookedUp, Deny),
        ("+ALL:10. EXCEPT 10.1.0.0/16 EXCEPT 10.1.2.3", Imap, "10.1.2.3", NotLookedUp, Allow),
    ]);
}

#[test]
fn tls_variants_and_the_tls_only_attribute() {
    use Service::*;
    let tls_only = "+imaps,pops:*$+imap,pop:192.0.2.99";
    check(&[
        (tls_only, Imaps, "203.0.113.1", NotLookedUp, Allow),
        (tls_only, Pops, "203.0.113.1", NotLookedUp, Allow),
        (tls_only, Imap, "203.0.113.1", NotLookedUp, Deny),
        (tls_only, Pop, "203.0.113.1", NotLookedUp, Deny),
        (tls_only, Imap, "192.0.2.99", NotLookedUp, Allow),
        // A plain service covers its TLS variant, not the other way round.
        ("-imap:ALL", Imaps, "203.0.113.1", NotLookedUp, Deny),
        ("-imaps:ALL", Imap, "203.0.113.1", NotLookedUp, Allow),
        ("-imaps:ALL", Imaps, "203.0.113.1", NotLookedUp, Deny),
        ("-smtp:ALL", Smtps, "203.0.113.1", NotLookedUp, Deny),
        ("-pop:ALL", Imaps, "203.0.113.1", NotLookedUp, Allow),
        ("-ALL EXCEPT imap:ALL", Imaps, "203.0.113.1", NotLookedUp, Allow),
    ]);
}

#[test]
fn address_patterns() {
    use Service::*;
    check(&[
        ("-imap:192.0.2.7", Imap, "192.0.2.7", NotLookedUp, Deny),
        ("-imap:192.0.2.7", Imap, "::ffff:192.0.2.7", NotLookedUp, Deny),
        ("-imap:192.0.2.7", Imap, "192.0.2.8", NotLookedUp, Allow),
        ("-imap:192.168.", Imap, "192.168.200.1", NotLookedUp, Deny),
        ("-imap:192.168.", Imap, "192.169.0.1", NotLookedUp, Allow),
        ("-imap:10.", Imap, "::ffff:10.2.3.4", NotLookedUp, Deny),
        ("-imap:192.168.1.0/255.255.255.0", Imap, "192.168.1.200", NotLookedUp, Deny),
        ("-imap:2001:db8::/64", Imap, "2001:db8::ab", NotLookedUp, Deny),
        ("-imap:[2001:db8::]/64", Imap, "2001:db8:0:1::ab", NotLookedUp, Allow),
        ("-imap:::1", Imap, "::1", NotLookedUp, Deny),
        ("-imap:::/0", Imap, "192.0.2.1", NotLookedUp, Allow),
        ("-imap:0.0.0.0/0", Imap, "2001:db8::1", NotLookedUp, Allow),
        ("-imap:192.0.2.*", Imap, "192.0.2.77", NotLookedUp, Deny),
        ("-imap:192.0.2.?", Imap, "192.0.2.77", NotLookedUp, Allow),
        ("-imap:192.0.2.*", Imap, "::ffff:192.0.2.77", NotLookedUp, Deny),
        ("-imap:2001:db8::*", Imap, "2001:db8::beef", NotLookedUp, Deny),
        // Address patterns never match a host name that looks like an address.
        ("+imap:192.168.*", Imap, "203.0.113.5", Known("192.168.1.attacker.example"), Deny),
        ("+imap:192.168.", Imap, "203.0.113.5", Known("192.168.1.attacker.example"), Deny),
    ]);
}

#[test]
fn host_name_patterns_and_lookup_states() {
    use Service::*;
    let ip = "192.0.2.5";
    check(&[
        ("-imap:mail.example.com", Imap, ip, Known("MAIL.Example.COM."), Deny),
        ("-imap:mail.example.com", Imap, ip, Known("mail.example.com.evil"), Allow),
        ("-imap:mail.example.com", Imap, ip, NotLookedUp, Allow),
        ("-imap:.example.com", Imap, ip, Known("a.b.example.com"), Deny),
        ("-imap:.example.com", Imap, ip, Known("example.com"), Allow),
        ("-imap:.example.com", Imap, ip, Known("badexample.com"), Allow),
        ("-imap:mail?.*.example.com", Imap, ip, Known("mail7.eu.example.com"), Deny),
        ("-imap:mail?.*.example.com", Imap, ip, Known("mail77.eu.example.com"), Allow),
        ("-imap:LOCAL", Imap, ip, Known("mailhost"), Deny),
        ("-imap:LOCAL", Imap, ip, Known("mailhost."), Deny),
        ("-imap:LOCAL", Imap, ip, Known("mail.example.com"), Allow),
        ("-imap:LOCAL", Imap, ip, Unknown, Allow),
        ("-imap:KNOWN", Imap, ip, Known("mail.example.com"), Deny),
        ("-imap:KNOWN", Imap, ip, Known(""), Allow),
        ("-imap:KNOWN", Imap, ip, Unconfirmed, Allow),
        ("-imap:KNOWN", Imap, ip, NotLookedUp, Allow),
        ("-imap:UNKNOWN", Imap, ip, NotLookedUp, Deny),
        ("-imap:UNKNOWN", Imap, ip, Unknown, Deny),
        ("-imap:UNKNOWN", Imap, ip, Unconfirmed, Deny),
        ("-imap:UNKNOWN", Imap, ip, Known("mail.example.com"), Allow),
        ("-imap:DNSSPOOFER", Imap, ip, Unconfirmed, Deny),
        ("-imap:DNSSPOOFER", Imap, ip, Unknown, Allow),
        ("-imap:DNSSPOOFER", Imap, ip, NotLookedUp, Allow),
        ("-imap:PARANOID", Imap, ip, Unconfirmed, Deny),
    ]);
}

#[test]
fn verdicts_name_the_deciding_rule() {
    let f = filter("-imap:ALL$+imap:192.0.2.1$-pop:ALL EXCEPT 10.$+smtp:10.");
    let v = |s: Service, a: &str| f.verdict(s, &Client::new(ip(a)));
    assert_eq!((v(Service::Imap, "192.0.2.1").decision, v(Service::Imap, "192.0.2.1").rule), (Allow, Some(1)));
    assert_eq!((v(Service::Imap, "192.0.2.2").decision, v(Service::Imap, "192.0.2.2").rule), (Deny, Some(0)));
    assert_eq!((v(Service::Pop, "10.0.0.1").decision, v(Service::Pop, "10.0.0.1").rule), (Allow, None));
    assert_eq!(f.rules()[2].to_string(), "-pop:ALL EXCEPT 10.0.0.0/8");
    assert_eq!(f.rules()[1].decision(), Allow);
    assert!(filter("").is_empty());
}

#[test]
fn host_lookups_only_when_a_rule_needs_them() {
    for (text, any, imap, pop) in [
        ("", false, false, false),
        ("+imap:ALL$-pop:10.0.0.0/8,192.0.2.*", false, false, false),
        ("-pop:badhost.example", true, false, true),
        ("-ALL:ALL EXCEPT server1.sesta.com", true, true, true),
        ("+imap:LOCAL", true, true, false),
        ("-ALL EXCEPT pop:UNKNOWN", true, true, false),
        ("-imaps:.example.com", true, false, false),
        ("-imap:mail*.example.com", true, true, false),
    ] {
        let f = filter(text);
        assert_eq!(f.needs_host_name(), any, "{text:?}");
        assert_eq!(f.needs_host_name_for(Service::Imap), imap, "{text:?} imap");
        assert_eq!(f.needs_host_name_for(Service::Pop), pop, "{text:?} pop");
    }
    // An `imap` rule also applies to TLS connections.
    assert!(filter("-imap:.example.com").needs_host_name_for(Service::Imaps));
}

#[test]
fn service_of_a_session() {
    use mailmux_config::Protocol;
    assert_eq!(Service::of(Protocol::Imap, false), Service::Imap);
    assert_eq!(Service::of(Protocol::Imap, true), Service::Imaps);
    assert_eq!(Service::of(Protocol::Pop3, false), Service::Pop);
    assert_eq!(Service::of(Protocol::Pop3, true), Service::Pops);
    assert_eq!(Service::from_name("IMAPS"), Some(Service::Imaps));
    assert_eq!(Service::from_name("pop3"), None);
    assert_eq!(Service::Pops.plain(), Service::Pop);
    assert_eq!(Service::Http.plain(), Service::Http);
}
