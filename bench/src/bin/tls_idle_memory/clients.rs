//! The client side, run as a child process so that none of its memory is counted with the
//! server's: reads commands on standard input, one a line —
//! `open K` opens K more connections (TLS unless `plain`), each handshakes, sends `ping\n`,
//! reads the answer and then stays open and silent — and answers `ready` when all K have
//! their answer. End of input closes everything and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use std::io::BufRead;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

/// Connections opened at once: enough to be quick, few enough for a gentle load.
const CONCURRENCY: usize = 64;
/// No single connection may take longer than this to answer.
const PER_CONNECTION: Duration = Duration::from_secs(20);

/// What the clients offer, when not everything rustls has.
#[derive(Debug, Clone, Copy)]
pub struct Offer {
    /// TLS 1.2 only (else TLS 1.3 only).
    pub tls12_only: bool,
    /// ChaCha20-Poly1305 only.
    pub chacha20_only: bool,
}

/// Serves commands from standard input until it ends.
pub fn run(addr: SocketAddr, ca: Option<&std::path::Path>, offer: Offer) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let connector = match ca {
        Some(ca) => Some(connector(ca, offer)?),
        None => None,
    };
    let mut held = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let count: usize = line
            .strip_prefix("open ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("unknown command {line:?}"))?;
        runtime.block_on(open_many(addr, connector.as_ref(), count, &mut held))?;
        println!("ready");
    }
    drop(held);
    Ok(())
}

async fn open_many(
    addr: SocketAddr,
    connector: Option<&TlsConnector>,
    count: usize,
    held: &mut Vec<Held>,
) -> Result<(), String> {
    let mut opened = 0;
    while opened < count {
        let batch = (count - opened).min(CONCURRENCY);
        let mut set = JoinSet::new();
        for _ in 0..batch {
            set.spawn(tokio::time::timeout(PER_CONNECTION, open(addr, connector.cloned())));
        }
        while let Some(done) = set.join_next().await {
            let conn = done.map_err(|e| e.to_string())?.map_err(|_| "a connection timed out".to_string())??;
            held.push(conn);
        }
        opened += batch;
    }
    Ok(())
}

fn connector(ca: &std::path::Path, offer: Offer) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).map_err(|e| e.to_string())? {
        roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        if offer.tls12_only { &[&rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
    let mut provider = rustls::crypto::ring::default_provider();
    if offer.chacha20_only {
        provider.cipher_suites.retain(|s| format!("{:?}", s.suite()).contains("CHACHA20"));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Something held open.
enum Held {
    Plain(#[allow(dead_code)] TcpStream),
    Tls(#[allow(dead_code)] Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn open(addr: SocketAddr, connector: Option<TlsConnector>) -> Result<Held, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut answer = [0u8; 5];
    match connector {
        None => {
            let mut tcp = tcp;
            tcp.write_all(b"ping\n").await.map_err(|e| e.to_string())?;
            tcp.read_exact(&mut answer).await.map_err(|e| e.to_string())?;
            Ok(Held::Plain(tcp))
        }
        Some(connector) => {
            let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
            let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
            tls.write_all(b"ping\n").await.map_err(|e| e.to_string())?;
            tls.read_exact(&mut answer).await.map_err(|e| e.to_string())?;
            Ok(Held::Tls(Box::new(tls)))
        }
    }
}
