//! Logging into a POP3 store with the client's credentials.
//!
//! ```text
//!  Greeting ──"+OK"──▶ [STLS ─"+OK"─▶ StartTls event ─tls_started─▶] USER ──"+OK"──▶ PASS ──"+OK"──▶ LoggedIn
//!     │        or ──▶ AUTH PLAIN <ir> ──"+OK"──────▶ LoggedIn
//!     └─ "-ERR" anywhere ─▶ Failed ([AUTH] or no code: rejected; other codes: temporary)
//!
//!  bearer token: CAPA ──"+OK" … "SASL … XOAUTH2 …" … "."──▶ AUTH XOAUTH2 <ir> ──"+OK"──▶ LoggedIn
//!     mechanism not listed (or CAPA refused) ─▶ Failed (Protocol), the token never sent
//!     AUTH line over 255 octets: "AUTH XOAUTH2" ─"+ "─▶ response (RFC 5034 §4)
//!     "+ {error report}" ─▶ answer (OAUTHBEARER "AQ==", XOAUTH2 empty) ─▶ Reported ──"-ERR"──▶ Failed
//!
//!  client address (`ForwardClientAddress`): a greeting "+OK [XCLIENT] …" (Dovecot from its
//!     login_trusted_networks) or an XCLIENT line in CAPA ─▶ "XCLIENT ADDR=… PORT=…" in the same
//!     write as USER / AUTH; its answer (+OK or -ERR) is read and ignored
//! ```

use std::net::SocketAddr;

use crate::Secret;
use crate::line::LineBuffer;
use crate::login::{BearerMechanism, ReplayCredentials, ReplayMechanism, StoreFailure};
use crate::sasl::{self, bearer};

/// RFC 2449 §4 / RFC 5034 §4: a command line, CRLF included, is at most 255 octets; a longer
/// initial response goes after the server's `+` instead.
const MAX_COMMAND_LINE: usize = 255;

/// Longest store response line accepted during login, CRLF excluded.
pub const MAX_LINE: usize = 4096;

/// The end of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3ReplayEvent {
    /// The store accepted the login; the text of its `+OK`.
    LoggedIn {
        /// Text after `+OK `.
        text: String,
    },
    /// The store agreed to STLS: run the TLS handshake, then call [`Pop3Replay::tls_started`].
    StartTls,
    /// The login failed.
    Failed(StoreFailure),
}

#[derive(Debug)]
enum State {
    Greeting,
    Stls,
    AwaitingTls,
    User {
        pass_line: Secret,
    },
    Pass,
    Auth,
    /// CAPA sent before a bearer login: its `+OK` (`listing` false), then its lines up to `.`.
    Capa {
        listing: bool,
        offered: bool,
    },
    /// AUTH sent without its response, which waits for the store's `+`.
    AuthContinue {
        response: Secret,
    },
    /// A bearer token was refused: the store's error report was answered, its `-ERR` is due.
    Reported {
        report: String,
    },
    Finished,
}

/// The store-side POP3 login machine.
#[derive(Debug)]
pub struct Pop3Replay {
    /// Ask the store for STLS before logging in.
    starttls: bool,
    mechanism: ReplayMechanism,
    credentials: ReplayCredentials,
    lines: LineBuffer,
    /// What to send; holds the password at login time, so it is a [`Secret`].
    out: Secret,
    state: State,
    /// Credentials no login form carries: the failure reported without asking the store.
    decided: Option<StoreFailure>,
    /// The client's address, for an `XCLIENT` ahead of the login where the store offers it.
    client: Option<SocketAddr>,
    /// Whether the store offered XCLIENT (greeting code or CAPA; remembered across STLS, after
    /// which POP3 has no new greeting).
    store_has_xclient: bool,
    /// An `XCLIENT` was sent and its answer, which comes before the login's, is still due.
    xclient_answer_due: bool,
}

