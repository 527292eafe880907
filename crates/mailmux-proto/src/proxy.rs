//! The PROXY protocol header (HAProxy's specification, versions 1 and 2), read before
//! anything else on a connection from a trusted load balancer: it says who the client really
//! is and which address it connected to.
//!
//! ```text
//! v1: "PROXY TCP4 192.0.2.1 198.51.100.2 51000 143\r\n"   (text, 107 bytes at most)
//!     "PROXY UNKNOWN …\r\n"                                (keep the connection's own addresses)
//! v2: \r\n\r\n\0\r\nQUIT\n  ver|cmd  fam|proto  len(2)  addresses  TLVs
//!     cmd LOCAL (health checks): keep the connection's own addresses
//! ```
//!
//! [`parse`] looks at the bytes received so far: a header needs more bytes, is complete (with
//! its length, so the bytes after it go to the IMAP/POP3 machine), or is invalid. Nothing here
//! allocates per byte, and no header is longer than [`MAX_HEADER`]; TLVs are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest header accepted: v2's fixed part and addresses (IPv6: 16 + 36 bytes) plus a few
/// KiB of TLVs, which HAProxy sends for TLS details; v1 is 107 bytes at most.
pub const MAX_HEADER: usize = 16 + 4096;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's and the load balancer's listening addresses; `None` for `UNKNOWN` (v1)
    /// or `LOCAL` (v2): the connection's own addresses stand.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// Bytes the header took.
    pub length: usize,
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The connection does not start with a PROXY header.
    NotProxy,
    /// It starts like one but breaks the specification.
    Malformed(&'static str),
    /// Longer than [`MAX_HEADER`].
    TooLong,
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::NotProxy => f.write_str("no PROXY header"),
            ProxyError::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            ProxyError::TooLong => f.write_str("PROXY header too long"),
        }
    }
}

/// Reads a header from the start of `input`: `Ok(None)` means more bytes are needed.
pub fn parse(input: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let sig = V2_SIGNATURE.len().min(input.len());
    if input[..sig] == V2_SIGNATURE[..sig] && !input.is_empty() && input[0] == b'\r' {
        return if input.len() < V2_SIGNATURE.len() { Ok(None) } else { parse_v2(input) };
    }
    let prefix = b"PROXY ";
    let n = prefix.len().min(input.len());
    if input[..n] != prefix[..n] {
        return Err(ProxyError::NotProxy);
    }
    parse_v1(input)
}

fn parse_v1(input: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let Some(lf) = input.iter().take(V1_MAX).position(|b| *b == b'\n') else {
        return if input.len() >= V1_MAX { Err(ProxyError::TooLong) } else { Ok(None) };
    };
    let line = input[..lf].strip_suffix(b"\r").ok_or(ProxyError::Malformed("v1 line without CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 line is not ASCII"))?;
    let mut words = line.split(' ');
    let (_proxy, family) = (words.next(), words.next());
    let length = lf + 1;
    match family {
        Some("UNKNOWN") => return Ok(Some(ProxyHeader { addresses: None, length })),
        Some("TCP4" | "TCP6") => {}
        _ => return Err(ProxyError::Malformed("v1 family is not TCP4, TCP6 or UNKNOWN")),
    }
    let v6 = family == Some("TCP6");
    let mut next_ip = || -> Result<IpAddr, ProxyError> {
        let text = words.next().ok_or(ProxyError::Malformed("v1 address missing"))?;
        let ip: IpAddr = text.parse().map_err(|_| ProxyError::Malformed("v1 address"))?;
        if ip.is_ipv6() != v6 {
            return Err(ProxyError::Malformed("v1 address of the wrong family"));
        }
        Ok(ip)
    };
    let (source, destination) = (next_ip()?, next_ip()?);
    let mut next_port = || -> Result<u16, ProxyError> {
        let text = words.next().ok_or(ProxyError::Malformed("v1 port missing"))?;
        // No sign, no leading zeros (the specification's ABNF), nothing but digits.
        if text.is_empty() || (text.len() > 1 && text.starts_with('0')) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProxyError::Malformed("v1 port"));
        }
        text.parse().map_err(|_| ProxyError::Malformed("v1 port"))
    };
    let (source_port, destination_port) = (next_port()?, next_port()?);
    if words.next().is_some() {
        return Err(ProxyError::Malformed("v1 line has extra fields"));
    }
    let addresses = (SocketAddr::new(source, source_port), SocketAddr::new(destination, destination_port));
    Ok(Some(ProxyHeader { addresses: Some(addresses), length }))
}

