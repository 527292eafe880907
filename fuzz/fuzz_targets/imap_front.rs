//! The client-facing IMAP machine on arbitrary client bytes, cut at arbitrary points.
//! First byte: chunk size; logins are refused and accepted in turn.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::Rejection;
use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else { return };
    let mut front = ImapFront::new(FrontSettings {
        capabilities: "IMAP4rev1".into(),
        starttls: chunk & 1 == 0,
        restrict_plaintext: chunk & 2 == 0,
        tls: false,
        client_certificate: chunk & 4 == 0,
        banner: "fuzz".into(),
        limits: Limits { max_line: 256, max_literal: 256, max_command: 512 },
    });
    let mut logins = 0;
    for piece in input.chunks(usize::from(chunk).max(1)) {
        front.feed(piece);
        while let Some(event) = front.next_event() {
            match event {
                FrontEvent::Login { tag, .. } => {
                    logins += 1;
                    if logins % 3 == 0 {
                        let _ = front.accept(&tag, Some("IMAP4rev1"), "ok");
                        return;
                    }
                    front.reject(&tag, &Rejection::AuthenticationFailed);
                }
                FrontEvent::StartTls => front.tls_started(chunk & 8 == 0),
                FrontEvent::Logout | FrontEvent::Close => return,
            }
        }
        let _ = front.take_output();
    }
});
