//! The IMAP front machine as a session [`Front`].

use mailmux_proto::Rejection;
use mailmux_proto::imap::framing::Limits;
use mailmux_proto::imap::front::{FrontEvent, FrontSettings, ImapFront};

use super::{Front, Step};
use crate::server::Service;

/// Builds the machine for a new connection; its greeting is ready to send.
pub fn front(service: &Service) -> ImapFront {
    ImapFront::new(FrontSettings {
        capabilities: service.imap_capabilities.clone(),
        banner: service.config.banner.clone(),
        limits: Limits::default(),
    })
}

impl Front for ImapFront {
    type Ticket = Vec<u8>;

    fn feed(&mut self, bytes: &[u8]) {
        ImapFront::feed(self, bytes);
    }

    fn take_output(&mut self) -> Vec<u8> {
        ImapFront::take_output(self)
    }

    fn next_step(&mut self) -> Option<Step<Vec<u8>>> {
        self.next_event().map(|event| match event {
            FrontEvent::Login { tag, credentials } => Step::Login(tag, credentials),
            FrontEvent::Logout | FrontEvent::Close => Step::Close,
        })
    }

    fn accept(&mut self, tag: Vec<u8>, capabilities: Option<&str>, text: &str) -> Vec<u8> {
        ImapFront::accept(self, &tag, capabilities, text)
    }

    fn reject(&mut self, tag: Vec<u8>, rejection: &Rejection) {
        ImapFront::reject(self, &tag, rejection);
    }

    fn shutdown(&mut self) {
        ImapFront::shutdown(self);
    }

    fn idle_timeout(&mut self) {
        ImapFront::idle_timeout(self);
    }
}