impl Pop3Replay {
    /// A machine waiting for the store's greeting.
    pub fn new(mechanism: ReplayMechanism, credentials: ReplayCredentials, starttls: bool) -> Self {
        // USER/PASS cannot carry an authorization identity or a CR/LF; PLAIN can.
        let needs_plain = match &credentials {
            ReplayCredentials::Password { authzid, authcid, password } => {
                authzid.is_some()
                    || authcid.contains(['\r', '\n'])
                    || password.expose().iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
            }
            ReplayCredentials::Bearer { .. } => false,
        };
        Pop3Replay {
            starttls,
            mechanism: if needs_plain { ReplayMechanism::Plain } else { mechanism },
            decided: credentials.problem(),
            credentials,
            lines: LineBuffer::new(MAX_LINE),
            out: Secret::default(),
            state: State::Greeting,
            client: None,
            store_has_xclient: false,
            xclient_answer_due: false,
        }
    }

    /// Passes `client` (the real client's address) to stores that offer `XCLIENT` (Dovecot,
    /// from `login_trusted_networks`), in the same write as the login, so the store logs and
    /// rate-limits the client rather than mailmux. Built from a socket address, the line
    /// cannot carry anything else.
    pub fn with_client_address(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// Appends bytes received from the store.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// Bytes to send to the store now (they may hold the password).
    pub fn take_output(&mut self) -> Secret {
        std::mem::take(&mut self.out)
    }

    /// Whether the credentials have been handed out (`USER`/`AUTH` is on its way or answered).
    pub fn login_sent(&self) -> bool {
        matches!(
            self.state,
            State::User { .. } | State::Pass | State::Auth | State::AuthContinue { .. } | State::Reported { .. }
        )
    }

    /// Bytes received from the store and not yet processed; while the machine waits for more
    /// input, at most [`MAX_LINE`] + 1.
    pub fn buffered_len(&self) -> usize {
        self.lines.buffered_len()
    }

    /// Bytes the store sent after the response that ended the login.
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.lines.take_rest()
    }

    /// Processes buffered responses; `None` means "send the output and read more".
    pub fn next_event(&mut self) -> Option<Pop3ReplayEvent> {
        loop {
            if let Some(failure) = self.decided.take() {
                return Some(self.finish(Pop3ReplayEvent::Failed(failure)));
            }
            if matches!(self.state, State::Finished | State::AwaitingTls) {
                return None;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(_) => return Some(self.finish(protocol("response line too long"))),
            };
            let line = String::from_utf8_lossy(line.expose()).into_owned();
            if let Some(event) = self.on_line(&line) {
                if event == Pop3ReplayEvent::StartTls {
                    self.state = State::AwaitingTls;
                    return Some(event);
                }
                return Some(self.finish(event));
            }
        }
    }

    fn on_line(&mut self, line: &str) -> Option<Pop3ReplayEvent> {
        let mechanism = self.bearer().map_or("", BearerMechanism::as_str);
        if let State::Capa { listing: true, offered } = &mut self.state {
            return match line {
                "." => {
                    let offered = *offered;
                    self.after_capa(offered)
                }
                _ => {
                    if line.eq_ignore_ascii_case("XCLIENT") {
                        self.store_has_xclient = true;
                    }
                    let mut words = line.split(' ');
                    if words.next().is_some_and(|w| w.eq_ignore_ascii_case("SASL"))
                        && words.any(|w| w.eq_ignore_ascii_case(mechanism))
                    {
                        *offered = true;
                    }
                    None
                }
            };
        }
        if line == "+" || line.starts_with("+ ") {
            return self.on_continuation(line.get(2..).unwrap_or_default());
        }
        let ok = if let Some(text) = strip_status(line, "+OK") {
            Ok(text)
        } else if let Some(text) = strip_status(line, "-ERR") {
            Err(text)
        } else {
            return Some(protocol(&format!("unexpected line: {line}")));
        };
        if self.xclient_answer_due {
            // Its answer does not matter: a store that refuses it still takes the login.
            self.xclient_answer_due = false;
            return None;
        }
        if let (State::Greeting, Ok(text)) = (&self.state, ok) {
            self.store_has_xclient = text.get(..9).is_some_and(|code| code.eq_ignore_ascii_case("[XCLIENT]"));
        }
        match (std::mem::replace(&mut self.state, State::Finished), ok) {
            (State::Greeting, Ok(_)) if self.starttls => {
                self.out.extend_from_slice(b"STLS\r\n");
                self.state = State::Stls;
                None
            }
            (State::Greeting, Ok(_)) => {
                self.send_login();
                None
            }
            (State::Stls, Ok(_)) => Some(Pop3ReplayEvent::StartTls),
            (State::Stls, Err(text)) => {
                Some(Pop3ReplayEvent::Failed(StoreFailure::Temporary { text: format!("store refused STLS: {text}") }))
            }
            (State::Greeting, Err(text)) => {
                Some(Pop3ReplayEvent::Failed(StoreFailure::Temporary { text: format!("greeting -ERR {text}") }))
            }
            (State::User { pass_line }, Ok(_)) => {
                self.out.extend_from_slice(pass_line.expose());
                self.state = State::Pass;
                None
            }
            (State::Pass | State::Auth | State::Reported { .. }, Ok(text)) => {
                Some(Pop3ReplayEvent::LoggedIn { text: text.to_owned() })
            }
            (State::User { .. } | State::Pass | State::Auth | State::AuthContinue { .. }, Err(text)) => {
                Some(Pop3ReplayEvent::Failed(classify(text)))
            }
            (State::Reported { report }, Err(text)) => {
                Some(Pop3ReplayEvent::Failed(classify(&format!("{text} (error report: {report})"))))
            }
            (State::Capa { .. }, Ok(_)) => {
                self.state = State::Capa { listing: true, offered: false };
                None
            }
            (State::Capa { .. }, Err(text)) => Some(protocol(&format!(
                "store refused CAPA ({text}), so whether it takes {} is unknown",
                self.bearer().map_or("", BearerMechanism::as_str)
            ))),
            (State::AuthContinue { .. }, Ok(_)) => Some(protocol("AUTH answered +OK before its response was sent")),
            (State::Finished | State::AwaitingTls, _) => None,
        }
    }

