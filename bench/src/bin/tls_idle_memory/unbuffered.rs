//! The server side of one connection on rustls's unbuffered API
//! (`UnbufferedServerConnection`): the caller owns the buffers of TLS records in and out, so
//! while the connection is idle it may hold none. Here the buffers live only for the
//! handshake and the one exchange, as a relay borrowing a per-thread scratch buffer would
//! hold them, and are dropped before the connection goes idle.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{AppDataRecord, ConnectionState, UnbufferedStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest TLS record on the wire (16 KiB of payload and its overhead), with room.
const RECORD_ROOM: usize = 16 * 1024 + 512;

/// Handshakes, answers `ping\n` with `pong\n`, calls `idle`, and waits for the client to go.
pub async fn serve(config: Arc<ServerConfig>, mut tcp: TcpStream, idle: impl FnOnce()) -> Result<(), String> {
    let text = |e: rustls::Error| e.to_string();
    let mut conn = UnbufferedServerConnection::new(config).map_err(text)?;
    let mut incoming = vec![0u8; RECORD_ROOM];
    let mut incoming_used = 0;
    let mut outgoing = vec![0u8; RECORD_ROOM];
    let mut outgoing_used = 0;
    let mut received = Vec::new();
    let mut answered = false;
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process_tls_records(&mut incoming[..incoming_used]);
        let mut must_read = false;
        let mut done = false;
        match state.map_err(text)? {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let AppDataRecord { discard: more, payload } = record.map_err(text)?;
                    discard += more;
                    received.extend_from_slice(payload);
                }
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                outgoing_used += encode.encode(&mut outgoing[outgoing_used..]).map_err(|e| e.to_string())?;
            }
            ConnectionState::TransmitTlsData(transmit) => {
                tcp.write_all(&outgoing[..outgoing_used]).await.map_err(|e| e.to_string())?;
                outgoing_used = 0;
                transmit.done();
            }
            ConnectionState::BlockedHandshake => must_read = true,
            ConnectionState::WriteTraffic(mut write) => {
                if answered {
                    done = true;
                } else if received.ends_with(b"\n") {
                    outgoing_used +=
                        write.encrypt(b"pong\n", &mut outgoing[outgoing_used..]).map_err(|e| e.to_string())?;
                    answered = true;
                } else {
                    must_read = true;
                }
            }
            ConnectionState::PeerClosed | ConnectionState::Closed => return Ok(()),
            _ => return Err("unexpected TLS state".into()),
        }
        incoming.copy_within(discard..incoming_used, 0);
        incoming_used -= discard;
        if answered && outgoing_used > 0 {
            tcp.write_all(&outgoing[..outgoing_used]).await.map_err(|e| e.to_string())?;
            outgoing_used = 0;
        }
        if done {
            break;
        }
        if must_read {
            let got = tcp.read(&mut incoming[incoming_used..]).await.map_err(|e| e.to_string())?;
            if got == 0 {
                return Ok(());
            }
            incoming_used += got;
        }
    }
    // Idle: the record buffers go back (to a scratch pool, in a relay built this way).
    drop((incoming, outgoing, received));
    idle();
    tcp.readable().await.map_err(|e| e.to_string())?;
    drop(conn);
    Ok(())
}
