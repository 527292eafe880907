//! `imap_front` and `pop3_front`: the client-facing machines on arbitrary client bytes.
//!
//! Input: `[settings, client bytes…]`. The first byte is both the read size (0 reads one byte
//! at a time) and the connection's settings, bits from [`settings`] (a clear bit turns the
//! feature on). Logins are refused twice, then accepted, which hands the connection over.
//!
//! Properties checked on every input, beyond "no panic":
//! * after STARTTLS/STLS is answered, nothing the client pipelined in plaintext runs after the
//!   handshake;
//! * with `RestrictPlainPasswords` and no TLS, no password or bearer token reaches the session;
//! * no proof of a kind that is not offered (CRAM-MD5/APOP without `CRAMs`, tokens without
//!   bearer), and a challenge-response proof carries a challenge the machine issued;
//! * every answer is whole CRLF lines (no bare LF, nothing after the last CRLF);
//! * answers stay proportional to the input (no amplification loop);
//! * POP3: the bytes handed to the store after a login are the client's last ones.

use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};
use mailmux_proto::pop3::front::{Pop3Event, Pop3Front, Pop3Settings};
use mailmux_proto::sasl::ChallengeSeed;
use mailmux_proto::{Proof, Rejection};

use crate::whole_lines;

/// The bits of the first input byte; each turns its feature on when clear.
pub mod settings {
    /// Clear: STARTTLS/STLS is offered.
    pub const NO_STARTTLS: u8 = 0x01;
    /// Clear: `RestrictPlainPasswords` (no password before TLS).
    pub const PLAINTEXT_ALLOWED: u8 = 0x02;
    /// Clear: the client presented a certificate (EXTERNAL offered).
    pub const NO_CERTIFICATE: u8 = 0x04;
    /// Clear: the client presents a certificate in the STARTTLS handshake.
    pub const NO_CERTIFICATE_AFTER_TLS: u8 = 0x08;
    /// Clear: `CRAMs` (CRAM-MD5, and APOP with a timestamp in the POP3 greeting).
    pub const NO_CRAMS: u8 = 0x10;
    /// Clear: bearer tokens (OAUTHBEARER, XOAUTH2).
    pub const NO_BEARER: u8 = 0x20;
}

/// The fixed seed of the harnesses' challenges: `<1896.697170952@fuzz.example>` is the APOP
/// timestamp, `<1896.697170952.n@fuzz.example>` the n-th CRAM-MD5 challenge.
pub fn challenge_seed() -> ChallengeSeed {
    ChallengeSeed::new("1896.697170952", "fuzz.example")
}

/// How a front session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrontEnd {
    /// The input ran out with the machine waiting for more.
    #[default]
    Waiting,
    /// A login was accepted; the connection is the store's now.
    Accepted,
    /// LOGOUT / QUIT.
    Logout,
    /// The machine closed the connection (too long, too many bad commands).
    Close,
}

/// What one input did; the seed tests compare it with what the seed was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrontOutcome {
    /// Login events (credentials handed to the session).
    pub logins: u32,
    /// Whether a STARTTLS/STLS handshake ran.
    pub tls: bool,
    /// How it ended.
    pub end: FrontEnd,
}

struct Settings {
    starttls: bool,
    restrict: bool,
    certificate: bool,
    certificate_after_tls: bool,
    crams: bool,
    bearer: bool,
    read_size: usize,
}

impl Settings {
    fn new(first: u8) -> Self {
        Settings {
            starttls: first & settings::NO_STARTTLS == 0,
            restrict: first & settings::PLAINTEXT_ALLOWED == 0,
            certificate: first & settings::NO_CERTIFICATE == 0,
            certificate_after_tls: first & settings::NO_CERTIFICATE_AFTER_TLS == 0,
            crams: first & settings::NO_CRAMS == 0,
            bearer: first & settings::NO_BEARER == 0,
            read_size: usize::from(first).max(1),
        }
    }

    /// Checks a proof the machine handed over against what the connection offers.
    fn check(&self, proof: &Proof, tls: bool) {
        if self.restrict && !tls {
            assert!(!proof.exposes_secret(), "a {} before TLS despite the restriction", proof.mechanism_name());
        }
        match proof {
            Proof::ChallengeResponse { challenge, digest, .. } => {
                assert!(self.crams, "a challenge-response proof without CRAMs");
                let challenge = String::from_utf8_lossy(challenge.expose());
                assert!(
                    challenge.starts_with("<1896.697170952") && challenge.ends_with("@fuzz.example>"),
                    "a challenge the machine did not issue: {challenge}"
                );
                assert!(digest.expose().iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && digest.len() == 32);
            }
            Proof::BearerToken { .. } => assert!(self.bearer, "a bearer token without bearer tokens offered"),
            Proof::Certificate { .. } => assert!(self.certificate || self.certificate_after_tls),
            Proof::Password { .. } => {}
        }
    }
}

/// Answers are at most this many bytes per input byte, plus [`AMPLIFICATION_BASE`].
const AMPLIFICATION: usize = 64;
const AMPLIFICATION_BASE: usize = 200;

