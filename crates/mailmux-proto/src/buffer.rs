//! [`InputBuffer`]: bytes received from a peer and not yet consumed.
//!
//! Every pre-login parser keeps its unparsed input here. Two properties matter, because the
//! bytes come from anyone on the Internet and may hold a password:
//!
//! * **Bounded**: consumed bytes are dropped (the rest moved to the front) before new ones are
//!   appended, so the buffer holds at most what is unconsumed plus one `feed`. Parsers cap
//!   what stays unconsumed (an unfinished line, a literal), so the whole is bounded.
//! * **Wiped**: the storage is [`Secret`]'s (zeroed on drop, never moved by reallocation
//!   without the old copy being zeroed), and bytes dropped by compaction are zeroed too.
//!   `Debug` prints sizes, never content.

use crate::Secret;

/// Unconsumed input.
#[derive(Default)]
pub struct InputBuffer {
    buf: Secret,
    /// Where the unconsumed part starts.
    start: usize,
}

impl InputBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        InputBuffer::default()
    }

    /// Appends received bytes, first dropping what was consumed.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain_front(self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The unconsumed bytes.
    pub fn pending(&self) -> &[u8] {
        self.buf.expose().get(self.start..).unwrap_or_default()
    }

    /// How many bytes are unconsumed.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    /// Whether nothing is unconsumed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held in memory, consumed or not (what a memory bound must cover).
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// Marks `n` more bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.clear();
        }
    }

    /// Takes every unconsumed byte out, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        let rest = self.pending().to_vec();
        self.clear();
        rest
    }

    /// Drops everything, unconsumed bytes included.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

impl std::fmt::Debug for InputBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputBuffer({} unconsumed of {})", self.len(), self.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_bytes_are_dropped_before_new_ones_arrive() {
        let mut b = InputBuffer::new();
        b.feed(b"x NO");
        for _ in 0..10_000 {
            // Each write completes one command and starts the next; the parser consumes the
            // complete one and leaves the partial one.
            b.feed(b"OP\r\nx NO");
            assert_eq!(b.pending(), b"x NOOP\r\nx NO");
            b.consume(8);
        }
        assert!(b.allocated() <= 64, "{b:?}: {} bytes allocated", b.allocated());
    }

    #[test]
    fn take_and_debug() {
        let mut b = InputBuffer::new();
        b.feed(b"a LOGIN joe secret\r\nrest");
        b.consume(20);
        assert_eq!(format!("{b:?}"), "InputBuffer(4 unconsumed of 24)");
        assert_eq!(b.take(), b"rest");
        assert!(b.is_empty());
    }
}
