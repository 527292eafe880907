//! LDAP search filters in their string form (RFC 4515).
//!
//! Two uses: [`escape_value`] makes user input safe to place inside a filter template (the
//! MMP's `SearchFormat`), and [`parse`] plus [`Filter::matches`] evaluate a filter over
//! entries held in memory, which is how the embedded LDIF directory answers the same
//! `SearchFormat` the LDAP directory does.
//!
//! Matching is case-insensitive for attribute names and values, like the `caseIgnoreMatch`
//! rules of `uid`, `mail` and `mailHost`; ordering (`>=`, `<=`) compares the lower-cased strings
//! and approximate match (`~=`) is treated as equality.

/// How deep `&`, `|` and `!` may nest; bounds recursion on hostile input.
const MAX_DEPTH: usize = 32;

/// Escapes a value for use inside a filter: `*`, `(`, `)`, `\` and NUL become `\2a` etc.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// A parsed search filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `(&…)`
    And(Vec<Filter>),
    /// `(|…)`
    Or(Vec<Filter>),
    /// `(!…)`
    Not(Box<Filter>),
    /// `(attr=value)`
    Equal(String, String),
    /// `(attr=*)`
    Present(String),
    /// `(attr=ini*any*fin)`
    Substring {
        /// Attribute name.
        attr: String,
        /// Required prefix.
        initial: Option<String>,
        /// Required pieces in order.
        any: Vec<String>,
        /// Required suffix.
        last: Option<String>,
    },
    /// `(attr>=value)`
    GreaterOrEqual(String, String),
    /// `(attr<=value)`
    LessOrEqual(String, String),
}

/// A filter string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected.
    pub reason: &'static str,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.reason, self.at)
    }
}

impl std::error::Error for FilterError {}

/// Parses a filter. A filter without the outer parentheses (`uid=joe`) is accepted, as
/// LDAP tools and the MMP's `SearchFormat` examples allow.
pub fn parse(text: &str) -> Result<Filter, FilterError> {
    let trimmed = text.trim();
    let owned;
    let input = if trimmed.starts_with('(') {
        trimmed
    } else {
        owned = format!("({trimmed})");
        &owned
    };
    let mut p = Parser { s: input.as_bytes(), pos: 0 };
    let filter = p.filter(0)?;
    if p.pos != p.s.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(filter)
}

impl Filter {
    /// Whether an entry matches. `values(attr)` returns the entry's values of an attribute
    /// (the name is given lower-cased); they are compared case-insensitively.
    pub fn matches<'a>(&self, values: &dyn Fn(&str) -> &'a [String]) -> bool {
        self.eval(values, true)
    }

    /// Like [`Filter::matches`], for values already lower-cased by the caller (an in-memory
    /// directory does it once at load instead of on every search).
    pub fn matches_lowercased<'a>(&self, values: &dyn Fn(&str) -> &'a [String]) -> bool {
        self.eval(values, false)
    }

    fn eval<'a>(&self, values: &dyn Fn(&str) -> &'a [String], lowercase: bool) -> bool {
        let any = |attr: &str, pred: &dyn Fn(&str) -> bool| {
            values(attr).iter().any(|v| if lowercase { pred(&v.to_lowercase()) } else { pred(v) })
        };
        match self {
            Filter::And(list) => list.iter().all(|f| f.eval(values, lowercase)),
            Filter::Or(list) => list.iter().any(|f| f.eval(values, lowercase)),
            Filter::Not(f) => !f.eval(values, lowercase),
            Filter::Present(attr) => !values(attr).is_empty(),
            Filter::Equal(attr, want) => any(attr, &|v| v == want),
            Filter::GreaterOrEqual(attr, want) => any(attr, &|v| v >= want.as_str()),
            Filter::LessOrEqual(attr, want) => any(attr, &|v| v <= want.as_str()),
            Filter::Substring { attr, initial, any: pieces, last } => {
                any(attr, &|v| substring_match(v, initial.as_deref(), pieces, last.as_deref()))
            }
        }
    }
}

