//! Test harness for mailmux: real OpenLDAP `slapd` and real Dovecot stores on free loopback
//! ports, a configuration writer, and a transcript client.
//!
//! A [`lab::Lab`] is a small mail site: users spread over two Dovecot stores (store A on
//! 127.0.0.2, store B on 127.0.0.3, same ports), each user's INBOX holding one marker
//! message naming its store, and optionally a `slapd` holding the same users with `mailHost`.
//! Servers are real processes; a missing binary fails the test with a message saying which
//! Debian package to install. Every daemon runs under a watchdog that stops it when the
//! test process exits, so a shared lab in a `static` leaves nothing behind.
//!
//! | module | what |
//! | --- | --- |
//! | [`daemon`] | starting a server process under a watchdog, waiting for its port |
//! | [`ports`] | free ports on one or more loopback addresses |
//! | [`slapd`] | an OpenLDAP server from a 20-line `slapd.conf`; any suffix, extra schemas, counted searches |
//! | [`hosted`] | a hosted-domain directory (DC tree, alias, Schema 2) and the store logins it needs |
//! | [`delay`] | a TCP relay that slows a server down, adjustable while the test runs |
//! | [`dovecot`] | a Dovecot IMAP/POP3 store with a passwd-file and marker messages |
//! | [`oauth2`] | an RFC 7662 token introspection endpoint for Dovecot's `oauth2` passdb |
//! | [`hostile`] | stores and directories that hang, babble or die on purpose |
//! | [`haproxy`] | HAProxy in front of several mailmux instances: round robin, PROXY protocol v2 |
//! | [`pki`] | a test CA: server and client certificates, CRLs |
//! | [`subject`] | hand-made certificate subjects: multi-valued RDNs, any string type, bad values |
//! | [`lab`] | the whole site, and mailmux configuration directories pointing at it |
//! | [`transcript`] | a line client whose failures print the conversation so far |

pub mod daemon;
pub mod delay;
pub mod dovecot;
pub mod haproxy;
pub mod hosted;
pub mod hostile;
pub mod lab;
pub mod oauth2;
pub mod pki;
pub mod ports;
pub mod slapd;
pub mod subject;
pub mod transcript;

use std::path::PathBuf;

/// Finds a server binary or fails the test, naming the package that provides it.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "`{name}` is not installed: this test needs a real {name}. Install the Debian package `{package}` \
         (`scripts/install-test-deps` installs every one of them)."
    );
}

/// One test user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name (LDAP `uid`).
    pub uid: String,
    /// Password.
    pub password: String,
    /// Which store holds the mailbox: 0 = A, 1 = B.
    pub store: usize,
}

impl User {
    /// The base64 SASL PLAIN response a client sends for this user (no authzid).
    pub fn sasl_plain(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("\0{}\0{}", self.uid, self.password))
    }
}
