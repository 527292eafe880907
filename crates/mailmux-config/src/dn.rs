//! Distinguished names as structures, not strings (RFC 4514, RFC 5280 §4.1.2.4).
//!
//! A [`Dn`] is a sequence of RDNs, **most specific first** (the LDAP string order; a
//! certificate stores the reverse), and each RDN a non-empty set of attribute type and value
//! pairs ([`Ava`]). Keeping that shape is the point: a multi-valued RDN (`uid=a+ou=b`) stays one
//! RDN, and a value holding `,` or `=` stays one value, so neither can be mistaken for more
//! components.
//!
//! * Attribute types are held in one canonical form: the lower-case short name when mailmux
//!   knows the type ([`KNOWN_ATTRIBUTES`]; `e` for emailAddress, as certmap.conf writes it),
//!   otherwise the dotted OID. `CN`, `commonName`, `OID.2.5.4.3` and `2.5.4.3` are all `cn`.
//! * Values are text. Certificates carry them as ASN.1 strings, decoded by [`decode_string`];
//!   a value that is not a string type, is badly encoded, or holds a control character is an
//!   error, never skipped or replaced.
//! * [`Dn::parse`] reads the RFC 4514 string form, leniently in the ways older MMP files need:
//!   spaces around `,` `+` `=` are insignificant, `;` separates RDNs like `,` (RFC 2253 §4), and
//!   a value may be `"quoted"` (RFC 1779). `\,` and the other specials, and `\XX` hex pairs
//!   (UTF-8 bytes), are honoured; `#hex` values are the BER of an ASN.1 string.
//! * [`Dn`]'s `Display` writes RFC 4514: RDNs joined by `,`, a multi-valued RDN by `+`, values
//!   escaped (specials with `\`, control characters as `\XX`). A type without a short name is
//!   written as its dotted OID followed by the text value, not the `#hex` BER RFC 4514 §2.4
//!   asks for: certmap.conf never names such types, and directory servers parse both.
//! * [`Dn::matches`] is how a certmap.conf issuer line is compared with a certificate's
//!   issuer, as the MMP's certmap library did (it normalised both DNs and compared them with
//!   `strcasecmp`): same number of RDNs, each RDN the same set of AVAs, types equal, values
//!   equal ignoring ASCII case. Insignificant spaces are already gone after parsing; spaces
//!   inside a value count.

use std::fmt;

/// The attribute types mailmux knows by name: `(OID, canonical name, other names)`.
/// These are the subject components certmap.conf may name in `DNComps` and `FilterComps`.
pub const KNOWN_ATTRIBUTES: &[(&str, &str, &[&str])] = &[
    ("2.5.4.3", "cn", &["commonname"]),
    ("2.5.4.5", "serialnumber", &[]),
    ("2.5.4.6", "c", &["countryname"]),
    ("2.5.4.7", "l", &["localityname"]),
    ("2.5.4.8", "st", &["stateorprovincename"]),
    ("2.5.4.9", "street", &["streetaddress"]),
    ("2.5.4.10", "o", &["organizationname"]),
    ("2.5.4.11", "ou", &["organizationalunitname"]),
    ("1.2.840.113549.1.9.1", "e", &["email", "emailaddress"]),
    ("0.9.2342.19200300.100.1.1", "uid", &["userid"]),
    ("0.9.2342.19200300.100.1.25", "dc", &["domaincomponent"]),
];

/// One attribute type and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// Canonical type: a short name from [`KNOWN_ATTRIBUTES`], another lower-case name, or a
    /// dotted OID.
    pub attr: String,
    /// The decoded value.
    pub value: String,
}

/// A distinguished name: RDNs most specific first, each a non-empty set of [`Ava`]s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn {
    /// The RDNs.
    pub rdns: Vec<Vec<Ava>>,
}

