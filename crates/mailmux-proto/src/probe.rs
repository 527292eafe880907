//! Asking a store what it offers before login, without logging in (the learned `Capability`).
//!
//! ```text
//!  IMAP:  greeting "* OK [CAPABILITY …]" ──────────────────────────▶ "P2 LOGOUT" ─▶ Learned
//!         greeting "* OK" ─▶ "P1 CAPABILITY" ─"* CAPABILITY …", "P1 OK"─▶ "P2 LOGOUT" ─▶ Learned
//!  POP3:  greeting "+OK" ─▶ "CAPA" ─"+OK", lines, "."─▶ "QUIT" ─▶ Learned
//!                                  └─"-ERR"─▶ "QUIT" ─▶ Learned (nothing: RFC 1939 only)
//!  anything else (a "* BYE", "-ERR" greeting, PREAUTH, a line over the cap, too many items)
//!         ─▶ Failed
//! ```
//!
//! Only the greeting's capabilities and those asked for before any login are read: they are
//! what a client sees before login, which is what mailmux advertises in the stores' place.
//! Memory is bounded by the line cap and [`MAX_ITEMS`].

use crate::imap::response::{Addressee, ResponseLine, Status};
use crate::line::LineBuffer;

/// Longest store line read, CRLF excluded.
pub const MAX_LINE: usize = 8 * 1024;
/// Most capability items (IMAP words, POP3 CAPA lines) kept from one store.
pub const MAX_ITEMS: usize = 256;

/// Which protocol the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProtocol {
    /// IMAP: the capability list of the greeting or of `CAPABILITY`.
    Imap,
    /// POP3: the lines of `CAPA`.
    Pop3,
}

/// The end of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The store's pre-login capabilities: IMAP words, or POP3 CAPA lines, as the store wrote
    /// them. The goodbye (`LOGOUT`, `QUIT`) is in the output; its answer need not be awaited.
    Learned(Vec<String>),
    /// The store did not say; why, for the log.
    Failed(String),
}

#[derive(Debug)]
enum State {
    Greeting,
    /// IMAP `P1 CAPABILITY` sent.
    Capability,
    /// POP3 `CAPA` sent: its status line (`listing` false), then its lines up to `.`.
    Capa {
        listing: bool,
    },
    Finished,
}

/// The probe machine: feed it the store's bytes, send what it queues.
#[derive(Debug)]
pub struct CapabilityProbe {
    protocol: ProbeProtocol,
    lines: LineBuffer,
    out: Vec<u8>,
    state: State,
    items: Vec<String>,
}

impl CapabilityProbe {
    /// A probe waiting for the store's greeting.
    pub fn new(protocol: ProbeProtocol) -> Self {
        CapabilityProbe {
            protocol,
            lines: LineBuffer::new(MAX_LINE),
            out: Vec::new(),
            state: State::Greeting,
            items: Vec::new(),
        }
    }

    /// Appends bytes received from the store.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// Bytes to send to the store now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes held while waiting for input: at most [`MAX_LINE`] + 1.
    pub fn buffered_len(&self) -> usize {
        self.lines.buffered_len()
    }

    /// Processes buffered lines; `None` means "send the output and read more".
    pub fn next_event(&mut self) -> Option<ProbeEvent> {
        loop {
            if matches!(self.state, State::Finished) {
                return None;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(_) => return Some(self.fail("line too long")),
            };
            let event = match self.protocol {
                ProbeProtocol::Imap => self.on_imap(line.expose()),
                ProbeProtocol::Pop3 => self.on_pop3(&String::from_utf8_lossy(line.expose())),
            };
            if let Some(event) = event {
                self.state = State::Finished;
                return Some(event);
            }
        }
    }

