//! libFuzzer entry for `ldap_filter`; the harness and its properties are in `src/`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailmux_fuzz::text::ldap_filter(data);
});