/// Why a DN or one of its values could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The value's ASN.1 type is not one of the string types.
    #[error("value is not an X.509 string type (ASN.1 tag {0})")]
    NotAString(u32),
    /// The bytes do not decode in the value's string type.
    #[error("invalid {0}")]
    BadEncoding(&'static str),
    /// A decoded value holds a control character.
    #[error("control character U+{0:04X} in value")]
    ControlCharacter(u32),
    /// The string form does not parse.
    #[error("at character {at}: {what}")]
    Syntax {
        /// Byte offset into the string, from 1.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
}

/// The canonical name of the attribute type with dotted OID `oid`.
pub fn attr_from_oid(oid: &str) -> String {
    KNOWN_ATTRIBUTES.iter().find(|(o, _, _)| *o == oid).map_or(oid, |(_, name, _)| name).to_owned()
}

/// The canonical form of an attribute type as written in a DN string or certmap.conf
/// (`CN`, `emailAddress`, `OID.2.5.4.3`, `2.5.4.3`), or `None` when it is neither an RFC 4512
/// descriptor nor a numeric OID.
pub fn canonical_attr(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("oid.").unwrap_or(&lower);
    let first = bare.chars().next()?;
    if first.is_ascii_digit() {
        let numeric = bare.split('.').all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
        return numeric.then(|| attr_from_oid(bare));
    }
    if !first.is_ascii_alphabetic() || !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let known = KNOWN_ATTRIBUTES.iter().find(|(_, n, aliases)| *n == bare || aliases.contains(&bare));
    Some(known.map_or(bare, |(_, n, _)| n).to_owned())
}

/// Whether `attr` (canonical) is one mailmux reads from certificates by name.
pub fn is_known(attr: &str) -> bool {
    KNOWN_ATTRIBUTES.iter().any(|(_, n, _)| *n == attr)
}

// Universal ASN.1 tags of the string types a DN value may have (X.520 DirectoryString and the
// IA5String / PrintableString of emailAddress, dc, c, serialNumber).
const UTF8_STRING: u32 = 12;
const NUMERIC_STRING: u32 = 18;
const PRINTABLE_STRING: u32 = 19;
const TELETEX_STRING: u32 = 20;
const IA5_STRING: u32 = 22;
const VISIBLE_STRING: u32 = 26;
const UNIVERSAL_STRING: u32 = 28;
const BMP_STRING: u32 = 30;

/// Decodes the content octets of a universal, primitive ASN.1 string with tag number `tag`.
///
/// TeletexString is read as Latin-1 (what every deployed CA meant by it); BMPString as
/// UTF-16BE; UniversalString as UTF-32BE. The ASCII types accept any ASCII byte: CAs put `@`
/// and `*` in PrintableStrings, and refusing those helps nobody. Control characters are refused
/// in every type: no directory value legitimately holds one, and a NUL is the classic way to
/// make two readers disagree about a name.
pub fn decode_string(tag: u32, content: &[u8]) -> Result<String, DnError> {
    let text = match tag {
        UTF8_STRING => String::from_utf8(content.to_vec()).map_err(|_| DnError::BadEncoding("UTF8String"))?,
        NUMERIC_STRING | PRINTABLE_STRING | IA5_STRING | VISIBLE_STRING => {
            if !content.is_ascii() {
                return Err(DnError::BadEncoding("ASCII string (byte above 0x7F)"));
            }
            content.iter().map(|&b| char::from(b)).collect()
        }
        TELETEX_STRING => content.iter().map(|&b| char::from(b)).collect(),
        BMP_STRING => {
            let (units, rest) = content.as_chunks::<2>();
            if !rest.is_empty() {
                return Err(DnError::BadEncoding("BMPString (odd length)"));
            }
            char::decode_utf16(units.iter().map(|&u| u16::from_be_bytes(u)))
                .collect::<Result<String, _>>()
                .map_err(|_| DnError::BadEncoding("BMPString (unpaired surrogate)"))?
        }
        UNIVERSAL_STRING => {
            let (units, rest) = content.as_chunks::<4>();
            if !rest.is_empty() {
                return Err(DnError::BadEncoding("UniversalString (length not a multiple of 4)"));
            }
            units
                .iter()
                .map(|&u| char::from_u32(u32::from_be_bytes(u)))
                .collect::<Option<String>>()
                .ok_or(DnError::BadEncoding("UniversalString (not a Unicode scalar value)"))?
        }
        other => return Err(DnError::NotAString(other)),
    };
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(DnError::ControlCharacter(u32::from(c))),
        None => Ok(text),
    }
}

/// Decodes a whole BER string TLV (the `#hex` form of a value): one-byte universal primitive
/// tag, definite length that fills the rest.
fn decode_ber_string(ber: &[u8]) -> Result<String, DnError> {
    let malformed = || DnError::BadEncoding("BER value");
    let (&tag, rest) = ber.split_first().ok_or_else(malformed)?;
    // Class universal (bits 8-7 zero), primitive (bit 6 zero), low tag number.
    if tag & 0xe0 != 0 || tag & 0x1f == 0x1f {
        return Err(DnError::NotAString(u32::from(tag)));
    }
    let (&first, rest) = rest.split_first().ok_or_else(malformed)?;
    let (len, content) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let Some((len_bytes, content)) = rest.split_at_checked(n).filter(|_| (1..=4).contains(&n)) else {
            return Err(malformed());
        };
        (len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), content)
    };
    if content.len() != len {
        return Err(malformed());
    }
    decode_string(u32::from(tag), content)
}

