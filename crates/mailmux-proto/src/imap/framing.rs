//! Cutting the client's byte stream into whole IMAP commands (RFC 9051 §2.2, §4.3; RFC 7888).
//!
//! A command is a line, except that a line ending in `{n}` or `{n+}` announces a literal of
//! `n` bytes that belongs to the same command, after which the command goes on. The framer
//! yields each command as one byte string with its literals inline, so the parser never
//! sees a partial command and literal bytes are never taken for a command.
//!
//! ```text
//!            line ends "{n}"  ──▶ ask for continuation ──▶ Literal(n) ──▶ back to Line
//!   Line ──▶ line ends "{n+}" ────────────────────────────▶ Literal(n)
//!            plain line       ──▶ Command(bytes)
//!
//!   too large: "{n}"  ──▶ TooBig now (no continuation: the client will not send it)
//!              "{n+}" ──▶ Discard(n) ──▶ DiscardLine (rest of the command, its literals
//!                         discarded too) ──▶ TooBig
//! ```
//!
//! Caps are applied while framing, so memory per connection is bounded whatever the client
//! sends: consumed input is dropped before more is buffered ([`InputBuffer`]), a line may not
//! exceed `max_line`, a literal `max_literal`, a command `max_command`. A literal or command
//! that is too large is refused in step with the client (RFC 7888 §4: `BAD [TOOBIG]`; a
//! non-synchronising literal is read and thrown away, never stored), so the connection stays
//! usable. Only a line longer than `max_line` leaves the stream unframeable: the connection is
//! closed.

use crate::Secret;
use crate::buffer::InputBuffer;

/// Limits for one command.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line (between literals), in bytes.
    pub max_line: usize,
    /// Largest literal, in bytes.
    pub max_literal: usize,
    /// Largest whole command, literals included.
    pub max_command: usize,
}

impl Default for Limits {
    /// The largest pre-login command a client may need is an RFC 2971 `ID`: 30 field/value
    /// pairs of up to 30 and 1,024 octets, about 32 KiB quoted (62 KiB if every character
    /// needed an escape). User names and passwords are far shorter than a literal's 8 KiB.
    fn default() -> Self {
        Limits { max_line: 64 * 1024, max_literal: 8 * 1024, max_command: 64 * 1024 }
    }
}

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command, literals inline, without the final CRLF. It may hold a
    /// password, so it is a [`Secret`] (wiped when dropped, never printed).
    Command(Secret),
    /// The client announced a synchronising literal; the server must send `+` before the
    /// client sends it.
    ContinuationNeeded,
    /// A literal or the whole command was too large. The command is dropped (a
    /// non-synchronising literal and the rest of the command were read and thrown away; a
    /// synchronising one was never asked for) and the client is to be told with a tagged
    /// `BAD [TOOBIG]`; the stream is in step.
    TooBig {
        /// The tag of the refused command, as far as it could be read.
        tag: Vec<u8>,
    },
    /// A line longer than the limit: the stream cannot be framed any more, the connection
    /// must be closed.
    Overflow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Line,
    Literal {
        remaining: usize,
    },
    /// A refused command's non-synchronising literal, read and thrown away.
    Discard {
        remaining: usize,
        tag: Vec<u8>,
    },
    /// The rest of a refused command, up to its CRLF.
    DiscardLine {
        tag: Vec<u8>,
    },
    Broken,
}

/// Frames IMAP commands from a byte stream.
#[derive(Debug)]
pub struct CommandFramer {
    limits: Limits,
    input: InputBuffer,
    /// The command assembled so far.
    command: Secret,
    state: State,
}

