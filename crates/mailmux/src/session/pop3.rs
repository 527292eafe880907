//! The POP3 front machine as a session [`Front`].

use mailmux_proto::Rejection;
use mailmux_proto::pop3::front::{Pop3Event, Pop3Front, Pop3Settings};

use super::{Front, Step, TlsState};
use crate::service::Service;

impl Front for Pop3Front {
    /// POP3 has one command in flight; nothing identifies it.
    type Ticket = ();

    fn new(service: &Service, tls: TlsState) -> Self {
        Pop3Front::new(Pop3Settings {
            banner: service.config.banner.clone(),
            stls: service.tls.is_some(),
            restrict_plaintext: service.config.restrict_plain_passwords,
            tls: tls.active,
            client_certificate: tls.client_certificate,
            crams: super::verify::challenge_seed(service),
            bearer: service.config.auth.bearer,
            capabilities: service.pop3_capabilities(),
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        Pop3Front::feed(self, bytes);
    }

    fn take_output(&mut self) -> Vec<u8> {
        Pop3Front::take_output(self)
    }

    fn next_step(&mut self) -> Option<Step<()>> {
        self.next_event().map(|event| match event {
            Pop3Event::Login(proof) => Step::Login((), proof),
            Pop3Event::StartTls => Step::StartTls,
            Pop3Event::Quit | Pop3Event::Close => Step::Close,
        })
    }

    fn accept(&mut self, _: (), _capabilities: Option<&str>, text: &str) -> Vec<u8> {
        Pop3Front::accept(self, text)
    }

    fn reject(&mut self, _: (), rejection: &Rejection) {
        Pop3Front::reject(self, rejection);
    }

    fn reject_and_close(&mut self, _: (), rejection: &Rejection) {
        Pop3Front::reject_and_close(self, rejection);
    }

    fn tls_started(&mut self, client_certificate: bool) {
        Pop3Front::tls_started(self, client_certificate);
    }

    fn shutdown(&mut self) {
        Pop3Front::shutdown(self);
    }

    fn idle_timeout(&mut self) {
        Pop3Front::idle_timeout(self);
    }
}