fn parse_v2(input: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let fixed = 16;
    let Some(head) = input.get(..fixed) else { return Ok(None) };
    let (version, command) = (head[12] >> 4, head[12] & 0x0f);
    if version != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let body = usize::from(u16::from_be_bytes([head[14], head[15]]));
    let length = fixed + body;
    if length > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    let Some(body) = input.get(fixed..length) else { return Ok(None) };
    match command {
        // LOCAL: the load balancer's own connection (a health check).
        0 => return Ok(Some(ProxyHeader { addresses: None, length })),
        1 => {}
        _ => return Err(ProxyError::Malformed("v2 command is not LOCAL or PROXY")),
    }
    let (family, transport) = (head[13] >> 4, head[13] & 0x0f);
    if transport != 1 && family != 0 {
        return Err(ProxyError::Malformed("v2 transport is not TCP"));
    }
    let addresses = match family {
        // AF_UNSPEC: nothing to say about addresses.
        0 => None,
        1 => {
            let a = body.get(..12).ok_or(ProxyError::Malformed("v2 IPv4 addresses cut short"))?;
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((SocketAddr::new(ip(0), port(8)), SocketAddr::new(ip(4), port(10))))
        }
        2 => {
            let a = body.get(..36).ok_or(ProxyError::Malformed("v2 IPv6 addresses cut short"))?;
            let ip = |i: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some((SocketAddr::new(ip(0), port(32)), SocketAddr::new(ip(16), port(34))))
        }
        // AF_UNIX and anything else: no IP addresses to use.
        _ => None,
    };
    Ok(Some(ProxyHeader { addresses, length }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_in_any_chunking() {
        let header = b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 143\r\na LOGIN";
        let whole = parse(header).unwrap().unwrap();
        assert_eq!(whole.addresses, Some((addr("192.0.2.1:51000"), addr("198.51.100.2:143"))));
        assert_eq!(&header[whole.length..], b"a LOGIN");
        for cut in 0..whole.length {
            assert_eq!(parse(&header[..cut]), Ok(None), "{cut} bytes");
        }
        let v6 = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 1 993\r\n").unwrap().unwrap();
        assert_eq!(v6.addresses, Some((addr("[2001:db8::1]:1"), addr("[2001:db8::2]:993"))));
        assert_eq!(parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").unwrap().unwrap().addresses, None);
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 143\n"[..],
            b"PROXY TCP4 192.0.2.1 198.51.100.2 51000\r\n",
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 051000 143\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 70000 143\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        ] {
            assert!(matches!(parse(bad), Err(ProxyError::Malformed(_))), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse(b"a LOGIN joe pw\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"* OK"), Err(ProxyError::NotProxy));
        assert_eq!(parse(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'T'].repeat(20)), Err(ProxyError::TooLong));
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_addresses_local_and_tlvs() {
        let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2];
        body.extend_from_slice(&51000u16.to_be_bytes());
        body.extend_from_slice(&143u16.to_be_bytes());
        body.extend_from_slice(&[0x20, 0, 1, 0x01]); // a TLV, skipped
        let mut header = v2(1, 0x11, &body);
        header.extend_from_slice(b"a LOGIN");
        let parsed = parse(&header).unwrap().unwrap();
        assert_eq!(parsed.addresses, Some((addr("192.0.2.1:51000"), addr("198.51.100.2:143"))));
        assert_eq!(&header[parsed.length..], b"a LOGIN");
        for cut in 0..parsed.length {
            assert_eq!(parse(&header[..cut]), Ok(None), "{cut} bytes");
        }
        let mut body6 = Vec::new();
        body6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        body6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        body6.extend_from_slice(&[0, 1, 0, 2]);
        let parsed = parse(&v2(1, 0x21, &body6)).unwrap().unwrap();
        assert_eq!(parsed.addresses, Some((addr("[2001:db8::1]:1"), addr("[2001:db8::2]:2"))));
        assert_eq!(parse(&v2(0, 0, &[])).unwrap().unwrap().addresses, None, "LOCAL");
    }

    #[test]
    fn v2_refusals() {
        assert!(matches!(parse(&v2(1, 0x11, &[1, 2, 3])), Err(ProxyError::Malformed(_))), "short addresses");
        assert!(matches!(parse(&v2(2, 0x11, &[0; 12])), Err(ProxyError::Malformed(_))), "bad command");
        assert!(matches!(parse(&v2(1, 0x12, &[0; 12])), Err(ProxyError::Malformed(_))), "UDP");
        let mut too_long = v2(1, 0x11, &[]);
        too_long[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&too_long), Err(ProxyError::TooLong));
        let mut v1_version = v2(1, 0x11, &[0; 12]);
        v1_version[12] = 0x11;
        assert!(matches!(parse(&v1_version), Err(ProxyError::Malformed(_))));
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of every header above, and some noise, in every length up to 64.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..64 {
            let mut bytes = Vec::with_capacity(len);
            for i in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let signature = V2_SIGNATURE.get(i).filter(|_| seed.is_multiple_of(3));
                bytes.push(signature.copied().unwrap_or(seed as u8));
            }
            let _ = parse(&bytes);
        }
    }
}
