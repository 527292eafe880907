//! Logging into a store with the client's credentials (the MMP's "replay").
//!
//! ```text
//!  Greeting ──"* OK"──▶ [STARTTLS: "M0 STARTTLS" ─"M0 OK"─▶ StartTls event ─tls_started─▶]
//!                       send LOGIN / AUTHENTICATE PLAIN ──▶ Awaiting ──"M1 OK"──┬─▶ LoggedIn
//!     │                  (wait for "+" before each sync literal                 │ no caps seen:
//!     │                   or the PLAIN response without SASL-IR)                └─▶ "M2 CAPABILITY" ─▶ LoggedIn
//!     └─ "* BYE" / "* PREAUTH" / garbage ─▶ Failed
//!
//!  bearer token: [no capability list yet: "M3 CAPABILITY" ─"M3 OK"─▶] AUTH=<mechanism> advertised?
//!     no ─▶ Failed (Protocol);  yes ─▶ "M1 AUTHENTICATE OAUTHBEARER|XOAUTH2 [ir]" ─▶ Awaiting
//!     Awaiting ──"+ {error report}"──▶ answer (OAUTHBEARER "AQ==", XOAUTH2 empty) ─▶ Reported ──"M1 NO"──▶ Failed
//! ```
//!
//! The store's capabilities (from the greeting is not enough: they change after login) are
//! taken from the tagged OK's `[CAPABILITY …]` code or from an explicit CAPABILITY command,
//! so the client sees the store's real post-login capabilities.

use std::collections::VecDeque;

use super::response::{Addressee, ResponseLine, Status};
use crate::Secret;
use crate::line::LineBuffer;
pub use crate::login::{ReplayCredentials, ReplayMechanism, StoreFailure};
use crate::sasl::{self, bearer};

const STARTTLS_TAG: &[u8] = b"M0";
/// CAPABILITY before a bearer login, when no list came with the greeting (or after STARTTLS).
const PRE_CAPABILITY_TAG: &[u8] = b"M3";
/// The ID command that carries the client's address; its answer does not matter.
const ID_TAG: &[u8] = b"M9";
const LOGIN_TAG: &[u8] = b"M1";
const CAPABILITY_TAG: &[u8] = b"M2";
/// Longest store response line accepted during login, CRLF excluded. Lines before login are
/// short; a generous cap still bounds memory (a Dovecot post-login CAPABILITY is ~500 bytes).
pub const MAX_LINE: usize = 16 * 1024;

/// The end of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayEvent {
    /// The store accepted the login.
    LoggedIn {
        /// The store's post-login capability list, if it gave one.
        capabilities: Option<String>,
        /// The text of the store's tagged OK.
        text: String,
    },
    /// The store agreed to STARTTLS: run the TLS handshake on the connection, then call
    /// [`ImapReplay::tls_started`].
    StartTls,
    /// The login failed.
    Failed(StoreFailure),
}

#[derive(Debug)]
enum State {
    Greeting,
    /// STARTTLS sent; waiting for its tagged answer.
    StartTlsSent,
    /// The caller is running the TLS handshake.
    AwaitingTls,
    /// Command sent in parts; each part waits for a `+` continuation.
    Sending {
        parts: VecDeque<Secret>,
    },
    Awaiting,
    /// A bearer token was refused: the store's error report was answered, its NO is due.
    Reported {
        report: String,
    },
    /// CAPABILITY sent before a bearer login.
    PreCapability,
    Capability {
        text: String,
    },
    Finished,
}

/// The store-side login machine.
#[derive(Debug)]
pub struct ImapReplay {
    /// Ask the store for STARTTLS before logging in.
    starttls: bool,
    mechanism: ReplayMechanism,
    credentials: ReplayCredentials,
    lines: LineBuffer,
    /// What to send; holds the password at login time, so it is a [`Secret`].
    out: Secret,
    state: State,
    /// An end decided without a store answer (credentials no login form carries, a store
    /// that refuses plaintext LOGIN), reported by the next [`ImapReplay::next_event`].
    decided: Option<ReplayEvent>,
    capabilities: Option<String>,
    /// RFC 2971 ID fields sent ahead of the login (the client's address), when the store
    /// advertises ID.
    client_id: Vec<(String, String)>,
    /// Whether the greeting advertised ID (remembered across STARTTLS).
    store_has_id: bool,
}

