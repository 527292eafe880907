//! Hosted domains (`HostedDomains yes`, the DC-tree / Schema 2 model): the login's domain is
//! looked up first, and the user is searched below the domain's own base.
//!
//! ```text
//! user@domain ─▶ HostedDomainFilter (%V) below the LdapURL base ─▶ the domain entry
//!                ─▶ aliasedObjectName? follow it (at most MAX_ALIAS_HOPS)
//!                ─▶ inetDomainStatus / mailDomainStatus
//!                ─▶ user base: inetDomainBaseDN, else the entry itself
//!                ─▶ DomainSearchFormat below it ─▶ the user
//! ```
//!
//! The domain entry may override the service's `ReplayFormat` (`mailAccessProxyReplay`)
//! and `PreAuth` (`mailAccessProxyPreAuth`). A domain that is not found refuses the login
//! (`domain 'x' not found in LDAP`, as the MMP logs it), with the client's usual
//! authentication failure. Domain entries go through the same route cache as users.

use std::sync::Arc;

use mailmux_config::Token;
use mailmux_proto::ldap_filter;

use crate::directory::{Aliases, Base, Entry, Query, Scope};
use crate::error::LoginError;
use crate::service::Service;
use crate::status;

/// Alias entries followed at most, so two aliases pointing at each other end.
pub const MAX_ALIAS_HOPS: usize = 3;

/// What a hosted domain's entry says.
#[derive(Debug, Clone)]
pub struct HostedDomain {
    /// The domain's entry (after aliases).
    pub entry: Arc<Entry>,
    /// Where its users are.
    pub user_base: String,
    /// `mailAccessProxyReplay`: the domain's own `ReplayFormat`.
    pub replay_format: Option<String>,
    /// `mailAccessProxyPreAuth`: the domain's own `PreAuth`.
    pub preauth: Option<bool>,
}

/// The attributes of a domain entry mailmux reads.
pub const DOMAIN_ATTRS: [&str; 6] = [
    "inetdomainbasedn",
    "aliasedobjectname",
    "inetdomainstatus",
    "maildomainstatus",
    "mailaccessproxyreplay",
    "mailaccessproxypreauth",
];

/// Finds the entry of the login's domain (`identity.domain`, lower-cased); `token` gives
/// the values of the filter's tokens (`%V` above all).
pub async fn find_domain(
    service: &Service,
    domain: &str,
    token: impl Fn(&Token) -> Option<String>,
) -> Result<HostedDomain, LoginError> {
    let attrs: Vec<String> = DOMAIN_ATTRS.iter().map(|a| (*a).to_owned()).collect();
    let filter = service.config.lookup.hosted_domain_filter.expand(token, ldap_filter::escape_value);
    tracing::debug!(%filter, "hosted domain search");
    // Aliases are followed while searching: Schema 2 domains reached through an alias node of
    // the DC tree are found by the attributes of the entry it names.
    let query = Query {
        base: Base::Configured,
        scope: Scope::Subtree,
        filter: &filter,
        attrs: &attrs,
        aliases: Aliases::Everywhere,
    };
    let mut entry = service
        .directory
        .find_shared(query)
        .await?
        .ok_or_else(|| LoginError::UnknownDomain { domain: domain.to_owned() })?;
    let mut hops = 0;
    while let Some(target) = entry.first("aliasedobjectname").map(str::to_owned) {
        hops += 1;
        if hops > MAX_ALIAS_HOPS {
            return Err(LoginError::UnknownDomain {
                domain: format!("{domain} (aliases go on past {MAX_ALIAS_HOPS} hops)"),
            });
        }
        let query = Query {
            base: Base::Dn(target),
            scope: Scope::Base,
            filter: "(objectClass=*)",
            attrs: &attrs,
            aliases: Aliases::AtBase,
        };
        entry = service
            .directory
            .find_shared(query)
            .await?
            .ok_or_else(|| LoginError::UnknownDomain { domain: format!("{domain} (its alias leads nowhere)") })?;
    }
    status::check(&entry, &status::DOMAIN_STATUS_ATTRS, &format!("domain '{domain}'"))?;
    let user_base = entry.first("inetdomainbasedn").map_or_else(|| entry.dn.clone(), str::to_owned);
    let replay_format = entry.first("mailaccessproxyreplay").map(str::to_owned);
    let preauth = entry.first("mailaccessproxypreauth").and_then(|v| mailmux_config::raw::parse_bool(v).ok());
    Ok(HostedDomain { entry, user_base, replay_format, preauth })
}
