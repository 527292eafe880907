//! Connecting to a user's store and logging in there on the user's behalf.
//!
//! [`connect`] opens the TCP connection; [`login`] adds TLS as configured (implicit on
//! `SSLBacksidePort`, or STARTTLS/STLS before the login) and drives the protocol's replay
//! machine from `mailmux-proto`. Both are bounded by the service's `BacksideTimeout`, so a
//! store that accepts and then says nothing cannot hold a client forever. The store's
//! certificate is checked against the mailHost name; a bad one fails the login as
//! "unavailable", with the reason in the log.

pub mod capabilities;
pub mod health;
pub mod probe;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mailmux_config::{Protocol, StoreTlsMode};
use mailmux_proto::imap::replay::{ImapReplay, ReplayEvent};
use mailmux_proto::pop3::replay::{Pop3Replay, Pop3ReplayEvent};
use mailmux_proto::{ReplayCredentials, ReplayMechanism, Secret, StoreFailure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::LoginError;
use crate::route::StoreAddr;
use crate::tls::{self, MaybeTls, StoreStream};

/// What a successful store login leaves behind.
#[derive(Debug)]
pub struct StoreLogin<S> {
    /// The logged-in connection.
    pub stream: S,
    /// Bytes the store sent after its login reply; the client gets them first.
    pub pending: Vec<u8>,
    /// The store's post-login IMAP capabilities (POP3: none).
    pub capabilities: Option<String>,
    /// The text of the store's success reply.
    pub text: String,
}

/// How to reach and log into one store.
#[derive(Clone, Copy)]
pub struct StoreSetup<'a> {
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// The store.
    pub store: &'a StoreAddr,
    /// LOGIN/USER-PASS or SASL PLAIN.
    pub mechanism: ReplayMechanism,
    /// Plain, implicit TLS or STARTTLS.
    pub tls_mode: StoreTlsMode,
    /// The service's connector; present whenever `tls_mode` is not `Off`.
    pub connector: Option<&'a TlsConnector>,
    /// Limit for the login (the TLS handshake included).
    pub timeout: Duration,
    /// The client's address and the mailmux address it connected to, to pass on to stores
    /// (`ForwardClientAddress`: IMAP `ID`, POP3 `XCLIENT`); `None` to keep them to ourselves.
    pub client: Option<(SocketAddr, SocketAddr)>,
}