    fn on_imap(&mut self, line: &[u8]) -> Option<ProbeEvent> {
        let r = ResponseLine::parse(line);
        match (&self.state, &r.addressee, r.status) {
            (State::Greeting, Addressee::Untagged, Some(Status::Ok)) => match r.capabilities() {
                Some(caps) => self.learned_imap(caps.to_owned()),
                None => {
                    self.out.extend_from_slice(b"P1 CAPABILITY\r\n");
                    self.state = State::Capability;
                    None
                }
            },
            (State::Greeting, _, _) => Some(self.fail(&format!("greeting: {}", one_line(line)))),
            (State::Capability, Addressee::Untagged, _) => {
                if let Some(caps) = r.capabilities() {
                    self.items = words(caps);
                }
                match r.status {
                    Some(Status::Bye) => Some(self.fail(&format!("store said: {}", one_line(line)))),
                    _ => None,
                }
            }
            (State::Capability, Addressee::Tagged(tag), Some(Status::Ok)) if tag == b"P1" => {
                let items = std::mem::take(&mut self.items);
                self.out.extend_from_slice(b"P2 LOGOUT\r\n");
                Some(self.bounded(items))
            }
            _ => Some(self.fail(&format!("unexpected answer: {}", one_line(line)))),
        }
    }

    fn learned_imap(&mut self, caps: String) -> Option<ProbeEvent> {
        self.out.extend_from_slice(b"P2 LOGOUT\r\n");
        Some(self.bounded(words(&caps)))
    }

    fn on_pop3(&mut self, line: &str) -> Option<ProbeEvent> {
        let status = |prefix: &str| {
            line.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                && matches!(line.as_bytes().get(prefix.len()), None | Some(b' '))
        };
        match self.state {
            State::Greeting if status("+OK") => {
                self.out.extend_from_slice(b"CAPA\r\n");
                self.state = State::Capa { listing: false };
                None
            }
            State::Capa { listing: false } if status("+OK") => {
                self.state = State::Capa { listing: true };
                None
            }
            // RFC 2449 §5: a server without CAPA has no extensions to tell of.
            State::Capa { listing: false } if status("-ERR") => {
                self.out.extend_from_slice(b"QUIT\r\n");
                Some(ProbeEvent::Learned(Vec::new()))
            }
            State::Capa { listing: true } if line == "." => {
                self.out.extend_from_slice(b"QUIT\r\n");
                let items = std::mem::take(&mut self.items);
                Some(self.bounded(items))
            }
            State::Capa { listing: true } => {
                // RFC 1939 byte-stuffing: a line starting with "." carries one more.
                let item = line.strip_prefix('.').unwrap_or(line).trim();
                if self.items.len() >= MAX_ITEMS {
                    return Some(self.fail("more capabilities than mailmux keeps"));
                }
                if is_item(item) {
                    self.items.push(item.to_owned());
                }
                None
            }
            _ => Some(self.fail(&format!("unexpected answer: {}", one_line(line.as_bytes())))),
        }
    }

    fn bounded(&mut self, items: Vec<String>) -> ProbeEvent {
        if items.len() > MAX_ITEMS {
            return self.fail("more capabilities than mailmux keeps");
        }
        ProbeEvent::Learned(items)
    }

    fn fail(&mut self, reason: &str) -> ProbeEvent {
        self.state = State::Finished;
        ProbeEvent::Failed(reason.to_owned())
    }
}

/// The words of an IMAP capability list.
fn words(caps: &str) -> Vec<String> {
    caps.split(' ').filter(|w| is_item(w)).map(str::to_owned).collect()
}

/// Whether a word or CAPA line can be a capability: not empty, no control character (a bare
/// CR inside a line is not a line end to the line splitter, but would be one to a client).
fn is_item(item: &str) -> bool {
    !item.is_empty() && !item.contains(char::is_control)
}

