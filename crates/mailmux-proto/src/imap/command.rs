//! Parsing the IMAP commands a client may send before login (RFC 9051 §6.1, §6.2; RFC 2971 ID;
//! RFC 4959 SASL-IR; RFC 7888 LITERAL+).
//!
//! Input is one command as framed by [`super::framing`]: literals inline, no final CRLF.
//! Commands that are valid IMAP but not allowed before login parse as [`Command::Other`];
//! the state machine, not the parser, refuses them.

use crate::Secret;

/// A pre-login IMAP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CAPABILITY`
    Capability,
    /// `NOOP`
    Noop,
    /// `LOGOUT`
    Logout,
    /// `ID (...)` or `ID NIL`; the client's parameters are not needed before login.
    Id,
    /// `STARTTLS`
    StartTls,
    /// `LOGIN user password`
    Login {
        /// The user name as sent.
        user: Vec<u8>,
        /// The password.
        password: Secret,
    },
    /// `AUTHENTICATE mechanism [initial-response]`
    Authenticate {
        /// The mechanism name as sent.
        mechanism: Vec<u8>,
        /// The SASL-IR initial response, still base64 (`=` for empty).
        initial: Option<Secret>,
    },
    /// Any other command name (upper-cased), refused before login.
    Other(String),
}

/// A command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedCommand {
    /// The client's tag, echoed in the reply.
    pub tag: Vec<u8>,
    /// The command.
    pub command: Command,
}

/// A command that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The tag, when one could be read; without it the reply is an untagged BAD.
    pub tag: Option<Vec<u8>>,
    /// What was wrong, for the client.
    pub reason: &'static str,
}

