//! The spoof maildrop on the wire: when a POP3 user's store is down (and, with `SpoofTempFail`,
//! when it fails temporarily), the client is told `+OK` and served a maildrop holding the
//! administrator's message, or nothing (`SpoofEmptyMailbox`), by
//! [`mailmux_proto::pop3::maildrop::Maildrop`].
//!
//! Which failures are spoofed:
//!
//! | failure | spoofed |
//! | --- | --- |
//! | every store of the user unreachable (refused, timed out, no greeting) | with `SpoofMessageFile` or `SpoofEmptyMailbox` |
//! | the store answered `-ERR` with a temporary code (`[SYS/TEMP]`, `[IN-USE]` …) or broke the protocol | also with `SpoofTempFail` |
//! | `mailUserStatus: hold` | also with `SpoofTempFail` |
//! | the directory down, an unknown user, a wrong password, a store that went silent holding the password | never |
//!
//! The user was found in the directory, but no password was checked (the store that would
//! check it is down) unless `PreAuth` checked it first: the session is therefore kept to the
//! pre-login limits, `PreAuthTimeout` included, and serves only the administrator's text.

use mailmux_config::spoof::SpoofConfig;
use mailmux_proto::pop3::maildrop::{Maildrop, MaildropEvent, SpoofMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::LoginError;
use crate::tls::ClientStream;

/// A client to serve the spoof maildrop to.
pub(super) struct SpoofHandOver {
    /// The client connection, its login answered `+OK`.
    pub client: ClientStream,
    /// Client bytes that followed the login command: the maildrop's first commands.
    pub client_pending: Vec<u8>,
    /// The message, or `None` for an empty maildrop.
    pub message: Option<SpoofMessage>,
}

/// Whether `error` gets the spoof maildrop rather than an error.
pub fn applies(error: &LoginError, spoof: &SpoofConfig) -> bool {
    if !spoof.enabled() {
        return false;
    }
    match error {
        LoginError::StoreUnreachable { .. } => true,
        LoginError::StoreFailed { .. } => spoof.temp_fail,
        LoginError::Inactive { attr: "mailUserStatus", value, .. } => {
            spoof.temp_fail && value.eq_ignore_ascii_case("hold")
        }
        _ => false,
    }
}

/// Serves the maildrop until QUIT, a protocol error, `deadline`, or shutdown.
pub(super) async fn serve(handed: SpoofHandOver, deadline: Instant, shutdown: &CancellationToken) {
    let SpoofHandOver { mut client, client_pending, message } = handed;
    let mut maildrop = Maildrop::new(message);
    maildrop.feed(&client_pending);
    let mut buf = vec![0u8; 4096];
    loop {
        let event = maildrop.next_event();
        let out = maildrop.take_output();
        if !out.is_empty() && write(&mut client, &out, deadline).await.is_err() {
            return;
        }
        match event {
            Some(MaildropEvent::Quit | MaildropEvent::Close) => {
                let _ = tokio::time::timeout_at(deadline, client.shutdown()).await;
                return;
            }
            // Answered one command; there may be more buffered.
            None if !out.is_empty() => continue,
            None => {}
        }
        tokio::select! {
            read = client.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => maildrop.feed(&buf[..n]),
            },
            () = tokio::time::sleep_until(deadline) => maildrop.idle_timeout(),
            () = shutdown.cancelled() => maildrop.shutdown(),
        }
    }
}

async fn write(client: &mut ClientStream, out: &[u8], deadline: Instant) -> std::io::Result<()> {
    let work = async {
        client.write_all(out).await?;
        client.flush().await
    };
    tokio::time::timeout_at(deadline, work).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::StoreAddr;

    #[test]
    fn which_failures_are_spoofed() {
        let store = StoreAddr { host: "127.0.0.9".into(), port: 110 };
        let down = LoginError::StoreUnreachable { store: store.clone(), reason: "refused".into() };
        let tempfail = LoginError::StoreFailed { store: store.clone(), reason: "-ERR [SYS/TEMP] x".into() };
        let hold = LoginError::Inactive { who: "user 'joe'".into(), attr: "mailUserStatus", value: "Hold".into() };
        let disabled =
            LoginError::Inactive { who: "user 'joe'".into(), attr: "mailUserStatus", value: "disabled".into() };
        let silent = LoginError::StoreTimedOut { store };
        let off = SpoofConfig::default();
        let empty = SpoofConfig { empty_mailbox: true, ..SpoofConfig::default() };
        let temp = SpoofConfig { temp_fail: true, ..empty.clone() };
        assert!(!applies(&down, &off));
        assert!(applies(&down, &empty) && !applies(&tempfail, &empty) && !applies(&hold, &empty));
        assert!(applies(&tempfail, &temp) && applies(&hold, &temp));
        for never in [&disabled, &silent, &LoginError::UnknownUser] {
            assert!(!applies(never, &temp), "{never}");
        }
        // SpoofTempFail alone turns nothing on.
        assert!(!applies(&down, &SpoofConfig { temp_fail: true, ..SpoofConfig::default() }));
    }
}
