//! From credentials to a logged-in store connection.
//!
//! ```text
//! password ─▶ identity (delimiter, default domain) ─▶ SearchFormat search ─┐
//! certificate (EXTERNAL) ─▶ certmap.conf mapping ─▶ search [VerifyCert] ──┴▶ route ─▶ connect ─▶ replay
//! ```
//!
//! A password login replays the user's own credentials. A certificate login has no password,
//! so mailmux logs in as `StoreAdmin` with the user as SASL PLAIN authorization identity.

use mailmux_config::StoreTlsMode;
use mailmux_config::tcp_access::{Decision, Service as AccessService, TcpAccess};
use mailmux_proto::{Credentials, Mechanism, ReplayCredentials, Secret, ldap_filter};
use rustls::pki_types::CertificateDer;

use super::SessionContext;
use crate::certificate;
use crate::directory::{Entry, Query};
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

/// Finds the user's store and logs in there. `encrypted`: the client connection is TLS (it
/// decides between `imap` and `imaps` in access filters).
pub async fn log_in(
    ctx: &SessionContext,
    credentials: &Credentials,
    certificate: Option<&CertificateDer<'_>>,
    encrypted: bool,
) -> Result<LoggedIn, LoginError> {
    if let Some(problem) = mailmux_proto::login::credentials_problem(&credentials.login, credentials.password.expose())
    {
        return Err(LoginError::Unusable(problem));
    }
    let (identity, entry, who) = match credentials.mechanism {
        Mechanism::External => {
            let certificate = certificate.ok_or_else(|| unmapped("no client certificate"))?;
            by_certificate(ctx, certificate, &credentials.login).await?
        }
        Mechanism::Password | Mechanism::Plain | Mechanism::Login => by_password(ctx, credentials).await?,
    };
    let svc = &ctx.service.config;
    user_access(ctx, &entry, encrypted).await?;
    let port = match svc.store_tls.mode {
        StoreTlsMode::Implicit { port } => port,
        StoreTlsMode::Off | StoreTlsMode::StartTls => svc.backside_port,
    };
    let store = route::store_of(&entry, &svc.mail_host_attrs, port)
        .ok_or_else(|| LoginError::NoMailHost { dn: entry.dn.clone() })?;
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let replay_user =
        svc.replay_format.expand(|t| identity.token(t, client_ip, server_ip, Some(&entry)), str::to_owned);
    let replay = match who {
        Who::User(password) => ReplayCredentials { authzid: None, authcid: replay_user, password },
        Who::OnBehalf => {
            let (admin, admin_password) =
                svc.store_admin.clone().ok_or_else(|| unmapped("StoreAdmin is not configured"))?;
            ReplayCredentials { authzid: Some(replay_user), authcid: admin, password: admin_password }
        }
    };
    let tcp = store::connect(&store, svc.backside_timeout).await?;
    let setup = store::StoreSetup {
        protocol: svc.protocol,
        store: &store,
        mechanism: svc.replay_mechanism,
        tls_mode: svc.store_tls.mode,
        connector: ctx.service.store_tls.as_ref(),
        timeout: svc.backside_timeout,
        client: svc.forward_client_address.then_some((ctx.client, ctx.local)),
    };
    let login = store::login(setup, tcp, replay).await?;
    Ok(LoggedIn { user: identity.user_at_domain(), store, login })
}