impl Dn {
    /// Whether the DN has no RDN at all.
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }

    /// The certmap.conf issuer comparison (see the module documentation); `other` may also be
    /// written in the reverse order, as certmap.conf files in the wild are.
    pub fn matches(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len()
            && (self.rdns.iter().zip(other.rdns.iter()).all(|(a, b)| rdn_matches(a, b))
                || self.rdns.iter().zip(other.rdns.iter().rev()).all(|(a, b)| rdn_matches(a, b)))
    }

    /// Parses the RFC 4514 string form (see the module documentation for the leniencies).
    /// The empty string is the empty DN.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        let mut c = Cursor { s: text.as_bytes(), i: 0 };
        let mut rdns = Vec::new();
        c.skip_spaces();
        if c.peek().is_none() {
            return Ok(Dn { rdns });
        }
        loop {
            let mut rdn = Vec::new();
            loop {
                c.skip_spaces();
                let attr = c.attr_type()?;
                c.skip_spaces();
                if c.next() != Some(b'=') {
                    return Err(c.error("expected '=' after the attribute type"));
                }
                c.skip_spaces();
                let value = c.value()?;
                rdn.push(Ava { attr, value });
                if c.peek() == Some(b'+') {
                    c.i += 1;
                } else {
                    break;
                }
            }
            rdns.push(rdn);
            match c.next() {
                None => return Ok(Dn { rdns }),
                Some(b',' | b';') => {}
                Some(_) => return Err(c.error("expected ',' between RDNs")),
            }
        }
    }
}

