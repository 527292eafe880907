//! `store_replay`: both store-side login machines against a hostile store.
//!
//! Input: `[mode, chunk, store bytes…]`. `chunk` is how many store bytes each read returns (0:
//! all at once); `mode` is the configuration, bits from [`mode`]. The machine is driven the way
//! `mailmux::store::drive` drives it: process, write what it queued, then act on the event or read.
//!
//! Properties checked on every input, beyond "no panic":
//! * with STARTTLS configured, the only bytes written before the handshake are the STARTTLS
//!   command, and no login succeeds without the handshake;
//! * bytes the store pipelined before the handshake are gone after it;
//! * the password (in any quoting), the PLAIN blob or the bearer message is written at most once,
//!   and a bearer token only to a store that named its mechanism;
//! * while the machine waits for input it holds at most its line cap plus one byte;
//! * the bytes handed on after the login are the last ones the store sent;
//! * a POP3 `XCLIENT` goes out at most once, only when asked for and to a store that offered it.

use mailmux_proto::imap::replay::{self as imap, ImapReplay, ReplayEvent};
use mailmux_proto::pop3::replay::{self as pop3, Pop3Replay, Pop3ReplayEvent};
use mailmux_proto::sasl::bearer;
use mailmux_proto::{BearerMechanism, ReplayCredentials, ReplayMechanism, Secret, StoreFailure, sasl};

use crate::occurrences;

/// The bits of the first input byte.
pub mod mode {
    /// SASL PLAIN (`AUTHENTICATE PLAIN`, `AUTH PLAIN`) instead of `LOGIN`, `USER`/`PASS`.
    pub const PLAIN: u8 = 0x01;
    /// POP3 instead of IMAP.
    pub const POP3: u8 = 0x02;
    /// `StoreAdmin` logs in on the user's behalf (authzid; forces PLAIN).
    pub const ADMIN: u8 = 0x04;
    /// Both [`PLAIN`] and [`ADMIN`] (which would be ADMIN alone, since ADMIN forces PLAIN): the
    /// client's bearer token instead of a password, the password bits choosing it from
    /// [`super::TOKENS`].
    pub const BEARER: u8 = PLAIN | ADMIN;
    /// `BacksideStartTLS`: STARTTLS or STLS before the login.
    pub const STARTTLS: u8 = 0x08;
    /// `ForwardClientAddress`: an IMAP `ID` or a POP3 `XCLIENT` with the client's address ahead
    /// of the login, where the store offers it.
    pub const CLIENT_ID: u8 = 0x10;
    /// Two bits choosing the password from [`super::PASSWORDS`].
    pub const PASSWORD: u8 = 0x60;
    /// Each 0xFF byte of the store's bytes stands for [`super::EXPANSION`] bytes of `x` (up to
    /// [`super::MAX_EXPANSIONS`] of them), so short inputs reach the line caps.
    pub const EXPAND: u8 = 0x80;

    /// The password bits for [`super::PASSWORDS`]`[i]`.
    pub const fn password(i: u8) -> u8 {
        (i << 5) & PASSWORD
    }
}

/// Every password contains this, so the harness finds it on the wire in any quoting.
pub const PASSWORD_MARK: &[u8] = b"S3cr3t";

/// The passwords [`mode::PASSWORD`] chooses from.
pub const PASSWORDS: [&str; 4] = [
    // A quoted string in IMAP, a plain PASS line in POP3.
    "S3cr3t-pw",
    // 8-bit: an IMAP literal (LITERAL+ or synchronising).
    "S3cr3t-p\u{e4}ss",
    // A quoted string with escapes.
    "S3cr3t \"q\" \\ pw",
    // CR/LF: an IMAP literal; POP3 must switch to AUTH PLAIN rather than send two lines.
    "S3cr3t\r\nDELE 1",
];

/// The tokens [`mode::BEARER`] replays, chosen by the password bits: OAUTHBEARER and XOAUTH2,
/// short (sent with the AUTH line) and long (a POP3 AUTH line over 255 octets waits for `+`).
pub const TOKENS: [(BearerMechanism, &str); 4] = [
    (BearerMechanism::OAuthBearer, "S3cr3t-tok.en~"),
    (BearerMechanism::XOAuth2, "ya29.S3cr3t-tok"),
    (
        BearerMechanism::OAuthBearer,
        concat!(
            "S3cr3t",
            "-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token"
        ),
    ),
    (
        BearerMechanism::XOAuth2,
        concat!(
            "ya29.S3cr3t",
            "-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token-long-token"
        ),
    ),
];

