//! Peer data in log lines.
//!
//! Login names, store answers, directory values and certificate names come from peers, and
//! a log line is only worth something if a peer cannot write one. Every field of every log
//! line goes through [`Escaped`] (see [`crate::logging`]), so no value can end a line, start
//! a forged one, hide text from a terminal or reorder it on screen:
//!
//! * `\` becomes `\\`; CR, LF and TAB become `\r`, `\n`, `\t`;
//! * other control characters (C0, DEL, C1) and the Unicode format characters that move or
//!   hide text (line and paragraph separators, bidirectional marks, overrides and isolates,
//!   zero-width and invisible operators, soft hyphens, interlinear annotations, tag
//!   characters) become `\u{…}`;
//! * a value longer than [`MAX_LOGGED_CHARS`] characters is cut, saying how much was left out.

use std::fmt::{self, Write};

/// Characters of one value written at most.
pub const MAX_LOGGED_CHARS: usize = 512;

/// A value made safe for a log line.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_LOGGED_CHARS) {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\r' => f.write_str("\\r")?,
                '\n' => f.write_str("\\n")?,
                '\t' => f.write_str("\\t")?,
                c if needs_escape(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        let rest = chars.count();
        if rest > 0 {
            write!(f, "…({rest} more characters)")?;
        }
        Ok(())
    }
}

/// Characters that must not reach a log line as they are.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' // soft hyphen
            | '\u{61c}' // Arabic letter mark
            | '\u{180e}' // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202e}' // line and paragraph separators, bidirectional overrides
            | '\u{2060}'..='\u{206f}' // word joiner, invisible operators, isolates, deprecated format
            | '\u{feff}' // zero-width no-break space
            | '\u{fff9}'..='\u{fffb}' // interlinear annotations
            | '\u{e0000}'..='\u{e007f}') // tag characters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_peer_sends_can_break_or_forge_a_line() {
        let forged = "joe\r\n2026-11-28T12:00:00Z INFO logged in user=admin\0\u{1b}[31m\u{202e}x\\";
        let logged = Escaped(forged).to_string();
        assert_eq!(logged, "joe\\r\\n2026-11-28T12:00:00Z INFO logged in user=admin\\u{0}\\u{1b}[31m\\u{202e}x\\\\");
        assert!(!logged.chars().any(needs_escape));
        assert_eq!(Escaped("joe@example.com").to_string(), "joe@example.com");
        assert_eq!(Escaped("Jöe Ünïcode").to_string(), "Jöe Ünïcode", "ordinary non-ASCII is kept");
        assert_eq!(Escaped("a\u{ad}b\u{61c}c\u{2066}d\u{e0041}").to_string(), "a\\u{ad}b\\u{61c}c\\u{2066}d\\u{e0041}");
    }

    #[test]
    fn long_values_are_cut() {
        let logged = Escaped(&"a".repeat(10_000)).to_string();
        assert!(logged.starts_with(&"a".repeat(MAX_LOGGED_CHARS)));
        assert!(logged.ends_with("…(9488 more characters)"), "{logged}");
    }
}
