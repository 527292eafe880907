//! The spoof maildrop: a POP3 TRANSACTION state served by mailmux itself when the user's
//! store cannot be reached (`SpoofMessageFile`, `SpoofEmptyMailbox`, `SpoofTempFail`), so the
//! client shows the administrator's message instead of an error (RFC 1939 §5, §6).
//!
//! ```text
//!  (login answered +OK by the front) ─▶ Transaction ──QUIT──▶ "+OK" ─▶ Quit (nothing deleted)
//!     STAT, LIST [1], UIDL [1], RETR 1, TOP 1 n, DELE 1 (marks, for this session only),
//!     RSET, NOOP, CAPA ─▶ answered;  others ─▶ -ERR (the 10th ─▶ Close);  line over the cap ─▶ Close
//! ```
//!
//! The maildrop holds one message (the administrator's) or none. DELE marks it deleted for
//! the rest of the session, as RFC 1939 says, but QUIT deletes nothing: the message is not the
//! user's and lives in mailmux's configuration. Its UIDL is derived from its bytes, so a
//! client that keeps mail on the server shows a given notice once, and a new text again.
//!
//! Answers are produced one command at a time ([`Maildrop::next_event`] stops as soon as output
//! is queued), so a client that pipelines a thousand `RETR 1` holds at most one message's copy
//! in the output at once.

use std::sync::Arc;

use crate::line::LineBuffer;

/// Longest command line, CRLF excluded (RFC 2449 §4 allows 255 octets; a little slack).
pub const MAX_LINE: usize = 512;
/// Largest message served (the loader refuses bigger files).
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Bad commands before the session is closed.
const MAX_BAD_COMMANDS: u32 = 10;

/// The administrator's message, ready to serve: CRLF line ends, a header section, a stable
/// unique id.
#[derive(Clone, PartialEq, Eq)]
pub struct SpoofMessage {
    bytes: Arc<[u8]>,
    uid: String,
}

impl std::fmt::Debug for SpoofMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoofMessage").field("octets", &self.bytes.len()).field("uid", &self.uid).finish()
    }
}

/// The header section added to a file that has none (plain text).
const DEFAULT_HEADERS: &str = "From: Mail Administrator <postmaster>\r\nSubject: Mail service notice\r\n\
                               MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";

impl SpoofMessage {
    /// The message from a file's bytes: bare LF and CR become CRLF, a last line gets its CRLF,
    /// and text without a header section gets a minimal one. `None` if it is empty or over
    /// [`MAX_MESSAGE`].
    pub fn new(text: &[u8]) -> Option<SpoofMessage> {
        if text.is_empty() || text.len() > MAX_MESSAGE {
            return None;
        }
        let mut bytes = Vec::with_capacity(text.len() + DEFAULT_HEADERS.len() + 64);
        if !starts_with_header(text) {
            bytes.extend_from_slice(DEFAULT_HEADERS.as_bytes());
        }
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\r' if text.get(i + 1) == Some(&b'\n') => {
                    bytes.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => bytes.extend_from_slice(b"\r\n"),
                b => bytes.push(b),
            }
            i += 1;
        }
        if !bytes.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
        let uid = format!("mailmux-spoof-{:016x}", fnv1a(&bytes));
        Some(SpoofMessage { bytes: bytes.into(), uid })
    }

    /// The message as served (before dot-stuffing).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its size in octets, as STAT and LIST give it.
    pub fn octets(&self) -> usize {
        self.bytes.len()
    }

    /// Its UIDL.
    pub fn uid(&self) -> &str {
        &self.uid
    }
}

/// Whether the first line reads as a header field (`Name: value`, RFC 5322 §2.2).
fn starts_with_header(text: &[u8]) -> bool {
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    match first.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|b| b.is_ascii_graphic() && *b != b':'),
        _ => false,
    }
}

/// FNV-1a, 64 bits: a stable id for the UIDL, not a security measure.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// What the session must do after writing the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaildropEvent {
    /// The client said QUIT (answered): close.
    Quit,
    /// The client broke the protocol (answered): close.
    Close,
}

/// The TRANSACTION state of a spoofed maildrop.
#[derive(Debug)]
pub struct Maildrop {
    message: Option<SpoofMessage>,
    deleted: bool,
    lines: LineBuffer,
    out: Vec<u8>,
    bad: u32,
    ended: bool,
}

