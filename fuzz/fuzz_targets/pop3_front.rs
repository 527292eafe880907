//! The client-facing POP3 machine on arbitrary client bytes, cut at arbitrary points.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::Rejection;
use mailmux_proto::pop3::front::{Pop3Event, Pop3Front, Pop3Settings};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else { return };
    let mut front = Pop3Front::new(Pop3Settings {
        banner: "fuzz".into(),
        stls: chunk & 1 == 0,
        restrict_plaintext: chunk & 2 == 0,
        tls: false,
        client_certificate: chunk & 4 == 0,
    });
    for piece in input.chunks(usize::from(chunk).max(1)) {
        front.feed(piece);
        while let Some(event) = front.next_event() {
            match event {
                Pop3Event::Login(_) => front.reject(&Rejection::Unavailable { alert: Some("down".into()) }),
                Pop3Event::StartTls => front.tls_started(chunk & 8 == 0),
                Pop3Event::Quit | Pop3Event::Close => return,
            }
        }
        let _ = front.take_output();
    }
});