fn substring_match(value: &str, initial: Option<&str>, any: &[String], last: Option<&str>) -> bool {
    let mut rest = value;
    if let Some(initial) = initial {
        match rest.strip_prefix(initial) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for piece in any {
        match rest.find(piece.as_str()) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    last.is_none_or(|last| rest.ends_with(last))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> FilterError {
        FilterError { at: self.pos, reason }
    }

    fn eat(&mut self, b: u8) -> Result<(), FilterError> {
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(match b {
                b'(' => "expected '('",
                b')' => "expected ')'",
                _ => "unexpected character",
            }))
        }
    }

    fn filter(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if depth > MAX_DEPTH {
            return Err(self.error("filter nested too deeply"));
        }
        self.eat(b'(')?;
        let f = match self.s.get(self.pos) {
            Some(b'&') => {
                self.pos += 1;
                Filter::And(self.list(depth)?)
            }
            Some(b'|') => {
                self.pos += 1;
                Filter::Or(self.list(depth)?)
            }
            Some(b'!') => {
                self.pos += 1;
                Filter::Not(Box::new(self.filter(depth + 1)?))
            }
            _ => self.item()?,
        };
        self.eat(b')')?;
        Ok(f)
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Filter>, FilterError> {
        let mut list = Vec::new();
        while self.s.get(self.pos) == Some(&b'(') {
            list.push(self.filter(depth + 1)?);
        }
        if list.is_empty() {
            return Err(self.error("empty filter list"));
        }
        Ok(list)
    }

    fn item(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b';')) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expected an attribute name"));
        }
        let attr = String::from_utf8_lossy(&self.s[start..self.pos]).to_lowercase();
        let op = match self.s.get(self.pos..self.pos + 2) {
            Some(b">=") => b'>',
            Some(b"<=") => b'<',
            Some(b"~=") => b'~',
            _ => b'=',
        };
        self.pos += if op == b'=' { 0 } else { 1 };
        self.eat(b'=')?;
        // The raw value runs to the closing parenthesis; escapes keep ')' out of it.
        let vstart = self.pos;
        while self.s.get(self.pos).is_some_and(|&b| b != b')' && b != b'(') {
            self.pos += 1;
        }
        let raw = &self.s[vstart..self.pos];
        match op {
            b'>' => Ok(Filter::GreaterOrEqual(attr, self.unescape(raw)?)),
            b'<' => Ok(Filter::LessOrEqual(attr, self.unescape(raw)?)),
            _ if raw == b"*" => Ok(Filter::Present(attr)),
            _ if raw.contains(&b'*') => {
                let pieces: Vec<&[u8]> = raw.split(|b| *b == b'*').collect();
                let n = pieces.len();
                let opt = |p: &[u8], me: &Self| -> Result<Option<String>, FilterError> {
                    if p.is_empty() { Ok(None) } else { me.unescape(p).map(Some) }
                };
                let mut any = Vec::new();
                for p in &pieces[1..n - 1] {
                    if p.is_empty() {
                        return Err(self.error("empty substring"));
                    }
                    any.push(self.unescape(p)?);
                }
                Ok(Filter::Substring { attr, initial: opt(pieces[0], self)?, any, last: opt(pieces[n - 1], self)? })
            }
            _ => Ok(Filter::Equal(attr, self.unescape(raw)?)),
        }
    }

    /// Decodes `\XX` escapes and lower-cases the value for case-insensitive matching.
    fn unescape(&self, raw: &[u8]) -> Result<String, FilterError> {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| self.error("bad escape in value"))?;
                out.push(hex);
                i += 3;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        String::from_utf8(out).map(|s| s.to_lowercase()).map_err(|_| self.error("value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            m.entry(k.to_lowercase()).or_default().push(v.to_string());
        }
        m
    }

    fn matches(filter: &str, e: &HashMap<String, Vec<String>>) -> bool {
        let f = parse(filter).unwrap();
        f.matches(&|a| e.get(a).map(Vec::as_slice).unwrap_or(&[]))
    }

    #[test]
    fn escape_then_match_round_trip() {
        let hostile = "a*b(c)d\\e";
        let e = entry(&[("uid", hostile)]);
        let filter = format!("(uid={})", escape_value(hostile));
        assert_eq!(filter, "(uid=a\\2ab\\28c\\29d\\5ce)");
        assert!(matches(&filter, &e));
        // Unescaped, the star would have been a wildcard matching other users.
        assert!(!matches(&filter, &entry(&[("uid", "aXb(c)d\\e")])));
    }

    #[test]
    fn boolean_presence_and_substrings() {
        let e = entry(&[("uid", "Joe"), ("objectClass", "inetOrgPerson"), ("mail", "joe@example.com")]);
        assert!(matches("uid=joe", &e));
        assert!(matches("(&(objectclass=inetorgperson)(|(uid=x)(mail=joe@*)))", &e));
        assert!(matches("(!(mailhost=*))", &e));
        assert!(matches("(mail=*@example.*m)", &e));
        assert!(!matches("(mail=*@other.com)", &e));
        assert!(matches("(uid>=a)", &e));
        assert!(!matches("(uid<=a)", &e));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["(uid=joe", "(&)", "((uid=x))", "(uid=\\zz)", "(=x)", "(uid=a)(uid=b)"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}(uid=x){}", "(!".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
    }
}
