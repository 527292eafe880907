//! From credentials to a logged-in store connection.
//!
//! ```text
//! password, CRAM ─▶ identity (delimiters, default domain) ─┬─ hosted domain: domain entry ─▶ DomainSearchFormat below its base ─┐
//!                                                          └─ else: SearchFormat below the LdapURL base ─────────────────────┤
//! certificate (EXTERNAL) ─▶ certmap.conf mapping ─▶ search [VerifyCert] ─────────────────────────────────────────────────────┤
//!   ◀────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘
//!   status ─▶ the user's access filter ─▶ [PreAuth | CRAM digest] ─▶ route (stores in order) ─▶ connect (skipping stores that are down) ─▶ replay
//! ```
//!
//! A password login replays the user's own credentials, after PreAuth has checked them when
//! it is on ([`verify::preauth`]). A bearer token (OAUTHBEARER, XOAUTH2) names its user, who is
//! routed like anyone else; the token itself is handed to the store unchanged, since only the
//! store can check it (`OAuthBearer`). A certificate, CRAM-MD5 or APOP login has no password to
//! replay, so mailmux logs in as `StoreAdmin` with the user as SASL PLAIN authorization
//! identity (CRAM-MD5 and APOP digests are checked first, [`verify::challenge_response`]).
//! When the user's first store cannot be reached (refused, or no answer within
//! `BacksideTimeout`), the next `mailHost` is tried, and the failed store is skipped by every
//! session for a short while (`store::health`); a store that answers and refuses the login
//! is not failed over.

use mailmux_config::tcp_access::{Decision, Service as AccessService, TcpAccess};
use mailmux_proto::{BearerMechanism, Proof, ReplayCredentials, Secret, ldap_filter};
use rustls::pki_types::CertificateDer;

use std::sync::Arc;

use mailmux_config::Template;
use tokio::net::TcpStream;

use super::{SessionContext, verify};
use crate::certificate;
use crate::directory::{Aliases, Base, Entry, Query, Scope};
use crate::error::LoginError;
use crate::hosted::{self, HostedDomain};
use crate::identity::Identity;
use crate::route::{self, StoreAddr};
use crate::status;
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
    proof: &Proof,
    certificate: Option<&CertificateDer<'_>>,
    encrypted: bool,
) -> Result<LoggedIn, LoginError> {
    let svc = &ctx.service.config;
    let found = match proof {
        Proof::Password { login, password } => {
            if let Some(problem) = mailmux_proto::login::credentials_problem(login, password.expose()) {
                return Err(LoginError::Unusable(problem));
            }
            by_login(ctx, login, Who::User(password.clone())).await?
        }
        Proof::ChallengeResponse { login, .. } => {
            // The fronts offer CRAM-MD5 and APOP only with `CRAMs yes`; a vdmap entry may
            // have turned them off for this address.
            if !svc.auth.crams {
                return Err(LoginError::ProofNotEnabled("CRAM-MD5 and APOP are not enabled (CRAMs)"));
            }
            if let Some(problem) = mailmux_proto::login::credentials_problem(login, b"") {
                return Err(LoginError::Unusable(problem));
            }
            by_login(ctx, login, Who::OnBehalf).await?
        }
        Proof::Certificate { authzid } => {
            let requested = authzid.as_deref().unwrap_or("");
            if let Some(problem) = mailmux_proto::login::credentials_problem(requested, b"") {
                return Err(LoginError::Unusable(problem));
            }
            let certificate = certificate.ok_or_else(|| unmapped("no client certificate"))?;
            by_certificate(ctx, certificate, requested).await?
        }
        Proof::BearerToken { login, token, mechanism, .. } => {
            // The fronts offer the mechanisms only with `OAuthBearer yes`; a vdmap entry may
            // have turned it off for this address.
            if !svc.auth.bearer {
                return Err(LoginError::ProofNotEnabled("bearer tokens are not enabled (OAuthBearer)"));
            }
            if let Some(problem) = mailmux_proto::login::credentials_problem(login, b"") {
                return Err(LoginError::Unusable(problem));
            }
            by_login(ctx, login, Who::Token(token.clone(), *mechanism)).await?
        }
    };
    let Found { identity, entry, domain, who } = found;
    status::check(&entry, &status::USER_STATUS_ATTRS, &format!("user '{}'", identity.user_at_domain()))?;
    user_access(ctx, &entry, encrypted).await?;
    // Checked last, so that a disabled or barred user costs the directory no bind.
    match proof {
        Proof::Password { password, .. } => {
            verify::preauth(ctx, &identity.user_at_domain(), &entry, domain.as_ref(), password).await?;
        }
        Proof::ChallengeResponse { challenge, digest, kind, .. } => {
            verify::challenge_response(ctx, &entry, challenge, digest, *kind).await?;
        }
        // Only the store can check a token: mailmux has no key to verify one with.
        Proof::Certificate { .. } | Proof::BearerToken { .. } => {}
    }
    let stores = route::stores_of(&entry, &svc.mail_host_attrs, svc.store_port());
    if stores.is_empty() {
        return Err(LoginError::NoMailHost { dn: entry.dn.clone() });
    }
    // The directory names stores one user at a time: this is how mailmux comes to know them.
    ctx.service.note_stores(&stores);
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let replay_format = replay_format(svc, domain.as_ref());
    let replay_user = replay_format.expand(|t| identity.token(t, client_ip, server_ip, Some(&entry)), str::to_owned);
    let replay = match who {
        Who::User(password) => ReplayCredentials::Password { authzid: None, authcid: replay_user, password },
        Who::OnBehalf => {
            let (admin, admin_password) =
                svc.store_admin.clone().ok_or_else(|| unmapped("StoreAdmin is not configured"))?;
            ReplayCredentials::Password { authzid: Some(replay_user), authcid: admin, password: admin_password }
        }
        // The token goes on unchanged; the user it names becomes the store's login name, as a
        // password login's would.
        Who::Token(token, mechanism) => ReplayCredentials::Bearer { user: replay_user, token, mechanism },
    };
    let (tcp, store) = connect_first(ctx, &stores).await?;
    let setup = store::StoreSetup {
        protocol: svc.protocol,
        store: &store,
        mechanism: svc.replay_mechanism,
        tls_mode: svc.store_tls.mode,
        connector: ctx.service.store_tls.as_ref(),
        timeout: svc.backside_timeout,
        client: svc.forward_client_address.then_some((ctx.client, ctx.local)),
    };
    let started = std::time::Instant::now();
    let login = store::login(setup, tcp, replay).await;
    ctx.metrics.store(&store).login.observe(started.elapsed());
    let login = login?;
    Ok(LoggedIn { user: identity.user_at_domain(), store, login })
}

