//! The IMAP front machine as a session [`Front`].

use mailmux_proto::Rejection;
use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};

use super::{Front, Step, TlsState};
use crate::service::Service;

impl Front for ImapFront {
    type Ticket = Vec<u8>;

    fn new(service: &Service, tls: TlsState) -> Self {
        ImapFront::new(FrontSettings {
            capabilities: service.imap_capabilities(),
            starttls: service.tls.is_some(),
            restrict_plaintext: service.config.restrict_plain_passwords,
            tls: tls.active,
            client_certificate: tls.client_certificate,
            crams: super::verify::challenge_seed(service),
            bearer: service.config.auth.bearer,
            banner: service.config.banner.clone(),
            limits: Limits::default(),
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        ImapFront::feed(self, bytes);
    }

    fn take_output(&mut self) -> Vec<u8> {
        ImapFront::take_output(self)
    }

    fn next_step(&mut self) -> Option<Step<Vec<u8>>> {
        self.next_event().map(|event| match event {
            FrontEvent::Login { tag, proof } => Step::Login(tag, proof),
            FrontEvent::StartTls => Step::StartTls,
            FrontEvent::Logout | FrontEvent::Close => Step::Close,
        })
    }

    fn accept(&mut self, tag: Vec<u8>, capabilities: Option<&str>, text: &str) -> Vec<u8> {
        ImapFront::accept(self, &tag, capabilities, text)
    }

    fn reject(&mut self, tag: Vec<u8>, rejection: &Rejection) {
        ImapFront::reject(self, &tag, rejection);
    }

    fn reject_and_close(&mut self, tag: Vec<u8>, rejection: &Rejection) {
        ImapFront::reject_and_close(self, &tag, rejection);
    }

    fn tls_started(&mut self, client_certificate: bool) {
        ImapFront::tls_started(self, client_certificate);
    }

    fn shutdown(&mut self) {
        ImapFront::shutdown(self);
    }

    fn idle_timeout(&mut self) {
        ImapFront::idle_timeout(self);
    }
}