/// Bytes of `x` one 0xFF stands for under [`mode::EXPAND`].
pub const EXPANSION: usize = 1024;
/// At most this many 0xFF bytes are expanded (more than the IMAP cap needs).
pub const MAX_EXPANSIONS: usize = 40;

/// The client address fields mailmux sends with `ForwardClientAddress` (Dovecot's names).
pub const CLIENT_ID_FIELDS: [(&str, &str); 4] = [
    ("x-originating-ip", "192.0.2.7"),
    ("x-originating-port", "40000"),
    ("x-connected-ip", "127.0.0.1"),
    ("x-connected-port", "143"),
];

/// The client address mailmux sends to POP3 stores by `XCLIENT` with `ForwardClientAddress`.
pub const CLIENT_ADDRESS: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)), 40000);

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreEnd {
    /// The input ran out with the machine waiting for more.
    #[default]
    Waiting,
    /// `LoggedIn`.
    LoggedIn,
    /// `Failed(Rejected)`: the store refused the credentials.
    Rejected,
    /// `Failed(Temporary)`.
    Temporary,
    /// `Failed(Protocol)`.
    Protocol,
}

/// What one input did; the seed tests compare it with what the seed was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOutcome {
    /// How it ended.
    pub end: StoreEnd,
    /// Whether the machine asked for TLS and the (pretend) handshake ran.
    pub tls: bool,
    /// Whether the credentials went out.
    pub sent_credentials: bool,
}

