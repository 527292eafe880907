//! Connecting to a user's store and logging in there on the user's behalf.
//!
//! [`connect`] opens the TCP connection; [`login`] drives the protocol's replay machine
//! from `mailmux-proto` over it. Both are bounded by the service's `BacksideTimeout`, so a
//! store that accepts and then says nothing cannot hold a client forever.

use std::time::Duration;

use mailmux_config::Protocol;
use mailmux_proto::imap::replay::{ImapReplay, ReplayEvent};
use mailmux_proto::pop3::replay::{Pop3Replay, Pop3ReplayEvent};
use mailmux_proto::{ReplayCredentials, ReplayMechanism, StoreFailure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::LoginError;
use crate::route::StoreAddr;

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

/// Opens a TCP connection to the store.
pub async fn connect(store: &StoreAddr, timeout: Duration) -> Result<TcpStream, LoginError> {
    let unreachable = |reason: String| LoginError::StoreUnreachable {
        store: store.clone(),
        reason,
    };
    let stream = tokio::time::timeout(
        timeout,
        TcpStream::connect((store.host.as_str(), store.port)),
    )
    .await
    .map_err(|_| unreachable("connect timed out".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    // Login round trips are small; do not let Nagle delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Logs into the store over `stream`.
pub async fn login<S>(
    protocol: Protocol,
    stream: S,
    store: &StoreAddr,
    mechanism: ReplayMechanism,
    credentials: ReplayCredentials,
    timeout: Duration,
) -> Result<StoreLogin<S>, LoginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let machine = match protocol {
        Protocol::Imap => Machine::Imap(ImapReplay::new(mechanism, credentials)),
        Protocol::Pop3 => Machine::Pop3(Pop3Replay::new(mechanism, credentials)),
    };
    match tokio::time::timeout(timeout, drive(machine, stream, store)).await {
        Ok(result) => result,
        Err(_) => Err(LoginError::StoreUnreachable {
            store: store.clone(),
            reason: "no login reply in time".into(),
        }),
    }
}

/// The two replay machines behind one face.
enum Machine {
    Imap(ImapReplay),
    Pop3(Pop3Replay),
}

enum Outcome {
    LoggedIn {
        capabilities: Option<String>,
        text: String,
    },
    Failed(StoreFailure),
}

impl Machine {
    fn feed(&mut self, bytes: &[u8]) {
        match self {
            Machine::Imap(m) => m.feed(bytes),
            Machine::Pop3(m) => m.feed(bytes),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Machine::Imap(m) => m.take_output(),
            Machine::Pop3(m) => m.take_output(),
        }
    }

    fn take_rest(&mut self) -> Vec<u8> {
        match self {
            Machine::Imap(m) => m.take_rest(),
            Machine::Pop3(m) => m.take_rest(),
        }
    }

    fn next_event(&mut self) -> Option<Outcome> {
        match self {
            Machine::Imap(m) => m.next_event().map(|e| match e {
                ReplayEvent::LoggedIn { capabilities, text } => {
                    Outcome::LoggedIn { capabilities, text }
                }
                ReplayEvent::Failed(f) => Outcome::Failed(f),
            }),
            Machine::Pop3(m) => m.next_event().map(|e| match e {
                Pop3ReplayEvent::LoggedIn { text } => Outcome::LoggedIn {
                    capabilities: None,
                    text,
                },
                Pop3ReplayEvent::Failed(f) => Outcome::Failed(f),
            }),
        }
    }
}

async fn drive<S>(
    mut machine: Machine,
    mut stream: S,
    store: &StoreAddr,
) -> Result<StoreLogin<S>, LoginError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io_failure = |e: std::io::Error| LoginError::StoreUnreachable {
        store: store.clone(),
        reason: e.to_string(),
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let event = machine.next_event();
        // Whatever the machine queued while processing goes out before anything else.
        let out = machine.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(io_failure)?;
        }
        match event {
            Some(Outcome::LoggedIn { capabilities, text }) => {
                return Ok(StoreLogin {
                    pending: machine.take_rest(),
                    stream,
                    capabilities,
                    text,
                });
            }
            Some(Outcome::Failed(failure)) => {
                return Err(match failure {
                    StoreFailure::Rejected { text } => LoginError::StoreRejected {
                        store: store.clone(),
                        text,
                    },
                    StoreFailure::Temporary { text } => LoginError::StoreFailed {
                        store: store.clone(),
                        reason: text,
                    },
                    StoreFailure::Protocol { reason } => LoginError::StoreFailed {
                        store: store.clone(),
                        reason,
                    },
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
