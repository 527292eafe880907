//! libFuzzer entry for `sasl_exchange`; the harness and its properties are in `src/`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailmux_fuzz::sasl::sasl_exchange(data);
});
