//! RFC 4515 filter parsing and evaluation, and escaping round trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::ldap_filter::{escape_value, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let values = vec!["joe".to_owned(), text.to_owned()];
    if let Ok(filter) = parse(text) {
        let _ = filter.matches(&|_| values.as_slice());
    }
    // Any value, escaped, must parse as an equality filter that matches exactly it.
    let filter = parse(&format!("(uid={})", escape_value(text))).expect("escaped value parses");
    let mine = vec![text.to_owned()];
    assert!(filter.matches(&|_| mine.as_slice()));
});
