//! `TCPAccess` / `mailAllowedServiceAccess` filters on arbitrary text: what parses reads back
//! the same from its canonical form, and deciding never panics, the text itself serving as a
//! (hostile) host name too.
#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mailmux_config::tcp_access::{Client, HostName, Service, TcpAccess};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = TcpAccess::parse(text) else { return };
    let canonical = filter.to_string();
    assert_eq!(TcpAccess::parse(&canonical).as_ref(), Ok(&filter), "{canonical:?}");
    let _ = filter.needs_host_name();
    let hosts = [HostName::NotLookedUp, HostName::Unknown, HostName::Unconfirmed, HostName::Known(text)];
    for addr in ["192.0.2.7", "::ffff:10.0.0.1", "2001:db8::1"] {
        let ip: IpAddr = addr.parse().expect("literal address");
        for host in hosts {
            let client = Client::with_host(ip, host);
            for service in [Service::Imap, Service::Imaps, Service::Pop, Service::Pops, Service::Smtp] {
                let verdict = filter.verdict(service, &client);
                assert_eq!(verdict.decision, filter.decide(service, &client));
                let _ = filter.needs_host_name_for(service);
            }
        }
    }
});
