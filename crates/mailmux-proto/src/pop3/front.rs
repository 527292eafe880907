//! The client-facing POP3 machine, AUTHORIZATION state only (RFC 1939 §4, RFC 5034).
//!
//! ```text
//!  greeting ─▶ Authorization ──USER──▶ (name kept) ──PASS──────────────▶ Verifying ──accept──▶ Done
//!  [<timestamp>]  │  ▲ ──APOP name digest (CRAMs)───────────────────────┘ │
//!                 │  │ ──AUTH m [ir]──▶ Sasl ──proof─────────────────────┘ │
//!                 │  │   "+ challenge" ◀─┘ └─ failed, "*": -ERR            │
//!                 │  └────────────────────── reject: -ERR ◀────────────────┤
//!                 │    bearer proof refused: "+ error report" ─▶ Sasl ─▶ -ERR
//!                 ├─ STLS ─▶ AwaitingTls ──tls_started──▶ Authorization (input discarded)
//!                 └─ CAPA, AUTH (list) answered; QUIT ─▶ Done; others -ERR
//! ```
//!
//! `Sasl` runs a [`sasl::Exchange`], the one the IMAP front runs too; this machine frames its
//! challenges (`+ base64`) and answers `+OK`/`-ERR`. CAPA's `SASL` line and the `AUTH` list name
//! exactly the mechanisms [`sasl::Offer`] accepts. With `CRAMs` the greeting ends in an
//! RFC 1939 timestamp, which is what tells clients APOP is available.
//!
//! STLS (RFC 2595): lines the client sent after STLS are discarded, never run after the
//! handshake. With `restrict_plaintext`, USER/PASS and the mechanisms that hand over a password
//! or token are refused and not advertised until TLS is on; APOP and CRAM-MD5 are not affected.

use crate::Secret;
use crate::line::LineBuffer;
use crate::login::{ChallengeKind, Proof, Rejection};
use crate::sasl::{self, ChallengeSeed, Exchange, Offer, SaslError, Step, cram};

/// How many bad commands a client may send before it is disconnected.
const MAX_BAD_COMMANDS: u32 = 10;

/// What the session needs to know to build the machine.
#[derive(Debug, Clone)]
pub struct Pop3Settings {
    /// Text after `+OK ` in the greeting.
    pub banner: String,
    /// Whether STLS is offered (TLS is configured and the connection is not TLS yet).
    pub stls: bool,
    /// `RestrictPlainPasswords`: no password before TLS.
    pub restrict_plaintext: bool,
    /// Whether the connection is already TLS (an implicit-TLS port).
    pub tls: bool,
    /// Whether the client presented a verified certificate (offers SASL EXTERNAL).
    pub client_certificate: bool,
    /// `CRAMs`: offer APOP and SASL CRAM-MD5, the greeting's timestamp and the challenges made
    /// from this seed, unique to the connection (the session makes it; tests pass a fixed
    /// one). `None`: neither is offered.
    pub crams: Option<ChallengeSeed>,
    /// Offer the bearer-token mechanisms OAUTHBEARER and XOAUTH2 (which also lets client
    /// lines grow to a bearer response's size).
    pub bearer: bool,
    /// CAPA lines the stores share (`TOP`, `UIDL`, `PIPELINING` …), listed before mailmux's
    /// own (`RESP-CODES`, `AUTH-RESP-CODE`, `USER`, `STLS`, `SASL`). A line with a control
    /// character is left out; one starting with `.` is byte-stuffed.
    pub capabilities: Vec<String>,
}

/// What the session must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pop3Event {
    /// The client proved who it is. Answer with [`Pop3Front::accept`] or [`Pop3Front::reject`].
    Login(Proof),
    /// The client sent STLS and was told to begin: flush the output, run the TLS handshake,
    /// then call [`Pop3Front::tls_started`].
    StartTls,
    /// The client quit; flush the output and close.
    Quit,
    /// The client broke the protocol; flush the output and close.
    Close,
}