/// The harness of the `store_replay` target.
pub fn store_replay(data: &[u8]) -> StoreOutcome {
    let [mode, chunk, store @ ..] = data else {
        return StoreOutcome::default();
    };
    let (mode, chunk) = (*mode, usize::from(*chunk));
    let expanded;
    let store = if mode & mode::EXPAND != 0 {
        expanded = expand(store);
        &expanded[..]
    } else {
        store
    };
    let starttls = mode & mode::STARTTLS != 0;
    let password_index = usize::from((mode & mode::PASSWORD) >> 5);
    let password = PASSWORDS[password_index];
    let user = if password_index == 1 { "j\u{f6}e@example.org" } else { "joe@example.org" };
    let bearer = (mode & mode::BEARER == mode::BEARER).then(|| TOKENS[password_index]);
    let (credentials, blob) = match bearer {
        Some((mechanism, token)) => {
            let token = Secret::new(token);
            let blob = bearer::encode(mechanism, user, &token);
            (ReplayCredentials::Bearer { user: user.into(), token, mechanism }, blob)
        }
        None => {
            let (authzid, authcid) = match mode & mode::ADMIN {
                0 => (None, user),
                _ => (Some(user.to_owned()), "mailmux-admin"),
            };
            let password = Secret::new(password);
            let blob = sasl::encode_plain(authzid.as_deref().unwrap_or(""), authcid, &password);
            (ReplayCredentials::Password { authzid, authcid: authcid.into(), password }, blob)
        }
    };
    let mechanism = if mode & mode::PLAIN != 0 { ReplayMechanism::Plain } else { ReplayMechanism::Login };
    let mut m = if mode & mode::POP3 != 0 {
        let m = Pop3Replay::new(mechanism, credentials, starttls);
        Machine::Pop3(if mode & mode::CLIENT_ID != 0 { m.with_client_address(CLIENT_ADDRESS) } else { m })
    } else {
        let m = ImapReplay::new(mechanism, credentials, starttls);
        Machine::Imap(if mode & mode::CLIENT_ID != 0 {
            m.with_client_id(CLIENT_ID_FIELDS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
        } else {
            m
        })
    };

    let mut reads = store.chunks(if chunk == 0 { store.len().max(1) } else { chunk });
    // Everything written to the store, and everything read from it since the last handshake.
    let mut wire = Vec::new();
    let mut fed = Vec::new();
    let mut tls = false;
    let end = loop {
        let event = m.next_event();
        wire.extend(m.take_output());
        match event {
            None => {
                assert!(
                    m.buffered_len() <= m.max_line() + 1,
                    "{} bytes buffered while waiting; the cap is {} + 1",
                    m.buffered_len(),
                    m.max_line()
                );
                let Some(read) = reads.next() else { break StoreEnd::Waiting };
                m.feed(read);
                fed.extend_from_slice(read);
            }
            Some(Event::StartTls) => {
                assert!(starttls && !tls, "StartTls event without STARTTLS configured, or twice");
                assert!(
                    wire == m.starttls_command(),
                    "only the STARTTLS command may go out before the handshake, not {:?}",
                    String::from_utf8_lossy(&wire)
                );
                m.tls_started();
                tls = true;
                fed.clear();
                assert_eq!(m.buffered_len(), 0, "plaintext pipelined before the handshake survived it");
            }
            Some(Event::LoggedIn) => {
                assert!(tls || !starttls, "logged in without the TLS handshake STARTTLS asked for");
                let rest = m.take_rest();
                assert!(fed.ends_with(&rest), "the bytes handed to the client are not the store's last ones");
                break StoreEnd::LoggedIn;
            }
            Some(Event::Failed(StoreFailure::Rejected { .. })) => break StoreEnd::Rejected,
            Some(Event::Failed(StoreFailure::Temporary { .. })) => break StoreEnd::Temporary,
            Some(Event::Failed(StoreFailure::Protocol { .. })) => break StoreEnd::Protocol,
        }
    };
    if starttls && !tls {
        assert!(
            wire.is_empty() || wire == m.starttls_command(),
            "wrote {:?} before TLS",
            String::from_utf8_lossy(&wire)
        );
    }
    let xclients = occurrences(&wire, b"XCLIENT ");
    assert!(xclients <= 1, "XCLIENT went out {xclients} times");
    if xclients == 1 {
        assert!(mode & (mode::POP3 | mode::CLIENT_ID) == mode::POP3 | mode::CLIENT_ID, "XCLIENT without being asked");
        assert!(
            store.windows(7).any(|w| w.eq_ignore_ascii_case(b"XCLIENT")),
            "XCLIENT went to a store that never offered it"
        );
    }
    let sent = occurrences(&wire, PASSWORD_MARK) + occurrences(&wire, blob.expose());
    assert!(sent <= 1, "the credentials went out {sent} times");
    if let (Some((mechanism, _)), 1) = (bearer, sent) {
        let name = mechanism.as_str().as_bytes();
        assert!(
            store.windows(name.len()).any(|w| w.eq_ignore_ascii_case(name)),
            "a {} token went to a store that never named the mechanism",
            mechanism.as_str()
        );
    }
    StoreOutcome { end, tls, sent_credentials: sent == 1 }
}

/// Replaces each 0xFF (up to [`MAX_EXPANSIONS`]) with [`EXPANSION`] bytes of `x`.
fn expand(store: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(store.len());
    let mut expansions = 0;
    for &b in store {
        if b == 0xff && expansions < MAX_EXPANSIONS {
            out.resize(out.len() + EXPANSION, b'x');
            expansions += 1;
        } else {
            out.push(b);
        }
    }
    out
}

/// The two machines behind one face, as in `mailmux::store`.
enum Machine {
    Imap(ImapReplay),
    Pop3(Pop3Replay),
}

enum Event {
    LoggedIn,
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

    fn take_output(&mut self) -> Vec<u8> {
        match self {
            Machine::Imap(m) => m.take_output().expose().to_vec(),
            Machine::Pop3(m) => m.take_output().expose().to_vec(),
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

    fn buffered_len(&self) -> usize {
        match self {
            Machine::Imap(m) => m.buffered_len(),
            Machine::Pop3(m) => m.buffered_len(),
        }
    }

    fn max_line(&self) -> usize {
        match self {
            Machine::Imap(_) => imap::MAX_LINE,
            Machine::Pop3(_) => pop3::MAX_LINE,
        }
    }

    fn starttls_command(&self) -> &'static [u8] {
        match self {
            Machine::Imap(_) => b"M0 STARTTLS\r\n",
            Machine::Pop3(_) => b"STLS\r\n",
        }
    }

    fn next_event(&mut self) -> Option<Event> {
        match self {
            Machine::Imap(m) => m.next_event().map(|e| match e {
                ReplayEvent::LoggedIn { .. } => Event::LoggedIn,
                ReplayEvent::StartTls => Event::StartTls,
                ReplayEvent::Failed(f) => Event::Failed(f),
            }),
            Machine::Pop3(m) => m.next_event().map(|e| match e {
                Pop3ReplayEvent::LoggedIn { .. } => Event::LoggedIn,
                Pop3ReplayEvent::StartTls => Event::StartTls,
                Pop3ReplayEvent::Failed(f) => Event::Failed(f),
            }),
        }
    }
}
