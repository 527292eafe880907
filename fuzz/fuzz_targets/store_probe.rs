//! libFuzzer entry for `store_probe`; the harness and its properties are in `src/`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailmux_fuzz::probe::store_probe(data);
});
