//! The PROXY protocol header on a connection from a trusted load balancer
//! (`ProxyProtocolFrom`), read before anything else, TLS included.
//!
//! The header is read without reading past it — whatever follows (a TLS ClientHello, a
//! pipelined command) stays in the socket for the TLS handshake or the front machine: 15
//! bytes first (the shortest header, `PROXY UNKNOWN\r\n`), then, for version 2, the rest of
//! its fixed part and its announced length; for version 1, byte by byte up to its LF (the
//! text form is 107 bytes at most and HAProxy's recommended form is version 2). A peer whose
//! first six bytes cannot begin a header is refused at once.

use std::net::SocketAddr;

use mailmux_proto::proxy::{self, ProxyError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The shortest header of either version.
const SHORTEST: usize = 15;

/// Reads the header; the client's and the local address it gives (`None`: keep the
/// connection's own, for `LOCAL` health checks and `UNKNOWN`).
pub async fn read(tcp: &mut TcpStream, deadline: Instant) -> Result<Option<(SocketAddr, SocketAddr)>, String> {
    match tokio::time::timeout_at(deadline, read_header(tcp)).await {
        Ok(result) => result,
        Err(_) => Err("no PROXY header in time".into()),
    }
}

async fn read_header(tcp: &mut TcpStream) -> Result<Option<(SocketAddr, SocketAddr)>, String> {
    let failed = |e: std::io::Error| format!("reading the PROXY header: {e}");
    // Six bytes tell a header ("PROXY ", or the start of version 2's signature) from a peer
    // that sent something else, which is refused at once rather than waited for.
    let mut buf = vec![0u8; 6];
    tcp.read_exact(&mut buf).await.map_err(failed)?;
    if let Err(e) = proxy::parse(&buf) {
        return Err(e.to_string());
    }
    buf.resize(SHORTEST, 0);
    tcp.read_exact(&mut buf[6..]).await.map_err(failed)?;
    loop {
        match proxy::parse(&buf) {
            Ok(Some(header)) => return Ok(header.addresses),
            Err(e @ (ProxyError::NotProxy | ProxyError::Malformed(_) | ProxyError::TooLong)) => {
                return Err(e.to_string());
            }
            Ok(None) => {}
        }
        // How much more is certainly part of the header: version 2 says its length once its
        // fixed 16 bytes are in; version 1 is read to its LF one byte at a time.
        let more = if buf.starts_with(b"\r\n") && buf.len() >= 16 {
            16 + usize::from(u16::from_be_bytes([buf[14], buf[15]])) - buf.len()
        } else {
            1
        };
        if buf.len() + more > proxy::MAX_HEADER {
            return Err(ProxyError::TooLong.to_string());
        }
        let start = buf.len();
        buf.resize(start + more, 0);
        tcp.read_exact(&mut buf[start..]).await.map_err(|e| format!("reading the PROXY header: {e}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn reads_the_header_and_nothing_after_it() {
        for header in [b"PROXY TCP4 192.0.2.1 198.51.100.2 51000 143\r\n".to_vec(), {
            let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x10".to_vec();
            v2.extend_from_slice(&[192, 0, 2, 1, 198, 51, 100, 2, 0xc7, 0x38, 0, 143, 0x03, 0, 1, 9]);
            v2
        }] {
            let (mut client, mut server) = pair().await;
            // The header and the first bytes of the session in one write.
            client.write_all(&[header.as_slice(), b"\x16\x03\x01 hello"].concat()).await.unwrap();
            let deadline = Instant::now() + std::time::Duration::from_secs(2);
            let addresses = read(&mut server, deadline).await.unwrap();
            assert_eq!(addresses, Some(("192.0.2.1:51000".parse().unwrap(), "198.51.100.2:143".parse().unwrap())));
            let mut rest = [0u8; 9];
            server.read_exact(&mut rest).await.unwrap();
            assert_eq!(&rest, b"\x16\x03\x01 hello");
        }
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_header_and_waits_no_longer_than_told() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"a LOGIN joe secret\r\n").await.unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        assert!(read(&mut server, deadline).await.is_err());
        let (_client, mut server) = pair().await;
        let deadline = Instant::now() + std::time::Duration::from_millis(100);
        assert_eq!(read(&mut server, deadline).await, Err("no PROXY header in time".into()));
    }
}
