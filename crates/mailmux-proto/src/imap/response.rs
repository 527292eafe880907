//! Reading the responses a store sends during login (RFC 9051 §7.1): status lines with an
//! optional response code, untagged CAPABILITY, and continuation requests.

/// Who a response line is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressee {
    /// `* …`
    Untagged,
    /// `+ …`
    Continuation,
    /// `tag …`
    Tagged(Vec<u8>),
}

/// The status word of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `BYE`
    Bye,
    /// `PREAUTH`
    Preauth,
}

/// One response line, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseLine {
    /// Tagged, untagged or continuation.
    pub addressee: Addressee,
    /// The status, if this is a status response.
    pub status: Option<Status>,
    /// The response code inside `[...]`, without the brackets.
    pub code: Option<String>,
    /// The rest of the line (for `* CAPABILITY …`, everything after `*`).
    pub text: String,
}

impl ResponseLine {
    /// Splits a response line (without CRLF).
    pub fn parse(line: &[u8]) -> ResponseLine {
        let line = String::from_utf8_lossy(line);
        let (first, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let addressee = match first {
            "*" => Addressee::Untagged,
            "+" => Addressee::Continuation,
            tag => Addressee::Tagged(tag.as_bytes().to_vec()),
        };
        if addressee == Addressee::Continuation {
            return ResponseLine { addressee, status: None, code: None, text: rest.to_owned() };
        }
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = match word.to_ascii_uppercase().as_str() {
            "OK" => Some(Status::Ok),
            "NO" => Some(Status::No),
            "BAD" => Some(Status::Bad),
            "BYE" => Some(Status::Bye),
            "PREAUTH" => Some(Status::Preauth),
            _ => None,
        };
        let Some(status) = status else {
            return ResponseLine { addressee, status: None, code: None, text: rest.to_owned() };
        };
        let (code, text) = match after.strip_prefix('[').and_then(|a| a.split_once(']')) {
            Some((code, text)) => (Some(code.to_owned()), text.trim_start().to_owned()),
            None => (None, after.to_owned()),
        };
        ResponseLine { addressee, status: Some(status), code, text }
    }

    /// The capability list, from `* CAPABILITY …` or a `[CAPABILITY …]` code.
    pub fn capabilities(&self) -> Option<&str> {
        if let Some(code) = &self.code {
            return strip_word(code, "CAPABILITY");
        }
        if self.addressee == Addressee::Untagged && self.status.is_none() {
            return strip_word(&self.text, "CAPABILITY");
        }
        None
    }

    /// The first word of the response code, upper-cased (`AUTHENTICATIONFAILED`, …).
    pub fn code_name(&self) -> Option<String> {
        self.code.as_deref().map(|c| c.split(' ').next().unwrap_or("").to_ascii_uppercase())
    }
}

fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let (first, rest) = s.split_once(' ')?;
    first.eq_ignore_ascii_case(word).then_some(rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_with_code() {
        let r = ResponseLine::parse(b"M1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in");
        assert_eq!(r.addressee, Addressee::Tagged(b"M1".to_vec()));
        assert_eq!(r.status, Some(Status::Ok));
        assert_eq!(r.capabilities(), Some("IMAP4rev1 IDLE"));
        assert_eq!(r.text, "Logged in");
    }

    #[test]
    fn untagged_capability_and_no_code() {
        let r = ResponseLine::parse(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN");
        assert_eq!(r.capabilities(), Some("IMAP4rev1 AUTH=PLAIN"));
        let r = ResponseLine::parse(b"M1 NO [AUTHENTICATIONFAILED] Authentication failed.");
        assert_eq!(r.code_name().as_deref(), Some("AUTHENTICATIONFAILED"));
        let r = ResponseLine::parse(b"M1 NO bad");
        assert_eq!(r.code, None);
        assert_eq!(r.text, "bad");
    }

    #[test]
    fn continuation_and_garbage() {
        assert_eq!(ResponseLine::parse(b"+ ").addressee, Addressee::Continuation);
        let r = ResponseLine::parse(b"\xff\xfe");
        assert_eq!(r.status, None);
    }
}