#[derive(Debug)]
enum State {
    Authorization {
        user: Option<String>,
    },
    /// An AUTH in progress: the client's lines go to the exchange.
    Sasl {
        exchange: Exchange,
    },
    /// The session is verifying a proof; the exchange is kept for a bearer refusal's report.
    Verifying {
        exchange: Option<Exchange>,
    },
    AwaitingTls,
    Done,
}

/// The answer to a refused login.
const AUTHENTICATION_FAILED: &str = "-ERR [AUTH] Authentication failed.";

/// The pre-login POP3 server machine.
#[derive(Debug)]
pub struct Pop3Front {
    settings: Pop3Settings,
    lines: LineBuffer,
    out: Vec<u8>,
    state: State,
    bad_commands: u32,
    /// AUTH commands so far: numbers the CRAM-MD5 challenges.
    exchanges: u32,
}

impl Pop3Front {
    /// A machine whose greeting is already in the output.
    pub fn new(settings: Pop3Settings) -> Self {
        let max_line = if settings.bearer { super::MAX_BEARER_LINE } else { super::MAX_CLIENT_LINE };
        let mut front = Pop3Front {
            lines: LineBuffer::new(max_line),
            out: Vec::new(),
            state: State::Authorization { user: None },
            bad_commands: 0,
            exchanges: 0,
            settings,
        };
        let greeting = match &front.settings.crams {
            // RFC 1939 §7: the timestamp APOP digests are made over ends the greeting.
            Some(seed) => format!("+OK {} {}", front.settings.banner, seed.apop_timestamp()),
            None => format!("+OK {}", front.settings.banner),
        };
        front.reply(&greeting);
        front
    }

    fn passwords_allowed(&self) -> bool {
        self.settings.tls || !self.settings.restrict_plaintext
    }

    fn stls_offered(&self) -> bool {
        self.settings.stls && !self.settings.tls
    }