/// Two RDNs are equal when each AVA of one matches a different AVA of the other.
fn rdn_matches(a: &[Ava], b: &[Ava]) -> bool {
    let mut used = vec![false; b.len()];
    a.len() == b.len()
        && a.iter().all(|x| {
            let found = b
                .iter()
                .zip(used.iter_mut())
                .find(|(y, u)| !**u && x.attr == y.attr && x.value.eq_ignore_ascii_case(&y.value));
            found.map(|(_, u)| *u = true).is_some()
        })
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        self.i += usize::from(b.is_some());
        b
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn error(&self, what: &'static str) -> DnError {
        DnError::Syntax { at: self.i.max(1), what }
    }

    fn attr_type(&mut self) -> Result<String, DnError> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            self.i += 1;
        }
        let name = std::str::from_utf8(self.s.get(start..self.i).unwrap_or_default()).unwrap_or_default();
        if name.is_empty() {
            return Err(self.error("expected an attribute type"));
        }
        canonical_attr(name).ok_or(DnError::Syntax { at: start + 1, what: "not an attribute type" })
    }

    /// A value up to the next unescaped `,` `;` `+` or the end; trailing unescaped spaces are
    /// not part of it.
    fn value(&mut self) -> Result<String, DnError> {
        match self.peek() {
            Some(b'#') => {
                self.i += 1;
                let mut ber = Vec::new();
                while let Some(h) = self.peek().and_then(hex_digit) {
                    self.i += 1;
                    let l = self.next().and_then(hex_digit).ok_or_else(|| self.error("odd number of hex digits"))?;
                    ber.push(h << 4 | l);
                }
                self.skip_spaces();
                self.expect_separator()?;
                decode_ber_string(&ber)
            }
            Some(b'"') => {
                self.i += 1;
                let mut bytes = Vec::new();
                loop {
                    match self.next() {
                        None => return Err(self.error("unterminated quoted value")),
                        Some(b'"') => break,
                        Some(b'\\') => bytes.push(self.escaped()?),
                        Some(b) => bytes.push(b),
                    }
                }
                self.skip_spaces();
                self.expect_separator()?;
                text(bytes)
            }
            _ => {
                let mut bytes = Vec::new();
                // Length up to the last character that is not an unescaped space.
                let mut significant = 0;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b';' | b'+') {
                        break;
                    }
                    self.i += 1;
                    if b == b'\\' {
                        bytes.push(self.escaped()?);
                        significant = bytes.len();
                    } else {
                        bytes.push(b);
                        if b != b' ' {
                            significant = bytes.len();
                        }
                    }
                }
                bytes.truncate(significant);
                text(bytes)
            }
        }
    }

    /// After `\`: a special character, or two hex digits.
    fn escaped(&mut self) -> Result<u8, DnError> {
        match self.next() {
            Some(b @ (b',' | b'=' | b'+' | b'<' | b'>' | b'#' | b';' | b'\\' | b'"' | b' ')) => Ok(b),
            Some(h) => {
                let h = hex_digit(h)
                    .ok_or_else(|| self.error("'\\' must be followed by a special character or two hex digits"))?;
                let l =
                    self.next().and_then(hex_digit).ok_or_else(|| self.error("'\\' followed by only one hex digit"))?;
                Ok(h << 4 | l)
            }
            None => Err(self.error("'\\' at the end")),
        }
    }

    fn expect_separator(&self) -> Result<(), DnError> {
        match self.peek() {
            None | Some(b',' | b';' | b'+') => Ok(()),
            Some(_) => Err(self.error("unexpected character after the value")),
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// String-form values are UTF-8 (RFC 4514 §3), escapes included; the same rule against
/// control characters applies as for certificate values.
fn text(bytes: Vec<u8>) -> Result<String, DnError> {
    let text = String::from_utf8(bytes).map_err(|_| DnError::BadEncoding("UTF-8 in the value"))?;
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(DnError::ControlCharacter(u32::from(c))),
        None => Ok(text),
    }
}

impl fmt::Display for Ava {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.attr)?;
        let last = self.value.chars().count().saturating_sub(1);
        for (i, c) in self.value.chars().enumerate() {
            match c {
                ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => write!(f, "\\{c}")?,
                '#' if i == 0 => f.write_str("\\#")?,
                ' ' if i == 0 || i == last => f.write_str("\\ ")?,
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        write!(f, "\\{b:02x}")?;
                    }
                }
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, ava) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{ava}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ava(attr: &str, value: &str) -> Ava {
        Ava { attr: attr.into(), value: value.into() }
    }

    #[test]
    fn parses_escapes_spaces_and_multi_valued_rdns() {
        let dn = Dn::parse(" CN = a\\,uid=user2 , OU=people+UID=x;DC=example").expect("parses");
        assert_eq!(
            dn.rdns,
            vec![
                vec![ava("cn", "a,uid=user2")],
                vec![ava("ou", "people"), ava("uid", "x")],
                vec![ava("dc", "example")]
            ]
        );
        assert_eq!(dn.to_string(), "cn=a\\,uid\\=user2,ou=people+uid=x,dc=example");
        let dn = Dn::parse("o=Siroe\\2C Inc.\\20,OID.2.5.4.6=\"U,S\", 2.5.4.3=#0c03414243").expect("parses");
        assert_eq!(dn.rdns, vec![vec![ava("o", "Siroe, Inc. ")], vec![ava("c", "U,S")], vec![ava("cn", "ABC")]]);
        assert_eq!(Dn::parse("cn=caf\\c3\\a9").expect("utf-8 pairs").rdns, vec![vec![ava("cn", "café")]]);
        assert_eq!(Dn::parse("  ").expect("empty"), Dn::default());
        assert_eq!(Dn::parse("cn=").expect("empty value").rdns, vec![vec![ava("cn", "")]]);
    }

    #[test]
    fn rejects_what_is_not_a_dn() {
        for bad in [
            "cn",
            "=x",
            "cn=a,",
            "cn=a,,o=b",
            "c n=a",
            "cn=a\\",
            "cn=a\\x",
            "cn=a\\4",
            "cn=\"a",
            "cn=\"a\"b",
            "cn=#0c02",
            "cn=#0c0141z",
            "cn=#020101",
            "cn=\\ff",
            "cn=a\\0ab",
            "1..2=x",
            "c_n=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn display_round_trips_hostile_values() {
        for value in ["a,b+c", " x ", " ", "#x", "a\\b", "<>;\"=", "ÿ and 中文"] {
            let dn = Dn { rdns: vec![vec![ava("cn", value)], vec![ava("2.5.4.4", value)]] };
            assert_eq!(Dn::parse(&dn.to_string()).expect("re-parses"), dn, "{dn}");
        }
        assert_eq!(Dn { rdns: vec![vec![ava("cn", " x ")]] }.to_string(), "cn=\\ x\\ ");
        // Every value of up to three characters from the troublesome ones.
        let chars = ['a', ' ', '#', ',', '+', '\\', '"', '=', ';', '<', '>', 'é', '\u{a0}'];
        let (mut values, mut last) = (vec![String::new()], vec![String::new()]);
        for _ in 0..3 {
            last = last.iter().flat_map(|v| chars.iter().map(move |c| format!("{v}{c}"))).collect();
            values.extend(last.iter().cloned());
        }
        for value in values {
            let dn = Dn { rdns: vec![vec![ava("cn", &value), ava("ou", &value)], vec![ava("dc", &value)]] };
            assert_eq!(Dn::parse(&dn.to_string()).as_ref(), Ok(&dn), "{value:?} written as {dn}");
        }
    }

    #[test]
    fn decodes_every_string_type_and_refuses_the_rest() {
        assert_eq!(decode_string(UTF8_STRING, "é".as_bytes()), Ok("é".into()));
        assert_eq!(decode_string(PRINTABLE_STRING, b"a*b@c"), Ok("a*b@c".into()));
        assert_eq!(decode_string(TELETEX_STRING, &[0x63, 0x61, 0x66, 0xe9]), Ok("café".into()));
        assert_eq!(decode_string(BMP_STRING, &[0x00, 0x41, 0x4e, 0x2d]), Ok("A中".into()));
        assert_eq!(decode_string(BMP_STRING, &[0xd8, 0x3d, 0xde, 0x00]), Ok("😀".into()));
        assert_eq!(decode_string(UNIVERSAL_STRING, &[0, 0, 0, 0x41, 0, 1, 0xf6, 0]), Ok("A😀".into()));
        assert_eq!(decode_string(UTF8_STRING, &[0x61, 0xff]), Err(DnError::BadEncoding("UTF8String")));
        assert!(decode_string(IA5_STRING, &[0xe9]).is_err());
        assert!(decode_string(BMP_STRING, &[0x00, 0x41, 0x00]).is_err());
        assert!(decode_string(BMP_STRING, &[0xd8, 0x00]).is_err());
        assert!(decode_string(UNIVERSAL_STRING, &[0, 0x11, 0, 0]).is_err());
        assert!(decode_string(UNIVERSAL_STRING, &[0, 0, 0x41]).is_err());
        assert_eq!(decode_string(4, b"octets"), Err(DnError::NotAString(4)));
        assert_eq!(decode_string(UTF8_STRING, b"a\0b"), Err(DnError::ControlCharacter(0)));
        assert_eq!(decode_string(TELETEX_STRING, &[0x85]), Err(DnError::ControlCharacter(0x85)));
    }

    #[test]
    fn matching_is_structural_case_insensitive_and_either_order() {
        let dn = |s: &str| Dn::parse(s).expect("parses");
        let issuer = dn("cn=Siroe\\, Inc. CA,o=siroe.com,c=US");
        assert!(issuer.matches(&dn("CN = siroe\\2c inc. ca , O=Siroe.com, C=us")));
        assert!(issuer.matches(&dn("c=US,o=siroe.com,cn=\"Siroe, Inc. CA\"")));
        // The escaped comma is one value, not two RDNs.
        assert!(!issuer.matches(&dn("cn=Siroe,cn=Inc. CA,o=siroe.com,c=US")));
        assert!(Dn::parse("cn=Siroe, Inc. CA,o=siroe.com").is_err(), "an unescaped comma splits");
        assert!(!issuer.matches(&dn("cn=Siroe\\, Inc. CA,o=siroe.com")));
        assert!(!issuer.matches(&dn("cn=Siroe\\,  Inc. CA,o=siroe.com,c=US")), "inner spaces count");
        assert!(dn("cn=a+o=b,c=x").matches(&dn("o=B+cn=A,c=x")));
        assert!(!dn("cn=a+o=b,c=x").matches(&dn("cn=a,o=b,c=x")));
        assert!(!dn("cn=a+cn=a").matches(&dn("cn=a+cn=b")));
    }

    #[test]
    fn attribute_names() {
        assert_eq!(canonical_attr("emailAddress").as_deref(), Some("e"));
        assert_eq!(canonical_attr("OID.0.9.2342.19200300.100.1.1").as_deref(), Some("uid"));
        assert_eq!(canonical_attr("2.5.4.4").as_deref(), Some("2.5.4.4"));
        assert_eq!(canonical_attr("Title").as_deref(), Some("title"));
        assert_eq!(canonical_attr("x_y"), None);
        assert!(is_known("dc") && !is_known("title"));
    }
}
