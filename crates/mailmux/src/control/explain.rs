//! `mailmux admin explain USER`: where a login of USER would go, found the way a login finds
//! it, without logging in and without the user's password.
//!
//! ```text
//! service (imap | pop3) ─▶ vdmap entry of the address ─▶ identity ─▶ [hosted domain] ─▶ filter
//!   ─▶ route cache: held or not (asked before the lookup) ─▶ the entry (through the cache,
//!   as a login would) ─▶ status ─▶ mail-host attributes ─▶ stores, in order, with their health
//! ```
//!
//! The lookup is the real one (`session::login::user_search`, the service's directory with
//! its route cache), so it fills the cache as a login would. A `SearchFormat` that uses the
//! client's address (`%C`) sees 127.0.0.1.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mailmux_config::Protocol;

use crate::directory::Base;
use crate::log_safe::Escaped;
use crate::route;
use crate::server::ServerHandle;
use crate::session::login;
use crate::status;

/// The report, or why there is none (no such service, user not found…), both as text.
pub async fn explain(
    server: &ServerHandle,
    protocol: Protocol,
    user: &str,
    address: Option<IpAddr>,
) -> Result<String, String> {
    let (service, listener) =
        server.service(protocol).ok_or_else(|| format!("no {} service is configured\n", protocol.as_str()))?;
    let local = SocketAddr::new(address.unwrap_or(listener.ip()), listener.port());
    let (service, vdmap) = service.for_local_address(local.ip());
    let vdmap = vdmap.map(str::to_owned);
    let svc = &service.config;
    let ctx = server.context(service.clone(), SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), local);
    let mut out = String::new();
    let _ = writeln!(out, "user: {}", Escaped(user));
    let _ = writeln!(out, "service: {} ({})", protocol.as_str(), svc.file.display());
    let _ = writeln!(
        out,
        "address: {} ({})",
        local.ip(),
        vdmap.as_deref().map_or_else(|| "no vdmap entry".to_owned(), |name| format!("vdmap entry {name}"))
    );
    let directories: Vec<String> = svc.directory.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "directory: {}", directories.join(" "));
    let search = match login::user_search(&ctx, user).await {
        Ok(search) => search,
        Err(e) => {
            let _ = writeln!(out, "no route: {}", Escaped(&e.to_string()));
            return Err(out);
        }
    };
    let _ = writeln!(out, "identity: {}", Escaped(&search.identity.user_at_domain()));
    if let Some(domain) = &search.domain {
        let _ = writeln!(out, "hosted domain entry: {}", Escaped(&domain.entry.dn));
    }
    let base = match &search.base {
        Base::Configured => "the LdapURL base".to_owned(),
        Base::Dn(dn) => Escaped(dn).to_string(),
    };
    let _ = writeln!(out, "search base: {base}");
    let _ = writeln!(out, "filter: {}", Escaped(&search.filter));
    let query = search.query(&service);
    let _ = writeln!(out, "route cache: {}", service.directory.peek(&query).as_str());
    let entry = match service.directory.find_shared(query).await {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            let _ = writeln!(out, "entry: none (a login would fail: no such user)");
            return Err(out);
        }
        Err(e) => {
            let _ = writeln!(out, "entry: the directory did not answer: {}", Escaped(&e.to_string()));
            return Err(out);
        }
    };
    let _ = writeln!(out, "entry: {}", Escaped(&entry.dn));
    match status::check(&entry, &status::USER_STATUS_ATTRS, "user") {
        Ok(()) => {
            let _ = writeln!(out, "status: active");
        }
        Err(e) => {
            let _ = writeln!(out, "status: {} (a login would fail)", Escaped(&e.to_string()));
        }
    }
    let access = entry.values(&svc.edge.tcp_access_attr);
    if !access.is_empty() {
        let _ = writeln!(out, "{}: {}", svc.edge.tcp_access_attr, Escaped(&access.join("$")));
    }
    for attr in &svc.mail_host_attrs {
        for value in entry.values(attr) {
            let _ = writeln!(out, "{attr}: {}", Escaped(value));
        }
    }
    let stores = route::stores_of(&entry, &svc.mail_host_attrs, svc.store_port());
    if stores.is_empty() {
        let _ = writeln!(out, "stores: none (a login would fail: no usable mail host attribute)");
        return Err(out);
    }
    for (i, store) in stores.iter().enumerate() {
        let down = ctx.stores.is_down(store);
        let _ = writeln!(
            out,
            "store {}: {} ({})",
            i + 1,
            Escaped(&store.to_string()),
            if down { "marked down" } else { "up" }
        );
    }
    if let Some(store) = ctx.stores.candidates(&stores).first() {
        let _ = writeln!(out, "store chosen: {}", Escaped(&store.to_string()));
    }
    Ok(out)
}
