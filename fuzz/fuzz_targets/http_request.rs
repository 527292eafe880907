//! The control endpoints' HTTP request-head parser on arbitrary bytes: never a panic; a head
//! is found only within `MAX_HEAD` bytes and never claims more bytes than it was given; every
//! prefix of a complete head asks for more bytes (a head cut by a read is never refused); a
//! parsed head has a path starting with `/` and no body allowed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::http::{MAX_HEAD, parse_head};

fuzz_target!(|data: &[u8]| {
    match parse_head(data) {
        Ok(Some((head, len))) => {
            assert!(len <= data.len() && len <= MAX_HEAD);
            assert!(head.path.starts_with('/'));
            assert_eq!(&data[len - 4..len], b"\r\n\r\n");
            for cut in 0..len {
                assert_eq!(parse_head(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEAD),
        Err(_) => {}
    }
});