impl ImapReplay {
    /// A machine waiting for the store's greeting.
    pub fn new(mechanism: ReplayMechanism, credentials: ReplayCredentials, starttls: bool) -> Self {
        let decided = credentials.problem().map(ReplayEvent::Failed);
        ImapReplay {
            starttls,
            mechanism: match &credentials {
                ReplayCredentials::Password { authzid: Some(_), .. } => ReplayMechanism::Plain,
                _ => mechanism,
            },
            credentials,
            lines: LineBuffer::new(MAX_LINE),
            out: Secret::default(),
            state: State::Greeting,
            decided,
            capabilities: None,
            client_id: Vec::new(),
            store_has_id: false,
        }
    }

    /// Sends these ID fields (e.g. Dovecot's `x-originating-ip`, `x-originating-port`) in
    /// the same write as the login, so a store that trusts mailmux logs and rate-limits the
    /// real client instead of mailmux. Only for stores whose greeting lists ID.
    pub fn with_client_id(mut self, fields: Vec<(String, String)>) -> Self {
        self.client_id = fields;
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

    /// Whether the credentials have been handed out (the login command is on its way or
    /// answered): a store that goes silent after this may be sitting on a wrong password.
    pub fn login_sent(&self) -> bool {
        matches!(
            self.state,
            State::Sending { .. } | State::Awaiting | State::Reported { .. } | State::Capability { .. }
        )
    }

    /// Bytes received from the store and not yet processed; while the machine waits for more
    /// input, at most [`MAX_LINE`] + 1.
    pub fn buffered_len(&self) -> usize {
        self.lines.buffered_len()
    }

    /// Bytes the store sent after the response that ended the login (for the client).
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.lines.take_rest()
    }

    /// Processes buffered responses; `None` means "send the output and read more".
    pub fn next_event(&mut self) -> Option<ReplayEvent> {
        loop {
            if let Some(event) = self.decided.take() {
                self.state = State::Finished;
                return Some(event);
            }
            if matches!(self.state, State::Finished | State::AwaitingTls) {
                return None;
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(_) => return Some(self.fail_protocol("response line too long")),
            };
            let response = ResponseLine::parse(line.expose());
            if let Some(event) = self.on_response(response) {
                self.state = if event == ReplayEvent::StartTls { State::AwaitingTls } else { State::Finished };
                return Some(event);
            }
        }
    }

