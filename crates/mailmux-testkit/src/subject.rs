//! Hand-made certificate subjects, for certificate-mapping tests: multi-valued RDNs, repeated
//! attributes, any ASN.1 string type, and values that do not decode.
//!
//! rcgen keeps a subject as one value per attribute type and validates every string, so it
//! cannot write these. [`Ca::client_with_subject`](crate::pki::Ca::client_with_subject) lets
//! rcgen make an ordinary v3 client certificate (extensions, key identifiers, validity), then
//! swaps in the subject built here with [`replace_subject`] and signs the result again with
//! the CA's key, so the TLS handshake accepts it and only the mapping code can object.

/// Attribute type OIDs, as arcs.
pub mod oid {
    /// commonName.
    pub const CN: &[u64] = &[2, 5, 4, 3];
    /// countryName.
    pub const C: &[u64] = &[2, 5, 4, 6];
    /// organizationName.
    pub const O: &[u64] = &[2, 5, 4, 10];
    /// organizationalUnitName.
    pub const OU: &[u64] = &[2, 5, 4, 11];
    /// emailAddress (certmap's `e`).
    pub const E: &[u64] = &[1, 2, 840, 113_549, 1, 9, 1];
    /// userid.
    pub const UID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];
    /// domainComponent.
    pub const DC: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 25];
}

/// ASN.1 universal tags of the string types.
pub mod tag {
    /// UTF8String.
    pub const UTF8: u8 = 12;
    /// PrintableString.
    pub const PRINTABLE: u8 = 19;
    /// TeletexString (T61).
    pub const TELETEX: u8 = 20;
    /// IA5String.
    pub const IA5: u8 = 22;
    /// UniversalString (UTF-32BE).
    pub const UNIVERSAL: u8 = 28;
    /// BMPString (UTF-16BE).
    pub const BMP: u8 = 30;
}

/// One attribute of a subject, exactly as it will be encoded: type, ASN.1 tag, content octets.
#[derive(Debug, Clone)]
pub struct RawAva {
    /// The attribute type.
    pub oid: &'static [u64],
    /// The value's universal tag number.
    pub tag: u8,
    /// The value's content octets, valid for `tag` or not.
    pub content: Vec<u8>,
}

impl RawAva {
    /// A UTF8String value.
    pub fn utf8(oid: &'static [u64], value: &str) -> RawAva {
        RawAva { oid, tag: tag::UTF8, content: value.as_bytes().to_vec() }
    }

    /// An IA5String value (the usual type of `dc` and e-mail addresses).
    pub fn ia5(oid: &'static [u64], value: &str) -> RawAva {
        RawAva { oid, tag: tag::IA5, content: value.as_bytes().to_vec() }
    }

    /// A BMPString value (UTF-16BE).
    pub fn bmp(oid: &'static [u64], value: &str) -> RawAva {
        RawAva { oid, tag: tag::BMP, content: value.encode_utf16().flat_map(u16::to_be_bytes).collect() }
    }

    /// Any tag and content.
    pub fn raw(oid: &'static [u64], tag: u8, content: &[u8]) -> RawAva {
        RawAva { oid, tag, content: content.to_vec() }
    }
}

/// The DER of a Name whose RDNs are `rdns`, in certificate order (least specific first, e.g.
/// `DC=com` before `DC=example` before `UID=user1`). An RDN with several AVAs is multi-valued.
pub fn name_der(rdns: &[Vec<RawAva>]) -> Vec<u8> {
    let mut name = Vec::new();
    for rdn in rdns {
        let mut avas: Vec<Vec<u8>> =
            rdn.iter().map(|a| tlv(0x30, &[tlv(0x06, &oid_content(a.oid)), tlv(a.tag, &a.content)].concat())).collect();
        // DER orders the members of a SET OF by their encodings.
        avas.sort();
        name.extend(tlv(0x31, &avas.concat()));
    }
    tlv(0x30, &name)
}

/// `cert` with its subject replaced by `subject` (a Name's DER) and signed again by `sign`,
/// which must use the algorithm the certificate names.
pub fn replace_subject(cert: &[u8], subject: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (_, cert_content, _) = read_tlv(cert, 0x30);
    let (_, tbs_content, rest) = read_tlv(cert_content, 0x30);
    let (signature_algorithm, _, _) = read_tlv(rest, 0x30);
    // TBSCertificate: [0] version, serialNumber, signature, issuer, validity, subject, …
    let mut fields = Vec::new();
    let mut rest = tbs_content;
    while !rest.is_empty() {
        let tag = rest[0];
        let (whole, _, after) = read_tlv(rest, tag);
        fields.push(whole.to_vec());
        rest = after;
    }
    assert_eq!(fields.first().map(|f| f[0]), Some(0xa0), "a v3 certificate");
    fields[5] = subject.to_vec();
    let tbs = tlv(0x30, &fields.concat());
    let signature = sign(&tbs);
    let bits = tlv(0x03, &[&[0u8][..], &signature].concat());
    tlv(0x30, &[tbs.as_slice(), signature_algorithm, &bits].concat())
}

/// A DER element: tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Splits the element with tag `tag` off the front of `der`: (whole element, content, rest).
fn read_tlv(der: &[u8], tag: u8) -> (&[u8], &[u8], &[u8]) {
    assert_eq!(der.first(), Some(&tag), "DER element with tag {tag:#x}");
    let first = der[1];
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        (der[2..2 + n].iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b)), 2 + n)
    };
    (&der[..header + len], &der[header..header + len], &der[header + len..])
}

/// The content octets of an OBJECT IDENTIFIER.
fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |mut arc: u64| {
        let mut base128 = vec![(arc & 0x7f) as u8];
        arc >>= 7;
        while arc > 0 {
            base128.push(0x80 | (arc & 0x7f) as u8);
            arc >>= 7;
        }
        out.extend(base128.into_iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    arcs[2..].iter().for_each(|&a| push(a));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_openssl() {
        // 2.5.4.3 and 1.2.840.113549.1.9.1 as openssl writes them.
        assert_eq!(oid_content(oid::CN), [0x55, 0x04, 0x03]);
        assert_eq!(oid_content(oid::E), [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        let name = name_der(&[vec![RawAva::utf8(oid::CN, "a")]]);
        assert_eq!(name, [0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a']);
    }
}
