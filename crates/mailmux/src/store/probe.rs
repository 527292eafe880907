//! The background task that asks stores what they offer before login (see [`super::capabilities`]).
//!
//! One task per protocol, started when the first store becomes known; it ends when the
//! server that owns the learned set is gone. Each round asks every store that is due, at most
//! [`PARALLEL`] at a time, each probe bounded by the service's `BacksideTimeout`; then the task
//! sleeps until the next store is due or a new one is noted.

use std::sync::{Arc, Weak};

use mailmux_config::{Protocol, StoreTlsMode};
use mailmux_proto::probe::{CapabilityProbe, ProbeEvent, ProbeProtocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::capabilities::{ProbeSetup, StoreCapabilities};
use crate::route::StoreAddr;
use crate::tls;

/// Probes in flight at once.
pub const PARALLEL: usize = 8;

/// Runs until `learned` is dropped.
pub(super) async fn run(learned: Weak<StoreCapabilities>, wake: Arc<Notify>) {
    loop {
        let Some(caps) = learned.upgrade() else { return };
        let due = caps.due();
        let protocol = caps.protocol();
        drop(caps);
        let mut probes = JoinSet::new();
        let mut due = due.into_iter();
        loop {
            while probes.len() < PARALLEL {
                let Some((store, setup)) = due.next() else { break };
                probes.spawn(async move {
                    let items = probe(protocol, &store, &setup).await;
                    (store, items)
                });
            }
            let Some(done) = probes.join_next().await else {
                if let Some(caps) = learned.upgrade() {
                    caps.publish();
                }
                break;
            };
            let Ok((store, result)) = done else { continue };
            let Some(caps) = learned.upgrade() else { return };
            match result {
                Ok(items) => caps.record(&store, Some(items)),
                Err(reason) => {
                    tracing::debug!(protocol = protocol.as_str(), store = %store, reason, "store capabilities not learned");
                    caps.record(&store, None);
                }
            }
        }
        // The round's answers set each store's next time: read them only now (read before
        // the round, a lone store that was due had none, and was never asked again).
        let Some(caps) = learned.upgrade() else { return };
        let next = caps.next_due();
        drop(caps);
        match next {
            Some(at) => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

/// Asks one store, within its timeout.
pub async fn probe(protocol: Protocol, store: &StoreAddr, setup: &ProbeSetup) -> Result<Vec<String>, String> {
    let work = async {
        let tcp = super::connect(store, setup.timeout).await.map_err(|e| e.to_string())?;
        match setup.tls_mode {
            StoreTlsMode::Implicit { .. } => {
                let connector = setup.connector.as_ref().ok_or("TLS to stores is not configured")?;
                let name = tls::store_name(&store.host)?;
                let stream = connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
                converse(protocol, stream).await
            }
            StoreTlsMode::Off | StoreTlsMode::StartTls => converse(protocol, tcp).await,
        }
    };
    tokio::time::timeout(setup.timeout, work).await.map_err(|_| "timed out".to_owned())?
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(protocol: Protocol, mut stream: S) -> Result<Vec<String>, String> {
    let mut machine = CapabilityProbe::new(match protocol {
        Protocol::Imap => ProbeProtocol::Imap,
        Protocol::Pop3 => ProbeProtocol::Pop3,
    });
    let mut buf = vec![0u8; 4096];
    loop {
        let event = machine.next_event();
        let out = machine.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            stream.flush().await.map_err(|e| e.to_string())?;
        }
        match event {
            Some(ProbeEvent::Learned(items)) => {
                // The goodbye went out; its answer is not awaited.
                let _ = stream.shutdown().await;
                return Ok(items);
            }
            Some(ProbeEvent::Failed(reason)) => return Err(reason),
            None => {
                let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("store closed the connection".into());
                }
                machine.feed(&buf[..n]);
            }
        }
    }
}
