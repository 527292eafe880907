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
//! ```
//!
//! Caps are applied while framing: a line longer than `max_line` or a literal larger than
//! `max_literal` is reported before its bytes are stored.

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
    fn default() -> Self {
        // Pre-login commands are short: a LOGIN with two long literals fits easily.
        Limits { max_line: 8 * 1024, max_literal: 8 * 1024, max_command: 16 * 1024 }
    }
}

/// What the framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete command, literals inline, without the final CRLF.
    Command(Vec<u8>),
    /// The client announced a synchronising literal; the server must send `+` before the
    /// client sends it.
    ContinuationNeeded,
    /// The client announced a synchronising literal that is too large. The command is
    /// dropped and the client is told with a tagged BAD; it will not send the literal.
    LiteralRefused {
        /// The tag of the refused command, as far as it could be read.
        tag: Vec<u8>,
    },
    /// A limit was passed in a way that leaves the stream unframeable (an over-long line, a
    /// non-synchronising literal that is too large): the connection must be closed.
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    Literal { remaining: usize },
    Broken,
}

/// Frames IMAP commands from a byte stream.
#[derive(Debug)]
pub struct CommandFramer {
    limits: Limits,
    input: Vec<u8>,
    /// Read position in `input`.
    pos: usize,
    /// The command assembled so far.
    command: Vec<u8>,
    state: State,
}

impl CommandFramer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Self {
        CommandFramer { limits, input: Vec::new(), pos: 0, command: Vec::new(), state: State::Line }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes received but not yet framed, and resets the framer. Used when the session stops
    /// framing (after login, the rest belongs to the store).
    pub fn take_unframed(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.command);
        rest.extend_from_slice(&self.input[self.pos..]);
        self.input.clear();
        self.pos = 0;
        self.state = State::Line;
        rest
    }

    /// Throws away everything buffered (the STARTTLS rule: nothing pipelined before the
    /// handshake may run after it).
    pub fn discard_buffered(&mut self) {
        self.take_unframed();
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Broken => return None,
                State::Literal { remaining } => {
                    let available = self.input.len() - self.pos;
                    let take = remaining.min(available);
                    self.command.extend_from_slice(&self.input[self.pos..self.pos + take]);
                    self.pos += take;
                    if take < remaining {
                        self.state = State::Literal { remaining: remaining - take };
                        return None;
                    }
                    self.state = State::Line;
                }
                State::Line => return self.next_line_frame(),
            }
        }
    }

    fn next_line_frame(&mut self) -> Option<Frame> {
        let pending = &self.input[self.pos..];
        let Some(nl) = memchr::memchr(b'\n', pending) else {
            if pending.len() > self.limits.max_line + 1 {
                return Some(self.broken());
            }
            return None;
        };
        let mut line = &pending[..nl];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.len() > self.limits.max_line || self.command.len() + line.len() > self.limits.max_command {
            return Some(self.broken());
        }
        let literal = literal_announcement(line);
        self.command.extend_from_slice(line);
        self.pos += nl + 1;
        match literal {
            // A malformed brace group is left for the parser to reject with BAD.
            None | Some(Err(())) => Some(Frame::Command(std::mem::take(&mut self.command))),
            Some(Ok((size, sync))) => {
                let fits = size <= self.limits.max_literal && self.command.len() + 2 + size <= self.limits.max_command;
                if !fits {
                    if sync {
                        let tag = tag_of(&self.command).to_vec();
                        self.command.clear();
                        return Some(Frame::LiteralRefused { tag });
                    }
                    return Some(self.broken());
                }
                // Keep the CRLF inside the command, where the parser expects it.
                self.command.extend_from_slice(b"\r\n");
                self.state = State::Literal { remaining: size };
                if sync { Some(Frame::ContinuationNeeded) } else { self.next_frame() }
            }
        }
    }

    fn broken(&mut self) -> Frame {
        self.state = State::Broken;
        self.input.clear();
        self.pos = 0;
        self.command.clear();
        Frame::Overflow
    }
}

/// The first space-delimited token of a command.
pub fn tag_of(command: &[u8]) -> &[u8] {
    let end = memchr::memchr(b' ', command).unwrap_or(command.len());
    &command[..end]
}

/// If `line` ends with `{n}` or `{n+}`, the size and whether it synchronises;
/// `Err` for a brace group that is not a valid number.
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
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Some(Err(()));
    }
    let size = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<usize>().ok());
    Some(size.map(|s| (s, sync)).ok_or(()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Frame::Command(b"a1 CAPABILITY".to_vec()),
            Frame::ContinuationNeeded,
            Frame::Command(b"a2 LOGIN {3}\r\njoe {4+}\r\npa\r\n".to_vec()),
            Frame::Command(b"a3 NOOP".to_vec()),
        ];
        for chunk in [1, 2, 3, 4, 5, 8, 13, input.len()] {
            assert_eq!(frames(input, chunk), expected, "chunk size {chunk}");
        }
    }

    #[test]
    fn literal_bytes_are_never_commands() {
        // The literal contains what looks like a command line.
        let got = frames(b"a LOGIN joe {10+}\r\nb LOGOUT\r\n\r\n", 3);
        assert_eq!(got, vec![Frame::Command(b"a LOGIN joe {10+}\r\nb LOGOUT\r\n".to_vec())]);
    }

    #[test]
    fn refuses_big_sync_literal_and_keeps_going() {
        let got = frames(b"x1 LOGIN {999999}\r\nx2 NOOP\r\n", 64);
        assert_eq!(got, vec![Frame::LiteralRefused { tag: b"x1".to_vec() }, Frame::Command(b"x2 NOOP".to_vec())]);
    }

    #[test]
    fn overflows_on_big_nonsync_literal_or_long_line() {
        assert_eq!(frames(b"x1 LOGIN {999999+}\r\n", 64), vec![Frame::Overflow]);
        let long = vec![b'a'; 9000];
        assert_eq!(frames(&long, 512), vec![Frame::Overflow]);
    }

    #[test]
    fn bad_brace_is_an_ordinary_line() {
        assert_eq!(frames(b"x {12a}\r\n", 64), vec![Frame::Command(b"x {12a}".to_vec())]);
    }

    #[test]
    fn unframed_rest_is_returned() {
        let mut f = CommandFramer::new(Limits::default());
        f.feed(b"a LOGIN u p\r\nb SELECT INBOX\r\nc NO");
        assert!(matches!(f.next_frame(), Some(Frame::Command(_))));
        assert_eq!(f.take_unframed(), b"b SELECT INBOX\r\nc NO".to_vec());
    }
}
