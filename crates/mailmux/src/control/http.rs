//! The endpoints' sockets and their responder: one request per connection, strictly bounded.
//!
//! Each connection may send one request head of at most [`http::MAX_HEAD`] bytes within
//! [`REQUEST_TIMEOUT`] (a slow or endless sender is answered `408` or `431` and closed), gets
//! one answer within the same time again, and is closed. At most [`MAX_CONNECTIONS`]
//! connections per endpoint are served at once; more are answered `503` at once. The head is
//! parsed by [`mailmux_proto::http`], which refuses bodies, so nothing else is ever read.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mailmux_config::Config;
use mailmux_config::control::ControlAddr;
use mailmux_proto::http;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Surface;
use super::admin;
use crate::server::ServerHandle;

/// Time allowed to send the request head, and again to take the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once per endpoint.
pub const MAX_CONNECTIONS: usize = 16;

/// A bound endpoint, not yet serving.
#[derive(Debug)]
pub struct ControlListener {
    /// Which endpoint.
    pub surface: Surface,
    /// Where it listens, as bound (port 0 resolved).
    pub local: ControlAddr,
    socket: Socket,
}

#[derive(Debug)]
enum Socket {
    Tcp(TcpListener),
    /// The file is held for its removal when the listener goes.
    Unix(UnixListener, #[allow(dead_code)] SocketFile),
}

/// A Unix socket's file, removed when the listener goes.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds `MetricsListen` and `AdminListen`; on failure, the address and the error.
pub fn bind_all(config: &Config) -> Result<Vec<ControlListener>, (String, io::Error)> {
    let mut bound = Vec::new();
    for (surface, addr) in [(Surface::Metrics, &config.metrics_listen), (Surface::Admin, &config.admin_listen)] {
        if let Some(addr) = addr {
            bound.push(bind(surface, addr).map_err(|e| (addr.to_string(), e))?);
        }
    }
    Ok(bound)
}

fn bind(surface: Surface, addr: &ControlAddr) -> io::Result<ControlListener> {
    match addr {
        ControlAddr::Tcp(at) => {
            let std = std::net::TcpListener::bind(at)?;
            std.set_nonblocking(true)?;
            let local = ControlAddr::Tcp(std.local_addr()?);
            Ok(ControlListener { surface, local, socket: Socket::Tcp(TcpListener::from_std(std)?) })
        }
        ControlAddr::Unix(path) => {
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                // A socket someone answers on is in use; one nobody answers on is left over
                // from a process that died, and is replaced. Anything else (a typo naming a
                // regular file) is never deleted.
                if !std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists and is not a socket"));
                }
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(io::ErrorKind::AddrInUse, "another process answers on this socket"));
                }
                std::fs::remove_file(path)?;
            }
            let listener = UnixListener::bind(path)?;
            let file = SocketFile(path.clone());
            // Who can connect can reload and end sessions: the owner only.
            std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            Ok(ControlListener { surface, local: addr.clone(), socket: Socket::Unix(listener, file) })
        }
    }
}

/// Serves an endpoint until `stop` is cancelled.
pub async fn serve(listener: ControlListener, server: ServerHandle, stop: CancellationToken) {
    let surface = listener.surface;
    tracing::info!(addr = %listener.local, endpoint = ?surface, "control endpoint listening");
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Connections turned away with 503 hold a descriptor while the answer goes out: as many
    // again at most; past that they are closed at once, so a flood cannot take the
    // descriptors kept in reserve for mail.
    let refusals = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match &listener.socket {
            Socket::Tcp(tcp) => {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = tcp.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => spawn(stream, surface, &server, &permits, &refusals),
                    Err(e) => pause(e).await,
                }
            }
            Socket::Unix(unix, _) => {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = unix.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => spawn(stream, surface, &server, &permits, &refusals),
                    Err(e) => pause(e).await,
                }
            }
        }
    }
}

async fn pause(e: io::Error) {
    tracing::warn!(error = %e, "control endpoint: accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn spawn<S>(stream: S, surface: Surface, server: &ServerHandle, permits: &Arc<Semaphore>, refusals: &Arc<Semaphore>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let server = server.clone();
    let mut stream = stream;
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        tokio::spawn(async move {
            serve_connection(&mut stream, surface, &server).await;
            drop(permit);
        });
    } else if let Ok(permit) = refusals.clone().try_acquire_owned() {
        tokio::spawn(async move {
            let busy = http::response(503, "text/plain", b"busy\n", false);
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&busy)).await;
            drop(permit);
        });
    }
    // Else the stream is dropped here: closed without an answer.
}

/// Reads one request head, answers it, closes.
pub async fn serve_connection<S>(stream: &mut S, surface: Surface, server: &ServerHandle)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(stream)).await;
    let answer = match head {
        Err(_) => http::response(408, "text/plain", b"request timeout\n", false),
        Ok(Err(_)) => return,
        Ok(Ok(Err(e))) => http::response(e.status(), "text/plain", format!("{e}\n").as_bytes(), false),
        Ok(Ok(Ok(head))) => {
            let answer = admin::answer(surface, &head, server).await;
            http::response(
                answer.status,
                answer.content_type,
                answer.body.as_bytes(),
                head.method == http::Method::Head,
            )
        }
    };
    let write = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, write).await;
}

/// Reads until a whole head is in (or it is refused); an I/O error or an early close is `Err`.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Result<http::RequestHead, http::HeadError>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Never more than the cap plus one chunk: the parser refuses a head past the cap.
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf) {
            Ok(Some((head, _))) => return Ok(Ok(head)),
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
}