/// A store line for a log: printable, at most 200 characters.
fn one_line(line: &[u8]) -> String {
    String::from_utf8_lossy(line).chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(protocol: ProbeProtocol, store: &[&str]) -> (String, Option<ProbeEvent>) {
        let mut p = CapabilityProbe::new(protocol);
        let mut sent = Vec::new();
        for line in store {
            p.feed(format!("{line}\r\n").as_bytes());
            let ev = p.next_event();
            sent.extend(p.take_output());
            if ev.is_some() {
                return (String::from_utf8(sent).unwrap(), ev);
            }
        }
        (String::from_utf8(sent).unwrap(), None)
    }

    fn learned(items: &[&str]) -> Option<ProbeEvent> {
        Some(ProbeEvent::Learned(items.iter().map(|s| (*s).to_owned()).collect()))
    }

    #[test]
    fn imap_from_the_greeting() {
        let (sent, ev) = run(ProbeProtocol::Imap, &["* OK [CAPABILITY IMAP4rev1 ID  IDLE] Dovecot ready."]);
        assert_eq!(sent, "P2 LOGOUT\r\n");
        assert_eq!(ev, learned(&["IMAP4rev1", "ID", "IDLE"]));
    }

    #[test]
    fn imap_by_asking() {
        let (sent, ev) = run(ProbeProtocol::Imap, &["* OK ready", "* CAPABILITY IMAP4rev1 CHILDREN", "P1 OK done"]);
        assert_eq!(sent, "P1 CAPABILITY\r\nP2 LOGOUT\r\n");
        assert_eq!(ev, learned(&["IMAP4rev1", "CHILDREN"]));
    }

    #[test]
    fn imap_failures() {
        for store in [
            &["* BYE too busy"][..],
            &["* PREAUTH [CAPABILITY IMAP4rev1] hi"],
            &["+OK pop3?"],
            &["* OK hi", "* BYE going"],
            &["* OK hi", "P1 NO no"],
        ] {
            let (_, ev) = run(ProbeProtocol::Imap, store);
            assert!(matches!(ev, Some(ProbeEvent::Failed(_))), "{store:?}: {ev:?}");
        }
        let many = format!("* OK [CAPABILITY {}] hi", vec!["X"; MAX_ITEMS + 1].join(" "));
        assert!(matches!(run(ProbeProtocol::Imap, &[&many]).1, Some(ProbeEvent::Failed(_))));
        let mut p = CapabilityProbe::new(ProbeProtocol::Imap);
        p.feed(&vec![b'x'; MAX_LINE + 2]);
        assert!(matches!(p.next_event(), Some(ProbeEvent::Failed(_))));
    }

    #[test]
    fn pop3_capa() {
        let (sent, ev) = run(
            ProbeProtocol::Pop3,
            &["+OK Dovecot ready.", "+OK", "CAPA", "TOP", "UIDL", "..ODD", "SASL PLAIN LOGIN", "."],
        );
        assert_eq!(sent, "CAPA\r\nQUIT\r\n");
        assert_eq!(ev, learned(&["CAPA", "TOP", "UIDL", ".ODD", "SASL PLAIN LOGIN"]));
        let (sent, ev) = run(ProbeProtocol::Pop3, &["+OK hi", "-ERR what?"]);
        assert_eq!((sent.as_str(), ev), ("CAPA\r\nQUIT\r\n", learned(&[])));
    }

    #[test]
    fn pop3_failures_and_bounds() {
        for store in [&["-ERR busy"][..], &["* OK imap?"], &["+OKAY", "+OK"]] {
            let (_, ev) = run(ProbeProtocol::Pop3, store);
            assert!(matches!(ev, Some(ProbeEvent::Failed(_))), "{store:?}: {ev:?}");
        }
        let mut p = CapabilityProbe::new(ProbeProtocol::Pop3);
        p.feed(b"+OK\r\n+OK\r\n");
        assert_eq!(p.next_event(), None);
        for _ in 0..MAX_ITEMS {
            p.feed(b"X\r\n");
        }
        assert_eq!(p.next_event(), None);
        p.feed(b"ONE-TOO-MANY\r\n");
        assert!(matches!(p.next_event(), Some(ProbeEvent::Failed(_))));
        assert_eq!(p.next_event(), None, "a finished probe says nothing more");
    }

    #[test]
    fn control_characters_never_make_an_item() {
        // Found by the store_probe fuzz target: a bare CR inside a CAPA line.
        let (_, ev) = run(ProbeProtocol::Pop3, &["+OK hi", "+OK", "TOP", "UIDL\r\u{e}RESP-CODES", "\u{7f}", "."]);
        assert_eq!(ev, learned(&["TOP"]));
        let (_, ev) = run(ProbeProtocol::Imap, &["* OK [CAPABILITY IMAP4rev1 A\rB \u{1b}[0m IDLE] hi"]);
        assert_eq!(ev, learned(&["IMAP4rev1", "IDLE"]));
    }

    #[test]
    fn bytewise_is_the_same() {
        let store = b"* OK ready\r\n* CAPABILITY IMAP4rev1 X\r\nP1 OK\r\n";
        let mut p = CapabilityProbe::new(ProbeProtocol::Imap);
        let mut ev = None;
        for b in store {
            p.feed(&[*b]);
            if let Some(e) = p.next_event() {
                ev = Some(e);
            }
        }
        assert_eq!(ev, learned(&["IMAP4rev1", "X"]));
    }
}
