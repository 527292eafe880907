//! libFuzzer entry for `pop3_maildrop`; the harness and its properties are in `src/`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailmux_fuzz::maildrop::pop3_maildrop(data);
});
