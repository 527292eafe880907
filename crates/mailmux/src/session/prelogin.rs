//! The dialogue before login: TLS, the front machine, login attempts, until a store accepts.
//!
//! Everything here lives only until [`run`] returns: on success it hands over the two
//! logged-in streams and the bytes each side sent past the login ([`HandOver`]), and the
//! front machine, read buffer and credentials are dropped before the relay starts. When a
//! POP3 user's store is down and the service spoofs, it hands over the client alone
//! ([`SpoofHandOver`]) for the spoof maildrop.

use std::time::Duration;

use mailmux_config::Protocol;
use mailmux_proto::{Proof, Rejection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::spoof::{self, SpoofHandOver};
use super::{Front, SessionContext, Step, Summary, TlsState, login};
use crate::access::IpKey;
use crate::error::LoginError;
use crate::outcome::{LoginOutcome, Outcome};
use crate::tls::{ClientStream, MaybeTls, StoreStream};

/// How the dialogue before login ended well.
pub(super) enum Ended {
    /// A store accepted the login: relay.
    LoggedIn(HandOver),
    /// The store is down and the service spoofs: serve the maildrop.
    Spoofed(SpoofHandOver),
}

/// A logged-in session, ready to relay.
pub(super) struct HandOver {
    /// The client connection.
    pub client: ClientStream,
    /// Client bytes that followed the login command: the store's now.
    pub client_pending: Vec<u8>,
    /// The store connection, logged in.
    pub store: StoreStream,
    /// Store bytes that followed its login answer: the client's.
    pub store_pending: Vec<u8>,
}

/// Read size before login: commands are short, and a small buffer bounds what one read can
/// make the front machine process (and answer) at once.
const READ_SIZE: usize = 4096;

/// Greets, converses and logs in, within `PreAuthTimeout`.
pub(super) async fn run<F: Front>(
    tcp: TcpStream,
    implicit_tls: bool,
    ctx: &SessionContext,
    summary: &mut Summary,
) -> Result<Ended, Outcome> {
    let deadline = Instant::now() + ctx.service.config.preauth_timeout;
    let client = if implicit_tls {
        handshake(ctx, tcp, deadline).await.map_err(|e| {
            tracing::info!(target: crate::log_severity::INFORMATION, error = %e, "TLS negotiation failed");
            Outcome::TlsFailed
        })?
    } else {
        MaybeTls::Plain(tcp)
    };
    let tls = TlsState { active: client.is_tls(), client_certificate: certificate_login_possible(ctx, &client) };
    let front = F::new(&ctx.service, tls);
    converse(client, ctx, front, deadline, summary).await
}

/// EXTERNAL is offered when the client presented a verified certificate and certificates
/// can be mapped to users.
fn certificate_login_possible(ctx: &SessionContext, client: &ClientStream) -> bool {
    ctx.service.config.cert_map.is_some() && client.peer_certificate().is_some()
}

/// The server side of a TLS handshake, within the pre-login deadline.
async fn handshake(ctx: &SessionContext, tcp: TcpStream, deadline: Instant) -> Result<ClientStream, String> {
    let Some(acceptor) = &ctx.service.tls else {
        return Err("TLS is not configured".into());
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(MaybeTls::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}

async fn converse<F: Front>(
    mut client: ClientStream,
    ctx: &SessionContext,
    mut front: F,
    deadline: Instant,
    summary: &mut Summary,
) -> Result<Ended, Outcome> {
    let svc = &ctx.service.config;
    // Holds raw LOGIN lines: wiped when the session is done with it.
    let mut buf = zeroize::Zeroizing::new(vec![0u8; READ_SIZE]);
    // What ends the session if the client goes away now.
    let mut leaving = Outcome::ClosedBeforeLogin;
    // Failed logins on this connection (MaxLoginFailures).
    let mut failures = 0u32;
    loop {
        summary.tls = client.is_tls();
        let step = front.next_step();
        // Answers queued while processing go out before the session waits or acts.
        flush(&mut client, &mut front, deadline).await.map_err(|_| Outcome::ClientGone)?;
        match step {
            Some(Step::Close) => return Err(Outcome::ClosedBeforeLogin),
            Some(Step::StartTls) => {
                let MaybeTls::Plain(tcp) = client else {
                    return Err(Outcome::ClosedBeforeLogin);
                };
                client = handshake(ctx, tcp, deadline).await.map_err(|e| {
                    tracing::info!(target: crate::log_severity::INFORMATION, error = %e, "STARTTLS negotiation failed");
                    Outcome::TlsFailed
                })?;
                front.tls_started(certificate_login_possible(ctx, &client));
            }
            Some(Step::Login(ticket, proof)) => {
                summary.user = Some(proof.login().to_owned());
                let attempted = attempt(ctx, &proof, client.peer_certificate(), client.is_tls(), deadline).await;
                if let Some(outcome) = attempted.login_outcome() {
                    ctx.metrics.login(svc.protocol, outcome);
                }
                match attempted {
                    Attempt::LoggedIn(done) => {
                        tracing::info!(
                            target: crate::log_severity::INFORMATION,
                            user = %done.user,
                            store = %done.store,
                            mechanism = proof.mechanism_name(),
                            "logged in"
                        );
                        summary.user = Some(done.user);
                        summary.store = Some(done.store);
                        let login = done.login;
                        let client_pending = front.accept(ticket, login.capabilities.as_deref(), &login.text);
                        flush(&mut client, &mut front, deadline).await.map_err(|_| Outcome::ClientGone)?;
                        return Ok(Ended::LoggedIn(HandOver {
                            client,
                            client_pending,
                            store: login.stream,
                            store_pending: login.pending,
                        }));
                    }
                    Attempt::Failed(e) if svc.protocol == Protocol::Pop3 && spoof::applies(&e, &svc.spoof) => {
                        tracing::warn!(user = %proof.login(), reason = %e, "store unavailable; serving the spoof maildrop");
                        let client_pending = front.accept(ticket, None, "Logged in.");
                        flush(&mut client, &mut front, deadline).await.map_err(|_| Outcome::ClientGone)?;
                        return Ok(Ended::Spoofed(SpoofHandOver {
                            client,
                            client_pending,
                            message: svc.spoof.served_message(),
                        }));
                    }
                    Attempt::Failed(e) => {
                        let rejection = e.rejection(svc.server_down_alert.as_deref());
                        match rejection {
                            Rejection::AuthenticationFailed => {
                                tracing::info!(user = %proof.login(), reason = %e, "login refused");
                                leaving = Outcome::AuthFailed;
                            }
                            Rejection::Unavailable { .. } => {
                                tracing::warn!(user = %proof.login(), reason = %e, "login failed");
                                leaving = Outcome::Unavailable;
                            }
                        }
                        // Every failure counts, temporary ones too: a guesser whose store
                        // slows it down past BacksideTimeout must not get unlimited tries.
                        failures += 1;
                        if failures >= svc.edge.max_login_failures {
                            front.reject_and_close(ticket, &rejection);
                            let _ = flush(&mut client, &mut front, deadline).await;
                            return Err(Outcome::TooManyFailures);
                        }
                        front.reject(ticket, &rejection);
                    }
                    Attempt::TimedOut => {
                        front.idle_timeout();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return Err(Outcome::LoginTimeout);
                    }
                    Attempt::ShutDown => {
                        front.shutdown();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return Err(Outcome::Shutdown);
                    }
                }
            }
            None => {
                tokio::select! {
                    read = client.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return Err(leaving),
                        Ok(n) => front.feed(&buf[..n]),
                    },
                    _ = tokio::time::sleep_until(deadline) => {
                        front.idle_timeout();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return Err(Outcome::LoginTimeout);
                    }
                    _ = ctx.shutdown.cancelled() => {
                        front.shutdown();
                        let _ = flush(&mut client, &mut front, Instant::now() + Duration::from_secs(1)).await;
                        return Err(Outcome::Shutdown);
                    }
                }
            }
        }
    }
}

/// How one login attempt ended.
enum Attempt {
    LoggedIn(login::LoggedIn),
    Failed(LoginError),
    /// The attempt outran its budget.
    TimedOut,
    /// The server began to shut down first.
    ShutDown,
}

impl Attempt {
    /// The `outcome` label of the attempt (none when the server shut down under it).
    fn login_outcome(&self) -> Option<LoginOutcome> {
        match self {
            Attempt::LoggedIn(_) => Some(LoginOutcome::Ok),
            Attempt::Failed(e) => Some(match e.rejection(None) {
                Rejection::AuthenticationFailed => LoginOutcome::AuthFailed,
                Rejection::Unavailable { .. } => LoginOutcome::Unavailable,
            }),
            Attempt::TimedOut => Some(LoginOutcome::Timeout),
            Attempt::ShutDown => None,
        }
    }
}

/// One login attempt, from the BadGuy wait to the answer, stopped by shutdown.
///
/// ```text
/// wait the address's turn ─▶ verify (directory, store) ─┬─ ok: clear the address's record
///                                                       └─ failed: a bad guess (refused, or a
///                                                          store that took the password and
///                                                          went silent) adds badness; every
///                                                          failure is answered no sooner than
///                                                          FailureDelay after the verification
///                                                          began
/// ```
///
/// The floor is what makes an unknown user (refused by the directory at once) and a wrong
/// password (refused by the store after its own delay) look alike from the outside; the
/// BadGuy wait is what slows one address's guessing without touching anybody else.
///
/// An attempt that has begun is allowed to finish past the pre-login deadline, within a
/// budget of its own (its wait, two directory and two store timeouts, the floor): cutting it
/// short would leave the guess uncounted, and answering a late success while refusing a late
/// failure would tell the client which one it was.
async fn attempt(
    ctx: &SessionContext,
    proof: &Proof,
    certificate: Option<&rustls::pki_types::CertificateDer<'_>>,
    encrypted: bool,
    deadline: Instant,
) -> Attempt {
    let svc = &ctx.service.config;
    let key = IpKey::of(ctx.client.ip());
    // BGExcluded addresses (monitoring, webmail front ends) are never penalised.
    let watched = !svc.edge.badguy.excluded.contains(ctx.client.ip());
    let badguys = ctx.edge.badguys(svc.protocol);
    let now = Instant::now();
    let wait = if watched { badguys.take_turn(&svc.edge.badguy, key, now) } else { Duration::ZERO };
    let budget = wait + svc.edge.failure_delay + 2 * (svc.ldap_timeout + svc.backside_timeout);
    let finish_by = deadline.max(now + budget);
    let bad_guess = || {
        if watched {
            ctx.metrics.badguy_penalty(svc.protocol);
            let badness = badguys.failed(&svc.edge.badguy, key, Instant::now());
            tracing::info!("badguy {key} now has {} badness", badness.as_secs());
        }
    };
    let work = async {
        if !wait.is_zero() {
            ctx.metrics.badguy_delay(svc.protocol);
            tracing::debug!(wait_ms = wait.as_millis() as u64, "badguy: delaying this authentication");
            tokio::time::sleep(wait).await;
        }
        // The floor counts from here: the wait comes on top of it.
        let started = Instant::now();
        let result = login::log_in(ctx, proof, certificate, encrypted).await;
        match &result {
            Ok(_) => badguys.succeeded(key),
            Err(e) => {
                if e.is_bad_guess() {
                    bad_guess();
                }
                tokio::time::sleep_until(started + svc.edge.failure_delay).await;
            }
        }
        result
    };
    tokio::select! {
        result = work => match result {
            Ok(done) => Attempt::LoggedIn(done),
            Err(e) => Attempt::Failed(e),
        },
        _ = tokio::time::sleep_until(finish_by) => {
            // Over its own budget too (a stage without a timeout of its own): a guess all the same.
            bad_guess();
            Attempt::TimedOut
        }
        _ = ctx.shutdown.cancelled() => Attempt::ShutDown,
    }
}

/// Writes and flushes what the front machine queued (a TLS writer may otherwise keep it).
async fn flush<F: Front>(client: &mut ClientStream, front: &mut F, deadline: Instant) -> std::io::Result<()> {
    let out = front.take_output();
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        client.write_all(&out).await?;
        client.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