    /// A `+` line: the store wants the response of an AUTH sent without it, or (bearer
    /// tokens) reports why it refused the token.
    fn on_continuation(&mut self, text: &str) -> Option<Pop3ReplayEvent> {
        match (std::mem::replace(&mut self.state, State::Finished), self.bearer()) {
            (State::AuthContinue { response }, _) => {
                self.out.extend_from_slice(response.expose());
                self.out.extend_from_slice(b"\r\n");
                self.state = State::Auth;
                None
            }
            // RFC 7628 §3.2.2: the report must be answered before the store says -ERR.
            (State::Auth, Some(mechanism)) => {
                self.out.extend_from_slice(sasl::encode(bearer::error_answer(mechanism)).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.state = State::Reported { report: bearer::describe_report(text) };
                None
            }
            _ => Some(protocol("unexpected continuation")),
        }
    }

    fn bearer(&self) -> Option<BearerMechanism> {
        match &self.credentials {
            ReplayCredentials::Bearer { mechanism, .. } => Some(*mechanism),
            ReplayCredentials::Password { .. } => None,
        }
    }

    /// The end of the CAPA list: send the token if its mechanism is listed.
    fn after_capa(&mut self, offered: bool) -> Option<Pop3ReplayEvent> {
        let ReplayCredentials::Bearer { user, token, mechanism } = &self.credentials else {
            return Some(protocol("CAPA without a bearer token to send"));
        };
        let name = mechanism.as_str();
        if !offered {
            return Some(protocol(&format!(
                "the store does not list SASL {name}, the only form the client's bearer token can take"
            )));
        }
        let blob = bearer::encode(*mechanism, user, token);
        let with_ir = "AUTH ".len() + name.len() + 1 + blob.len() + 2;
        self.push_xclient();
        self.out.extend_from_slice(b"AUTH ");
        self.out.extend_from_slice(name.as_bytes());
        if with_ir <= MAX_COMMAND_LINE {
            self.out.extend_from_slice(b" ");
            self.out.extend_from_slice(blob.expose());
            self.out.extend_from_slice(b"\r\n");
            self.state = State::Auth;
        } else {
            self.out.extend_from_slice(b"\r\n");
            self.state = State::AuthContinue { response: blob };
        }
        None
    }

    /// The TLS handshake with the store succeeded: forget what the store said in plaintext
    /// and log in.
    pub fn tls_started(&mut self) {
        self.lines.clear();
        self.send_login();
    }

    fn send_login(&mut self) {
        if matches!(self.credentials, ReplayCredentials::Bearer { .. }) {
            // Whether the store takes the token's mechanism is only in its CAPA.
            self.out.extend_from_slice(b"CAPA\r\n");
            self.state = State::Capa { listing: false, offered: false };
            return;
        }
        self.push_xclient();
        let ReplayCredentials::Password { authzid, authcid, password } = &self.credentials else {
            return;
        };
        match self.mechanism {
            ReplayMechanism::Login => {
                self.out.extend_from_slice(format!("USER {authcid}\r\n").as_bytes());
                let mut pass = Secret::new("PASS ");
                pass.extend_from_slice(password.expose());
                pass.extend_from_slice(b"\r\n");
                self.state = State::User { pass_line: pass };
            }
            ReplayMechanism::Plain => {
                let blob = sasl::encode_plain(authzid.as_deref().unwrap_or(""), authcid, password);
                self.out.extend_from_slice(b"AUTH PLAIN ");
                self.out.extend_from_slice(blob.expose());
                self.out.extend_from_slice(b"\r\n");
                self.state = State::Auth;
            }
        }
    }

    /// `XCLIENT ADDR=… PORT=…` ahead of the login, when there is an address and the store
    /// offered the command.
    fn push_xclient(&mut self) {
        let Some(client) = self.client.filter(|_| self.store_has_xclient) else {
            return;
        };
        self.out.extend_from_slice(format!("XCLIENT ADDR={} PORT={}\r\n", client.ip(), client.port()).as_bytes());
        self.xclient_answer_due = true;
    }

    fn finish(&mut self, event: Pop3ReplayEvent) -> Pop3ReplayEvent {
        self.state = State::Finished;
        event
    }
}

fn strip_status<'a>(line: &'a str, status: &str) -> Option<&'a str> {
    let rest = line.get(..status.len())?;
    if !rest.eq_ignore_ascii_case(status) {
        return None;
    }
    let after = &line[status.len()..];
    if after.is_empty() {
        return Some("");
    }
    after.strip_prefix(' ')
}

