//! Address ranges and `BGExcluded` (list or file) on arbitrary text: what parses reads back
//! the same, and membership tests never panic.
#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mailmux_config::address_list::{AddressList, BgExcluded, IpNet};

fuzz_target!(|data: &[u8]| {
    let mut octets = [0u8; 16];
    for (slot, byte) in octets.iter_mut().zip(data) {
        *slot = *byte;
    }
    let ips = [IpAddr::from([octets[0], octets[1], octets[2], octets[3]]), IpAddr::from(octets)];
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(net) = IpNet::parse(text) {
        assert_eq!(IpNet::parse(&net.to_string()), Ok(net));
        let _ = ips.map(|ip| net.contains(ip));
    }
    if let Ok(list) = AddressList::parse(text) {
        assert_eq!(AddressList::parse(&list.to_string()).as_ref(), Ok(&list));
        let _ = ips.map(|ip| list.contains(ip));
    }
    if let Ok(list) = AddressList::parse_file(text) {
        let _ = ips.map(|ip| list.contains(ip));
    }
    let _ = BgExcluded::parse(text);
});
