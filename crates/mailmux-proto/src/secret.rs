//! Passwords and SASL blobs that can be moved around but never printed.
//!
//! `Debug` and `Display` print a fixed placeholder, so a `?credentials` in a tracing macro
//! cannot leak a password; the bytes are wiped when dropped. A `Secret` can also grow (the
//! pre-login input buffers are built on it): growing moves the bytes to a larger allocation
//! and wipes the old one, which a plain `Vec` would hand back to the allocator intact.

use std::fmt;
use zeroize::Zeroizing;

/// A secret byte string (a password, a SASL response). Prints as `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes that must not be printed.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The secret bytes, for the one place that must send them on.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Bytes allocated.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Appends bytes. When the allocation must grow, the bytes move to a new one and the old
    /// one is wiped.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.0.capacity() * 2).max(64));
            grown.extend_from_slice(&self.0);
            // The old allocation is zeroed as it is dropped here.
            self.0 = Zeroizing::new(grown);
        }
        self.0.extend_from_slice(bytes);
    }

    /// Drops the first `n` bytes, wiping the tail the move leaves behind.
    pub fn drain_front(&mut self, n: usize) {
        let len = self.0.len();
        let n = n.min(len);
        self.0.copy_within(n.., 0);
        self.0[len - n..].fill(0);
        self.0.truncate(len - n);
    }

    /// Empties the secret, wiping its bytes (the allocation is kept).
    pub fn clear(&mut self) {
        self.0.fill(0);
        self.0.clear();
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Secret::new(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_bytes() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn grows_and_drains() {
        let mut s = Secret::default();
        for _ in 0..100 {
            s.extend_from_slice(b"0123456789");
        }
        assert_eq!(s.len(), 1000);
        s.drain_front(995);
        assert_eq!(s.expose(), b"56789");
        s.clear();
        assert!(s.is_empty() && s.capacity() >= 1000);
    }
}
