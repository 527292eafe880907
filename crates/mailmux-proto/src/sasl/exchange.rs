//! One SASL exchange, server side (RFC 4422 §3), for any mechanism and either protocol.
//!
//! ```text
//!  start(mechanism, initial response?)
//!    │ PLAIN, EXTERNAL, OAUTHBEARER, XOAUTH2:
//!    │   no IR ─▶ Challenge("") ─▶ Response ──response──▶ Done(proof) ─▶ Verifying
//!    │   IR ────────────────────▶ (as if the response had come)
//!    │ LOGIN:
//!    │   no IR ─▶ Challenge("Username:") ─▶ Response ──user──▶ Challenge("Password:") ─▶ Password
//!    │   IR = the user ────────────────────────────────────────▲               │
//!    │                                                              password ──┴─▶ Done(proof) ─▶ Verifying
//!    │ CRAM-MD5 (server first; an IR fails):
//!    │   Challenge("<unique.n@host>") ─▶ Cram ──"user SP digest"──▶ Done(proof) ─▶ Verifying
//!    │
//!    │ Verifying ──refuse(), bearer mechanisms──▶ Challenge(JSON error report) ─▶ Reported ──any line──▶ Refused
//!    │           ──refuse(), the others─────────▶ Finished (the front answers NO at once)
//!    └ any waiting state: "*" ─▶ Failed(Cancelled); bad base64, over the cap, malformed ─▶ Failed(…)
//! ```
//!
//! Lines are what the client sent, base64 (RFC 4648 with padding; `=` is the empty response,
//! RFC 4959 §3 / RFC 5034 §4), at most [`SaslMechanism::max_response`] characters. A `Failed`
//! or `Refused` ends the exchange; the front then answers the command (BAD or NO / `-ERR`).

use super::password::{LOGIN_PASSWORD_PROMPT, LOGIN_USER_PROMPT, parse_name, parse_plain};
use super::{SaslError, SaslMechanism, bearer, cram, decode_response};
use crate::Secret;
use crate::login::{BearerMechanism, ChallengeKind, Proof};

/// What the front must do after a step of the exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (raw bytes: the front base64-encodes them and writes `+ …`), then
    /// pass the client's next line to [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// The client proved this; the session verifies it. If it is refused, call
    /// [`Exchange::refuse`] before answering.
    Done(Proof),
    /// The exchange failed; answer the command with this reason.
    Failed(SaslError),
    /// The client acknowledged the error report of a refused proof: answer the command with
    /// the refusal now.
    Refused,
}

#[derive(Debug)]
enum State {
    /// Waiting for the client's first (or only) response.
    Response,
    /// LOGIN: the user name is in, the password is due.
    Password {
        user: String,
    },
    /// CRAM-MD5: the challenge is out, `user SP digest` is due.
    Cram {
        challenge: String,
    },
    /// A proof is out for verification.
    Verifying,
    /// The proof was refused and the error report sent; the client's dummy answer is due.
    Reported,
    Finished,
}

/// One exchange; see the module documentation for its states.
#[derive(Debug)]
pub struct Exchange {
    mechanism: SaslMechanism,
    state: State,
}

impl Exchange {
    /// Starts `mechanism`. `initial` is the client's initial response as sent (base64, `=` for
    /// empty), if it sent one. `cram_challenge` is the challenge a CRAM-MD5 exchange issues,
    /// unique per exchange ([`super::ChallengeSeed`]); without one CRAM-MD5 is not offered.
    /// Other mechanisms ignore it.
    pub fn start(mechanism: SaslMechanism, initial: Option<&[u8]>, cram_challenge: Option<String>) -> (Self, Step) {
        let mut exchange = Exchange { mechanism, state: State::Response };
        let step = match (mechanism, initial) {
            (SaslMechanism::CramMd5, initial) => match (cram_challenge, initial) {
                (None, _) => exchange.fail(SaslError::NotOffered),
                (Some(_), Some(_)) => exchange.fail(SaslError::UnexpectedInitialResponse),
                (Some(challenge), None) => {
                    let step = Step::Challenge(challenge.as_bytes().to_vec());
                    exchange.state = State::Cram { challenge };
                    step
                }
            },
            (_, Some(initial)) => exchange.respond(initial),
            (SaslMechanism::Login, None) => Step::Challenge(LOGIN_USER_PROMPT.to_vec()),
            (_, None) => Step::Challenge(Vec::new()),
        };
        (exchange, step)
    }

