//! The PROXY protocol header on arbitrary bytes: never a panic, a complete header never
//! claims more bytes than it was given or more than `MAX_HEADER`, and every prefix of a
//! complete header asks for more bytes (a header cut by a read is never taken for garbage).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::proxy::{MAX_HEADER, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(header)) = parse(data) {
        assert!(header.length <= data.len() && header.length <= MAX_HEADER);
        for cut in 0..header.length {
            assert_eq!(parse(&data[..cut]), Ok(None), "prefix of {cut} bytes");
        }
    }
});
