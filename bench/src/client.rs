//! The load generator's client: one IMAP or POP3 connection, plain or implicit TLS, whose
//! failures are errors to count rather than panics. Every read has a timeout and every line
//! a length limit, so a stuck or babbling server ends the connection instead of the run.

use std::io::{Error, ErrorKind, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one read may take before the connection counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest line accepted from a server.
const MAX_LINE: usize = 64 * 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A TLS client trusting the lab CA, with session resumption off: every handshake of the
/// benchmark is a full one, whatever each server does with tickets.
pub fn tls_connector(ca: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read the lab CA") {
        roots.add(cert.expect("CA PEM")).expect("add the lab CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One client connection.
pub struct Conn {
    stream: BufReader<Box<dyn Stream>>,
    line: Vec<u8>,
    /// The TLS cipher suite and key exchange, when over TLS (`TLS13_AES_256_GCM_SHA384 X25519`).
    pub tls: Option<String>,
}

fn err(what: String) -> Error {
    Error::other(what)
}

async fn timed<T>(what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(READ_TIMEOUT, f)
        .await
        .map_err(|_| Error::new(ErrorKind::TimedOut, format!("{what}: timed out")))?
}

impl Conn {
    /// Connects in plain text.
    pub async fn plain(addr: SocketAddr) -> Result<Conn> {
        let tcp = timed("connect", TcpStream::connect(addr)).await?;
        tcp.set_nodelay(true)?;
        Ok(Conn { stream: BufReader::with_capacity(64 * 1024, Box::new(tcp)), line: Vec::new(), tls: None })
    }

    /// Connects with TLS from the first byte (993/995 style).
    pub async fn tls(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Result<Conn> {
        let tcp = timed("connect", TcpStream::connect(addr)).await?;
        tcp.set_nodelay(true)?;
        let tls = timed("TLS handshake", connector.connect(ServerName::from(addr.ip()), tcp)).await?;
        let (_, session) = tls.get_ref();
        let suite = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
        let group = session.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name())).unwrap_or_default();
        Ok(Conn {
            stream: BufReader::with_capacity(64 * 1024, Box::new(tls)),
            line: Vec::new(),
            tls: Some(format!("{suite} {group}")),
        })
    }

    /// Sends one command line (CRLF added) and flushes it.
    pub async fn send(&mut self, line: &str) -> Result<()> {
        let stream = self.stream.get_mut();
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        stream.write_all(&bytes).await?;
        stream.flush().await
    }

    /// The next line, without its CRLF.
    pub async fn line(&mut self) -> Result<&str> {
        self.line.clear();
        let (stream, line) = (&mut self.stream, &mut self.line);
        let n = timed("read", async {
            let mut limited = stream.take(MAX_LINE as u64);
            limited.read_until(b'\n', line).await
        })
        .await?;
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "connection closed"));
        }
        if !self.line.ends_with(b"\n") {
            return Err(err(format!("a line longer than {MAX_LINE} bytes")));
        }
        let text = std::str::from_utf8(&self.line).map_err(|_| err("a line that is not UTF-8".into()))?;
        Ok(text.trim_end_matches(['\r', '\n']))
    }

    /// The next line, which must start with `prefix`.
    pub async fn expect(&mut self, prefix: &str) -> Result<()> {
        let line = self.line().await?;
        if line.starts_with(prefix) { Ok(()) } else { Err(err(format!("expected {prefix:?}, got {line:?}"))) }
    }

    /// Reads lines until the tagged answer of `tag`, which must be `OK`.
    pub async fn tagged_ok(&mut self, tag: &str) -> Result<()> {
        loop {
            let line = self.line().await?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                return if rest.starts_with("OK") { Ok(()) } else { Err(err(format!("{tag}: {line:?}"))) };
            }
        }
    }

    /// Reads until the server closes the connection (a few lines at most).
    pub async fn closed(&mut self) -> Result<()> {
        for _ in 0..16 {
            match self.line().await {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Err(err("the server did not close the connection".into()))
    }

    /// Reads and discards exactly `len` bytes (an IMAP literal) without copying them out of
    /// the read buffer.
    pub async fn skip(&mut self, len: usize) -> Result<()> {
        let mut left = len;
        while left > 0 {
            let stream = &mut self.stream;
            let available = timed("read", async { Ok(stream.fill_buf().await?.len()) }).await?;
            if available == 0 {
                return Err(err(format!("connection closed {left} bytes before the end of a literal")));
            }
            let n = available.min(left);
            self.stream.consume(n);
            left -= n;
        }
        Ok(())
    }
}

/// IMAP: greeting, `LOGIN`, then `SELECT INBOX` if `select`; the connection stays open.
pub async fn imap_login(conn: &mut Conn, uid: &str, password: &str, select: bool) -> Result<()> {
    conn.expect("* OK").await?;
    conn.send(&format!("a LOGIN {uid} {password}")).await?;
    conn.tagged_ok("a").await?;
    if select {
        conn.send("s SELECT INBOX").await?;
        conn.tagged_ok("s").await?;
    }
    Ok(())
}

/// IMAP: `LOGOUT`, then wait for the server to close (so the server side holds TIME_WAIT,
/// as with real clients).
pub async fn imap_logout(conn: &mut Conn) -> Result<()> {
    conn.send("z LOGOUT").await?;
    conn.tagged_ok("z").await?;
    conn.closed().await
}

/// POP3: greeting, `USER`, `PASS`, `QUIT`, close.
pub async fn pop3_session(conn: &mut Conn, uid: &str, password: &str) -> Result<()> {
    conn.expect("+OK").await?;
    conn.send(&format!("USER {uid}")).await?;
    conn.expect("+OK").await?;
    conn.send(&format!("PASS {password}")).await?;
    conn.expect("+OK").await?;
    conn.send("QUIT").await?;
    conn.expect("+OK").await?;
    conn.closed().await
}

/// IMAP: the `Subject:` header field of message `n` (at most 4 KiB), as the server sends it.
pub async fn subject(conn: &mut Conn, n: u32) -> Result<String> {
    conn.send(&format!("h FETCH {n} BODY.PEEK[HEADER.FIELDS (SUBJECT)]")).await?;
    let line = conn.line().await?;
    let len = literal_length(line).filter(|len| *len <= 4096).ok_or_else(|| err(format!("unexpected {line:?}")))?;
    let mut field = vec![0u8; len];
    timed("read", conn.stream.read_exact(&mut field)).await?;
    conn.tagged_ok("h").await?;
    Ok(String::from_utf8_lossy(&field).trim().to_owned())
}

/// The length of the literal that ends `line` (`* 2 FETCH (BODY[] {10485806}`).
fn literal_length(line: &str) -> Option<usize> {
    line.strip_suffix('}').and_then(|l| l.rsplit_once('{')).and_then(|(_, n)| n.parse::<usize>().ok())
}

/// IMAP: `FETCH n BODY.PEEK[]`, the literal read and discarded; returns its length.
pub async fn fetch_body(conn: &mut Conn, n: u32) -> Result<usize> {
    conn.send(&format!("f FETCH {n} BODY.PEEK[]")).await?;
    let line = conn.line().await?;
    let len = literal_length(line).ok_or_else(|| err(format!("expected a FETCH literal, got {line:?}")))?;
    conn.skip(len).await?;
    conn.tagged_ok("f").await?;
    Ok(len)
}
