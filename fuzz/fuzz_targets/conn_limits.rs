//! `ConnLimits` on arbitrary text: what parses reads back the same, and looking up limits and
//! counting keys never panics, for fixed addresses and one made of the input's first bytes.
#![no_main]
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mailmux_config::conn_limits::ConnLimits;

fuzz_target!(|data: &[u8]| {
    let mut octets = [0u8; 16];
    for (slot, byte) in octets.iter_mut().zip(data) {
        *slot = *byte;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(limits) = ConnLimits::parse(text) else { return };
    let canonical = limits.to_string();
    assert_eq!(ConnLimits::parse(&canonical).as_ref(), Ok(&limits), "{canonical:?}");
    let v4 = IpAddr::from([octets[0], octets[1], octets[2], octets[3]]);
    for ip in [v4, IpAddr::from(octets), "::ffff:10.0.0.1".parse().expect("literal address")] {
        let _ = limits.limit_for(ip);
        let _ = limits.key(ip).to_string();
    }
});
