//! The client-facing IMAP machine, from greeting to credentials (RFC 9051 §3, §6.1–6.2).
//!
//! ```text
//!  greeting ─▶ Ready ──LOGIN─────────────────────────────────────────────▶ Verifying ──accept──▶ Done
//!               │  ▲  ──AUTHENTICATE m [ir]──▶ Sasl ──proof─────────────────┘    │
//!               │  │        "+ challenge" ◀──┘ │ └─ failed, "*": BAD ─▶ Ready      │
//!               │  └──────────────────────────────── reject: NO ◀────────────────┤
//!               │       bearer proof refused: "+ error report" ─▶ Sasl ─▶ NO ◀───┘
//!               ├─ STARTTLS ─▶ AwaitingTls ──tls_started──▶ Ready (input discarded)
//!               └─ CAPABILITY / NOOP / ID answered; LOGOUT ─▶ Done; others BAD
//! ```
//!
//! `Sasl` runs a [`sasl::Exchange`], the same one the POP3 front runs: this machine only frames
//! its challenges (`+ base64`) and turns its outcome into a tagged response. The capability list
//! names exactly the mechanisms [`sasl::Offer`] accepts: PLAIN and LOGIN, CRAM-MD5 with `CRAMs`,
//! OAUTHBEARER and XOAUTH2 with bearer tokens on, EXTERNAL with a client certificate.
//!
//! STARTTLS (RFC 9051 §6.2.1, RFC 2595): anything the client sent after the STARTTLS line
//! is thrown away, never executed after the handshake — the 2011 command-injection class.
//! With `restrict_plaintext`, the capability list says `LOGINDISABLED` until TLS is on, and
//! LOGIN and the password mechanisms are refused with `[PRIVACYREQUIRED]`.
//!
//! The machine never performs I/O: the session feeds it client bytes, writes what
//! [`ImapFront::take_output`] returns, and answers a [`FrontEvent::Login`] with
//! [`ImapFront::accept`] or [`ImapFront::reject`].

use super::command::{self, Command};
use super::framing::{CommandFramer, Frame, Limits};
use crate::Secret;
use crate::login::{Proof, Rejection, one_line};
use crate::sasl::{self, ChallengeSeed, Exchange, Offer, SaslError, Step};

/// How many malformed or refused commands a client may send before it is disconnected.
const MAX_BAD_COMMANDS: u32 = 10;

/// What the session needs to know to build the machine.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    /// The configured pre-login capabilities; `STARTTLS`, `LOGINDISABLED` and `AUTH=` are
    /// added by the machine as the connection's state warrants.
    pub capabilities: String,
    /// Whether STARTTLS is offered (TLS is configured and the connection is not TLS yet).
    pub starttls: bool,
    /// `RestrictPlainPasswords`: no password before TLS.
    pub restrict_plaintext: bool,
    /// Whether the connection is already TLS (an implicit-TLS port).
    pub tls: bool,
    /// Whether the client presented a verified certificate (offers `AUTH=EXTERNAL`).
    pub client_certificate: bool,
    /// `CRAMs`: offer `AUTH=CRAM-MD5`, its challenges made from this seed, unique to the
    /// connection (the session makes it; tests pass a fixed one). `None`: not offered.
    pub crams: Option<ChallengeSeed>,
    /// Offer the bearer-token mechanisms `AUTH=OAUTHBEARER` and `AUTH=XOAUTH2`.
    pub bearer: bool,
    /// Text after `* OK [CAPABILITY …]` in the greeting.
    pub banner: String,
    /// Framing limits.
    pub limits: Limits,
}

/// What the session must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontEvent {
    /// The client proved who it is. Answer with [`ImapFront::accept`] or [`ImapFront::reject`].
    Login {
        /// The tag to answer on.
        tag: Vec<u8>,
        /// What the client proved.
        proof: Proof,
    },
    /// The client asked for STARTTLS and was told to begin: flush the output, run the TLS
    /// handshake, then call [`ImapFront::tls_started`].
    StartTls,
    /// The client logged out; flush the output and close.
    Logout,
    /// The client broke the protocol beyond repair; flush the output and close.
    Close,
}

