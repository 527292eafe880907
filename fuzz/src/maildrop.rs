//! `pop3_maildrop`: the spoof maildrop (mailmux's own POP3 TRANSACTION state) against a
//! hostile client.
//!
//! Input: `[mode, client bytes…]`. The low bit of `mode` picks an empty maildrop (1) or one
//! holding [`NOTICE`] (0); the other seven bits are the read size (0: everything in one read).
//! The machine is driven the way `mailmux::session::spoof` drives it.
//!
//! Properties checked on every input, beyond "no panic":
//! * every answer is whole CRLF lines, and a multi-line answer ends with `.` (nothing the
//!   message holds ends it early: its `.` lines are stuffed);
//! * one call answers at most one command: its output is at most one copy of the message and
//!   a status line;
//! * while the machine waits for input it holds at most its line cap plus one byte;
//! * the message's text goes out only to a client that asked for it (`RETR`, `TOP`);
//! * once it has ended (QUIT, a protocol error), the machine says nothing more.

use mailmux_proto::pop3::maildrop::{MAX_LINE, Maildrop, MaildropEvent, SpoofMessage};

use crate::{occurrences, whole_lines};

/// The administrator's message the harness serves: a dot line inside, a marker to find.
pub const NOTICE: &[u8] = b"From: postmaster@example.com\nSubject: store down\n\n.\n..two\nMARKER-7e1\n";

/// How a maildrop session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaildropEnd {
    /// The input ran out with the machine waiting for more.
    #[default]
    Waiting,
    /// QUIT.
    Quit,
    /// A protocol error closed it.
    Closed,
}

/// What one input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaildropOutcome {
    /// How it ended.
    pub end: MaildropEnd,
    /// Answers written (calls that produced output).
    pub answers: u32,
}

/// The harness of the `pop3_maildrop` target.
pub fn pop3_maildrop(data: &[u8]) -> MaildropOutcome {
    let Some((&mode, input)) = data.split_first() else { return MaildropOutcome::default() };
    let empty = mode & 1 == 1;
    let chunk = usize::from(mode >> 1);
    let message = SpoofMessage::new(NOTICE).expect("the notice is a message");
    let octets = message.octets();
    let mut m = Maildrop::new((!empty).then_some(message));
    let mut reads = input.chunks(if chunk == 0 { input.len().max(1) } else { chunk });
    let mut outcome = MaildropOutcome::default();
    let mut wire = Vec::new();
    loop {
        let event = m.next_event();
        let out = m.take_output();
        assert!(whole_lines(&out), "not whole lines: {:?}", String::from_utf8_lossy(&out));
        assert!(out.len() <= 2 * octets + 128, "{} bytes answered at once", out.len());
        if !out.is_empty() {
            outcome.answers += 1;
            wire.extend_from_slice(&out);
        }
        match event {
            Some(end) => {
                outcome.end = if end == MaildropEvent::Quit { MaildropEnd::Quit } else { MaildropEnd::Closed };
                m.feed(b"STAT\r\nRETR 1\r\n");
                assert_eq!(m.next_event(), Some(MaildropEvent::Close), "an ended maildrop must stay closed");
                assert!(m.take_output().is_empty(), "an ended maildrop answered");
                break;
            }
            None if !out.is_empty() => continue,
            None => {
                assert!(m.buffered_len() <= MAX_LINE + 1, "{} bytes buffered", m.buffered_len());
                let Some(read) = reads.next() else { break };
                m.feed(read);
            }
        }
    }
    let asked = input.windows(4).any(|w| w.eq_ignore_ascii_case(b"RETR"))
        || input.windows(3).any(|w| w.eq_ignore_ascii_case(b"TOP"));
    if !asked || empty {
        assert_eq!(occurrences(&wire, b"postmaster@example.com"), 0, "the message went out unasked");
    }
    // The message's dot lines are stuffed, so a lone "." only ends answers.
    assert_eq!(occurrences(&wire, b"\r\n.\r\n.\r\n"), 0, "a message line ended an answer early");
    outcome
}