impl Maildrop {
    /// A maildrop holding `message`, or nothing (`SpoofEmptyMailbox`).
    pub fn new(message: Option<SpoofMessage>) -> Self {
        Maildrop { message, deleted: false, lines: LineBuffer::new(MAX_LINE), out: Vec::new(), bad: 0, ended: false }
    }

    /// Appends client bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.ended {
            self.lines.feed(bytes);
        }
    }

    /// Bytes to send to the client now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Bytes held while waiting for input: at most [`MAX_LINE`] + 1.
    pub fn buffered_len(&self) -> usize {
        self.lines.buffered_len()
    }

    /// Answers buffered commands until one has produced output or the session ends; `None`
    /// means "send the output, then call again or read more". Once the session has ended
    /// (QUIT, a line too long, [`Maildrop::idle_timeout`], [`Maildrop::shutdown`]) it says
    /// [`MaildropEvent::Close`], so no caller can keep a finished session open.
    pub fn next_event(&mut self) -> Option<MaildropEvent> {
        if self.ended {
            return Some(MaildropEvent::Close);
        }
        while self.out.is_empty() {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(_) => return Some(self.end("-ERR Line too long", MaildropEvent::Close)),
            };
            if let Some(event) = self.on_command(line.expose()) {
                return Some(event);
            }
        }
        None
    }

    /// Goodbye when the client was idle too long.
    pub fn idle_timeout(&mut self) {
        self.end("-ERR Autologout; idle for too long", MaildropEvent::Close);
    }

    /// Goodbye at server shutdown.
    pub fn shutdown(&mut self) {
        self.end("-ERR [SYS/TEMP] Server shutting down", MaildropEvent::Close);
    }

    fn end(&mut self, line: &str, event: MaildropEvent) -> MaildropEvent {
        self.reply(line);
        self.ended = true;
        self.lines.clear();
        event
    }

    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The message, unless DELE marked it.
    fn present(&self) -> Option<&SpoofMessage> {
        self.message.as_ref().filter(|_| !self.deleted)
    }

    fn summary(&self) -> (usize, usize) {
        self.present().map_or((0, 0), |m| (1, m.octets()))
    }

    fn on_command(&mut self, line: &[u8]) -> Option<MaildropEvent> {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split(' ');
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let (count, octets) = self.summary();
        match (keyword.as_str(), args.as_slice()) {
            ("STAT", []) => self.reply(&format!("+OK {count} {octets}")),
            ("LIST", []) => {
                let listing = self.present().map(|m| format!("1 {}\r\n", m.octets())).unwrap_or_default();
                self.reply(&format!("+OK {count} messages ({octets} octets)\r\n{listing}."));
            }
            ("LIST", [n]) => match self.message_at(n) {
                Some(m) => self.reply(&format!("+OK 1 {}", m.octets())),
                None => self.reply("-ERR no such message"),
            },
            ("UIDL", []) => {
                let listing = self.present().map(|m| format!("1 {}\r\n", m.uid())).unwrap_or_default();
                self.reply(&format!("+OK\r\n{listing}."));
            }
            ("UIDL", [n]) => match self.message_at(n) {
                Some(m) => self.reply(&format!("+OK 1 {}", m.uid())),
                None => self.reply("-ERR no such message"),
            },
            ("RETR", [n]) => match self.message_at(n).cloned() {
                Some(m) => {
                    self.reply(&format!("+OK {} octets", m.octets()));
                    stuff(&mut self.out, m.bytes(), None);
                    self.reply(".");
                }
                None => self.reply("-ERR no such message"),
            },
            ("TOP", [n, lines]) => match (self.message_at(n).cloned(), lines.parse::<usize>()) {
                (Some(m), Ok(lines)) => {
                    self.reply("+OK top of message follows");
                    stuff(&mut self.out, m.bytes(), Some(lines));
                    self.reply(".");
                }
                (None, _) => self.reply("-ERR no such message"),
                (_, Err(_)) => return self.bad("-ERR TOP needs a message number and a line count"),
            },
            ("DELE", [n]) => match self.message_at(n) {
                Some(_) => {
                    self.deleted = true;
                    self.reply("+OK message 1 deleted");
                }
                None => self.reply("-ERR no such message"),
            },
            ("RSET", []) => {
                self.deleted = false;
                let (count, octets) = self.summary();
                self.reply(&format!("+OK maildrop has {count} messages ({octets} octets)"));
            }
            ("NOOP", []) => self.reply("+OK"),
            ("CAPA", []) => self.reply("+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n."),
            ("QUIT", []) => return Some(self.end("+OK Logging out", MaildropEvent::Quit)),
            ("USER" | "PASS" | "APOP" | "AUTH" | "STLS", _) => {
                return self.bad("-ERR Already logged in");
            }
            _ => return self.bad("-ERR Unknown command or wrong arguments"),
        }
        None
    }

    /// The message `n` names, if it is 1 and not deleted (RFC 1939: a deleted message may not
    /// be referred to).
    fn message_at(&self, n: &str) -> Option<&SpoofMessage> {
        (n == "1").then(|| self.present()).flatten()
    }

    fn bad(&mut self, line: &str) -> Option<MaildropEvent> {
        self.bad += 1;
        if self.bad >= MAX_BAD_COMMANDS {
            return Some(self.end("-ERR Too many bad commands", MaildropEvent::Close));
        }
        self.reply(line);
        None
    }
}

