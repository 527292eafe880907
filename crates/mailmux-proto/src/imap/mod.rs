//! IMAP before login, both directions.
//!
//! * [`framing`] cuts the client's byte stream into whole commands, literals included, with
//!   size caps applied while framing (so literal data is never read as a command).
//! * [`command`] parses one framed command of the pre-login subset.
//! * [`front`] is the client-facing state machine: greeting, CAPABILITY, ID, LOGIN,
//!   AUTHENTICATE … until it has credentials to hand to the session.
//! * [`response`] reads the status responses a store sends.
//! * [`replay`] logs into a store with the client's credentials.

pub mod command;
pub mod framing;
pub mod front;
pub mod replay;
pub mod response;

/// Writes `s` as an IMAP quoted string if it can be one, else `None` (8-bit or CR/LF/NUL).
/// The result may be a password, so it is a [`Secret`].
pub fn quote(s: &[u8]) -> Option<crate::Secret> {
    if s.iter().any(|b| matches!(b, 0 | b'\r' | b'\n' | 0x80..=0xff)) {
        return None;
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(s.len() * 2 + 2));
    out.push(b'"');
    for &b in s {
        if matches!(b, b'"' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(crate::Secret::new(out.as_slice()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quote_escapes_and_refuses_8bit() {
        assert_eq!(super::quote(br#"a"b\c"#).unwrap().expose(), br#""a\"b\\c""#);
        assert!(super::quote("é".as_bytes()).is_none());
        assert!(super::quote(b"a\r\n").is_none());
    }
}