/// The `ReplayFormat` in force: the hosted domain's `mailAccessProxyReplay`, else the
/// service's. A domain value that does not parse is logged and the service's used.
fn replay_format<'a>(
    svc: &'a mailmux_config::ServiceConfig,
    domain: Option<&HostedDomain>,
) -> std::borrow::Cow<'a, Template> {
    match domain.and_then(|d| d.replay_format.as_deref()) {
        None => std::borrow::Cow::Borrowed(&svc.replay_format),
        Some(text) => match Template::parse(text, true) {
            Ok(template) => std::borrow::Cow::Owned(template),
            Err(e) => {
                tracing::warn!(value = text, error = %e, "mailAccessProxyReplay cannot be read; using ReplayFormat");
                std::borrow::Cow::Borrowed(&svc.replay_format)
            }
        },
    }
}

/// Connects to the first of `stores` that answers, skipping those known to be down (unless
/// every one is), and marking those that fail.
async fn connect_first(ctx: &SessionContext, stores: &[StoreAddr]) -> Result<(TcpStream, StoreAddr), LoginError> {
    let timeout = ctx.service.config.backside_timeout;
    let health = &ctx.stores;
    let candidates = health.candidates(stores);
    if candidates.len() < stores.len() {
        tracing::debug!(skipped = stores.len() - candidates.len(), "stores marked down; skipping them");
    }
    let mut last_error = None;
    for (i, &store) in candidates.iter().enumerate() {
        let started = std::time::Instant::now();
        let connected = store::connect(store, timeout).await;
        ctx.metrics.store(store).connect.observe(started.elapsed());
        match connected {
            Ok(tcp) => {
                health.reached(store);
                return Ok((tcp, store.clone()));
            }
            Err(e) => {
                health.failed(store);
                if let Some(next) = candidates[i + 1..].iter().find(|s| !health.is_down(s)) {
                    tracing::warn!(%store, %next, reason = %e, "store unreachable; failing over");
                }
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| LoginError::NoMailHost { dn: String::new() }))
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
    /// The client's bearer token, for the store to check.
    Token(Secret, BearerMechanism),
}

/// Who the credentials name: the login taken apart, the user's entry, the hosted domain
/// it belongs to (if any), and whose credentials go to the store.
struct Found {
    identity: Identity,
    entry: Arc<Entry>,
    domain: Option<HostedDomain>,
    who: Who,
}

fn unmapped(reason: &str) -> LoginError {
    LoginError::CertificateUnmapped { reason: reason.to_owned() }
}

/// The search a login name leads to: the name taken apart, its hosted domain (if any),
/// where to search and the filter (user values escaped).
#[derive(Debug)]
pub struct UserSearch {
    /// The login name taken apart.
    pub identity: Identity,
    /// The hosted domain, with `HostedDomains yes` and a domain in the name.
    pub domain: Option<HostedDomain>,
    /// Where the search starts.
    pub base: Base,
    /// `SearchFormat` (or `DomainSearchFormat`) expanded.
    pub filter: String,
}

impl UserSearch {
    /// The directory query of this search.
    pub fn query<'a>(&'a self, service: &'a crate::service::Service) -> Query<'a> {
        Query {
            base: self.base.clone(),
            scope: Scope::Subtree,
            filter: &self.filter,
            attrs: &service.search_attrs,
            aliases: Aliases::AtBase,
        }
    }
}

/// Takes a login name apart and finds where its user must be searched (the hosted domain's
/// entry is looked up on the way): what a login does before the user search.
pub async fn user_search(ctx: &SessionContext, login: &str) -> Result<UserSearch, LoginError> {
    let service = &ctx.service;
    let svc = &service.config;
    let identity =
        Identity::parse(login, &svc.domain_delims, svc.default_domain.as_deref(), svc.lookup.canonical_delim)
            .ok_or(LoginError::EmptyUser)?;
    let (client_ip, server_ip) = (ctx.client.ip(), ctx.local.ip());
    let token = |t: &mailmux_config::Token| identity.token(t, client_ip, server_ip, None);
    let domain = match (&identity.domain, svc.lookup.hosted_domains) {
        (Some(domain), true) => Some(hosted::find_domain(service, domain, token).await?),
        _ => None,
    };
    let (base, template) = match &domain {
        Some(d) => (Base::Dn(d.user_base.clone()), &svc.lookup.domain_search_format),
        None => (Base::Configured, &svc.search_format),
    };
    let filter = template.expand(token, ldap_filter::escape_value);
    Ok(UserSearch { identity, domain, base, filter })
}

/// Finds the user a login name names; `who` says whose credentials will go to the store.
async fn by_login(ctx: &SessionContext, login: &str, who: Who) -> Result<Found, LoginError> {
    let service = &ctx.service;
    let search = user_search(ctx, login).await?;
    tracing::debug!(filter = %search.filter, base = ?search.base, "directory search");
    let entry = service.directory.find_shared(search.query(service)).await?.ok_or(LoginError::UnknownUser)?;
    let UserSearch { identity, domain, .. } = search;
    Ok(Found { identity, entry, domain, who })
}

/// The attribute holding the user id of a certificate's entry.
const UID: &str = "uid";

async fn by_certificate(ctx: &SessionContext, der: &CertificateDer<'_>, requested: &str) -> Result<Found, LoginError> {
    let service = &ctx.service;
    let svc = &service.config;
    let map = svc.cert_map.as_ref().ok_or_else(|| unmapped("CertMapFile is not configured"))?;
    let names = certificate::read(der).map_err(|e| unmapped(&e.to_string()))?;
    // A vdmap entry's CertMap names the map for its address; otherwise the issuer picks it.
    let mapping = match &svc.cert_map_name {
        Some(name) => map.named(name).ok_or_else(|| unmapped(&format!("certmap {name} is not in CertMapFile")))?,
        None => map
            .for_issuer(&names.issuer)
            .ok_or_else(|| unmapped(&format!("no certmap for issuer '{}' and no default", names.issuer)))?,
    };
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
        .find_shared(Query { base, scope, filter: &filter, attrs: &attrs, aliases: Aliases::AtBase })
        .await?
        .ok_or_else(|| unmapped(&format!("no entry for {}", names.subject)))?;
    if mapping.verify_cert && !entry.binary_values("usercertificate").iter().any(|c| c.as_slice() == der.as_ref()) {
        return Err(unmapped(&format!("VerifyCert: {} does not hold this certificate", entry.dn)));
    }
    let uid = entry.first(UID).ok_or_else(|| unmapped(&format!("{} has no uid", entry.dn)))?;
    let identity = Identity::parse(uid, &svc.domain_delims, svc.default_domain.as_deref(), svc.lookup.canonical_delim)
        .ok_or(LoginError::EmptyUser)?;
    // EXTERNAL may name the identity to act as; only the certificate's own is granted.
    if !requested.is_empty() && requested != uid && requested != identity.user_at_domain() {
        return Err(unmapped(&format!("certificate of {uid} asked to act as {requested}")));
    }
    Ok(Found { identity, entry, domain: None, who: Who::OnBehalf })
}
