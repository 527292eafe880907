//! The MMP's `%` templates: `SearchFormat` (an LDAP filter) and `ReplayFormat` (the user id
//! given to the store).
//!
//! | token | meaning |
//! | --- | --- |
//! | `%s` | user and domain, `user@domain` (the domain after `DefaultDomain` is applied) |
//! | `%U` | the user part only |
//! | `%V` | the domain only |
//! | `%o` | the login name exactly as the client sent it |
//! | `%C` | the client's IP address |
//! | `%S` | the mailmux address the client connected to |
//! | `%A[attr]` | the value of attribute `attr` of the user's directory entry (ReplayFormat only) |
//! | `%%` | a percent sign |
//!
//! Templates are parsed once when the configuration is loaded; expanding one is a walk over
//! its pieces.

/// A `%` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `%s`
    UserAtDomain,
    /// `%U`
    User,
    /// `%V`
    Domain,
    /// `%o`
    Original,
    /// `%C`
    ClientIp,
    /// `%S`
    ServerIp,
    /// `%A[attr]`, the attribute name lower-cased.
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Token(Token),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`. `allow_attributes` permits `%A[attr]`.
    pub fn parse(source: &str, allow_attributes: bool) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            let token = match chars.next() {
                Some('%') => {
                    text.push('%');
                    continue;
                }
                Some('s') => Token::UserAtDomain,
                Some('U') => Token::User,
                Some('V') => Token::Domain,
                Some('o') => Token::Original,
                Some('C') => Token::ClientIp,
                Some('S') => Token::ServerIp,
                Some('A') if allow_attributes => {
                    if chars.next() != Some('[') {
                        return Err("%A must be followed by [attribute]".into());
                    }
                    let name: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err(format!("%A[{name}] does not name an attribute"));
                    }
                    Token::Attribute(name.to_ascii_lowercase())
                }
                Some(other) => return Err(format!("unknown token %{other}")),
                None => return Err("template ends with a lone %".into()),
            };
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Token(token));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { source: source.to_owned(), pieces })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attributes `%A[…]` refers to, so a directory search can ask for them.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Token(Token::Attribute(a)) => Some(a.as_str()),
            _ => None,
        })
    }

    /// Fills the template: `value` gives each token's raw value (or `None` when unknown,
    /// which expands to nothing) and `escape` prepares it for the context, e.g. RFC 4515
    /// escaping for a filter.
    pub fn expand(&self, value: impl Fn(&Token) -> Option<String>, escape: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Token(t) => {
                    if let Some(v) = value(t) {
                        out.push_str(&escape(&v));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: &Token) -> Option<String> {
        Some(match t {
            Token::UserAtDomain => "joe@x.org".into(),
            Token::User => "joe".into(),
            Token::Domain => "x.org".into(),
            Token::Original => "Joe+x.org".into(),
            Token::ClientIp => "127.0.0.5".into(),
            Token::ServerIp => "127.0.0.1".into(),
            Token::Attribute(a) if a == "uid" => "joe7".into(),
            Token::Attribute(_) => return None,
        })
    }

    #[test]
    fn expands_every_token() {
        let t = Template::parse("(&(uid=%U)(d=%V)(s=%s)(o=%o)(c=%C)(m=%S)) 100%%", false).unwrap();
        assert_eq!(
            t.expand(values, str::to_owned),
            "(&(uid=joe)(d=x.org)(s=joe@x.org)(o=Joe+x.org)(c=127.0.0.5)(m=127.0.0.1)) 100%"
        );
        let r = Template::parse("%A[UID]@%V%A[none]", true).unwrap();
        assert_eq!(r.expand(values, str::to_owned), "joe7@x.org");
        assert_eq!(r.attributes().collect::<Vec<_>>(), vec!["uid", "none"]);
    }

    #[test]
    fn escaping_applies_to_values_only() {
        let t = Template::parse("(uid=%U)", false).unwrap();
        assert_eq!(t.expand(|_| Some("a*".into()), |v| v.replace('*', "\\2a")), "(uid=a\\2a)");
    }

    #[test]
    fn rejects_unknown_tokens() {
        assert!(Template::parse("%x", false).is_err());
        assert!(Template::parse("%", false).is_err());
        assert!(Template::parse("%A[uid]", false).is_err());
        assert!(Template::parse("%A[]", true).is_err());
        assert!(Template::parse("%Auid", true).is_err());
    }
}