/// Opens a TCP connection to the store.
pub async fn connect(store: &StoreAddr, timeout: Duration) -> Result<TcpStream, LoginError> {
    let unreachable = |reason: String| LoginError::StoreUnreachable { store: store.clone(), reason };
    let stream = tokio::time::timeout(timeout, TcpStream::connect((store.host.as_str(), store.port)))
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    // Login round trips are small; do not let Nagle delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Logs into the store over `tcp`.
pub async fn login(
    setup: StoreSetup<'_>,
    tcp: TcpStream,
    credentials: ReplayCredentials,
) -> Result<StoreLogin<StoreStream>, LoginError> {
    let starttls = setup.tls_mode == StoreTlsMode::StartTls;
    let machine = match setup.protocol {
        Protocol::Imap => {
            let machine = ImapReplay::new(setup.mechanism, credentials, starttls);
            Machine::Imap(match setup.client {
                // Dovecot's names; it honours them from login_trusted_networks.
                Some((client, local)) => machine.with_client_id(vec![
                    ("x-originating-ip".into(), client.ip().to_string()),
                    ("x-originating-port".into(), client.port().to_string()),
                    ("x-connected-ip".into(), local.ip().to_string()),
                    ("x-connected-port".into(), local.port().to_string()),
                ]),
                None => machine,
            })
        }
        Protocol::Pop3 => {
            let machine = Pop3Replay::new(setup.mechanism, credentials, starttls);
            // XCLIENT has no field for the address the client connected to.
            Machine::Pop3(match setup.client {
                Some((client, _)) => machine.with_client_address(client),
                None => machine,
            })
        }
    };
    // Set once the credentials are on their way: a store that then goes silent may be
    // sitting on a wrong password (its own failure delay), which must count as a failure.
    let login_sent = AtomicBool::new(false);
    let work = async {
        let stream = match setup.tls_mode {
            StoreTlsMode::Implicit { .. } => start_tls(&setup, tcp).await?,
            StoreTlsMode::Off | StoreTlsMode::StartTls => MaybeTls::Plain(tcp),
        };
        drive(machine, stream, &setup, &login_sent).await
    };
    match tokio::time::timeout(setup.timeout, work).await {
        Ok(result) => result,
        Err(_) if login_sent.load(Ordering::Relaxed) => Err(LoginError::StoreTimedOut { store: setup.store.clone() }),
        Err(_) => {
            Err(LoginError::StoreUnreachable { store: setup.store.clone(), reason: "no greeting in time".into() })
        }
    }
}

/// The client side of the TLS handshake with a store, verifying its certificate.
async fn start_tls(setup: &StoreSetup<'_>, tcp: TcpStream) -> Result<StoreStream, LoginError> {
    let failed = |reason: String| LoginError::StoreUnreachable { store: setup.store.clone(), reason };
    let connector = setup.connector.ok_or_else(|| failed("TLS to stores is not configured".into()))?;
    let name = tls::store_name(&setup.store.host).map_err(failed)?;
    let stream = connector.connect(name, tcp).await.map_err(|e| failed(format!("TLS handshake failed: {e}")))?;
    Ok(MaybeTls::Tls(Box::new(stream)))
}

/// The two replay machines behind one face.
enum Machine {
    Imap(ImapReplay),
    Pop3(Pop3Replay),
}

enum Outcome {
    LoggedIn { capabilities: Option<String>, text: String },
    StartTls,
    Failed(StoreFailure),
}

impl Machine {
    fn feed(&mut self, bytes: &[u8]) {
        match self {
            Machine::Imap(m) => m.feed(bytes),
            Machine::Pop3(m) => m.feed(bytes),
        }
    }

    fn take_output(&mut self) -> Secret {
        match self {
            Machine::Imap(m) => m.take_output(),
            Machine::Pop3(m) => m.take_output(),
        }
    }

    fn login_sent(&self) -> bool {
        match self {
            Machine::Imap(m) => m.login_sent(),
            Machine::Pop3(m) => m.login_sent(),
        }
    }

    fn take_rest(&mut self) -> Vec<u8> {
        match self {
            Machine::Imap(m) => m.take_rest(),
            Machine::Pop3(m) => m.take_rest(),
        }
    }

    fn tls_started(&mut self) {
        match self {
            Machine::Imap(m) => m.tls_started(),
            Machine::Pop3(m) => m.tls_started(),
        }
    }

    fn next_event(&mut self) -> Option<Outcome> {
        match self {
            Machine::Imap(m) => m.next_event().map(|e| match e {
                ReplayEvent::LoggedIn { capabilities, text } => Outcome::LoggedIn { capabilities, text },
                ReplayEvent::StartTls => Outcome::StartTls,
                ReplayEvent::Failed(f) => Outcome::Failed(f),
            }),
            Machine::Pop3(m) => m.next_event().map(|e| match e {
                Pop3ReplayEvent::LoggedIn { text } => Outcome::LoggedIn { capabilities: None, text },
                Pop3ReplayEvent::StartTls => Outcome::StartTls,
                Pop3ReplayEvent::Failed(f) => Outcome::Failed(f),
            }),
        }
    }
}

async fn drive(
    mut machine: Machine,
    mut stream: StoreStream,
    setup: &StoreSetup<'_>,
    login_sent: &AtomicBool,
) -> Result<StoreLogin<StoreStream>, LoginError> {
    let store = setup.store;
    let io_failure = |e: std::io::Error| LoginError::StoreUnreachable { store: store.clone(), reason: e.to_string() };
    let mut buf = vec![0u8; 4096];
    loop {
        let event = machine.next_event();
        // Whatever the machine queued while processing goes out before anything else.
        let out = machine.take_output();
        login_sent.store(machine.login_sent(), Ordering::Relaxed);
        if !out.is_empty() {
            stream.write_all(out.expose()).await.map_err(io_failure)?;
            stream.flush().await.map_err(io_failure)?;
        }
        match event {
            Some(Outcome::LoggedIn { capabilities, text }) => {
                return Ok(StoreLogin { pending: machine.take_rest(), stream, capabilities, text });
            }
            Some(Outcome::StartTls) => {
                let MaybeTls::Plain(tcp) = stream else {
                    return Err(LoginError::StoreFailed { store: store.clone(), reason: "STARTTLS inside TLS".into() });
                };
                stream = start_tls(setup, tcp).await?;
                machine.tls_started();
            }
            Some(Outcome::Failed(failure)) => {
                return Err(match failure {
                    StoreFailure::Rejected { text } => LoginError::StoreRejected { store: store.clone(), text },
                    StoreFailure::Temporary { text } => LoginError::StoreFailed { store: store.clone(), reason: text },
                    StoreFailure::Protocol { reason } => LoginError::StoreFailed { store: store.clone(), reason },
                });
            }
            None => {
                let n = stream.read(&mut buf).await.map_err(io_failure)?;
                if n == 0 {
                    return Err(LoginError::StoreFailed {
                        store: store.clone(),
                        reason: "store closed the connection during login".into(),
                    });
                }
                machine.feed(&buf[..n]);
            }
        }
    }
}
