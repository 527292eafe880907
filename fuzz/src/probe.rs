//! `store_probe`: the capability probe (what a store offers before login) against a hostile
//! store.
//!
//! Input: `[mode, store bytes…]`. The low bit of `mode` picks POP3 (1) or IMAP (0); the other
//! seven bits are the read size (0: everything in one read). The machine is driven the way
//! `mailmux::store::probe` drives it.
//!
//! Properties checked on every input, beyond "no panic":
//! * only the probe's own commands go out (`P1 CAPABILITY`, `P2 LOGOUT`; `CAPA`, `QUIT`), each
//!   at most once, and the goodbye only with a result;
//! * while the machine waits for input it holds at most its line cap plus one byte;
//! * a result has at most `MAX_ITEMS` items, none empty and none with a CR or LF (they end up in
//!   the lines mailmux writes to clients);
//! * once it has ended, the machine says nothing more.

use mailmux_proto::probe::{CapabilityProbe, MAX_ITEMS, MAX_LINE, ProbeEvent, ProbeProtocol};

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeEnd {
    /// The input ran out with the machine waiting for more.
    #[default]
    Waiting,
    /// `Learned`, with this many items.
    Learned(usize),
    /// `Failed`.
    Failed,
}

/// The harness of the `store_probe` target.
pub fn store_probe(data: &[u8]) -> ProbeEnd {
    let Some((&mode, store)) = data.split_first() else { return ProbeEnd::default() };
    let pop3 = mode & 1 == 1;
    let chunk = usize::from(mode >> 1);
    let mut m = CapabilityProbe::new(if pop3 { ProbeProtocol::Pop3 } else { ProbeProtocol::Imap });
    let mut reads = store.chunks(if chunk == 0 { store.len().max(1) } else { chunk });
    let mut wire = Vec::new();
    let end = loop {
        let event = m.next_event();
        wire.extend(m.take_output());
        match event {
            None => {
                assert!(m.buffered_len() <= MAX_LINE + 1, "{} bytes buffered while waiting", m.buffered_len());
                let Some(read) = reads.next() else { break ProbeEnd::Waiting };
                m.feed(read);
            }
            Some(ProbeEvent::Learned(items)) => {
                assert!(items.len() <= MAX_ITEMS, "{} items", items.len());
                for item in &items {
                    assert!(!item.is_empty() && !item.contains(['\r', '\n']), "item {item:?}");
                }
                break ProbeEnd::Learned(items.len());
            }
            Some(ProbeEvent::Failed(_)) => break ProbeEnd::Failed,
        }
    };
    // Nothing after the end, whatever else arrives.
    if end != ProbeEnd::Waiting {
        m.feed(b"* OK more\r\n+OK more\r\nP1 OK\r\n.\r\n");
        assert_eq!(m.next_event(), None, "an ended probe spoke again");
        wire.extend(m.take_output());
    }
    let allowed: &[&[u8]] = if pop3 { &[b"CAPA\r\n", b"QUIT\r\n"] } else { &[b"P1 CAPABILITY\r\n", b"P2 LOGOUT\r\n"] };
    let mut rest = &wire[..];
    let mut sent = Vec::new();
    while !rest.is_empty() {
        let Some(cmd) = allowed.iter().find(|c| rest.starts_with(c)) else {
            panic!("the probe wrote {:?}", String::from_utf8_lossy(&wire));
        };
        assert!(!sent.contains(cmd), "{:?} twice", String::from_utf8_lossy(cmd));
        sent.push(*cmd);
        rest = &rest[cmd.len()..];
    }
    let goodbye = if pop3 { &b"QUIT\r\n"[..] } else { &b"P2 LOGOUT\r\n"[..] };
    assert_eq!(sent.contains(&goodbye), matches!(end, ProbeEnd::Learned(_)), "a goodbye without a result, or none");
    end
}
