//! The MMP file syntax and the service parameters on arbitrary text.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mailmux_config::service::{Protocol, build};
use mailmux_config::{Diagnostics, certmap, dn, raw, service_list};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = Path::new("fuzz.cfg");
    let mut diags = Diagnostics::default();
    let entries = raw::parse(file, text, Some("inst"), &mut diags);
    let _ = build(Protocol::Imap, Vec::new(), file, Path::new("/"), &entries, &mut diags);
    let _ = service_list::parse(text, file, 1, &mut diags);
    let map = certmap::parse(file, text, &mut diags);
    // DN strings round-trip: what Display writes parses back to the same structure.
    if let Ok(issuer) = dn::Dn::parse(text) {
        let _ = map.for_issuer(&issuer);
        assert_eq!(dn::Dn::parse(&issuer.to_string()).ok(), Some(issuer));
    }
    let _ = diags.to_string();
});
