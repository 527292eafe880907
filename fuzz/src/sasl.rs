//! `sasl_exchange`: one server-side SASL exchange on arbitrary client lines.
//!
//! Input: `[config, client bytes…]`. The client bytes are cut into lines at LF (a CR before it
//! dropped), as both fronts frame them. The config byte's low three bits choose the mechanism
//! ([`SaslMechanism::ALL`], modulo 6), the other bits are in [`config`].
//!
//! Properties checked on every input, beyond "no panic":
//! * challenges are what the mechanism sends (empty, LOGIN's prompts, the CRAM-MD5 challenge
//!   issued), and an error report only after a bearer proof was refused;
//! * a proof only from responses within the mechanism's size cap, of the kind the mechanism
//!   gives, naming someone (a certificate aside); a CRAM-MD5 proof carries the issued
//!   challenge and a 32-digit lower-case digest; a token is an RFC 6750 `b64token`;
//! * what the replays write for a proof reads back as the same proof (PLAIN for passwords, the
//!   bearer message for tokens), so the store is given what the client gave;
//! * a proof's `Debug` does not depend on its secrets;
//! * once the exchange has ended, every further line is refused as out of sequence.

use mailmux_proto::sasl::{self, Exchange, SaslError, SaslMechanism, Step, bearer};
use mailmux_proto::{BearerMechanism, ChallengeKind, Proof, Secret};

/// The bits of the config byte above the mechanism.
pub mod config {
    /// The first line is the initial response (SASL-IR, POP3 AUTH's argument).
    pub const INITIAL_RESPONSE: u8 = 0x08;
    /// Refuse the proof (bearer mechanisms then send their error report).
    pub const REFUSE: u8 = 0x10;
    /// No CRAM-MD5 challenge is given (CRAMs off): CRAM-MD5 fails at once.
    pub const NO_CHALLENGE: u8 = 0x20;
}

/// The CRAM-MD5 challenge issued (RFC 2195's example).
pub const CHALLENGE: &str = "<1896.697170952@postoffice.reston.mci.net>";

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslEnd {
    /// The lines ran out while a response was due.
    #[default]
    Waiting,
    /// A proof was handed over (and, with [`config::REFUSE`], refused without a report).
    Proof,
    /// A refused bearer proof's report was answered.
    Refused,
    /// The exchange failed.
    Failed,
}

/// What one input did; the seed tests compare it with what the seed was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaslOutcome {
    /// Challenges sent (the error report included).
    pub challenges: u32,
    /// How it ended.
    pub end: SaslEnd,
}

/// The harness of the `sasl_exchange` target.
pub fn sasl_exchange(data: &[u8]) -> SaslOutcome {
    let Some((&first, client)) = data.split_first() else { return SaslOutcome::default() };
    let mechanism = SaslMechanism::ALL[usize::from(first & 0x07) % SaslMechanism::ALL.len()];
    let mut lines = client.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let initial = if first & config::INITIAL_RESPONSE != 0 { lines.next() } else { None };
    let challenge = (first & config::NO_CHALLENGE == 0).then(|| CHALLENGE.to_owned());
    let (mut exchange, mut step) = Exchange::start(mechanism, initial, challenge);
    let cap = mechanism.max_response();
    let mut longest = initial.map_or(0, |l| l.trim_ascii().len());
    let mut outcome = SaslOutcome::default();
    outcome.end = loop {
        match step {
            Step::Challenge(c) => {
                outcome.challenges += 1;
                check_challenge(mechanism, outcome.challenges + u32::from(initial.is_some()), &c);
                let Some(line) = lines.next() else { break SaslEnd::Waiting };
                longest = longest.max(line.trim_ascii().len());
                step = exchange.respond(line);
            }
            Step::Done(proof) => {
                assert!(longest <= cap, "a proof from a {longest}-character response; the cap is {cap}");
                check_proof(mechanism, &proof);
                if first & config::REFUSE == 0 {
                    break SaslEnd::Proof;
                }
                match exchange.refuse() {
                    Some(report) => {
                        let mechanism = mechanism.bearer().expect("only bearer mechanisms report");
                        assert_eq!(report, bearer::error_report(mechanism));
                        outcome.challenges += 1;
                        assert_eq!(exchange.respond(lines.next().unwrap_or_default()), Step::Refused);
                        break SaslEnd::Refused;
                    }
                    None => {
                        assert!(mechanism.bearer().is_none(), "a refused token without its report");
                        break SaslEnd::Proof;
                    }
                }
            }
            Step::Failed(e) => {
                assert!(!e.text().is_empty() && !e.text().contains(['\r', '\n']));
                break SaslEnd::Failed;
            }
            Step::Refused => panic!("Refused without a refusal"),
        }
    };
    if outcome.end != SaslEnd::Waiting && (outcome.end != SaslEnd::Proof || first & config::REFUSE != 0) {
        assert_eq!(exchange.respond(b"AGpvZQBwdw=="), Step::Failed(SaslError::OutOfSequence));
    }
    outcome
}

