//! libFuzzer entry for `config_file`; the harness and its properties are in `src/`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mailmux_fuzz::text::config_file(data);
});
