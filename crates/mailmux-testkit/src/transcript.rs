//! A line-oriented client for protocol transcripts.
//!
//! Tests read like the RFC examples: `c.send("a1 LOGIN user1 secret1")`,
//! `c.expect("a1 OK")`. Every line sent and received is recorded; a failed expectation
//! panics with the whole conversation, so a broken test explains itself.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::pki::CertFiles;

/// What a transcript can run over: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// A TLS client trusting `ca`, optionally presenting a client certificate.
pub fn tls_connector(ca: &Path, client: Option<&CertFiles>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(files) => {
            let chain = CertificateDer::pem_file_iter(&files.cert)
                .expect("read client certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("client certificate PEM");
            let key = PrivateKeyDer::from_pem_file(&files.key).expect("client key");
            builder.with_client_auth_cert(chain, key).expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TCP connection with an MSS of 1,460 and a fixed receive buffer of `window` bytes: a
/// client on a slow Internet link (see [`Transcript::connect_tls_slow_link`]).
async fn slow_link(addr: SocketAddr, window: usize) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).expect("socket");
    socket.set_tcp_mss(1460).expect("TCP_MAXSEG");
    socket.set_recv_buffer_size(window).expect("SO_RCVBUF");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
    socket.connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// How long any single read may take before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A client connection with its transcript.
#[derive(Debug)]
pub struct Transcript {
    stream: BufReader<Box<dyn Stream>>,
    log: Vec<String>,
}

impl Transcript {
    /// Connects.
    pub async fn connect(addr: SocketAddr) -> Transcript {
        let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Transcript { stream: BufReader::new(Box::new(stream)), log: Vec::new() }
    }

    /// Connects from a chosen local address (to look like another client).
    pub async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> Transcript {
        let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
            .expect("socket");
        socket.bind(SocketAddr::new(source, 0)).unwrap_or_else(|e| panic!("bind {source}: {e}"));
        let stream = socket.connect(addr).await.unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
        Transcript { stream: BufReader::new(Box::new(stream)), log: Vec::new() }
    }

    /// Connects with TLS from the first byte (993/995 style).
    pub async fn connect_tls(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Transcript {
        let tcp = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Transcript::tls_over(tcp, addr, connector).await
    }

    /// Like [`Transcript::connect_tls`], for a client on a slow Internet link: an MSS of 1,460
    /// (so the server's send buffer stays as small as it would be there; on loopback it is
    /// sized for 64 KiB segments) and a receive buffer of `window` bytes (fixed, so the
    /// kernel does not grow it). Such a client's window is full most of the time.
    pub async fn connect_tls_slow_link(
        addr: SocketAddr,
        connector: &tokio_rustls::TlsConnector,
        window: usize,
    ) -> Transcript {
        let tcp = slow_link(addr, window).await;
        Transcript::tls_over(tcp, addr, connector).await
    }

    /// A plaintext client on a slow link, as [`Transcript::connect_tls_slow_link`]: its kernel
    /// does not absorb what the client has not read yet.
    pub async fn connect_slow_link(addr: SocketAddr, window: usize) -> Transcript {
        let stream = slow_link(addr, window).await;
        Transcript { stream: BufReader::new(Box::new(stream)), log: Vec::new() }
    }

    async fn tls_over(tcp: TcpStream, addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Transcript {
        let name = ServerName::from(addr.ip());
        let tls = connector.connect(name, tcp).await.unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}"));
        Transcript { stream: BufReader::new(Box::new(tls)), log: vec!["-- TLS --".into()] }
    }

    /// Upgrades the connection after the server said yes to STARTTLS/STLS. Fails if the
    /// server sent anything after that answer (it would be plaintext injected before TLS).
    pub async fn start_tls(
        self,
        name: ServerName<'static>,
        connector: &tokio_rustls::TlsConnector,
    ) -> Result<Transcript, String> {
        if !self.stream.buffer().is_empty() {
            self.fail("the server sent bytes after its STARTTLS answer");
        }
        let Transcript { stream, mut log } = self;
        let tls =
            connector.connect(name, stream.into_inner()).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
        log.push("-- TLS --".into());
        Ok(Transcript { stream: BufReader::new(Box::new(tls)), log })
    }

    /// Sends one line (CRLF added).
    pub async fn send(&mut self, line: &str) {
        self.log.push(format!("C: {line}"));
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes).await;
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // Flushed: a TLS stream may otherwise keep the last records to itself.
        let stream = self.stream.get_mut();
        if let Err(e) = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        }
        .await
        {
            self.fail(&format!("write failed: {e}"));
        }
    }

    /// The next line, without CRLF; `None` at end of stream.
    pub async fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match tokio::time::timeout(READ_TIMEOUT, self.stream.read_until(b'\n', &mut buf)).await {
            Err(_) => self.fail("timed out waiting for a line"),
            // A server that closes with unread input resets the connection: closed all the same.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                self.log.push("S: <reset>".into());
                None
            }
            Ok(Err(e)) => self.fail(&format!("read failed: {e}")),
            Ok(Ok(0)) => {
                self.log.push("S: <closed>".into());
                None
            }
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_owned();
                self.log.push(format!("S: {line}"));
                Some(line)
            }
        }
    }

    /// The next line; the connection must not be closed.
    pub async fn line(&mut self) -> String {
        match self.try_line().await {
            Some(line) => line,
            None => self.fail("connection closed"),
        }
    }

    /// The next line, which must start with `prefix`.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        if !line.starts_with(prefix) {
            self.fail(&format!("expected a line starting with {prefix:?}"));
        }
        line
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub async fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Exactly `len` raw bytes (an IMAP literal, say), read `piece` bytes at a time with a
    /// `pause` after each read: a slow client whose receive window fills up. Each read may
    /// take up to the usual read timeout.
    pub async fn read_bytes(&mut self, len: usize, piece: usize, pause: Duration) -> Vec<u8> {
        let mut got = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let end = len.min(filled + piece);
            match tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut got[filled..end])).await {
                Err(_) => self.fail(&format!("timed out after {filled} of {len} bytes")),
                Ok(Err(e)) => self.fail(&format!("read failed after {filled} of {len} bytes: {e}")),
                Ok(Ok(0)) => self.fail(&format!("connection closed after {filled} of {len} bytes")),
                Ok(Ok(n)) => filled += n,
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        self.log.push(format!("S: <{len} bytes>"));
        got
    }

    /// The server must close the connection (after any remaining lines).
    pub async fn expect_closed(&mut self) {
        while self.try_line().await.is_some() {}
    }

    /// The conversation so far.
    pub fn transcript(&self) -> String {
        self.log.join("\n")
    }

    /// Fails the test, printing the conversation.
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\n--- transcript ---\n{}\n------------------", self.transcript());
    }
}
