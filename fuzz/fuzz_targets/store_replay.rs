//! Both store-side login machines on arbitrary store responses.
//! First byte: protocol and mechanism.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailmux_proto::imap::replay::ImapReplay;
use mailmux_proto::pop3::replay::Pop3Replay;
use mailmux_proto::{ReplayCredentials, ReplayMechanism, Secret};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mechanism = if mode & 1 == 0 { ReplayMechanism::Login } else { ReplayMechanism::Plain };
    let credentials = ReplayCredentials {
        authzid: (mode & 4 != 0).then(|| "joe".to_owned()),
        authcid: "admin".into(),
        password: Secret::new("p\u{e4}ss"),
    };
    if mode & 2 == 0 {
        let mut m = ImapReplay::new(mechanism, credentials, mode & 8 != 0);
        for piece in input.chunks(7) {
            m.feed(piece);
            if m.next_event().is_some() {
                let _ = m.take_rest();
                return;
            }
            let _ = m.take_output();
        }
    } else {
        let mut m = Pop3Replay::new(mechanism, credentials, mode & 8 != 0);
        for piece in input.chunks(7) {
            m.feed(piece);
            if m.next_event().is_some() {
                return;
            }
            let _ = m.take_output();
        }
    }
});