#[derive(Debug)]
enum State {
    Ready,
    /// An AUTHENTICATE in progress: the client's lines go to the exchange.
    Sasl {
        tag: Vec<u8>,
        exchange: Exchange,
    },
    /// The session is verifying a proof; the exchange is kept for a bearer refusal's report.
    Verifying {
        exchange: Option<Exchange>,
    },
    AwaitingTls,
    Done,
}

/// The pre-login IMAP server machine.
#[derive(Debug)]
pub struct ImapFront {
    settings: FrontSettings,
    framer: CommandFramer,
    out: Vec<u8>,
    state: State,
    bad_commands: u32,
    /// AUTHENTICATE commands so far: numbers the CRAM-MD5 challenges.
    exchanges: u32,
}

/// The answer to a refused login.
const AUTHENTICATION_FAILED: &str = "NO [AUTHENTICATIONFAILED] Authentication failed.";

impl ImapFront {
    /// A machine whose greeting is already in the output.
    pub fn new(settings: FrontSettings) -> Self {
        let mut front = ImapFront {
            framer: CommandFramer::new(settings.limits),
            out: Vec::new(),
            state: State::Ready,
            bad_commands: 0,
            exchanges: 0,
            settings,
        };
        let greeting = format!("* OK [CAPABILITY {}] {}\r\n", front.capabilities(), front.settings.banner);
        front.out.extend_from_slice(greeting.as_bytes());
        front
    }

    /// Appends bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Bytes to send to the client now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The capability list for the connection's current state.
    pub fn capabilities(&self) -> String {
        let mut caps = self.settings.capabilities.clone();
        let mut add = |cap: &str| {
            if !caps.is_empty() {
                caps.push(' ');
            }
            caps.push_str(cap);
        };
        if self.settings.starttls && !self.settings.tls {
            add("STARTTLS");
        }
        if !self.passwords_allowed() {
            add("LOGINDISABLED");
        }
        for mechanism in self.offer().mechanisms() {
            add(&format!("AUTH={}", mechanism.name()));
        }
        caps
    }

    fn passwords_allowed(&self) -> bool {
        self.settings.tls || !self.settings.restrict_plaintext
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

    /// The TLS handshake after STARTTLS succeeded: the pre-login dialogue starts over, on
    /// the encrypted connection, with nothing left of what was sent before it.
    pub fn tls_started(&mut self, client_certificate: bool) {
        self.framer.discard_buffered();
        self.settings.tls = true;
        self.settings.client_certificate = client_certificate;
        self.state = State::Ready;
    }

    /// Processes buffered input until an event is due; `None` means "send the output and
    /// read more".
    pub fn next_event(&mut self) -> Option<FrontEvent> {
        while !matches!(self.state, State::Verifying { .. } | State::AwaitingTls | State::Done) {
            let frame = self.framer.next_frame()?;
            let event = match frame {
                Frame::ContinuationNeeded => {
                    self.out.extend_from_slice(b"+ Ready for literal data\r\n");
                    None
                }
                Frame::TooBig { tag } => self.bad(Some(&tag), "[TOOBIG] Command or literal too large"),
                Frame::Overflow => {
                    self.out.extend_from_slice(b"* BYE Command too long, closing connection\r\n");
                    self.state = State::Done;
                    Some(FrontEvent::Close)
                }
                Frame::Command(bytes) => self.on_frame(bytes.expose()),
            };
            if event.is_some() {
                return event;
            }
        }
        None
    }

    fn on_frame(&mut self, bytes: &[u8]) -> Option<FrontEvent> {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Ready => self.on_command(bytes),
            State::Sasl { tag, mut exchange } => {
                let step = exchange.respond(bytes);
                self.sasl_step(tag, exchange, step)
            }
            state @ (State::Verifying { .. } | State::AwaitingTls | State::Done) => {
                self.state = state;
                None
            }
        }
    }