    /// The mechanism being run.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// The client's next line, without its line ending.
    pub fn respond(&mut self, line: &[u8]) -> Step {
        match std::mem::replace(&mut self.state, State::Finished) {
            // RFC 7628 §3.2.3 asks for ^A; whatever came, the exchange is over.
            State::Reported => return Step::Refused,
            State::Verifying | State::Finished => return Step::Failed(SaslError::OutOfSequence),
            waiting => self.state = waiting,
        }
        if line.trim_ascii() == b"*" {
            return self.fail(SaslError::Cancelled);
        }
        let step = decode_response(line, self.mechanism.max_response()).and_then(|r| self.interpret(r));
        step.unwrap_or_else(|e| self.fail(e))
    }

    /// The session refused the proof. For the bearer mechanisms this is the error report to
    /// send as a challenge (RFC 7628 §3.2.2); the client's answer then yields
    /// [`Step::Refused`]. For the others `None`: answer the command at once.
    pub fn refuse(&mut self) -> Option<Vec<u8>> {
        let report = match (&self.state, self.mechanism.bearer()) {
            (State::Verifying, Some(mechanism)) => Some(bearer::error_report(mechanism).to_vec()),
            _ => None,
        };
        self.state = if report.is_some() { State::Reported } else { State::Finished };
        report
    }

    fn fail(&mut self, error: SaslError) -> Step {
        self.state = State::Finished;
        Step::Failed(error)
    }

    fn interpret(&mut self, response: Secret) -> Result<Step, SaslError> {
        let proof = match (std::mem::replace(&mut self.state, State::Finished), self.mechanism) {
            (State::Response, SaslMechanism::Plain) => {
                let plain = parse_plain(response.expose())?;
                Proof::Password { login: plain.authcid, password: plain.password }
            }
            (State::Response, SaslMechanism::Login) => {
                self.state = State::Password { user: parse_name(&response)? };
                return Ok(Step::Challenge(LOGIN_PASSWORD_PROMPT.to_vec()));
            }
            (State::Password { user }, _) => Proof::Password { login: user, password: response },
            (State::Response, SaslMechanism::External) => {
                let authzid = parse_name(&response)?;
                Proof::Certificate { authzid: (!authzid.is_empty()).then_some(authzid) }
            }
            (State::Response, SaslMechanism::OAuthBearer | SaslMechanism::XOAuth2) => {
                let mechanism = self.mechanism.bearer().ok_or(SaslError::OutOfSequence)?;
                let parsed = bearer::parse(mechanism, response.expose())?;
                Proof::BearerToken { login: parsed.user, token: parsed.token, mechanism, raw_response: response }
            }
            (State::Cram { challenge }, _) => {
                let (login, digest) = cram::parse_user_digest(response.expose())?;
                Proof::ChallengeResponse {
                    login,
                    challenge: Secret::new(challenge),
                    digest,
                    kind: ChallengeKind::CramMd5,
                }
            }
            (State::Response, SaslMechanism::CramMd5) | (State::Verifying | State::Reported | State::Finished, _) => {
                return Err(SaslError::OutOfSequence);
            }
        };
        self.state = State::Verifying;
        Ok(Step::Done(proof))
    }
}

impl SaslMechanism {
    /// The bearer mechanism this is, if it is one.
    pub fn bearer(self) -> Option<BearerMechanism> {
        match self {
            SaslMechanism::OAuthBearer => Some(BearerMechanism::OAuthBearer),
            SaslMechanism::XOAuth2 => Some(BearerMechanism::XOAuth2),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