/// Appends `message` dot-stuffed (RFC 1939 §3); with `body_lines`, only the header section, the
/// blank line and that many body lines (TOP).
fn stuff(out: &mut Vec<u8>, message: &[u8], body_lines: Option<usize>) {
    let mut in_body = false;
    let mut body_left = body_lines.unwrap_or(usize::MAX);
    for line in message.split_inclusive(|b| *b == b'\n') {
        if in_body {
            if body_left == 0 {
                break;
            }
            body_left -= 1;
        } else if line == b"\r\n" {
            in_body = true;
        }
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTICE: &[u8] =
        b"From: postmaster@example.com\nSubject: Store down\n\nYour mail is safe.\n.hidden\nBack soon.";

    /// Feeds `input` whole, then answers everything, returning the output and the last event.
    fn run(m: &mut Maildrop, input: &str) -> (String, Option<MaildropEvent>) {
        m.feed(input.as_bytes());
        let mut out = Vec::new();
        loop {
            let ev = m.next_event();
            let chunk = m.take_output();
            let progressed = !chunk.is_empty();
            out.extend(chunk);
            if ev.is_some() || !progressed {
                return (String::from_utf8(out).unwrap(), ev);
            }
        }
    }

    fn notice() -> SpoofMessage {
        SpoofMessage::new(NOTICE).unwrap()
    }

    #[test]
    fn the_message_is_normalised() {
        let m = notice();
        assert_eq!(
            m.bytes(),
            b"From: postmaster@example.com\r\nSubject: Store down\r\n\r\nYour mail is safe.\r\n.hidden\r\nBack soon.\r\n"
        );
        assert!(m.uid().starts_with("mailmux-spoof-") && m.uid().len() == 30);
        assert_eq!(m.uid(), SpoofMessage::new(NOTICE).unwrap().uid(), "stable");
        assert_ne!(m.uid(), SpoofMessage::new(b"Subject: other\n\nx").unwrap().uid());
        let plain = SpoofMessage::new(b"The store is down.\r\nTry later.").unwrap();
        assert!(plain.bytes().starts_with(DEFAULT_HEADERS.as_bytes()));
        assert!(plain.bytes().ends_with(b"\r\n\r\nThe store is down.\r\nTry later.\r\n"));
        assert_eq!(SpoofMessage::new(b""), None);
        assert_eq!(SpoofMessage::new(&vec![b'x'; MAX_MESSAGE + 1]), None);
    }

    #[test]
    fn a_client_reads_the_one_message() {
        let octets = notice().octets();
        let mut m = Maildrop::new(Some(notice()));
        let (out, ev) = run(&mut m, "STAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\n");
        let uid = notice().uid().to_owned();
        assert_eq!(
            out,
            format!(
                "+OK 1 {octets}\r\n+OK 1 messages ({octets} octets)\r\n1 {octets}\r\n.\r\n+OK 1 {octets}\r\n\
                 +OK\r\n1 {uid}\r\n.\r\n+OK {octets} octets\r\nFrom: postmaster@example.com\r\nSubject: Store down\r\n\r\n\
                 Your mail is safe.\r\n..hidden\r\nBack soon.\r\n.\r\n"
            )
        );
        assert_eq!(ev, None);
        let (out, _) = run(&mut m, "TOP 1 1\r\nTOP 1 0\r\nLIST 2\r\nRETR 0\r\n");
        assert_eq!(
            out,
            "+OK top of message follows\r\nFrom: postmaster@example.com\r\nSubject: Store down\r\n\r\nYour mail is safe.\r\n.\r\n\
             +OK top of message follows\r\nFrom: postmaster@example.com\r\nSubject: Store down\r\n\r\n.\r\n\
             -ERR no such message\r\n-ERR no such message\r\n"
        );
        let (out, ev) = run(&mut m, "DELE 1\r\nSTAT\r\nRETR 1\r\nRSET\r\nSTAT\r\nNOOP\r\nquit\r\nSTAT\r\n");
        assert_eq!(
            out,
            format!(
                "+OK message 1 deleted\r\n+OK 0 0\r\n-ERR no such message\r\n+OK maildrop has 1 messages ({octets} octets)\r\n\
                 +OK 1 {octets}\r\n+OK\r\n+OK Logging out\r\n"
            )
        );
        assert_eq!(ev, Some(MaildropEvent::Quit));
        assert_eq!(m.next_event(), Some(MaildropEvent::Close), "nothing after QUIT but the close");
        assert!(m.take_output().is_empty());
    }

    /// An ended session stays ended: the caller is told to close every time it asks, and the
    /// goodbye is written once (a serving loop that was not told kept writing it).
    #[test]
    fn idle_timeout_and_shutdown_end_the_session_once() {
        for end in [Maildrop::idle_timeout as fn(&mut Maildrop), Maildrop::shutdown] {
            let mut m = Maildrop::new(Some(notice()));
            end(&mut m);
            assert_eq!(m.next_event(), Some(MaildropEvent::Close));
            let out = String::from_utf8(m.take_output()).unwrap();
            assert_eq!(out.matches("\r\n").count(), 1, "{out}");
            assert!(out.starts_with("-ERR "), "{out}");
            m.feed(b"STAT\r\n");
            assert_eq!(m.next_event(), Some(MaildropEvent::Close));
            assert!(m.take_output().is_empty(), "no answer after the end");
        }
    }

    #[test]
    fn an_empty_maildrop() {
        let mut m = Maildrop::new(None);
        let (out, _) = run(&mut m, "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nCAPA\r\n");
        assert_eq!(
            out,
            "+OK 0 0\r\n+OK 0 messages (0 octets)\r\n.\r\n+OK\r\n.\r\n-ERR no such message\r\n-ERR no such message\r\n\
             +OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n.\r\n"
        );
    }

    #[test]
    fn one_answer_at_a_time_and_bounds() {
        let mut m = Maildrop::new(Some(notice()));
        m.feed("RETR 1\r\n".repeat(1000).as_bytes());
        assert_eq!(m.next_event(), None);
        let first = m.take_output();
        assert!(first.len() < notice().octets() + 64, "one message per call, not {} bytes", first.len());
        let mut m = Maildrop::new(None);
        let (out, ev) = run(&mut m, &"XYZZY\r\n".repeat(10));
        assert_eq!(ev, Some(MaildropEvent::Close));
        assert!(out.ends_with("-ERR Too many bad commands\r\n"), "{out}");
        let mut m = Maildrop::new(None);
        m.feed(&vec![b'A'; MAX_LINE + 2]);
        assert_eq!(m.next_event(), Some(MaildropEvent::Close));
        assert!(m.buffered_len() == 0);
        let mut m = Maildrop::new(Some(notice()));
        let (out, _) = run(&mut m, "USER joe\r\nTOP 1 x\r\n");
        assert_eq!(out, "-ERR Already logged in\r\n-ERR TOP needs a message number and a line count\r\n");
    }

    #[test]
    fn bytewise_input_gives_the_same_answers() {
        let input = "STAT\r\nUIDL 1\r\nTOP 1 2\r\nQUIT\r\n";
        let (whole, _) = run(&mut Maildrop::new(Some(notice())), input);
        let mut m = Maildrop::new(Some(notice()));
        let mut out = String::new();
        for b in input.bytes() {
            m.feed(&[b]);
            loop {
                let ev = m.next_event();
                let chunk = m.take_output();
                if chunk.is_empty() && ev.is_none() {
                    break;
                }
                out.push_str(std::str::from_utf8(&chunk).unwrap());
                if ev.is_some() {
                    break;
                }
            }
        }
        assert_eq!(out, whole);
    }
}