    fn on_response(&mut self, r: ResponseLine) -> Option<ReplayEvent> {
        if r.addressee == Addressee::Untagged {
            if let Some(caps) = r.capabilities() {
                self.capabilities = Some(caps.to_owned());
            }
            match r.status {
                Some(Status::Bye) => {
                    return Some(ReplayEvent::Failed(StoreFailure::Temporary { text: r.text }));
                }
                Some(Status::Preauth) if matches!(self.state, State::Greeting) => {
                    return Some(self.fail_protocol("store greeted with PREAUTH"));
                }
                Some(Status::Ok) if matches!(self.state, State::Greeting) => {
                    self.store_has_id = self
                        .capabilities
                        .as_deref()
                        .is_some_and(|caps| caps.split(' ').any(|c| c.eq_ignore_ascii_case("ID")));
                    if self.starttls {
                        self.out.extend_from_slice(STARTTLS_TAG);
                        self.out.extend_from_slice(b" STARTTLS\r\n");
                        self.state = State::StartTlsSent;
                    } else {
                        return self.send_login();
                    }
                }
                _ => {}
            }
            return None;
        }
        if matches!(self.state, State::Greeting) {
            return Some(self.fail_protocol("store did not greet with * OK"));
        }
        if r.addressee == Addressee::Continuation {
            return match &mut self.state {
                State::Sending { parts } => {
                    if let Some(part) = parts.pop_front() {
                        self.out.extend_from_slice(part.expose());
                    }
                    if parts.is_empty() {
                        self.state = State::Awaiting;
                    }
                    None
                }
                State::Awaiting => match &self.credentials {
                    // RFC 7628 §3.2.2: a refused token comes back as a JSON report in a
                    // challenge; the exchange must be finished with a dummy response.
                    ReplayCredentials::Bearer { mechanism, .. } => {
                        let answer = sasl::encode(bearer::error_answer(*mechanism));
                        self.out.extend_from_slice(answer.as_bytes());
                        self.out.extend_from_slice(b"\r\n");
                        self.state = State::Reported { report: bearer::describe_report(&r.text) };
                        None
                    }
                    ReplayCredentials::Password { .. } => Some(self.fail_protocol("unexpected continuation request")),
                },
                _ => Some(self.fail_protocol("unexpected continuation request")),
            };
        }
        let Addressee::Tagged(tag) = &r.addressee else {
            return None;
        };
        if tag == ID_TAG {
            return None;
        }
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Capability { text } if tag == CAPABILITY_TAG => {
                Some(ReplayEvent::LoggedIn { capabilities: self.capabilities.take(), text })
            }
            State::StartTlsSent if tag == STARTTLS_TAG => match r.status {
                Some(Status::Ok) => Some(ReplayEvent::StartTls),
                _ => Some(ReplayEvent::Failed(StoreFailure::Temporary {
                    text: format!("store refused STARTTLS: {}", r.text),
                })),
            },
            State::Sending { .. } | State::Awaiting if tag == LOGIN_TAG => self.on_login_result(r, None),
            State::Reported { report } if tag == LOGIN_TAG => self.on_login_result(r, Some(&report)),
            State::PreCapability if tag == PRE_CAPABILITY_TAG => match r.status {
                Some(Status::Ok) => {
                    // Asked once: no list now means no mechanism advertised.
                    self.capabilities.get_or_insert_with(String::new);
                    self.send_login()
                }
                _ => Some(self.fail_protocol(&format!("store refused CAPABILITY: {}", r.text))),
            },
            _ => Some(self.fail_protocol("unexpected tagged response")),
        }
    }

    /// The login's tagged answer; `report` is a bearer refusal's error report, for the log.
    fn on_login_result(&mut self, r: ResponseLine, report: Option<&str>) -> Option<ReplayEvent> {
        match r.status {
            Some(Status::Ok) => {
                // The greeting's list was consumed when the login was sent, so any list held
                // now came with the login's answer and is current.
                if let Some(caps) = r.capabilities().map(str::to_owned).or_else(|| self.capabilities.take()) {
                    return Some(ReplayEvent::LoggedIn { capabilities: Some(caps), text: r.text });
                }
                self.out.extend_from_slice(CAPABILITY_TAG);
                self.out.extend_from_slice(b" CAPABILITY\r\n");
                self.state = State::Capability { text: r.text };
                None
            }
            Some(Status::No) => {
                let temporary = matches!(
                    r.code_name().as_deref(),
                    Some("UNAVAILABLE" | "SERVERBUG" | "INUSE" | "LIMIT" | "OVERQUOTA")
                );
                let text = match report {
                    Some(report) => format!("NO {} (error report: {report})", r.text),
                    None => format!("NO {}", r.text),
                };
                Some(ReplayEvent::Failed(if temporary {
                    StoreFailure::Temporary { text }
                } else {
                    StoreFailure::Rejected { text }
                }))
            }
            _ => Some(self.fail_protocol(&format!("login answered with: {}", r.text))),
        }
    }

    /// The TLS handshake with the store succeeded: forget everything the store said in
    /// plaintext (capabilities included) and log in.
    pub fn tls_started(&mut self) {
        self.lines.clear();
        self.capabilities = None;
        self.decided = self.send_login();
    }

    /// Queues the login; an event if it cannot be sent.
    fn send_login(&mut self) -> Option<ReplayEvent> {
        let bearer = match &self.credentials {
            ReplayCredentials::Bearer { mechanism, .. } => Some(*mechanism),
            ReplayCredentials::Password { .. } => None,
        };
        if bearer.is_some() && self.capabilities.is_none() {
            // A token goes only where its mechanism is advertised, and there is no list yet.
            self.out.extend_from_slice(PRE_CAPABILITY_TAG);
            self.out.extend_from_slice(b" CAPABILITY\r\n");
            self.state = State::PreCapability;
            return None;
        }
        let store_caps = self.capabilities.take().unwrap_or_default();
        let has = |cap: &str| store_caps.split(' ').any(|c| c.eq_ignore_ascii_case(cap));
        match bearer {
            Some(mechanism) if !has(&format!("AUTH={}", mechanism.as_str())) => {
                return Some(self.fail_protocol(&format!(
                    "the store does not advertise AUTH={}, the only form the client's bearer token can take",
                    mechanism.as_str()
                )));
            }
            Some(_) => {}
            // RFC 9051 §6.2.3: the store takes no plaintext password on this connection;
            // sending one anyway (LOGIN, or PLAIN with StoreAdmin's password) would only expose it.
            None if has("LOGINDISABLED") => {
                return Some(self.fail_protocol(
                    "the store advertises LOGINDISABLED (no plaintext password): set BacksideStartTLS yes or SSLBacksidePort",
                ));
            }
            None => {}
        }
        let (literal_plus, sasl_ir) = (has("LITERAL+"), has("SASL-IR"));
        let mut parts = VecDeque::new();
        if self.store_has_id && !self.client_id.is_empty() {
            let fields: Vec<String> =
                self.client_id.iter().filter_map(|(k, v)| Some(format!("{} {}", quoted(k)?, quoted(v)?))).collect();
            self.out.extend_from_slice(ID_TAG);
            self.out.extend_from_slice(format!(" ID ({})\r\n", fields.join(" ")).as_bytes());
        }
        let mut current = Secret::new(LOGIN_TAG);
        match (&self.credentials, self.mechanism) {
            (ReplayCredentials::Password { authcid, password, .. }, ReplayMechanism::Login) => {
                current.extend_from_slice(b" LOGIN ");
                push_astring(&mut current, &mut parts, authcid.as_bytes(), literal_plus);
                current.extend_from_slice(b" ");
                push_astring(&mut current, &mut parts, password.expose(), literal_plus);
                current.extend_from_slice(b"\r\n");
            }
            (ReplayCredentials::Password { authzid, authcid, password }, ReplayMechanism::Plain) => {
                let blob = sasl::encode_plain(authzid.as_deref().unwrap_or(""), authcid, password);
                push_authenticate(&mut current, &mut parts, "PLAIN", &blob, sasl_ir);
            }
            (ReplayCredentials::Bearer { user, token, mechanism }, _) => {
                let blob = bearer::encode(*mechanism, user, token);
                push_authenticate(&mut current, &mut parts, mechanism.as_str(), &blob, sasl_ir);
            }
        }
        parts.push_back(current);
        // The first part goes now; each further one after a "+".
        if let Some(first) = parts.pop_front() {
            self.out.extend_from_slice(first.expose());
        }
        self.state = if parts.is_empty() { State::Awaiting } else { State::Sending { parts } };
        None
    }

    fn fail_protocol(&mut self, reason: &str) -> ReplayEvent {
        self.state = State::Finished;
        ReplayEvent::Failed(StoreFailure::Protocol { reason: reason.to_owned() })
    }
}

