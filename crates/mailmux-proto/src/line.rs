//! A bounded CRLF line splitter, shared by the POP3 front and both store-side replays.
//!
//! Bytes go in with [`LineBuffer::feed`]; complete lines come out of
//! [`LineBuffer::next_line`] without their line ending. A line longer than the cap is an
//! error as soon as the cap is passed, so a peer that never sends CRLF cannot grow the buffer.

use crate::Secret;
use crate::buffer::InputBuffer;

/// A line exceeded the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Accumulates bytes and hands out complete lines. Memory is bounded by the cap plus one
/// `feed`; the bytes (a `PASS` line, say) are wiped once consumed.
#[derive(Debug)]
pub struct LineBuffer {
    input: InputBuffer,
    max_line: usize,
}

impl LineBuffer {
    /// A buffer whose lines (without CRLF) may be at most `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineBuffer { input: InputBuffer::new(), max_line }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.feed(bytes);
    }

    /// The next complete line without its `\r\n` (a bare `\n` is accepted too).
    pub fn next_line(&mut self) -> Result<Option<Secret>, LineTooLong> {
        let pending = self.input.pending();
        match memchr::memchr(b'\n', pending) {
            Some(end) => {
                let mut line = &pending[..end];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                if line.len() > self.max_line {
                    return Err(LineTooLong);
                }
                let line = Secret::new(line);
                self.input.consume(end + 1);
                Ok(Some(line))
            }
            None if pending.len() > self.max_line + 1 => Err(LineTooLong),
            None => Ok(None),
        }
    }

    /// Bytes received and not yet handed out as lines: after [`LineBuffer::next_line`] has
    /// returned `Ok(None)`, at most the cap plus one (a CR waiting for its LF).
    pub fn buffered_len(&self) -> usize {
        self.input.len()
    }

    /// Bytes received after the last line handed out.
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.input.take()
    }

    /// Drops discarded bytes: everything received so far, including unread lines.
    pub fn clear(&mut self) {
        self.input.clear();
    }

    /// Bytes held in memory (for tests of the memory bound).
    pub fn allocated(&self) -> usize {
        self.input.allocated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_fed_in_any_chunks() {
        let input = b"USER joe\r\nPASS x y\r\nQUIT\n";
        for chunk in [1, 2, 3, 4, 7, input.len()] {
            let mut lb = LineBuffer::new(64);
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                lb.feed(piece);
                while let Some(line) = lb.next_line().unwrap() {
                    out.push(line.expose().to_vec());
                }
            }
            assert_eq!(out, vec![b"USER joe".to_vec(), b"PASS x y".to_vec(), b"QUIT".to_vec()], "chunk size {chunk}");
        }
    }

    #[test]
    fn caps_lines_with_and_without_terminator() {
        let mut lb = LineBuffer::new(4);
        lb.feed(b"abcdef");
        assert_eq!(lb.next_line(), Err(LineTooLong));
        let mut lb = LineBuffer::new(4);
        lb.feed(b"abcde\r\n");
        assert_eq!(lb.next_line(), Err(LineTooLong));
        let mut lb = LineBuffer::new(4);
        lb.feed(b"abcd\r");
        assert_eq!(lb.next_line(), Ok(None));
        lb.feed(b"\n");
        assert_eq!(lb.next_line(), Ok(Some(Secret::new("abcd"))));
    }

    #[test]
    fn buffered_len_counts_unread_bytes_only() {
        let mut lb = LineBuffer::new(8);
        lb.feed(b"+OK\r\n+O");
        assert_eq!(lb.buffered_len(), 7);
        assert_eq!(lb.next_line().unwrap(), Some(Secret::new("+OK")));
        assert_eq!(lb.next_line().unwrap(), None);
        assert_eq!(lb.buffered_len(), 2);
    }

    #[test]
    fn rest_is_what_follows_the_last_line() {
        let mut lb = LineBuffer::new(64);
        lb.feed(b"+OK\r\nSTAT\r\nLI");
        assert_eq!(lb.next_line().unwrap(), Some(Secret::new("+OK")));
        assert_eq!(lb.take_rest(), b"STAT\r\nLI".to_vec());
        assert!(lb.take_rest().is_empty(), "nothing is left after take_rest");
    }
}