    /// The SASL mechanisms this connection offers now.
    fn offer(&self) -> Offer<'_> {
        Offer {
            secrets_allowed: self.passwords_allowed(),
            certificate: self.settings.client_certificate,
            crams: self.settings.crams.as_ref(),
            bearer: self.settings.bearer,
        }
    }

    /// The names of the mechanisms offered now, for CAPA and the AUTH list.
    fn mechanisms(&self) -> Vec<&'static str> {
        self.offer().mechanisms().map(sasl::SaslMechanism::name).collect()
    }

    /// The TLS handshake after STLS succeeded: start over on the encrypted connection, with
    /// nothing left of what was sent before it.
    pub fn tls_started(&mut self, client_certificate: bool) {
        self.lines.clear();
        self.settings.tls = true;
        self.settings.client_certificate = client_certificate;
        self.state = State::Authorization { user: None };
    }

    /// Appends bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.lines.feed(bytes);
    }

    /// Bytes to send to the client now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Processes buffered input until an event is due; `None` means "send the output and
    /// read more".
    pub fn next_event(&mut self) -> Option<Pop3Event> {
        while !matches!(self.state, State::Verifying { .. } | State::AwaitingTls | State::Done) {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(_) => {
                    self.reply("-ERR Line too long");
                    self.state = State::Done;
                    return Some(Pop3Event::Close);
                }
            };
            if let Some(event) = self.on_line(line.expose()) {
                return Some(event);
            }
        }
        None
    }

    fn on_line(&mut self, line: &[u8]) -> Option<Pop3Event> {
        match std::mem::replace(&mut self.state, State::Authorization { user: None }) {
            State::Authorization { user } => self.on_command(line, user),
            State::Sasl { mut exchange } => {
                let step = exchange.respond(line);
                self.sasl_step(exchange, step)
            }
            state @ (State::Verifying { .. } | State::AwaitingTls | State::Done) => {
                self.state = state;
                None
            }
        }
    }

    fn on_command(&mut self, line: &[u8], user: Option<String>) -> Option<Pop3Event> {
        let (keyword, arg) = match memchr::memchr(b' ', line) {
            Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
            None => (line, None),
        };
        let keyword = keyword.to_ascii_uppercase();
        match (keyword.as_slice(), arg) {
            (b"CAPA", None) => {
                let mut capa = String::from("+OK Capability list follows\r\n");
                for line in self.settings.capabilities.iter().filter(|l| !l.is_empty() && !l.contains(char::is_control))
                {
                    if line.starts_with('.') {
                        capa.push('.');
                    }
                    capa.push_str(line);
                    capa.push_str("\r\n");
                }
                capa.push_str("RESP-CODES\r\nAUTH-RESP-CODE\r\n");
                if self.passwords_allowed() {
                    capa.push_str("USER\r\n");
                }
                if self.stls_offered() {
                    capa.push_str("STLS\r\n");
                }
                let mechs = self.mechanisms();
                if !mechs.is_empty() {
                    capa.push_str(&format!("SASL {}\r\n", mechs.join(" ")));
                }
                capa.push('.');
                self.reply(&capa);
                self.keep(user)
            }
            (b"AUTH", None) => {
                let list: String = self.mechanisms().iter().map(|m| format!("{m}\r\n")).collect();
                self.reply(&format!("+OK\r\n{list}."));
                self.keep(user)
            }
            (b"USER" | b"PASS", _) if !self.passwords_allowed() => {
                self.err("[AUTH] Plaintext authentication is disabled; use STLS first")
            }
            (b"STLS", None) if self.stls_offered() => {
                self.reply("+OK Begin TLS negotiation");
                // Whatever follows the STLS line was sent in plaintext: never run it.
                self.lines.clear();
                self.state = State::AwaitingTls;
                Some(Pop3Event::StartTls)
            }
            (b"USER", Some(name)) if !name.is_empty() => match String::from_utf8(name.to_vec()) {
                Ok(name) => {
                    self.reply("+OK");
                    self.state = State::Authorization { user: Some(name) };
                    None
                }
                Err(_) => self.err(SaslError::NotUtf8.text()),
            },
            (b"PASS", Some(password)) => match user {
                Some(login) => self.login(Proof::Password { login, password: Secret::new(password) }, None),
                None => self.err("USER first"),
            },
            (b"AUTH", Some(rest)) => {
                let (mechanism, initial) = match memchr::memchr(b' ', rest) {
                    Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
                    None => (rest, None),
                };
                let serial = self.exchanges;
                self.exchanges = self.exchanges.wrapping_add(1);
                match self.offer().start(mechanism, initial, serial) {
                    Ok((exchange, step)) => self.sasl_step(exchange, step),
                    Err(SaslError::NeedsTls) => self.err("[AUTH] Plaintext authentication is disabled; use STLS first"),
                    Err(e) => self.err(e.text()),
                }
            }
            (b"APOP", args) if self.settings.crams.is_some() => self.apop(args.unwrap_or_default()),
            (b"QUIT", None) => {
                self.reply("+OK Logging out");
                self.state = State::Done;
                Some(Pop3Event::Quit)
            }
            (b"STLS", None) => self.err("STLS is not available here"),
            (b"APOP", _) => self.err("APOP is not available here"),
            (b"NOOP" | b"STAT" | b"LIST" | b"RETR" | b"DELE" | b"RSET" | b"TOP" | b"UIDL", _) => {
                self.err("Not logged in")
            }
            _ => self.err("Unknown command"),
        }
    }

    /// Frames what the exchange asks for.
    fn sasl_step(&mut self, exchange: Exchange, step: Step) -> Option<Pop3Event> {
        match step {
            Step::Challenge(challenge) => {
                self.reply(&format!("+ {}", sasl::encode(&challenge)));
                self.state = State::Sasl { exchange };
                None
            }
            Step::Done(proof) => self.login(proof, Some(exchange)),
            Step::Failed(e) => self.err(e.text()),
            Step::Refused => {
                self.reply(AUTHENTICATION_FAILED);
                None
            }
        }
    }

    /// `APOP name digest` (RFC 1939 §7), the digest over the greeting's timestamp.
    fn apop(&mut self, args: &[u8]) -> Option<Pop3Event> {
        let Some(seed) = &self.settings.crams else {
            return self.err(SaslError::NotOffered.text());
        };
        let challenge = Secret::new(seed.apop_timestamp());
        match cram::parse_user_digest(args) {
            Ok((login, digest)) => {
                self.login(Proof::ChallengeResponse { login, challenge, digest, kind: ChallengeKind::Apop }, None)
            }
            Err(e) => self.err(e.text()),
        }
    }

    fn login(&mut self, proof: Proof, exchange: Option<Exchange>) -> Option<Pop3Event> {
        // A certificate names its user; any other proof without a name cannot be anyone's.
        if !matches!(proof, Proof::Certificate { .. }) && proof.login().is_empty() {
            self.reply(AUTHENTICATION_FAILED);
            return None;
        }
        self.state = State::Verifying { exchange };
        Some(Pop3Event::Login(proof))
    }

    /// The store accepted the login: pass its `+OK` text on, and return the bytes the client
    /// sent after its login (they are the store's now).
    pub fn accept(&mut self, store_text: &str) -> Vec<u8> {
        self.reply(&format!("+OK {store_text}"));
        self.state = State::Done;
        self.lines.take_rest()
    }

    /// The login failed; the client may try again from USER. A refused bearer token first
    /// gets the mechanism's error report as a challenge (RFC 7628 §3.2.2); the `-ERR` follows
    /// the client's answer to it.
    pub fn reject(&mut self, rejection: &Rejection) {
        let state = std::mem::replace(&mut self.state, State::Authorization { user: None });
        if let (Rejection::AuthenticationFailed, State::Verifying { exchange: Some(mut exchange) }) = (rejection, state)
            && let Some(report) = exchange.refuse()
        {
            self.reply(&format!("+ {}", sasl::encode(&report)));
            self.state = State::Sasl { exchange };
            return;
        }
        match rejection {
            Rejection::AuthenticationFailed => self.reply(AUTHENTICATION_FAILED),
            Rejection::Unavailable { alert } => {
                let text = alert
                    .as_deref()
                    .map(crate::login::one_line)
                    .unwrap_or_else(|| "Mail service temporarily unavailable, try again later.".to_owned());
                self.reply(&format!("-ERR [SYS/TEMP] {text}"));
            }
        }
        self.state = State::Authorization { user: None };
    }

    /// The login failed and the client has failed too often: answer and close.
    pub fn reject_and_close(&mut self, rejection: &Rejection) {
        let code = match rejection {
            Rejection::AuthenticationFailed => "[AUTH] Authentication failed",
            Rejection::Unavailable { .. } => "[SYS/TEMP] Mail service temporarily unavailable",
        };
        self.reply(&format!("-ERR {code}; too many failures, closing connection"));
        self.state = State::Done;
    }

    /// Says goodbye before a server shutdown.
    pub fn shutdown(&mut self) {
        self.reply("-ERR [SYS/TEMP] Server shutting down");
        self.state = State::Done;
    }

    /// Says goodbye after the client was idle too long.
    pub fn idle_timeout(&mut self) {
        self.reply("-ERR Idle for too long, closing connection");
        self.state = State::Done;
    }

    fn keep(&mut self, user: Option<String>) -> Option<Pop3Event> {
        self.state = State::Authorization { user };
        None
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn err(&mut self, text: &str) -> Option<Pop3Event> {
        self.reply(&format!("-ERR {text}"));
        self.state = State::Authorization { user: None };
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.reply("-ERR Too many invalid commands");
            self.state = State::Done;
            return Some(Pop3Event::Close);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> Pop3Settings {
        Pop3Settings {
            banner: "mailmux ready".into(),
            stls: false,
            restrict_plaintext: false,
            tls: false,
            client_certificate: false,
            crams: None,
            bearer: false,
            capabilities: vec!["TOP".into(), "UIDL".into()],
        }
    }

    fn front() -> Pop3Front {
        let mut f = Pop3Front::new(settings());
        assert_eq!(f.take_output(), b"+OK mailmux ready\r\n");
        f
    }

    pub(super) fn run(f: &mut Pop3Front, input: &[u8], chunk: usize) -> (String, Option<Pop3Event>) {
        let mut out = Vec::new();
        let mut event = None;
        for piece in input.chunks(chunk) {
            f.feed(piece);
            event = f.next_event();
            out.extend(f.take_output());
            if event.is_some() {
                break;
            }
        }
        (String::from_utf8(out).unwrap(), event)
    }

    pub(super) fn creds(ev: Option<Pop3Event>) -> Proof {
        match ev {
            Some(Pop3Event::Login(proof)) => proof,
            other => panic!("expected login, got {other:?}"),
        }
    }

    fn password(login: &str, password: &str) -> Proof {
        Proof::Password { login: login.into(), password: Secret::new(password) }
    }

    #[test]
    fn user_pass_in_any_chunking_keeps_spaces_in_password() {
        for chunk in [1, 2, 3, 5, 64] {
            let mut f = front();
            let (out, ev) = run(&mut f, b"USER joe@x.org\r\nPASS pa ss\r\n", chunk);
            assert_eq!(out, "+OK\r\n");
            assert_eq!(creds(ev), password("joe@x.org", "pa ss"));
        }
    }

    #[test]
    fn pass_without_user_and_unknown_and_noop() {
        let mut f = front();
        let (out, ev) = run(&mut f, b"PASS x\r\nNOOP\r\nXYZZY\r\nuser\r\n", 64);
        assert_eq!(ev, None);
        assert_eq!(out, "-ERR USER first\r\n-ERR Not logged in\r\n-ERR Unknown command\r\n-ERR Unknown command\r\n");
    }

    #[test]
    fn capa_lists_sasl_and_resp_codes() {
        let mut f = front();
        let (out, _) = run(&mut f, b"CAPA\r\n", 64);
        assert!(out.starts_with("+OK"));
        assert!(out.contains("\r\nSASL PLAIN LOGIN\r\n"));
        assert!(out.contains("\r\nRESP-CODES\r\n"));
        assert!(out.ends_with("\r\n.\r\n"));
        assert!(out.starts_with("+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"), "{out}");
    }

    #[test]
    fn capa_lists_only_the_stores_lines_it_was_given_and_stuffs_dots() {
        let mut f = Pop3Front::new(Pop3Settings {
            capabilities: vec!["PIPELINING".into(), ".".into(), "X\r\n.\r\nEVIL".into(), String::new()],
            ..settings()
        });
        let (out, _) = run(&mut f, b"CAPA\r\n", 64);
        assert_eq!(
            out,
            "+OK mailmux ready\r\n+OK Capability list follows\r\nPIPELINING\r\n..\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
        );
        let mut f = Pop3Front::new(Pop3Settings { capabilities: Vec::new(), ..settings() });
        let (out, _) = run(&mut f, b"CAPA\r\n", 64);
        assert!(!out.contains("TOP") && !out.contains("UIDL"), "{out}");
    }

    #[test]
    fn auth_plain_initial_and_continuation() {
        let mut f = front();
        let (_, ev) = run(&mut f, b"AUTH PLAIN AGpvZQBwdw==\r\n", 3);
        assert_eq!(creds(ev), password("joe", "pw"));
        let mut f = front();
        let (out, ev) = run(&mut f, b"AUTH PLAIN\r\nAGpvZQBwdw==\r\n", 64);
        assert_eq!(out, "+ \r\n");
        assert_eq!(creds(ev), password("joe", "pw"));
    }

    #[test]
    fn auth_login_and_cancel() {
        let mut f = front();
        let (out, ev) = run(&mut f, b"AUTH LOGIN\r\nam9l\r\ncHc=\r\n", 64);
        assert_eq!(out, "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
        assert_eq!(creds(ev), password("joe", "pw"));
        let mut f = front();
        let (out, ev) = run(&mut f, b"AUTH PLAIN\r\n*\r\nAUTH CRAM-MD5\r\n", 64);
        assert_eq!(ev, None);
        assert_eq!(out, "+ \r\n-ERR Authentication cancelled\r\n-ERR Unsupported authentication mechanism\r\n");
    }

    #[test]
    fn reject_resets_to_user_and_accept_hands_over_rest() {
        let mut f = front();
        let (_, ev) = run(&mut f, b"USER joe\r\nPASS bad\r\n", 64);
        creds(ev);
        f.reject(&Rejection::AuthenticationFailed);
        assert_eq!(f.take_output(), b"-ERR [AUTH] Authentication failed.\r\n");
        let (out, ev) = run(&mut f, b"PASS again\r\n", 64);
        assert_eq!((out.as_str(), ev), ("-ERR USER first\r\n", None));
        let (_, ev) = run(&mut f, b"USER joe\r\nPASS good\r\nSTAT\r\n", 64);
        creds(ev);
        let rest = f.accept("Logged in.");
        assert_eq!(f.take_output(), b"+OK Logged in.\r\n");
        assert_eq!(rest, b"STAT\r\n");
    }

    #[test]
    fn temporary_failure_uses_sys_temp_and_alert() {
        let mut f = front();
        f.reject(&Rejection::Unavailable { alert: Some("store down".into()) });
        assert_eq!(f.take_output(), b"-ERR [SYS/TEMP] store down\r\n");
    }

    #[test]
    fn long_line_closes_and_quit() {
        let mut f = front();
        let (_, ev) = run(&mut f, &vec![b'x'; 5000], 100);
        assert_eq!(ev, Some(Pop3Event::Close));
        let mut f = front();
        let (out, ev) = run(&mut f, b"QUIT\r\n", 64);
        assert_eq!((out.as_str(), ev), ("+OK Logging out\r\n", Some(Pop3Event::Quit)));
    }

    #[test]
    fn stls_discards_pipelined_lines_and_lifts_the_restriction() {
        let mut f = Pop3Front::new(Pop3Settings { stls: true, restrict_plaintext: true, ..settings() });
        f.take_output();
        let (out, ev) = run(&mut f, b"CAPA\r\nUSER joe\r\nAUTH PLAIN AGpvZQBwdw==\r\n", 64);
        assert_eq!(ev, None);
        assert!(out.contains("STLS\r\n") && !out.contains("USER\r\n") && !out.contains("SASL"), "{out}");
        assert!(out.contains("-ERR [AUTH] Plaintext authentication is disabled"), "{out}");
        let (out, ev) = run(&mut f, b"STLS\r\nUSER joe\r\nPASS pw\r\n", 64);
        assert_eq!((out.as_str(), ev), ("+OK Begin TLS negotiation\r\n", Some(Pop3Event::StartTls)));
        assert_eq!(f.next_event(), None, "nothing runs before the handshake");
        f.tls_started(false);
        assert_eq!(f.next_event(), None, "the pipelined USER/PASS are gone");
        assert!(f.take_output().is_empty());
        let (out, _) = run(&mut f, b"CAPA\r\n", 64);
        assert!(!out.contains("STLS") && out.contains("USER\r\n") && out.contains("SASL PLAIN LOGIN\r\n"), "{out}");
        let (_, ev) = run(&mut f, b"USER joe\r\nPASS pw\r\n", 64);
        assert_eq!(creds(ev), password("joe", "pw"));
    }

    #[test]
    fn auth_external_needs_a_certificate() {
        let mut f = front();
        let (out, _) = run(&mut f, b"AUTH EXTERNAL =\r\n", 64);
        assert_eq!(out, "-ERR Unsupported authentication mechanism\r\n");
        let mut f = Pop3Front::new(Pop3Settings { tls: true, client_certificate: true, ..settings() });
        f.take_output();
        let (_, ev) = run(&mut f, b"AUTH EXTERNAL =\r\n", 64);
        assert_eq!(creds(ev), Proof::Certificate { authzid: None });
    }
}

#[cfg(test)]
#[path = "front_sasl_tests.rs"]
mod sasl_tests;
