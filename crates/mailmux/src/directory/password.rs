//! `userPassword` values as directories store them (RFC 2307 `{SCHEME}` prefixes, as
//! OpenLDAP writes them), checked without I/O: the LDIF directory's PreAuth, and the
//! cleartext that CRAM-MD5 and APOP need.
//!
//! | stored as | checked |
//! | --- | --- |
//! | no prefix, `{CLEARTEXT}` | byte for byte (constant time) |
//! | `{SHA}`, `{SSHA}`, `{SHA256}`, `{SSHA256}`, `{SHA512}`, `{SSHA512}`, `{MD5}`, `{SMD5}` | digest of password + salt, base64 |
//! | anything else (`{CRYPT}`, `{ARGON2}`, …) | not checked: [`Check::UnknownScheme`] |

use base64::Engine;
use md5::Digest;
use ring::digest;
use subtle::ConstantTimeEq;

/// What a stored value says about a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The password is the one stored.
    Match,
    /// It is not.
    Mismatch,
    /// The value is hashed in a way mailmux does not compute; the directory must bind.
    UnknownScheme,
}

/// Checks `password` against one stored `userPassword` value.
pub fn check(stored: &str, password: &[u8]) -> Check {
    let Some((scheme, rest)) = split_scheme(stored) else {
        return equal(stored.as_bytes(), password);
    };
    let algorithm = match scheme.to_ascii_uppercase().as_str() {
        "CLEARTEXT" => return equal(rest.as_bytes(), password),
        "SHA" | "SSHA" => Algorithm::Ring(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        "SHA256" | "SSHA256" => Algorithm::Ring(&digest::SHA256),
        "SHA512" | "SSHA512" => Algorithm::Ring(&digest::SHA512),
        "MD5" | "SMD5" => Algorithm::Md5,
        _ => return Check::UnknownScheme,
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return Check::Mismatch;
    };
    let length = algorithm.output_len();
    if decoded.len() < length {
        return Check::Mismatch;
    }
    // Salted schemes append the salt to the digest; unsalted ones have none.
    let (expected, salt) = decoded.split_at(length);
    equal(expected, &algorithm.digest(password, salt))
}

/// The cleartext of a stored value, when it is stored in clear (CRAM-MD5 and APOP need it).
pub fn cleartext(stored: &str) -> Option<&str> {
    match split_scheme(stored) {
        None => Some(stored),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("CLEARTEXT") => Some(rest),
        Some(_) => None,
    }
}

fn split_scheme(stored: &str) -> Option<(&str, &str)> {
    let rest = stored.strip_prefix('{')?;
    let (scheme, value) = rest.split_once('}')?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        .then_some((scheme, value))
}

fn equal(stored: &[u8], given: &[u8]) -> Check {
    if stored.len() == given.len() && bool::from(stored.ct_eq(given)) { Check::Match } else { Check::Mismatch }
}

enum Algorithm {
    Ring(&'static digest::Algorithm),
    Md5,
}

impl Algorithm {
    fn output_len(&self) -> usize {
        match self {
            Algorithm::Ring(a) => a.output_len(),
            Algorithm::Md5 => 16,
        }
    }

    fn digest(&self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Ring(a) => {
                let mut context = digest::Context::new(a);
                context.update(password);
                context.update(salt);
                context.finish().as_ref().to_vec()
            }
            Algorithm::Md5 => {
                let mut md5 = md5::Md5::new();
                md5.update(password);
                md5.update(salt);
                md5.finalize().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openldap_slappasswd_values_check() {
        // Made with `slappasswd -h {SCHEME} -s secret` (OpenLDAP 2.5).
        let cases = [
            "{SSHA}pZlmKi0Rfqj+a1uJll+ufwcdqXU5Sh3r",
            "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
            "{SMD5}DvFu8hOS9yEZ2DY1ThXimiORSxY=",
            "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
            "secret",
            "{CLEARTEXT}secret",
        ];
        for stored in cases {
            assert_eq!(check(stored, b"secret"), Check::Match, "{stored}");
            assert_eq!(check(stored, b"Secret"), Check::Mismatch, "{stored}");
            assert_eq!(check(stored, b""), Check::Mismatch, "{stored}");
        }
    }

    #[test]
    fn sha2_schemes_salted_and_not() {
        let salt = b"NaCl4567";
        let mut salted = digest::digest(&digest::SHA256, &[b"pw".as_slice(), salt].concat()).as_ref().to_vec();
        salted.extend_from_slice(salt);
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        let stored = format!("{{SSHA256}}{}", b64(&salted));
        assert_eq!(check(&stored, b"pw"), Check::Match);
        assert_eq!(check(&stored, b"px"), Check::Mismatch);
        let plain = format!("{{SHA512}}{}", b64(digest::digest(&digest::SHA512, b"pw").as_ref()));
        assert_eq!(check(&plain, b"pw"), Check::Match);
    }

    #[test]
    fn unknown_schemes_and_broken_values_never_match() {
        assert_eq!(check("{CRYPT}$6$abc$def", b"secret"), Check::UnknownScheme);
        assert_eq!(check("{ARGON2}$argon2id$v=19$m=65536", b"x"), Check::UnknownScheme);
        assert_eq!(check("{SSHA}not base64!", b"secret"), Check::Mismatch);
        assert_eq!(check("{SSHA}AAAA", b"secret"), Check::Mismatch, "shorter than a digest");
        // A brace that is not a scheme is part of a cleartext password.
        assert_eq!(check("{not a scheme", b"{not a scheme"), Check::Match);
    }

    #[test]
    fn cleartext_only_for_values_stored_in_clear() {
        assert_eq!(cleartext("secret"), Some("secret"));
        assert_eq!(cleartext("{cleartext}secret"), Some("secret"));
        assert_eq!(cleartext("{SSHA}Y2xhOZq8Bxys6bZ7ccL7tl59TB5YfBD0"), None);
    }
}