/// Parses one framed command.
pub fn parse(input: &[u8]) -> Result<TaggedCommand, ParseError> {
    let mut p = Parser { input, pos: 0 };
    let tag = p.tag().ok_or(ParseError { tag: None, reason: "Missing or invalid tag" })?;
    let fail = |reason| ParseError { tag: Some(tag.clone()), reason };
    p.sp().ok_or_else(|| fail("Missing command"))?;
    let name = p.atom().ok_or_else(|| fail("Missing command"))?;
    let name = name.to_ascii_uppercase();
    let command = match name.as_slice() {
        b"CAPABILITY" => Command::Capability,
        b"NOOP" => Command::Noop,
        b"LOGOUT" => Command::Logout,
        b"STARTTLS" => Command::StartTls,
        b"ID" => {
            // ID's parameter list is informational; accept whatever follows.
            p.pos = p.input.len();
            Command::Id
        }
        b"LOGIN" => {
            p.sp().ok_or_else(|| fail("LOGIN needs a user name"))?;
            let user = p.astring().ok_or_else(|| fail("Invalid user name"))?;
            p.sp().ok_or_else(|| fail("LOGIN needs a password"))?;
            let password = p.astring().ok_or_else(|| fail("Invalid password"))?;
            Command::Login { user: user.expose().to_vec(), password }
        }
        b"AUTHENTICATE" => {
            p.sp().ok_or_else(|| fail("AUTHENTICATE needs a mechanism"))?;
            let mechanism = p.atom().ok_or_else(|| fail("Invalid mechanism"))?;
            let initial = if p.sp().is_some() {
                let rest = &p.input[p.pos..];
                if rest.is_empty() || !rest.iter().all(|b| is_base64_char(*b)) {
                    return Err(fail("Invalid initial response"));
                }
                p.pos = p.input.len();
                Some(Secret::new(rest))
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        _ => {
            p.pos = p.input.len();
            Command::Other(String::from_utf8_lossy(&name).into_owned())
        }
    };
    if p.pos != p.input.len() {
        return Err(fail("Unexpected characters after command"));
    }
    Ok(TaggedCommand { tag, command })
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// RFC 9051 tag characters: `ASTRING-CHAR` except `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    (is_atom_char(b) || b == b']') && b != b'+'
}

/// RFC 9051 `ATOM-CHAR`: any CHAR except atom-specials.
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn sp(&mut self) -> Option<()> {
        (self.peek()? == b' ').then(|| self.pos += 1)
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &[u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    fn tag(&mut self) -> Option<Vec<u8>> {
        let t = self.take_while(is_tag_char);
        (!t.is_empty()).then(|| t.to_vec())
    }

    fn atom(&mut self) -> Option<Vec<u8>> {
        let a = self.take_while(is_atom_char);
        (!a.is_empty()).then(|| a.to_vec())
    }

    /// `astring = 1*ASTRING-CHAR / string`; a [`Secret`], since it may be the password.
    fn astring(&mut self) -> Option<Secret> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => {
                let a = self.take_while(|b| is_atom_char(b) || b == b']');
                (!a.is_empty()).then(|| Secret::new(a))
            }
        }
    }

    fn quoted(&mut self) -> Option<Secret> {
        self.pos += 1;
        let mut out = Secret::default();
        loop {
            let b = self.peek()?;
            self.pos += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let escaped = self.peek()?;
                    if escaped != b'"' && escaped != b'\\' {
                        return None;
                    }
                    out.extend_from_slice(&[escaped]);
                    self.pos += 1;
                }
                b'\r' | b'\n' | 0 => return None,
                _ => out.extend_from_slice(&[b]),
            }
        }
    }

    /// `{n}` or `{n+}`, CRLF, then n bytes (the framer guarantees they are present).
    fn literal(&mut self) -> Option<Secret> {
        self.pos += 1;
        let digits = self.take_while(|b| b.is_ascii_digit());
        let size: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if self.peek() == Some(b'+') {
            self.pos += 1;
        }
        if self.input.get(self.pos..self.pos + 3)? != b"}\r\n" {
            return None;
        }
        self.pos += 3;
        let data = self.input.get(self.pos..self.pos.checked_add(size)?)?;
        if data.contains(&0) {
            return None;
        }
        self.pos += size;
        Some(Secret::new(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match parse(input).unwrap().command {
            Command::Login { user, password } => (user, password.expose().to_vec()),
            other => panic!("not a login: {other:?}"),
        }
    }

    #[test]
    fn login_with_atoms_quoted_and_literals() {
        assert_eq!(login(b"a LOGIN joe secret"), (b"joe".to_vec(), b"secret".to_vec()));
        assert_eq!(
            login(br#"a login "joe@x.org" "pa \"q\" \\ s""#),
            (b"joe@x.org".to_vec(), br#"pa "q" \ s"#.to_vec())
        );
        assert_eq!(login(b"a LOGIN {3}\r\njoe {5+}\r\np w d"), (b"joe".to_vec(), b"p w d".to_vec()));
    }

    #[test]
    fn simple_commands_case_insensitive() {
        assert_eq!(parse(b"x capability").unwrap().command, Command::Capability);
        assert_eq!(parse(b"x Noop").unwrap().command, Command::Noop);
        assert_eq!(parse(b"x LOGOUT").unwrap().command, Command::Logout);
        assert_eq!(parse(b"x STARTTLS").unwrap().command, Command::StartTls);
        assert_eq!(parse(br#"x ID ("name" "mutt")"#).unwrap().command, Command::Id);
        assert_eq!(parse(b"x select INBOX").unwrap().command, Command::Other("SELECT".into()));
    }

    #[test]
    fn authenticate_with_and_without_initial_response() {
        let c = parse(b"a AUTHENTICATE PLAIN AGpvZQBwdw==").unwrap();
        match c.command {
            Command::Authenticate { mechanism, initial } => {
                assert_eq!(mechanism, b"PLAIN");
                assert_eq!(initial.unwrap().expose(), b"AGpvZQBwdw==");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(b"a AUTHENTICATE LOGIN").unwrap().command, Command::Authenticate { initial: None, .. }));
        assert!(parse(b"a AUTHENTICATE PLAIN !!").is_err());
    }

    #[test]
    fn errors_carry_the_tag_when_known() {
        assert_eq!(parse(b"").unwrap_err().tag, None);
        assert_eq!(parse(b"+x NOOP").unwrap_err().tag, None);
        assert_eq!(parse(b"t1").unwrap_err().tag, Some(b"t1".to_vec()));
        assert_eq!(parse(b"t1 LOGIN joe").unwrap_err().tag, Some(b"t1".to_vec()));
        assert!(parse(b"t1 NOOP extra").is_err());
        assert!(parse(b"t1 LOGIN \"unterminated").is_err());
        assert!(parse(b"t1 LOGIN {3}\r\nab").is_err());
        assert!(parse(b"t1 LOGIN joe {2}\r\na\0").is_err());
    }
}