/// `n` counts the client's turns: an initial response is the first.
fn check_challenge(mechanism: SaslMechanism, n: u32, challenge: &[u8]) {
    let expected: &[u8] = match (mechanism, n) {
        (SaslMechanism::Login, 1) => b"Username:",
        (SaslMechanism::Login, _) => b"Password:",
        (SaslMechanism::CramMd5, _) => CHALLENGE.as_bytes(),
        _ => b"",
    };
    assert_eq!(challenge, expected, "{mechanism:?} challenge {n}");
    assert!(n <= 2, "{mechanism:?} sent {n} challenges");
}

fn check_proof(mechanism: SaslMechanism, proof: &Proof) {
    match (mechanism, proof) {
        (SaslMechanism::Plain | SaslMechanism::Login, Proof::Password { login, password }) => {
            if mechanism == SaslMechanism::Plain {
                assert!(!login.is_empty());
                // Only what PLAIN can carry round-trips (LOGIN names may hold a NUL).
                let blob = sasl::encode_plain("", login, password);
                let back = sasl::decode_response(blob.expose(), usize::MAX).expect("own base64");
                let plain = sasl::parse_plain(back.expose()).expect("own PLAIN");
                assert_eq!((&plain.authcid, &plain.password), (login, password));
            }
            let blank = Proof::Password { login: login.clone(), password: Secret::default() };
            assert_eq!(format!("{proof:?}"), format!("{blank:?}"), "Debug depends on the password");
        }
        (SaslMechanism::External, Proof::Certificate { authzid }) => {
            assert!(authzid.as_deref() != Some(""), "an empty authzid is no authzid");
        }
        (SaslMechanism::CramMd5, Proof::ChallengeResponse { login, challenge, digest, kind }) => {
            assert_eq!(*kind, ChallengeKind::CramMd5);
            assert!(!login.is_empty());
            assert_eq!(challenge.expose(), CHALLENGE.as_bytes());
            assert!(digest.len() == 32 && digest.expose().iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        (
            SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2,
            Proof::BearerToken { login, token, mechanism: m, raw_response },
        ) => {
            assert_eq!(Some(*m), mechanism.bearer());
            assert!(!login.is_empty());
            assert!(sasl::is_b64token(token.expose()), "a token that is not a b64token");
            assert!(raw_response.expose().windows(token.len()).any(|w| w == token.expose()));
            round_trip(*m, login, token);
            let blank = Proof::BearerToken {
                login: login.clone(),
                token: Secret::default(),
                mechanism: *m,
                raw_response: Secret::default(),
            };
            assert_eq!(format!("{proof:?}"), format!("{blank:?}"), "Debug depends on the token");
        }
        (mechanism, proof) => panic!("{mechanism:?} gave {}", proof.mechanism_name()),
    }
}

/// What a replay sends for the token reads back as the same user and token.
fn round_trip(mechanism: BearerMechanism, user: &str, token: &Secret) {
    let message = bearer::message(mechanism, user, token);
    let back = bearer::parse(mechanism, message.expose()).expect("own bearer message");
    assert_eq!((back.user.as_str(), &back.token), (user, token));
}