/// The user's own access filter (`TCPAccessAttr`, by default `mailAllowedServiceAccess`):
/// may this user use this service from this client? A filter that cannot be read refuses
/// the login (fail closed), as does a `-` rule that matches. Checked before the store is
/// contacted, so the client is told only that the login failed.
async fn user_access(ctx: &SessionContext, entry: &Entry, encrypted: bool) -> Result<(), LoginError> {
    let edge = &ctx.service.config.edge;
    let values = entry.values(&edge.tcp_access_attr);
    if values.is_empty() {
        return Ok(());
    }
    let denied = |reason: String| LoginError::AccessDenied { dn: entry.dn.clone(), reason };
    // Several values are read as one filter, rules joined with `$`.
    let filter = TcpAccess::parse(&values.join("$"))
        .map_err(|e| denied(format!("its {} cannot be read: {e}", edge.tcp_access_attr)))?;
    let service = AccessService::of(ctx.service.config.protocol, encrypted);
    let client = ctx.access_client(filter.needs_host_name_for(service)).await;
    let verdict = filter.verdict(service, &client);
    if verdict.decision == Decision::Deny {
        let rule = verdict.rule.map_or_else(|| "no rule allows it".to_owned(), |r| format!("rule {}", r + 1));
        return Err(denied(format!(
            "{} of the user does not allow {} ({rule})",
            edge.tcp_access_attr,
            service.as_str()
        )));
    }
    Ok(())
}

/// Whose credentials go to the store.
enum Who {
    /// The user's own password.
    User(Secret),
    /// `StoreAdmin`'s, acting for the user.
    OnBehalf,
}

fn unmapped(reason: &str) -> LoginError {
    LoginError::CertificateUnmapped { reason: reason.to_owned() }
}

async fn by_password(ctx: &SessionContext, credentials: &Credentials) -> Result<(Identity, Entry, Who), LoginError> {
    let service = &ctx.service;
    let svc = &service.config;
    let identity = Identity::parse(&credentials.login, &svc.domain_delims, svc.default_domain.as_deref())
        .ok_or(LoginError::EmptyUser)?;
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let filter = svc.search_format.expand(|t| identity.token(t, client_ip, server_ip, None), ldap_filter::escape_value);
    tracing::debug!(%filter, "directory search");
    let entry = service.directory.find_user(&filter, &service.search_attrs).await?.ok_or(LoginError::UnknownUser)?;
    Ok((identity, entry, Who::User(credentials.password.clone())))
}

/// The attribute holding the user id of a certificate's entry.
const UID: &str = "uid";

async fn by_certificate(
    ctx: &SessionContext,
    der: &CertificateDer<'_>,
    requested: &str,
) -> Result<(Identity, Entry, Who), LoginError> {
    let service = &ctx.service;
    let svc = &service.config;
    let map = svc.cert_map.as_ref().ok_or_else(|| unmapped("CertMapFile is not configured"))?;
    let names = certificate::read(der).map_err(|e| unmapped(&e.to_string()))?;
    let mapping = map
        .for_issuer(&names.issuer)
        .ok_or_else(|| unmapped(&format!("no certmap for issuer '{}' and no default", names.issuer)))?;
    let (base, scope, filter) =
        certificate::query(mapping, &names).map_err(|e| unmapped(&format!("certmap {}: {e}", mapping.name)))?;
    tracing::debug!(subject = %names.subject, certmap = %mapping.name, ?base, %filter, "certificate search");
    let mut attrs = service.search_attrs.clone();
    attrs.push(UID.to_owned());
    if mapping.verify_cert {
        attrs.push("usercertificate;binary".to_owned());
    }
    let entry = service
        .directory
        .find(Query { base, scope, filter: &filter, attrs: &attrs })
        .await?
        .ok_or_else(|| unmapped(&format!("no entry for {}", names.subject)))?;
    if mapping.verify_cert && !entry.binary_values("usercertificate").iter().any(|c| c.as_slice() == der.as_ref()) {
        return Err(unmapped(&format!("VerifyCert: {} does not hold this certificate", entry.dn)));
    }
    let uid = entry.first(UID).ok_or_else(|| unmapped(&format!("{} has no uid", entry.dn)))?;
    let identity =
        Identity::parse(uid, &svc.domain_delims, svc.default_domain.as_deref()).ok_or(LoginError::EmptyUser)?;
    // EXTERNAL may name the identity to act as; only the certificate's own is granted.
    if !requested.is_empty() && requested != uid && requested != identity.user_at_domain() {
        return Err(unmapped(&format!("certificate of {uid} asked to act as {requested}")));
    }
    Ok((identity, entry, Who::OnBehalf))
}