    fn on_command(&mut self, bytes: &[u8]) -> Option<FrontEvent> {
        let parsed = match command::parse(bytes) {
            Ok(parsed) => parsed,
            Err(e) => return self.bad(e.tag.as_deref(), e.reason),
        };
        let tag = parsed.tag;
        match parsed.command {
            Command::Capability => {
                let caps = format!("* CAPABILITY {}\r\n", self.capabilities());
                self.out.extend_from_slice(caps.as_bytes());
                self.tagged(&tag, "OK Capability completed.");
                None
            }
            Command::Noop => {
                self.tagged(&tag, "OK NOOP completed.");
                None
            }
            Command::Id => {
                self.out.extend_from_slice(b"* ID (\"name\" \"mailmux\")\r\n");
                self.tagged(&tag, "OK ID completed.");
                None
            }
            Command::Logout => {
                self.out.extend_from_slice(b"* BYE Logging out\r\n");
                self.tagged(&tag, "OK LOGOUT completed.");
                self.state = State::Done;
                Some(FrontEvent::Logout)
            }
            Command::StartTls if self.settings.starttls && !self.settings.tls => {
                self.tagged(&tag, "OK Begin TLS negotiation now");
                // Whatever follows the STARTTLS line was sent in plaintext: never run it.
                self.framer.discard_buffered();
                self.state = State::AwaitingTls;
                Some(FrontEvent::StartTls)
            }
            Command::StartTls => self.bad(Some(&tag), "STARTTLS is not available here"),
            Command::Login { .. } if !self.passwords_allowed() => {
                self.tagged(&tag, "NO [PRIVACYREQUIRED] Plaintext login is disabled; use STARTTLS first");
                None
            }
            Command::Login { user, password } => match String::from_utf8(user) {
                Ok(login) => self.login(tag, Proof::Password { login, password }, None),
                Err(_) => self.bad(Some(&tag), SaslError::NotUtf8.text()),
            },
            Command::Authenticate { mechanism, initial } => self.authenticate(tag, &mechanism, initial),
            Command::Other(_) => self.bad(Some(&tag), "Please log in first"),
        }
    }

    fn authenticate(&mut self, tag: Vec<u8>, mechanism: &[u8], initial: Option<Secret>) -> Option<FrontEvent> {
        let serial = self.exchanges;
        self.exchanges = self.exchanges.wrapping_add(1);
        match self.offer().start(mechanism, initial.as_ref().map(Secret::expose), serial) {
            Ok((exchange, step)) => self.sasl_step(tag, exchange, step),
            Err(SaslError::NeedsTls) => {
                self.tagged(&tag, "NO [PRIVACYREQUIRED] Plaintext authentication is disabled; use STARTTLS first");
                None
            }
            Err(e) => {
                self.tagged(&tag, &format!("NO {}", e.text()));
                None
            }
        }
    }

    /// Frames what the exchange asks for.
    fn sasl_step(&mut self, tag: Vec<u8>, exchange: Exchange, step: Step) -> Option<FrontEvent> {
        match step {
            Step::Challenge(challenge) => {
                self.continuation(&challenge);
                self.state = State::Sasl { tag, exchange };
                None
            }
            Step::Done(proof) => self.login(tag, proof, Some(exchange)),
            // RFC 9051 §6.2.2: a cancelled or undecodable exchange is answered BAD.
            Step::Failed(e) => self.bad(Some(&tag), e.text()),
            Step::Refused => {
                self.tagged(&tag, AUTHENTICATION_FAILED);
                None
            }
        }
    }

