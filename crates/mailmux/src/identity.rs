//! From the login name a client typed to the user and domain mailmux looks up.
//!
//! The MMP splits the name at the virtual-domain delimiter (`VirtualDomainDelim`, `@` by
//! default; every character of the value is a delimiter and the last one in the name wins, so
//! `joe@home@example.com` is user `joe@home` in `example.com`), appends `DefaultDomain` to
//! names without a domain, and rebuilds `user<delim>domain` for `%s` with the canonical
//! delimiter (`CanonicalVirtualDomainDelim`, `@`): with `VirtualDomainDelim +@`,
//! `joe+siroe.com` and `joe@Siroe.COM` are both `joe@siroe.com`. Domains are DNS names, so
//! they are compared (and given to the directory and stores) lower-cased; the user part is
//! kept as typed.

use std::net::IpAddr;

use mailmux_config::Token;

use crate::directory::Entry;

/// A login name taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// As the client sent it (`%o`).
    pub original: String,
    /// The user part (`%U`).
    pub user: String,
    /// The domain (`%V`), from the name or `DefaultDomain`, lower-cased.
    pub domain: Option<String>,
    /// The delimiter of `%s`.
    pub canonical_delim: char,
}

impl Identity {
    /// Splits `login`; `None` when no user part is left.
    pub fn parse(
        login: &str,
        delims: &[char],
        default_domain: Option<&str>,
        canonical_delim: char,
    ) -> Option<Identity> {
        let (user, domain) = match login.rfind(delims) {
            Some(at) => {
                let delim_len = login[at..].chars().next().map_or(1, char::len_utf8);
                let domain = &login[at + delim_len..];
                (&login[..at], (!domain.is_empty()).then_some(domain))
            }
            None => (login, None),
        };
        if user.is_empty() {
            return None;
        }
        Some(Identity {
            original: login.to_owned(),
            user: user.to_owned(),
            domain: domain.or(default_domain).map(str::to_lowercase),
            canonical_delim,
        })
    }

    /// `user<canonical delimiter>domain`, or the user alone without a domain (`%s`).
    pub fn user_at_domain(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}{}{d}", self.user, self.canonical_delim),
            None => self.user.clone(),
        }
    }

    /// The value of a template token for this login.
    pub fn token(&self, token: &Token, client: IpAddr, server: IpAddr, entry: Option<&Entry>) -> Option<String> {
        match token {
            Token::UserAtDomain => Some(self.user_at_domain()),
            Token::User => Some(self.user.clone()),
            Token::Domain => self.domain.clone(),
            Token::Original => Some(self.original.clone()),
            Token::ClientIp => Some(client.to_string()),
            Token::ServerIp => Some(server.to_string()),
            Token::Attribute(attr) => entry.and_then(|e| e.first(attr)).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(login: &str, delims: &[char], default_domain: Option<&str>) -> Option<Identity> {
        Identity::parse(login, delims, default_domain, '@')
    }

    #[test]
    fn splits_at_last_delimiter_and_applies_default_domain() {
        let id = parse("joe@home@example.com", &['@'], Some("d.org")).unwrap();
        assert_eq!((id.user.as_str(), id.domain.as_deref()), ("joe@home", Some("example.com")));
        let id = parse("joe", &['@'], Some("d.org")).unwrap();
        assert_eq!(id.user_at_domain(), "joe@d.org");
        let id = parse("joe+x.org", &['@', '+'], None).unwrap();
        assert_eq!(id.user_at_domain(), "joe@x.org");
        assert_eq!(id.original, "joe+x.org");
        let id = parse("joe", &['@'], None).unwrap();
        assert_eq!(id.user_at_domain(), "joe");
    }

    #[test]
    fn the_worked_examples_of_the_documentation() {
        // VirtualDomainDelim "+@", DefaultDomain siroe.com, canonical "@".
        for (login, user_at_domain) in [
            ("joe+siroe.com", "joe@siroe.com"),
            ("joe@Siroe.COM", "joe@siroe.com"),
            ("joe", "joe@siroe.com"),
            ("Joe@sesta.com", "Joe@sesta.com"),
            ("joe+home@sesta.com", "joe+home@sesta.com"),
        ] {
            let id = parse(login, &['+', '@'], Some("siroe.com")).unwrap();
            assert_eq!(id.user_at_domain(), user_at_domain, "{login}");
        }
        // A canonical delimiter of its own: the store sees joe%siroe.com.
        let id = Identity::parse("joe@siroe.com", &['@'], None, '%').unwrap();
        assert_eq!(id.user_at_domain(), "joe%siroe.com");
    }

    #[test]
    fn empty_user_is_refused_and_empty_domain_ignored() {
        assert_eq!(parse("@x.org", &['@'], None), None);
        let id = parse("joe@", &['@'], Some("d.org")).unwrap();
        assert_eq!(id.domain.as_deref(), Some("d.org"));
    }
}