impl CommandFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        CommandFramer { limits, input: InputBuffer::new(), command: Secret::default(), state: State::Line }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.state != State::Broken {
            self.input.feed(bytes);
        }
    }

    /// Bytes held in memory for this connection's input (for tests of the memory bound).
    pub fn allocated(&self) -> usize {
        self.input.allocated() + self.command.capacity()
    }

    /// Bytes received but not yet framed, and resets the framer. Used when the session stops
    /// framing (after login, the rest belongs to the store).
    pub fn take_unframed(&mut self) -> Vec<u8> {
        let mut rest = self.command.expose().to_vec();
        rest.extend_from_slice(&self.input.take());
        self.command.clear();
        self.state = State::Line;
        rest
    }

    /// Throws away everything buffered (the STARTTLS rule: nothing pipelined before the
    /// handshake may run after it).
    pub fn discard_buffered(&mut self) {
        self.input.clear();
        self.command.clear();
        self.state = State::Line;
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match std::mem::replace(&mut self.state, State::Line) {
                State::Broken => {
                    self.state = State::Broken;
                    return None;
                }
                State::Literal { remaining } => {
                    let take = remaining.min(self.input.len());
                    self.command.extend_from_slice(&self.input.pending()[..take]);
                    self.input.consume(take);
                    if take < remaining {
                        self.state = State::Literal { remaining: remaining - take };
                        return None;
                    }
                }
                State::Discard { remaining, tag } => {
                    let take = remaining.min(self.input.len());
                    self.input.consume(take);
                    self.state = if take < remaining {
                        State::Discard { remaining: remaining - take, tag }
                    } else {
                        State::DiscardLine { tag }
                    };
                    if take < remaining {
                        return None;
                    }
                }
                State::DiscardLine { tag } => {
                    let Some(line) = self.take_line() else {
                        self.state = State::DiscardLine { tag };
                        return self.overflow_if_too_long();
                    };
                    match literal_announcement(line.expose()) {
                        Some(Ok((size, false))) => self.state = State::Discard { remaining: size, tag },
                        _ => return Some(Frame::TooBig { tag }),
                    }
                }
                State::Line => return self.next_line_frame(),
            }
        }
    }

    /// The next complete line without its line end, consumed; `None` if there is none yet.
    fn take_line(&mut self) -> Option<Secret> {
        let pending = self.input.pending();
        let nl = memchr::memchr(b'\n', pending)?;
        let mut line = &pending[..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let line = Secret::new(line);
        self.input.consume(nl + 1);
        Some(line)
    }

    /// Without a line end in sight, the unfinished line must still fit the limit.
    fn overflow_if_too_long(&mut self) -> Option<Frame> {
        if self.input.len() > self.limits.max_line + 1 {
            return Some(self.broken());
        }
        None
    }

    fn next_line_frame(&mut self) -> Option<Frame> {
        let Some(line) = self.take_line() else {
            return self.overflow_if_too_long();
        };
        if line.len() > self.limits.max_line {
            return Some(self.broken());
        }
        let literal = literal_announcement(line.expose());
        if self.command.len() + line.len() > self.limits.max_command {
            return self.refuse(literal);
        }
        self.command.extend_from_slice(line.expose());
        match literal {
            // A malformed brace group is left for the parser to reject with BAD.
            None | Some(Err(())) => Some(Frame::Command(std::mem::take(&mut self.command))),
            Some(Ok((size, sync))) => {
                let fits = size <= self.limits.max_literal && self.command.len() + 2 + size <= self.limits.max_command;
                if !fits {
                    return self.refuse(Some(Ok((size, sync))));
                }
                // Keep the CRLF inside the command, where the parser expects it.
                self.command.extend_from_slice(b"\r\n");
                self.state = State::Literal { remaining: size };
                if sync { Some(Frame::ContinuationNeeded) } else { self.next_frame() }
            }
        }
    }

    /// Drops the command being assembled. A non-synchronising literal that ends the current
    /// line is on its way and must be read past; a synchronising one was not asked for.
    fn refuse(&mut self, literal: Option<Result<(usize, bool), ()>>) -> Option<Frame> {
        let tag = tag_of(self.command.expose()).to_vec();
        self.command.clear();
        match literal {
            Some(Ok((size, false))) => {
                self.state = State::Discard { remaining: size, tag };
                self.next_frame()
            }
            _ => Some(Frame::TooBig { tag }),
        }
    }

    fn broken(&mut self) -> Frame {
        self.state = State::Broken;
        self.input.clear();
        self.command.clear();
        Frame::Overflow
    }
}