    /// `+ base64` (RFC 9051 §7.5): an empty challenge is `+ ` with nothing after the space.
    fn continuation(&mut self, challenge: &[u8]) {
        self.out.extend_from_slice(b"+ ");
        self.out.extend_from_slice(sasl::encode(challenge).as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn login(&mut self, tag: Vec<u8>, proof: Proof, exchange: Option<Exchange>) -> Option<FrontEvent> {
        // A certificate names its user; any other proof without a name cannot be anyone's.
        if !matches!(proof, Proof::Certificate { .. }) && proof.login().is_empty() {
            self.tagged(&tag, AUTHENTICATION_FAILED);
            return None;
        }
        self.state = State::Verifying { exchange };
        Some(FrontEvent::Login { tag, proof })
    }

    /// The login succeeded at the store: answer the client's tag with the store's
    /// capabilities, and return the bytes the client sent after its login command (they are
    /// the store's now).
    pub fn accept(&mut self, tag: &[u8], store_capabilities: Option<&str>, text: &str) -> Vec<u8> {
        let code = store_capabilities.map(|caps| format!("[CAPABILITY {caps}] ")).unwrap_or_default();
        self.tagged(tag, &format!("OK {code}{text}"));
        self.state = State::Done;
        self.framer.take_unframed()
    }

    /// The login failed; the client may try again. A refused bearer token first gets the
    /// mechanism's error report as a challenge (RFC 7628 §3.2.2); the NO follows the client's
    /// answer to it.
    pub fn reject(&mut self, tag: &[u8], rejection: &Rejection) {
        let state = std::mem::replace(&mut self.state, State::Ready);
        if let (Rejection::AuthenticationFailed, State::Verifying { exchange: Some(mut exchange) }) = (rejection, state)
            && let Some(report) = exchange.refuse()
        {
            self.continuation(&report);
            self.state = State::Sasl { tag: tag.to_vec(), exchange };
            return;
        }
        self.answer_rejection(tag, rejection);
    }

    fn answer_rejection(&mut self, tag: &[u8], rejection: &Rejection) {
        match rejection {
            Rejection::AuthenticationFailed => self.tagged(tag, AUTHENTICATION_FAILED),
            Rejection::Unavailable { alert } => {
                if let Some(alert) = alert {
                    let line = format!("* NO [ALERT] {}\r\n", one_line(alert));
                    self.out.extend_from_slice(line.as_bytes());
                }
                self.tagged(tag, "NO [UNAVAILABLE] Mail service temporarily unavailable, try again later.");
            }
        }
    }

    /// The login failed and the client has failed too often: say so, answer the login, and
    /// close (a bearer refusal's report is skipped: nothing more will be read).
    pub fn reject_and_close(&mut self, tag: &[u8], rejection: &Rejection) {
        self.out.extend_from_slice(b"* BYE Too many authentication failures\r\n");
        self.answer_rejection(tag, rejection);
        self.state = State::Done;
    }

    /// Says goodbye before a server shutdown.
    pub fn shutdown(&mut self) {
        self.out.extend_from_slice(b"* BYE [UNAVAILABLE] Server shutting down\r\n");
        self.state = State::Done;
    }

    /// Says goodbye after the client was idle too long.
    pub fn idle_timeout(&mut self) {
        self.out.extend_from_slice(b"* BYE Autologout; idle for too long\r\n");
        self.state = State::Done;
    }

    fn tagged(&mut self, tag: &[u8], rest: &str) {
        self.out.extend_from_slice(tag);
        self.out.push(b' ');
        self.out.extend_from_slice(rest.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn bad(&mut self, tag: Option<&[u8]>, reason: &str) -> Option<FrontEvent> {
        self.state = State::Ready;
        self.bad_commands += 1;
        self.tagged(tag.unwrap_or(b"*"), &format!("BAD {reason}"));
        if self.bad_commands >= MAX_BAD_COMMANDS {
            self.out.extend_from_slice(b"* BYE Too many invalid commands\r\n");
            self.state = State::Done;
            return Some(FrontEvent::Close);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> FrontSettings {
        FrontSettings {
            capabilities: "IMAP4rev1 LITERAL+ SASL-IR ID".into(),
            starttls: false,
            restrict_plaintext: false,
            tls: false,
            client_certificate: false,
            crams: None,
            bearer: false,
            banner: "mailmux ready".into(),
            limits: Limits::default(),
        }
    }

    fn front() -> ImapFront {
        ImapFront::new(settings())
    }

    /// Feeds `input` in chunks of `chunk` bytes and returns the output and the first event.
    fn run(f: &mut ImapFront, input: &[u8], chunk: usize) -> (String, Option<FrontEvent>) {
        let mut event = None;
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            f.feed(piece);
            if let Some(e) = f.next_event() {
                event = Some(e);
                break;
            }
            out.extend(f.take_output());
        }
        out.extend(f.take_output());
        (String::from_utf8(out).unwrap(), event)
    }

    pub(super) fn expect_login(event: Option<FrontEvent>) -> (Vec<u8>, Proof) {
        match event {
            Some(FrontEvent::Login { tag, proof }) => (tag, proof),
            other => panic!("expected a login, got {other:?}"),
        }
    }

    pub(super) fn password(login: &str, password: &str) -> Proof {
        Proof::Password { login: login.into(), password: Secret::new(password) }
    }

    #[test]
    fn greeting_carries_capabilities() {
        let (out, _) = run(&mut front(), b"", 1);
        assert_eq!(out, "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN] mailmux ready\r\n");
    }

    #[test]
    fn transcript_before_login() {
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, b"a CAPABILITY\r\nb NOOP\r\nc ID NIL\r\nd SELECT INBOX\r\n", 3);
        assert_eq!(ev, None);
        assert_eq!(
            out,
            "* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN\r\na OK Capability completed.\r\n\
             b OK NOOP completed.\r\n* ID (\"name\" \"mailmux\")\r\nc OK ID completed.\r\n\
             d BAD Please log in first\r\n"
        );
    }

    #[test]
    fn login_with_sync_literal_asks_for_continuation() {
        for chunk in [1, 2, 5, 64] {
            let mut f = front();
            f.take_output();
            let (out, ev) = run(&mut f, b"a1 LOGIN {4}\r\nuser {2}\r\npw\r\n", chunk);
            assert_eq!(out.matches("+ Ready").count(), 2, "chunk {chunk}");
            assert_eq!(expect_login(ev), (b"a1".to_vec(), password("user", "pw")));
        }
    }

    #[test]
    fn authenticate_plain_with_ir_and_with_continuation() {
        let mut f = front();
        f.take_output();
        let (_, ev) = run(&mut f, b"a AUTHENTICATE PLAIN AGpvZQBwdw==\r\n", 4);
        assert_eq!(expect_login(ev), (b"a".to_vec(), password("joe", "pw")));

        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, b"b AUTHENTICATE plain\r\nAGpvZQBwdw==\r\n", 64);
        assert_eq!(out, "+ \r\n");
        assert_eq!(expect_login(ev).1, password("joe", "pw"));
    }

    #[test]
    fn authenticate_login_two_steps_and_ir() {
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, b"a AUTHENTICATE LOGIN\r\nam9l\r\ncHc=\r\n", 64);
        assert_eq!(out, "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n");
        assert_eq!(expect_login(ev), (b"a".to_vec(), password("joe", "pw")));
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, b"a AUTHENTICATE LOGIN am9l\r\ncHc=\r\n", 64);
        assert_eq!(out, "+ UGFzc3dvcmQ6\r\n");
        assert_eq!(expect_login(ev).1, password("joe", "pw"));
    }

    #[test]
    fn cancel_and_garbage_in_sasl() {
        let mut f = front();
        f.take_output();
        let (out, ev) =
            run(&mut f, b"a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE PLAIN\r\n%%%\r\nc AUTHENTICATE CRAM-MD5\r\n", 64);
        assert_eq!(ev, None);
        assert_eq!(
            out,
            "+ \r\na BAD Authentication cancelled\r\n+ \r\nb BAD Invalid base64 data\r\n\
             c NO Unsupported authentication mechanism\r\n"
        );
    }

    #[test]
    fn reject_then_retry_then_accept_hands_over_pipelined_bytes() {
        let mut f = front();
        f.take_output();
        let (_, ev) = run(&mut f, b"a LOGIN joe bad\r\n", 64);
        let (tag, _) = expect_login(ev);
        f.reject(&tag, &Rejection::AuthenticationFailed);
        assert_eq!(
            String::from_utf8(f.take_output()).unwrap(),
            "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
        f.feed(b"b LOGIN joe good\r\nc SELECT INBOX\r\n");
        let (tag, _) = expect_login(f.next_event());
        assert_eq!(f.next_event(), None, "nothing runs while the login is verified");
        let rest = f.accept(&tag, Some("IMAP4rev1 IDLE"), "Logged in");
        assert_eq!(String::from_utf8(f.take_output()).unwrap(), "b OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
        assert_eq!(rest, b"c SELECT INBOX\r\n".to_vec());
        // Handed over: the machine answers nothing more.
        f.feed(b"d NOOP\r\n");
        assert_eq!(f.next_event(), None);
        assert!(f.take_output().is_empty());
    }

    #[test]
    fn the_last_failure_says_goodbye() {
        let mut f = front();
        f.take_output();
        f.feed(b"a LOGIN joe bad\r\nb LOGIN joe again\r\n");
        let (tag, _) = expect_login(f.next_event());
        f.reject_and_close(&tag, &Rejection::AuthenticationFailed);
        assert_eq!(
            String::from_utf8(f.take_output()).unwrap(),
            "* BYE Too many authentication failures\r\na NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        );
        assert_eq!(f.next_event(), None, "nothing more is read");
    }

    #[test]
    fn unavailable_carries_alert() {
        let mut f = front();
        f.take_output();
        f.reject(b"t", &Rejection::Unavailable { alert: Some("store down\r\nx".into()) });
        assert_eq!(
            String::from_utf8(f.take_output()).unwrap(),
            "* NO [ALERT] store down  x\r\nt NO [UNAVAILABLE] Mail service temporarily unavailable, try again later.\r\n"
        );
    }

    #[test]
    fn too_many_bad_commands_close() {
        let mut f = front();
        f.take_output();
        let input = b"x\r\n".repeat(20);
        let (out, ev) = run(&mut f, &input, 64);
        assert_eq!(ev, Some(FrontEvent::Close));
        assert!(out.ends_with("* BYE Too many invalid commands\r\n"));
    }

    #[test]
    fn overlong_line_closes() {
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, &vec![b'a'; 70_000], 1000);
        assert_eq!(ev, Some(FrontEvent::Close));
        assert!(out.contains("* BYE"));
    }

    #[test]
    fn rfc_2971_id_at_its_limits_is_answered() {
        // 30 pairs, 30-octet fields, 1,024-octet values (RFC 2971 §3.3).
        let pairs: Vec<String> = (0..30).map(|i| format!("\"{:0>30}\" \"{}\"", i, "v".repeat(1024))).collect();
        let command = format!("i ID ({})\r\n", pairs.join(" "));
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, command.as_bytes(), 4096);
        assert_eq!(ev, None);
        assert!(out.ends_with("i OK ID completed.\r\n"), "{out}");
    }

    #[test]
    fn too_large_literals_are_refused_in_step() {
        let mut f = front();
        f.take_output();
        let mut input = b"a LOGIN joe {100000+}\r\n".to_vec();
        input.extend(vec![b'x'; 100_000]);
        input.extend_from_slice(b"\r\nb LOGIN {999999}\r\nc NOOP\r\n");
        let (out, ev) = run(&mut f, &input, 4096);
        assert_eq!(ev, None);
        assert_eq!(
            out,
            "a BAD [TOOBIG] Command or literal too large\r\nb BAD [TOOBIG] Command or literal too large\r\n\
             c OK NOOP completed.\r\n"
        );
    }

    #[test]
    fn debug_output_never_shows_what_the_client_typed() {
        let mut f = front();
        f.take_output();
        f.feed(b"a LOGIN joe hunter2\r\nb LOGIN joe swordfish");
        let _ = f.next_event();
        let printed = format!("{f:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("swordfish"), "{printed}");
    }

    #[test]
    fn logout() {
        let mut f = front();
        f.take_output();
        let (out, ev) = run(&mut f, b"z LOGOUT\r\n", 64);
        assert_eq!(ev, Some(FrontEvent::Logout));
        assert_eq!(out, "* BYE Logging out\r\nz OK LOGOUT completed.\r\n");
    }
}

#[cfg(test)]
mod tls_tests {
    use super::tests::{expect_login, settings};
    use super::*;

    #[test]
    fn starttls_discards_pipelined_commands_and_restarts() {
        let mut f = ImapFront::new(FrontSettings { starttls: true, restrict_plaintext: true, ..settings() });
        let greeting = String::from_utf8(f.take_output()).unwrap();
        assert!(greeting.contains("STARTTLS LOGINDISABLED]"), "{greeting}");
        // The injection: LOGIN pipelined after STARTTLS in the same plaintext packet.
        f.feed(b"a STARTTLS\r\nb LOGIN joe secret\r\n");
        assert_eq!(f.next_event(), Some(FrontEvent::StartTls));
        assert_eq!(f.take_output(), b"a OK Begin TLS negotiation now\r\n");
        assert_eq!(f.next_event(), None, "nothing runs before the handshake");
        f.tls_started(false);
        assert_eq!(f.next_event(), None, "the pipelined LOGIN is gone");
        assert!(f.take_output().is_empty());
        f.feed(b"c CAPABILITY\r\n");
        assert_eq!(f.next_event(), None);
        let caps = String::from_utf8(f.take_output()).unwrap();
        assert!(!caps.contains("STARTTLS") && !caps.contains("LOGINDISABLED") && caps.contains("AUTH=PLAIN"), "{caps}");
    }

    #[test]
    fn restricted_plaintext_refuses_passwords_before_tls() {
        let mut f = ImapFront::new(FrontSettings { starttls: true, restrict_plaintext: true, ..settings() });
        f.take_output();
        f.feed(b"a LOGIN joe pw\r\nb AUTHENTICATE PLAIN AGpvZQBwdw==\r\nc STARTTLS extra\r\n");
        assert_eq!(f.next_event(), None);
        let out = String::from_utf8(f.take_output()).unwrap();
        assert!(out.starts_with("a NO [PRIVACYREQUIRED]"), "{out}");
        assert!(out.contains("b NO [PRIVACYREQUIRED]"), "{out}");
        assert!(out.contains("c BAD"), "{out}");
    }

    #[test]
    fn starttls_refused_when_not_offered_or_already_tls() {
        for s in [settings(), FrontSettings { starttls: true, tls: true, ..settings() }] {
            let mut f = ImapFront::new(s);
            f.take_output();
            f.feed(b"a STARTTLS\r\n");
            assert_eq!(f.next_event(), None);
            assert_eq!(f.take_output(), b"a BAD STARTTLS is not available here\r\n");
        }
    }

    #[test]
    fn external_only_with_a_certificate() {
        let mut f = ImapFront::new(settings());
        f.take_output();
        f.feed(b"a AUTHENTICATE EXTERNAL =\r\n");
        assert_eq!(f.next_event(), None);
        assert_eq!(f.take_output(), b"a NO Unsupported authentication mechanism\r\n");

        let with_cert = || FrontSettings { tls: true, client_certificate: true, ..settings() };
        let mut f = ImapFront::new(with_cert());
        assert!(String::from_utf8(f.take_output()).unwrap().contains("AUTH=EXTERNAL"));
        f.feed(b"a AUTHENTICATE EXTERNAL =\r\n");
        assert_eq!(expect_login(f.next_event()).1, Proof::Certificate { authzid: None });
        let mut f = ImapFront::new(with_cert());
        f.take_output();
        f.feed(b"a AUTHENTICATE EXTERNAL\r\nam9l\r\n");
        assert_eq!(expect_login(f.next_event()).1, Proof::Certificate { authzid: Some("joe".into()) });
        assert_eq!(f.take_output(), b"+ \r\n");
    }
}

#[cfg(test)]
#[path = "front_sasl_tests.rs"]
mod sasl_tests;
