//! Why a login did not reach the relay, with what the client is told and what is logged.
//!
//! The client learns only one of two things (RFC 5530 / RFC 3206): its credentials were not
//! accepted, or the service is temporarily unavailable. An unknown user and a wrong password
//! look the same; a directory or store failure never looks like a wrong password. The log
//! gets the precise reason.

use mailmux_proto::Rejection;

use crate::directory::DirectoryError;
use crate::route::StoreAddr;

/// A failed login attempt.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// A client certificate that does not lead to exactly one user.
    #[error("certificate not mapped to a user: {reason}")]
    CertificateUnmapped {
        /// Why.
        reason: String,
    },
    /// The login name has no user part.
    #[error("empty user name")]
    EmptyUser,
    /// Credentials no user could have: control characters in the name, a NUL in the password.
    #[error("unusable credentials: {0}")]
    Unusable(&'static str),
    /// A kind of proof this address's service does not take (`CRAMs` or `OAuthBearer` off,
    /// e.g. by a vdmap entry), though the front accepted the mechanism.
    #[error("{0}")]
    ProofNotEnabled(&'static str),
    /// No directory entry matches.
    #[error("no such user")]
    UnknownUser,
    /// mailmux checked the password itself (PreAuth, CRAM-MD5, APOP) and it is wrong.
    #[error("wrong password for {dn}: {how}")]
    WrongPassword {
        /// The user's entry.
        dn: String,
        /// How it was found wrong.
        how: &'static str,
    },
    /// CRAM-MD5 or APOP for a user whose `userPassword` is hashed, or not readable with
    /// `BindDN`'s rights: the digest cannot be checked.
    #[error("{dn} has no cleartext userPassword that BindDN can read; CRAM-MD5 and APOP need one")]
    NoCleartextPassword {
        /// The user's entry.
        dn: String,
    },
    /// The login's hosted domain has no entry.
    #[error("domain '{domain}' not found in LDAP")]
    UnknownDomain {
        /// The domain.
        domain: String,
    },
    /// A user or domain whose status does not allow logging in.
    #[error("{who} {attr}: '{value}'")]
    Inactive {
        /// `user 'joe@siroe.com'` or `domain 'siroe.com'`.
        who: String,
        /// The status attribute.
        attr: &'static str,
        /// Its value.
        value: String,
    },
    /// The user's own access filter does not allow this service from this client.
    #[error("access denied for {dn}: {reason}")]
    AccessDenied {
        /// The user's entry.
        dn: String,
        /// Which rule, or why the filter could not be read.
        reason: String,
    },
    /// The entry has no usable mail-host attribute.
    #[error("user entry {dn} has no usable mail host attribute")]
    NoMailHost {
        /// The entry.
        dn: String,
    },
    /// The directory could not answer.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The store could not be reached or did not answer in time.
    #[error("store {store} unreachable: {reason}")]
    StoreUnreachable {
        /// The store.
        store: StoreAddr,
        /// Why.
        reason: String,
    },
    /// The store took the credentials and did not answer within `BacksideTimeout`.
    #[error("store {store} did not answer the login in time")]
    StoreTimedOut {
        /// The store.
        store: StoreAddr,
    },
    /// The store refused the credentials.
    #[error("store {store} refused the login: {text}")]
    StoreRejected {
        /// The store.
        store: StoreAddr,
        /// The store's answer.
        text: String,
    },
    /// The store failed temporarily or spoke nonsense.
    #[error("store {store} failed: {reason}")]
    StoreFailed {
        /// The store.
        store: StoreAddr,
        /// What happened.
        reason: String,
    },
}

impl LoginError {
    /// What the client is told. `alert` is the service's `ServerDownAlert`.
    pub fn rejection(&self, alert: Option<&str>) -> Rejection {
        match self {
            LoginError::EmptyUser
            | LoginError::Unusable(_)
            | LoginError::ProofNotEnabled(_)
            | LoginError::CertificateUnmapped { .. }
            | LoginError::UnknownUser
            | LoginError::WrongPassword { .. }
            | LoginError::NoCleartextPassword { .. }
            | LoginError::UnknownDomain { .. }
            | LoginError::Inactive { .. }
            // Said before the password was checked: telling more would confirm the user exists.
            | LoginError::AccessDenied { .. }
            | LoginError::NoMailHost { .. }
            | LoginError::StoreRejected { .. }
            // Two entries for one login is a directory problem, but retrying will not fix it.
            | LoginError::Directory(DirectoryError::Ambiguous(_)) => Rejection::AuthenticationFailed,
            LoginError::Directory(_)
            | LoginError::StoreUnreachable { .. }
            | LoginError::StoreTimedOut { .. }
            | LoginError::StoreFailed { .. } => {
                Rejection::Unavailable {
                    alert: alert.map(str::to_owned),
                }
            }
        }
    }

    /// Whether the failure counts against the client's address (BadGuy): the credentials
    /// were refused, or a store that had them went silent (a wrong password can look like
    /// that once the store's own penalty outgrows `BacksideTimeout`). A directory or store
    /// that could not be reached at all is nobody's fault.
    pub fn is_bad_guess(&self) -> bool {
        // A proof the server cannot check says nothing about the client's guessing.
        !matches!(self, LoginError::ProofNotEnabled(_))
            && (matches!(self, LoginError::StoreTimedOut { .. })
                || self.rejection(None) == Rejection::AuthenticationFailed)
    }
}
