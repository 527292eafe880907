//! Inputs the fuzz targets in `fuzz/` found, kept as regression tests: each names the target,
//! the property the input broke, and carries the input as the fuzzer wrote it (minimised).

use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontSettings, ImapFront};

/// `imap_front`, "every answer is whole CRLF lines". When a synchronising literal is refused,
/// the answer's tag is the framer's `tag_of(command)`: the first space-delimited token of the
/// command assembled so far, unchecked, and spanning the literals already read. A command
/// whose first line has no space makes that token the whole command, so the client gets its
/// own literal bytes back, CR, LF and NUL included, as the "tag":
///
/// ```text
/// C: {5}            S: + Ready for literal data
/// C: 7}}\n\0{99999} S: {5}\r\n7}}\n\0{99999} BAD Literal too large
/// ```
///
/// Only the client that sent the bytes receives them, but the answer is not IMAP. A refused
/// command whose first token is not a valid tag (`1*<ASTRING-CHAR except "+">`) must be
/// answered untagged (`* BAD`), as the command parser already does for an invalid tag: `tag_of`
/// returns `*` for such a token (fixed in imap/framing.rs).
#[test]
fn refused_literal_is_never_answered_with_an_invalid_tag() {
    let mut front = ImapFront::new(FrontSettings {
        capabilities: "IMAP4rev1".into(),
        starttls: false,
        restrict_plaintext: false,
        tls: false,
        client_certificate: false,
        crams: None,
        bearer: false,
        banner: "t".into(),
        limits: Limits::default(),
    });
    front.take_output();
    // The imap_front crash input, minimised (its settings byte, 0x39, dropped; the literal size
    // raised past Limits::default()).
    front.feed(b"{5}\n7}}\n\0{99999}\n");
    assert_eq!(front.next_event(), None);
    assert_eq!(
        String::from_utf8_lossy(&front.take_output()),
        "+ Ready for literal data\r\n* BAD [TOOBIG] Command or literal too large\r\n"
    );
    // A valid tag is still echoed.
    front.feed(b"a LOGIN {3}\r\njoe {99999}\r\n");
    assert_eq!(front.next_event(), None);
    assert_eq!(
        String::from_utf8_lossy(&front.take_output()),
        "+ Ready for literal data\r\na BAD [TOOBIG] Command or literal too large\r\n"
    );
}