/// The harness of the `imap_front` target.
pub fn imap_front(data: &[u8]) -> FrontOutcome {
    let Some((&first, input)) = data.split_first() else { return FrontOutcome::default() };
    let s = Settings::new(first);
    let mut front = ImapFront::new(FrontSettings {
        capabilities: "IMAP4rev1 ID LITERAL+ SASL-IR".into(),
        starttls: s.starttls,
        restrict_plaintext: s.restrict,
        tls: false,
        client_certificate: s.certificate,
        crams: s.crams.then(challenge_seed),
        bearer: s.bearer,
        banner: "fuzz".into(),
        limits: Limits { max_line: 256, max_literal: 256, max_command: 512 },
    });
    let mut outcome = FrontOutcome::default();
    let mut reads = input.chunks(s.read_size);
    let mut written = 0;
    loop {
        let event = front.next_event();
        let out = front.take_output();
        assert!(whole_lines(&out), "not whole CRLF lines: {:?}", String::from_utf8_lossy(&out));
        written += out.len();
        match event {
            None => match reads.next() {
                Some(read) => front.feed(read),
                None => break,
            },
            Some(FrontEvent::StartTls) => {
                assert!(s.starttls && !outcome.tls, "STARTTLS accepted where it is not offered");
                assert!(out.ends_with(b" OK Begin TLS negotiation now\r\n"), "{:?}", String::from_utf8_lossy(&out));
                front.tls_started(s.certificate_after_tls);
                outcome.tls = true;
                assert_eq!(front.next_event(), None, "a command pipelined before the handshake ran after it");
                assert!(front.take_output().is_empty(), "an answer to a command pipelined before the handshake");
            }
            Some(FrontEvent::Login { tag, proof }) => {
                outcome.logins += 1;
                s.check(&proof, outcome.tls);
                if outcome.logins % 3 == 0 {
                    front.accept(&tag, Some("IMAP4rev1 IDLE"), "Logged in");
                    let out = front.take_output();
                    assert!(whole_lines(&out), "not whole CRLF lines: {:?}", String::from_utf8_lossy(&out));
                    outcome.end = FrontEnd::Accepted;
                    break;
                }
                // The operator's alert must not break the line it is put in.
                let rejection = match outcome.logins % 3 {
                    1 => Rejection::AuthenticationFailed,
                    _ => Rejection::Unavailable { alert: Some("store down\n* OK injected".into()) },
                };
                front.reject(&tag, &rejection);
            }
            Some(FrontEvent::Logout) => {
                outcome.end = FrontEnd::Logout;
                break;
            }
            Some(FrontEvent::Close) => {
                outcome.end = FrontEnd::Close;
                break;
            }
        }
    }
    assert!(written <= AMPLIFICATION_BASE + AMPLIFICATION * input.len(), "{written} bytes out for {} in", input.len());
    outcome
}

/// The harness of the `pop3_front` target.
pub fn pop3_front(data: &[u8]) -> FrontOutcome {
    let Some((&first, input)) = data.split_first() else { return FrontOutcome::default() };
    let s = Settings::new(first);
    let mut front = Pop3Front::new(Pop3Settings {
        banner: "fuzz".into(),
        stls: s.starttls,
        restrict_plaintext: s.restrict,
        tls: false,
        client_certificate: s.certificate,
        crams: s.crams.then(challenge_seed),
        bearer: s.bearer,
        capabilities: vec!["TOP".into(), "UIDL".into()],
    });
    let mut outcome = FrontOutcome::default();
    let mut reads = input.chunks(s.read_size);
    let mut written = 0;
    // What the client sent since the last handshake.
    let mut fed = Vec::new();
    loop {
        let event = front.next_event();
        let out = front.take_output();
        assert!(whole_lines(&out), "not whole CRLF lines: {:?}", String::from_utf8_lossy(&out));
        written += out.len();
        match event {
            None => match reads.next() {
                Some(read) => {
                    front.feed(read);
                    fed.extend_from_slice(read);
                }
                None => break,
            },
            Some(Pop3Event::StartTls) => {
                assert!(s.starttls && !outcome.tls, "STLS accepted where it is not offered");
                assert!(out.ends_with(b"+OK Begin TLS negotiation\r\n"), "{:?}", String::from_utf8_lossy(&out));
                front.tls_started(s.certificate_after_tls);
                outcome.tls = true;
                fed.clear();
                assert_eq!(front.next_event(), None, "a command pipelined before the handshake ran after it");
                assert!(front.take_output().is_empty(), "an answer to a command pipelined before the handshake");
            }
            Some(Pop3Event::Login(proof)) => {
                outcome.logins += 1;
                s.check(&proof, outcome.tls);
                if outcome.logins % 3 == 0 {
                    let rest = front.accept("Logged in.");
                    assert!(fed.ends_with(&rest), "the bytes handed to the store are not the client's last ones");
                    let out = front.take_output();
                    assert!(whole_lines(&out), "not whole CRLF lines: {:?}", String::from_utf8_lossy(&out));
                    outcome.end = FrontEnd::Accepted;
                    break;
                }
                // A refused token gets its error report first; the alert must not break its line.
                let rejection = match outcome.logins % 3 {
                    1 => Rejection::AuthenticationFailed,
                    _ => Rejection::Unavailable { alert: Some("store down\n+OK injected".into()) },
                };
                front.reject(&rejection);
            }
            Some(Pop3Event::Quit) => {
                outcome.end = FrontEnd::Logout;
                break;
            }
            Some(Pop3Event::Close) => {
                outcome.end = FrontEnd::Close;
                break;
            }
        }
    }
    assert!(written <= AMPLIFICATION_BASE + AMPLIFICATION * input.len(), "{written} bytes out for {} in", input.len());
    outcome
}