/// The tag of a command being refused: its first token if that is a valid tag (RFC 9051
/// `1*<ASTRING-CHAR except "+">`), else `*`, so the refusal is always well-formed IMAP.
pub fn tag_of(command: &[u8]) -> &[u8] {
    let end = memchr::memchr(b' ', command).unwrap_or(command.len());
    let tag = &command[..end];
    if !tag.is_empty() && tag.iter().all(|&b| super::command::is_tag_char(b)) { tag } else { b"*" }
}

/// If `line` ends with `{n}` or `{n+}`, the size and whether it synchronises; `Err` for a
/// brace group that is not a number. RFC 9051's `number` is `1*DIGIT`: leading zeros are
/// allowed and a size too large for memory saturates (and is refused as too big), so no
/// announcement can slip through as an ordinary line and have its literal read as commands.
fn literal_announcement(line: &[u8]) -> Option<Result<(usize, bool), ()>> {
    let body = line.strip_suffix(b"}")?;
    let open = memchr::memrchr(b'{', body)?;
    let mut digits = &body[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Some(Err(()));
    }
    let size = digits.iter().fold(0usize, |n, d| n.saturating_mul(10).saturating_add(usize::from(d - b'0')));
    Some(Ok((size, sync)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(bytes: &[u8]) -> Frame {
        Frame::Command(Secret::new(bytes))
    }

    fn frames(input: &[u8], chunk: usize) -> Vec<Frame> {
        let mut f = CommandFramer::new(Limits::default());
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            f.feed(piece);
            while let Some(frame) = f.next_frame() {
                out.push(frame);
            }
        }
        out
    }

    #[test]
    fn frames_lines_and_literals_in_any_chunking() {
        let input = b"a1 CAPABILITY\r\na2 LOGIN {3}\r\njoe {4+}\r\npa\r\n\r\na3 NOOP\r\n";
        let expected = vec![
            cmd(b"a1 CAPABILITY"),
            Frame::ContinuationNeeded,
            cmd(b"a2 LOGIN {3}\r\njoe {4+}\r\npa\r\n"),
            cmd(b"a3 NOOP"),
        ];
        for chunk in [1, 2, 3, 4, 5, 8, 13, input.len()] {
            assert_eq!(frames(input, chunk), expected, "chunk size {chunk}");
        }
    }

    #[test]
    fn literal_bytes_are_never_commands() {
        // The literal contains what looks like a command line.
        let got = frames(b"a LOGIN joe {10+}\r\nb LOGOUT\r\n\r\n", 3);
        assert_eq!(got, vec![cmd(b"a LOGIN joe {10+}\r\nb LOGOUT\r\n")]);
    }

    #[test]
    fn refuses_big_sync_literal_and_keeps_going() {
        let got = frames(b"x1 LOGIN {999999}\r\nx2 NOOP\r\n", 64);
        assert_eq!(got, vec![Frame::TooBig { tag: b"x1".to_vec() }, cmd(b"x2 NOOP")]);
    }

    #[test]
    fn big_nonsync_literals_are_read_past_and_refused_in_step() {
        // The literal, the rest of the command and a second literal in it are thrown away;
        // the next command is framed normally.
        let mut input = b"x1 LOGIN {20000+}\r\n".to_vec();
        input.extend(vec![b'p'; 20000]);
        input.extend_from_slice(b" {3+}\r\nb\nc\r\nx2 NOOP\r\n");
        for chunk in [1, 7, 4096, input.len()] {
            assert_eq!(
                frames(&input, chunk),
                vec![Frame::TooBig { tag: b"x1".to_vec() }, cmd(b"x2 NOOP")],
                "chunk size {chunk}"
            );
        }
        // A command whose literals each fit but which grows too large as a whole.
        let mut input = Vec::new();
        for _ in 0..10 {
            input.extend_from_slice(b"x3 ID (\"a\" {8000+}\r\n");
            input.extend(vec![b'v'; 8000]);
        }
        input.extend_from_slice(b")\r\nx4 NOOP\r\n");
        assert_eq!(frames(&input, 1000), vec![Frame::TooBig { tag: b"x3".to_vec() }, cmd(b"x4 NOOP")]);
    }

    #[test]
    fn overflows_on_long_line() {
        let long = vec![b'a'; 70_000];
        assert_eq!(frames(&long, 512), vec![Frame::Overflow]);
    }

    #[test]
    fn memory_stays_bounded_whatever_the_client_pipelines() {
        // Each write ends in the middle of a command: the old framer kept every consumed
        // byte until a write happened to end on a command boundary.
        let mut f = CommandFramer::new(Limits::default());
        let write: Vec<u8> = b"NOOP\r\n".iter().copied().cycle().take(4096).collect();
        for _ in 0..5_000 {
            f.feed(&write);
            while f.next_frame().is_some() {}
        }
        assert!(f.allocated() < 16 * 1024, "{} bytes held", f.allocated());
        // A huge non-synchronising literal is discarded as it arrives, never stored.
        let mut f = CommandFramer::new(Limits::default());
        f.feed(b"a LOGIN {1000000000+}\r\n");
        for _ in 0..10_000 {
            f.feed(&[b'x'; 4096]);
            assert_eq!(f.next_frame(), None);
        }
        assert!(f.allocated() < 16 * 1024, "{} bytes held", f.allocated());
    }

    #[test]
    fn long_and_zero_padded_announcements_are_still_literals() {
        // Eleven digits with leading zeros: a 5-byte literal, whose bytes are never a command.
        assert_eq!(
            frames(b"a LOGIN joe {00000000005+}\r\nb X\r\n\r\n", 3),
            vec![cmd(b"a LOGIN joe {00000000005+}\r\nb X\r\n")]
        );
        // More than memory can hold: refused in step, not taken for an ordinary line.
        assert_eq!(
            frames(b"a LOGIN {99999999999999999999999}\r\nb NOOP\r\n", 64),
            vec![Frame::TooBig { tag: b"a".to_vec() }, cmd(b"b NOOP")]
        );
    }

    #[test]
    fn refusals_never_echo_an_invalid_tag() {
        // Found by the imap_front fuzzer (limits 256/256/512): the "tag" of a refused
        // command held literal bytes.
        let mut f = CommandFramer::new(Limits { max_line: 256, max_literal: 256, max_command: 512 });
        f.feed(b"{5}\n7}}\n\0{997}\n");
        let got: Vec<Frame> = std::iter::from_fn(|| f.next_frame()).collect();
        assert_eq!(got, vec![Frame::ContinuationNeeded, Frame::TooBig { tag: b"*".to_vec() }]);
        assert_eq!(tag_of(b"a1 LOGIN"), b"a1");
        assert_eq!(tag_of(b"+x LOGIN"), b"*");
        assert_eq!(tag_of(b" LOGIN"), b"*");
    }

    #[test]
    fn bad_brace_is_an_ordinary_line() {
        assert_eq!(frames(b"x {12a}\r\n", 64), vec![cmd(b"x {12a}")]);
    }

    #[test]
    fn unframed_rest_is_returned() {
        let mut f = CommandFramer::new(Limits::default());
        f.feed(b"a LOGIN u p\r\nb SELECT INBOX\r\nc NO");
        assert!(matches!(f.next_frame(), Some(Frame::Command(_))));
        assert_eq!(f.take_unframed(), b"b SELECT INBOX\r\nc NO".to_vec());
    }
}