/// RFC 3206: `[AUTH]` or no code means the credentials were refused; `[SYS/TEMP]`,
/// `[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/PERM]` mean the store cannot serve the user now.
fn classify(text: &str) -> StoreFailure {
    let code = text.strip_prefix('[').and_then(|t| t.split_once(']')).map(|(code, _)| code.to_ascii_uppercase());
    let text = format!("-ERR {text}");
    match code.as_deref() {
        None | Some("AUTH") => StoreFailure::Rejected { text },
        Some(_) => StoreFailure::Temporary { text },
    }
}

fn protocol(reason: &str) -> Pop3ReplayEvent {
    Pop3ReplayEvent::Failed(StoreFailure::Protocol { reason: reason.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(pw: &str) -> ReplayCredentials {
        ReplayCredentials::Password { authzid: None, authcid: "joe".into(), password: Secret::new(pw) }
    }

    pub(super) fn play(m: &mut Pop3Replay, store: &[&str]) -> (String, Option<Pop3ReplayEvent>) {
        let mut sent = Vec::new();
        for line in store {
            m.feed(format!("{line}\r\n").as_bytes());
            let ev = m.next_event();
            sent.extend_from_slice(m.take_output().expose());
            if ev.is_some() {
                return (String::from_utf8(sent).unwrap(), ev);
            }
        }
        (String::from_utf8(sent).unwrap(), None)
    }

    #[test]
    fn user_pass() {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("p w"), false);
        let (sent, ev) = play(&mut m, &["+OK Dovecot ready.", "+OK", "+OK Logged in."]);
        assert_eq!(sent, "USER joe\r\nPASS p w\r\n");
        assert_eq!(ev, Some(Pop3ReplayEvent::LoggedIn { text: "Logged in.".into() }));
    }

    #[test]
    fn plain_and_forced_plain() {
        let mut m = Pop3Replay::new(ReplayMechanism::Plain, creds("pw"), false);
        let (sent, ev) = play(&mut m, &["+OK hi", "+OK in"]);
        assert_eq!(sent, "AUTH PLAIN AGpvZQBwdw==\r\n");
        assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })));
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("a\r\nDELE 1"), false);
        let (sent, _) = play(&mut m, &["+OK hi"]);
        assert!(sent.starts_with("AUTH PLAIN "), "{sent}");
    }

    #[test]
    fn failures() {
        for (line, temporary) in [
            ("-ERR [AUTH] Authentication failed.", false),
            ("-ERR nope", false),
            ("-ERR [SYS/TEMP] later", true),
            ("-ERR [IN-USE] locked", true),
        ] {
            let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), false);
            let (_, ev) = play(&mut m, &["+OK hi", "+OK", line]);
            let got_temp = match ev {
                Some(Pop3ReplayEvent::Failed(StoreFailure::Temporary { .. })) => true,
                Some(Pop3ReplayEvent::Failed(StoreFailure::Rejected { .. })) => false,
                other => panic!("{other:?}"),
            };
            assert_eq!(got_temp, temporary, "{line}");
        }
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), false);
        assert!(matches!(
            play(&mut m, &["* OK imap?"]).1,
            Some(Pop3ReplayEvent::Failed(StoreFailure::Protocol { .. }))
        ));
    }

    #[test]
    fn stls_first_and_plaintext_leftovers_dropped() {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), true);
        m.feed(b"+OK hi\r\n");
        assert_eq!(m.next_event(), None);
        assert_eq!(m.take_output().expose(), b"STLS\r\n");
        m.feed(b"+OK go\r\n+OK injected\r\n");
        assert_eq!(m.next_event(), Some(Pop3ReplayEvent::StartTls));
        m.tls_started();
        assert_eq!(m.take_output().expose(), b"USER joe\r\n");
        let (sent, ev) = play(&mut m, &["+OK", "+OK in"]);
        assert_eq!(sent, "PASS pw\r\n");
        assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })));
    }

    fn client() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 7], 40000))
    }

    #[test]
    fn xclient_goes_with_the_login_where_the_greeting_offers_it() {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), false).with_client_address(client());
        m.feed(b"+OK [XCLIENT] Dovecot (Debian) ready.\r\n");
        assert_eq!(m.next_event(), None);
        assert_eq!(m.take_output().expose(), b"XCLIENT ADDR=192.0.2.7 PORT=40000\r\nUSER joe\r\n");
        // The XCLIENT answer (whatever it is) is not the USER answer.
        let (sent, ev) = play(&mut m, &["-ERR You are not from trusted IP", "+OK", "+OK Logged in."]);
        assert_eq!(sent, "PASS pw\r\n");
        assert_eq!(ev, Some(Pop3ReplayEvent::LoggedIn { text: "Logged in.".into() }));
        // PLAIN, and an IPv6 client.
        let v6 = SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 995));
        let mut m = Pop3Replay::new(ReplayMechanism::Plain, creds("pw"), false).with_client_address(v6);
        let (sent, ev) = play(&mut m, &["+OK [xclient] ready", "+OK Updated", "-ERR [AUTH] Authentication failed."]);
        assert_eq!(sent, "XCLIENT ADDR=2001:db8::1 PORT=995\r\nAUTH PLAIN AGpvZQBwdw==\r\n");
        assert!(matches!(ev, Some(Pop3ReplayEvent::Failed(StoreFailure::Rejected { .. }))), "{ev:?}");
    }

    #[test]
    fn no_xclient_unless_offered_or_asked() {
        for (greeting, address) in [("+OK Dovecot ready.", true), ("+OK [XCLIENT] ready", false)] {
            let m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), false);
            let mut m = if address { m.with_client_address(client()) } else { m };
            let (sent, ev) = play(&mut m, &[greeting, "+OK", "+OK in"]);
            assert_eq!(sent, "USER joe\r\nPASS pw\r\n", "{greeting}");
            assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })));
        }
    }

    #[test]
    fn xclient_offer_survives_stls() {
        let mut m = Pop3Replay::new(ReplayMechanism::Login, creds("pw"), true).with_client_address(client());
        let (sent, ev) = play(&mut m, &["+OK [XCLIENT] ready", "+OK go"]);
        assert_eq!((sent.as_str(), ev), ("STLS\r\n", Some(Pop3ReplayEvent::StartTls)));
        m.tls_started();
        assert_eq!(m.take_output().expose(), b"XCLIENT ADDR=192.0.2.7 PORT=40000\r\nUSER joe\r\n");
        let (_, ev) = play(&mut m, &["+OK Updated", "+OK", "+OK in"]);
        assert!(matches!(ev, Some(Pop3ReplayEvent::LoggedIn { .. })));
    }
}

#[cfg(test)]
#[path = "replay_bearer_tests.rs"]
mod bearer_tests;