/// `AUTHENTICATE mechanism`, the response on the same line with SASL-IR (RFC 4959), else as
/// its own part after the store's `+`.
fn push_authenticate(
    current: &mut Secret,
    parts: &mut VecDeque<Secret>,
    mechanism: &str,
    blob: &Secret,
    sasl_ir: bool,
) {
    current.extend_from_slice(b" AUTHENTICATE ");
    current.extend_from_slice(mechanism.as_bytes());
    if sasl_ir {
        current.extend_from_slice(b" ");
    } else {
        current.extend_from_slice(b"\r\n");
        parts.push_back(std::mem::take(current));
    }
    current.extend_from_slice(blob.expose());
    current.extend_from_slice(b"\r\n");
}

fn quoted(s: &str) -> Option<String> {
    super::quote(s.as_bytes()).map(|q| String::from_utf8_lossy(q.expose()).into_owned())
}

/// Appends `value` as a quoted string, or as a literal (closing the current part when the
/// literal synchronises).
fn push_astring(current: &mut Secret, parts: &mut VecDeque<Secret>, value: &[u8], literal_plus: bool) {
    if let Some(quoted) = super::quote(value) {
        current.extend_from_slice(quoted.expose());
        return;
    }
    if literal_plus {
        current.extend_from_slice(format!("{{{}+}}\r\n", value.len()).as_bytes());
    } else {
        current.extend_from_slice(format!("{{{}}}\r\n", value.len()).as_bytes());
        parts.push_back(std::mem::take(current));
    }
    current.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, pw: &str) -> ReplayCredentials {
        ReplayCredentials::Password { authzid: None, authcid: user.into(), password: Secret::new(pw) }
    }

    /// Plays `store` lines one by one, collecting what the machine sends.
    pub(super) fn play(machine: &mut ImapReplay, store: &[&str]) -> (String, Option<ReplayEvent>) {
        let mut sent = Vec::new();
        for line in store {
            machine.feed(format!("{line}\r\n").as_bytes());
            let ev = machine.next_event();
            sent.extend_from_slice(machine.take_output().expose());
            if ev.is_some() {
                return (String::from_utf8(sent).unwrap(), ev);
            }
        }
        (String::from_utf8(sent).unwrap(), None)
    }

    #[test]
    fn login_with_capability_in_ok() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe@x.org", "p \"w"), false);
        let (sent, ev) =
            play(&mut m, &["* OK [CAPABILITY IMAP4rev1] ready", "M1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in"]);
        assert_eq!(sent, "M1 LOGIN \"joe@x.org\" \"p \\\"w\"\r\n");
        assert_eq!(
            ev,
            Some(ReplayEvent::LoggedIn { capabilities: Some("IMAP4rev1 IDLE".into()), text: "Logged in".into() })
        );
    }

    #[test]
    fn a_store_with_logindisabled_never_sees_the_password() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "hunter2"), false);
        let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi"]);
        assert_eq!(sent, "");
        assert!(
            matches!(&ev, Some(ReplayEvent::Failed(StoreFailure::Protocol { reason })) if reason.contains("LOGINDISABLED")),
            "{ev:?}"
        );
        // With STARTTLS first, the capabilities after the handshake decide.
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "hunter2"), true);
        let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi", "M0 OK go"]);
        assert_eq!((sent.as_str(), ev), ("M0 STARTTLS\r\n", Some(ReplayEvent::StartTls)));
        m.tls_started();
        let (sent, ev) = play(&mut m, &["M1 OK [CAPABILITY IMAP4rev1] in"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" \"hunter2\"\r\n");
        assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })), "{ev:?}");
    }

    #[test]
    fn logindisabled_stops_plain_too() {
        let admin = ReplayCredentials::Password {
            authzid: Some("joe".into()),
            authcid: "admin".into(),
            password: Secret::new("hunter2"),
        };
        let mut m = ImapReplay::new(ReplayMechanism::Plain, admin, false);
        let (sent, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 SASL-IR LOGINDISABLED] hi"]);
        assert_eq!(sent, "");
        assert!(matches!(ev, Some(ReplayEvent::Failed(StoreFailure::Protocol { .. }))), "{ev:?}");
    }

    #[test]
    fn nul_is_never_sent_and_nothing_prints_the_password() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "hun\0ter2"), false);
        assert!(matches!(m.next_event(), Some(ReplayEvent::Failed(StoreFailure::Rejected { .. }))));
        assert!(m.take_output().is_empty());
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "hunter2"), false);
        m.feed(b"* OK [CAPABILITY IMAP4rev1] hi\r\n");
        assert_eq!(m.next_event(), None);
        assert!(!format!("{m:?}").contains("hunter2"), "{m:?}");
        assert!(String::from_utf8_lossy(m.take_output().expose()).contains("hunter2"));
    }

    #[test]
    fn asks_for_capabilities_when_ok_has_none() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
        let (sent, ev) = play(&mut m, &["* OK hi", "M1 OK done", "* CAPABILITY IMAP4rev1 X", "M2 OK cap"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" \"pw\"\r\nM2 CAPABILITY\r\n");
        assert_eq!(ev, Some(ReplayEvent::LoggedIn { capabilities: Some("IMAP4rev1 X".into()), text: "done".into() }));
    }

    #[test]
    fn untagged_capability_with_the_login_answer_is_used() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
        let (sent, ev) = play(&mut m, &["* OK [CAPABILITY OLD] hi", "* CAPABILITY IMAP4rev1 NEW", "M1 OK done"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" \"pw\"\r\n", "no extra CAPABILITY round trip");
        assert_eq!(ev, Some(ReplayEvent::LoggedIn { capabilities: Some("IMAP4rev1 NEW".into()), text: "done".into() }));
    }

    #[test]
    fn eight_bit_password_goes_as_sync_literal() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pässword"), false);
        let (sent, ev) = play(&mut m, &["* OK hi", "+ go", "M1 NO [AUTHENTICATIONFAILED] no"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" {9}\r\npässword\r\n");
        assert!(matches!(ev, Some(ReplayEvent::Failed(StoreFailure::Rejected { .. }))));
    }

    #[test]
    fn eight_bit_with_literal_plus_needs_no_wait() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pässword"), false);
        let (sent, _) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 LITERAL+] hi"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" {9+}\r\npässword\r\n");
    }

    #[test]
    fn plain_with_and_without_sasl_ir() {
        let mut m = ImapReplay::new(ReplayMechanism::Plain, creds("joe", "pw"), false);
        let (sent, _) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 SASL-IR] hi"]);
        assert_eq!(sent, "M1 AUTHENTICATE PLAIN AGpvZQBwdw==\r\n");
        let mut m = ImapReplay::new(ReplayMechanism::Plain, creds("joe", "pw"), false);
        let (sent, _) = play(&mut m, &["* OK hi", "+ "]);
        assert_eq!(sent, "M1 AUTHENTICATE PLAIN\r\nAGpvZQBwdw==\r\n");
    }

    #[test]
    fn admin_login_on_behalf_uses_plain_authzid() {
        let mut m = ImapReplay::new(
            ReplayMechanism::Login,
            ReplayCredentials::Password {
                authzid: Some("joe".into()),
                authcid: "admin".into(),
                password: Secret::new("pw"),
            },
            false,
        );
        let (sent, _) = play(&mut m, &["* OK [CAPABILITY SASL-IR] hi"]);
        assert_eq!(
            sent,
            format!(
                "M1 AUTHENTICATE PLAIN {}\r\n",
                sasl::encode_plain("joe", "admin", &Secret::new("pw")).expose().escape_ascii()
            )
        );
    }

    #[test]
    fn failures_are_classified() {
        let cases = [
            ("M1 NO [UNAVAILABLE] later", "temp"),
            ("M1 NO [INUSE] busy", "temp"),
            ("M1 NO nope", "rejected"),
            ("M1 BAD what", "protocol"),
        ];
        for (line, kind) in cases {
            let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
            let (_, ev) = play(&mut m, &["* OK hi", line]);
            let got = match ev {
                Some(ReplayEvent::Failed(StoreFailure::Temporary { .. })) => "temp",
                Some(ReplayEvent::Failed(StoreFailure::Rejected { .. })) => "rejected",
                Some(ReplayEvent::Failed(StoreFailure::Protocol { .. })) => "protocol",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, kind, "{line}");
        }
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
        assert!(matches!(
            play(&mut m, &["* BYE too many"]).1,
            Some(ReplayEvent::Failed(StoreFailure::Temporary { .. }))
        ));
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
        assert!(matches!(play(&mut m, &["* PREAUTH hi"]).1, Some(ReplayEvent::Failed(StoreFailure::Protocol { .. }))));
    }

    #[test]
    fn bytes_after_login_are_kept() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false);
        m.feed(b"* OK hi\r\n");
        assert_eq!(m.next_event(), None);
        m.feed(b"M1 OK [CAPABILITY IMAP4rev1] ok\r\n* 3 EXISTS\r\n");
        assert!(matches!(m.next_event(), Some(ReplayEvent::LoggedIn { .. })));
        assert_eq!(m.take_rest(), b"* 3 EXISTS\r\n".to_vec());
    }

    #[test]
    fn starttls_first_and_plaintext_leftovers_dropped() {
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), true);
        m.feed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LITERAL+] hi\r\n");
        assert_eq!(m.next_event(), None);
        assert_eq!(m.take_output().expose(), b"M0 STARTTLS\r\n");
        // A store (or a man in the middle) pipelining a fake answer before the handshake.
        m.feed(b"M0 OK go\r\nM1 OK [CAPABILITY FAKE] injected\r\n");
        assert_eq!(m.next_event(), Some(ReplayEvent::StartTls));
        assert_eq!(m.next_event(), None);
        m.tls_started();
        assert_eq!(m.take_output().expose(), b"M1 LOGIN \"joe\" \"pw\"\r\n");
        m.feed(b"M1 OK [CAPABILITY IMAP4rev1 IDLE] in\r\n");
        assert_eq!(
            m.next_event(),
            Some(ReplayEvent::LoggedIn { capabilities: Some("IMAP4rev1 IDLE".into()), text: "in".into() })
        );
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), true);
        m.feed(b"* OK hi\r\nM0 BAD no tls\r\n");
        assert!(matches!(m.next_event(), Some(ReplayEvent::Failed(StoreFailure::Temporary { .. }))));
    }

    #[test]
    fn client_address_goes_ahead_of_the_login_when_the_store_has_id() {
        let fields = vec![("x-originating-ip".to_owned(), "192.0.2.7".to_owned())];
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false).with_client_id(fields.clone());
        let (sent, ev) = play(
            &mut m,
            &["* OK [CAPABILITY IMAP4rev1 ID] hi", "* ID NIL", "M9 OK id", "M1 OK [CAPABILITY IMAP4rev1] in"],
        );
        assert_eq!(sent, "M9 ID (\"x-originating-ip\" \"192.0.2.7\")\r\nM1 LOGIN \"joe\" \"pw\"\r\n");
        assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })));
        // A store that refuses ID still logs the user in.
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false).with_client_id(fields.clone());
        let (_, ev) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1 ID] hi", "M9 BAD no", "M1 OK [CAPABILITY X] in"]);
        assert!(matches!(ev, Some(ReplayEvent::LoggedIn { .. })));
        // No ID capability: nothing extra is sent.
        let mut m = ImapReplay::new(ReplayMechanism::Login, creds("joe", "pw"), false).with_client_id(fields);
        let (sent, _) = play(&mut m, &["* OK [CAPABILITY IMAP4rev1] hi"]);
        assert_eq!(sent, "M1 LOGIN \"joe\" \"pw\"\r\n");
    }
}

#[cfg(test)]
#[path = "replay_bearer_tests.rs"]
mod bearer_tests;
