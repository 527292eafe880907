//! From credentials to a logged-in store connection: identify, look up, route, connect,
//! replay.

use mailmux_config::StoreTlsMode;
use mailmux_proto::{Credentials, Mechanism, ReplayCredentials, ldap_filter};
use rustls::pki_types::CertificateDer;

use super::SessionContext;
use crate::error::LoginError;
use crate::identity::Identity;
use crate::route::{self, StoreAddr};
use crate::store::{self, StoreLogin};
use crate::tls::StoreStream;

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// Who logged in (for certificate logins, the user the certificate mapped to).
    pub user: String,
    /// Where.
    pub store: StoreAddr,
    /// The store connection, logged in.
    pub login: StoreLogin<StoreStream>,
}

/// Finds the user's store and logs in there.
pub async fn log_in(
    ctx: &SessionContext,
    credentials: &Credentials,
    certificate: Option<&CertificateDer<'_>>,
) -> Result<LoggedIn, LoginError> {
    if credentials.mechanism == Mechanism::External {
        // Offered only to clients with a verified certificate; mapping it to a user needs
        // CertMapFile, which is not implemented yet.
        let _ = certificate;
        return Err(LoginError::CertificateUnmapped {
            reason: "certificate logins need CertMapFile and StoreAdmin, not implemented yet".into(),
        });
    }
    let service = &ctx.service;
    let svc = &service.config;
    let identity = Identity::parse(&credentials.login, &svc.domain_delims, svc.default_domain.as_deref())
        .ok_or(LoginError::EmptyUser)?;
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let mut filter =
        svc.search_format.expand(|t| identity.token(t, client_ip, server_ip, None), ldap_filter::escape_value);
    if !filter.starts_with('(') {
        filter = format!("({filter})");
    }
    tracing::debug!(%filter, "directory search");
    let entry = service.directory.find_user(&filter, &service.search_attrs).await?.ok_or(LoginError::UnknownUser)?;
    let port = match svc.store_tls.mode {
        StoreTlsMode::Implicit { port } => port,
        StoreTlsMode::Off | StoreTlsMode::StartTls => svc.backside_port,
    };
    let store = route::store_of(&entry, &svc.mail_host_attrs, port)
        .ok_or_else(|| LoginError::NoMailHost { dn: entry.dn.clone() })?;
    let replay_user =
        svc.replay_format.expand(|t| identity.token(t, client_ip, server_ip, Some(&entry)), str::to_owned);
    let tcp = store::connect(&store, svc.backside_timeout).await?;
    let replay = ReplayCredentials { authzid: None, authcid: replay_user, password: credentials.password.clone() };
    let login = store::login(
        store::StoreSetup {
            protocol: svc.protocol,
            store: &store,
            mechanism: svc.replay_mechanism,
            tls_mode: svc.store_tls.mode,
            connector: service.store_tls.as_ref(),
            timeout: svc.backside_timeout,
        },
        tcp,
        replay,
    )
    .await?;
    Ok(LoggedIn { user: credentials.login.clone(), store, login })
}
