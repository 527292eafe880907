//! A hosted-domain directory (DC tree / Schema 2, `HostedDomains yes`) for tests: a
//! [`Site`] of domains and users, written as LDIF for a slapd that loads
//! `mailhosting.schema`, and the logins the Dovecot stores need for the same users.
//!
//! # Layout of [`Site::standard`]
//!
//! One slapd database with the **null suffix** (`""`) holds two top-level trees, as in a Sun
//! Messaging Server directory: the DC tree under [`DC_ROOT`] (`o=internet`), where domains
//! are looked up, and the organizations under [`ORG_ROOT`] (`o=isp`), where the users live.
//! The administrator is [`ADMIN_DN`] (`cn=admin,o=internet`, password [`ADMIN_PASSWORD`]).
//!
//! | domain | domain entry | found by | statuses | `mailAccessProxyReplay` |
//! | --- | --- | --- | --- | --- |
//! | `siroe.com` | `dc=siroe,dc=com,o=internet` (`domain`, `domainRelatedObject`, `inetDomain`, `mailDomain`) | `associatedDomain: siroe.com`, or its DN | inet active, mail active | `%U@%V` |
//! | `sesta.com` | `o=sesta.com,o=isp` (`organization`, `sunManagedOrganization`, `inetDomain`, `mailDomain`), reached from the alias `dc=sesta,dc=com,o=internet` (`aliasedObjectName`) | `sunPreferredDomain: sesta.com` (no `associatedDomain`), only through the alias from `o=internet` | inet active, mail active | none |
//! | `varrius.com` | `dc=varrius,dc=com,o=internet` (as siroe) | `associatedDomain` | **inetDomainStatus inactive**, mail active | none |
//! | `airius.com` | `dc=airius,dc=com,o=internet` (as siroe) | `associatedDomain` | inet active, **mailDomainStatus inactive** | none |
//!
//! Every domain entry has `inetDomainBaseDN: o=<domain>,o=isp` (sesta's names itself), and
//! objectClass `inetDomain`; only DC-tree nodes are `domain`, only sesta's is
//! `sunManagedOrganization`. So [`domain_filter`] (`objectClass=inetDomain`) finds all four,
//! while a filter on `objectClass=domain` misses sesta. Aliases are followed only when the
//! client asks: `ldapsearch -a always` (or `search`/`find`), `DerefAliases::Always` in ldap3;
//! a subtree search of `o=internet` finds sesta only that way, since its entry is under `o=isp`.
//!
//! Users: `uid=<uid>,ou=people,o=<domain>,o=isp`, objectClass `inetOrgPerson`,
//! `inetLocalMailRecipient`, `inetUser`, `inetMailUser`; `mail: <uid>@<domain>`;
//! `userPassword: <uid>-<first label>-pw` in clear (e.g. `joe-siroe-pw`).
//!
//! | user | mailHost | mailbox on | inetUserStatus | mailUserStatus |
//! | --- | --- | --- | --- | --- |
//! | `joe@siroe.com` | 127.0.0.2 | store A | active | active |
//! | `inactive@siroe.com` | 127.0.0.2 | store A | inactive | — |
//! | `deleted@siroe.com` | 127.0.0.2 | store A | deleted | — |
//! | `overquota@siroe.com` | 127.0.0.2 | store A | — | overquota |
//! | `disabled@siroe.com` | 127.0.0.2 | store A | — | disabled |
//! | `hold@siroe.com` | 127.0.0.2 | store A | — | hold |
//! | `nostatus@siroe.com` | 127.0.0.2 | store A | — | — |
//! | `twohosts@siroe.com` | 127.0.0.9 (nothing listens), then 127.0.0.3 | store B | — | — |
//! | `joe@sesta.com` | 127.0.0.3 | store B | active | active |
//! | `vic@varrius.com` | 127.0.0.2 | store A | active | active |
//! | `amy@airius.com` | 127.0.0.3 | store B | active | active |
//!
//! `mailHost` is single-valued in OpenLDAP's and Sun's schemas; this slapd loads
//! [`Schema::misc_multivalued_mailhost`] so that `twohosts` can exist. slapd returns the values
//! in the order of the LDIF.
//!
//! # What the stores see
//!
//! The store login is the user id after `ReplayFormat`, which a domain's
//! `mailAccessProxyReplay` overrides: with a global `%U`, siroe's users log into the store as
//! `joe@siroe.com`, the others as `joe`, `vic`, `amy`. [`Site::store_users`] lists those logins
//! with their passwords and stores for [`crate::lab::Lab::start_with`]. Every store knows every
//! login (see [`crate::dovecot`]); only the user's own store has the marker message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::User;
use crate::lab::{DOWN_STORE_IP, STORE_IPS};
use crate::slapd::{Schema, Slapd, SlapdConfig};

/// The root of the DC tree, where domains are looked up (the `LdapURL` base).
pub const DC_ROOT: &str = "o=internet";
/// The root of the organizations, where each domain's users live.
pub const ORG_ROOT: &str = "o=isp";
/// The administrator (rootdn) of the hosted directory.
pub const ADMIN_DN: &str = "cn=admin,o=internet";
/// The administrator's password (the same as the flat directory's).
pub const ADMIN_PASSWORD: &str = crate::slapd::ADMIN_PASSWORD;
/// The schema slice a hosted-domain directory needs (copied from the MMP specification).
pub const MAILHOSTING_SCHEMA: &str = include_str!("../schema/mailhosting.schema");

/// A DC-tree domain with a domain-level `mailAccessProxyReplay`.
pub const SIROE: &str = "siroe.com";
/// A Schema 2 domain reached through an alias node, found by `sunPreferredDomain`.
pub const SESTA: &str = "sesta.com";
/// A domain whose `inetDomainStatus` is `inactive`.
pub const VARRIUS: &str = "varrius.com";
/// A domain whose `mailDomainStatus` is `inactive`.
pub const AIRIUS: &str = "airius.com";
/// siroe.com's `mailAccessProxyReplay`.
pub const SIROE_REPLAY: &str = "%U@%V";
/// The siroe.com user with two `mailHost` values, the first where nothing listens.
pub const TWO_HOSTS: &str = "twohosts";
/// Where [`Site::store_users`] puts a user whose hosts are all down.
pub const NO_STORE: usize = 9;

/// What the DC-tree node of a domain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainNode {
    /// The DC-tree node is the domain entry: `dc=siroe,dc=com,o=internet`, objectClass
    /// `domain`, `domainRelatedObject`, `inetDomain`, `mailDomain`, with `associatedDomain`
    /// and `inetDomainBaseDN: o=siroe.com,o=isp`.
    DcTree,
    /// The DC-tree node is an alias (`alias`, `extensibleObject`, `aliasedObjectName`) to the
    /// organization, which is the domain entry (Schema 2): `o=sesta.com,o=isp`, objectClass
    /// `organization`, `sunManagedOrganization`, `inetDomain`, `mailDomain`, with
    /// `sunPreferredDomain` (no `associatedDomain`) and `inetDomainBaseDN` naming itself.
    AliasToOrganization,
}

/// A hosted domain and its users.
#[derive(Debug, Clone)]
pub struct Domain {
    /// The DNS name, e.g. `siroe.com`.
    pub name: String,
    /// How its DC-tree node looks.
    pub node: DomainNode,
    /// `inetDomainStatus`, if set.
    pub inet_domain_status: Option<String>,
    /// `mailDomainStatus`, if set.
    pub mail_domain_status: Option<String>,
    /// `mailAccessProxyReplay`, if set.
    pub replay: Option<String>,
    /// Its users.
    pub users: Vec<HostedUser>,
}

impl Domain {
    /// A domain with both statuses `active`, no replay and no users.
    pub fn new(name: &str, node: DomainNode) -> Domain {
        Domain {
            name: name.into(),
            node,
            inet_domain_status: Some("active".into()),
            mail_domain_status: Some("active".into()),
            replay: None,
            users: Vec::new(),
        }
    }

    /// Adds a user.
    pub fn with_user(mut self, user: HostedUser) -> Domain {
        assert_eq!(user.domain, self.name, "user {} belongs to another domain", user.login());
        self.users.push(user);
        self
    }

    /// Its DC-tree node: `dc=siroe,dc=com,o=internet`.
    pub fn dc_dn(&self) -> String {
        dc_dn(&self.name.split('.').collect::<Vec<_>>())
    }

    /// Its organization, the base of its users: `o=siroe.com,o=isp` (its `inetDomainBaseDN`).
    pub fn base_dn(&self) -> String {
        format!("o={},{ORG_ROOT}", self.name)
    }

    /// The entry holding the domain's attributes: the DC-tree node, or for an alias the
    /// organization it points to.
    pub fn entry_dn(&self) -> String {
        match self.node {
            DomainNode::DcTree => self.dc_dn(),
            DomainNode::AliasToOrganization => self.base_dn(),
        }
    }

    /// The container of its users: `ou=people,o=siroe.com,o=isp`.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{}", self.base_dn())
    }

    /// One of its users; fails the test if there is none by that uid.
    pub fn user(&self, uid: &str) -> &HostedUser {
        self.users.iter().find(|u| u.uid == uid).unwrap_or_else(|| panic!("no user {uid}@{}", self.name))
    }
}

/// A user of a hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedUser {
    /// `uid`, unique only within the domain.
    pub uid: String,
    /// The domain's name.
    pub domain: String,
    /// `userPassword`, in clear.
    pub password: String,
    /// `mailHost` values, in order.
    pub mail_hosts: Vec<String>,
    /// The store holding the mailbox (and its marker): 0 = A, 1 = B, [`NO_STORE`] if none.
    pub store: usize,
    /// `inetUserStatus`, if set.
    pub inet_user_status: Option<String>,
    /// `mailUserStatus`, if set.
    pub mail_user_status: Option<String>,
}

impl HostedUser {
    /// A user on store `store` (0 = A, 1 = B): `mailHost` is that store's address, the
    /// password `<uid>-<first label of domain>-pw`, no status attributes.
    pub fn new(uid: &str, domain: &str, store: usize) -> HostedUser {
        let label = domain.split('.').next().unwrap_or(domain);
        HostedUser {
            uid: uid.into(),
            domain: domain.into(),
            password: format!("{uid}-{label}-pw"),
            mail_hosts: vec![STORE_IPS[store].to_string()],
            store,
            inet_user_status: None,
            mail_user_status: None,
        }
    }

    /// Sets `inetUserStatus` and `mailUserStatus` (`None` leaves one out).
    pub fn with_status(mut self, inet: Option<&str>, mail: Option<&str>) -> HostedUser {
        self.inet_user_status = inet.map(Into::into);
        self.mail_user_status = mail.map(Into::into);
        self
    }

    /// Replaces the `mailHost` values; `store` is where the mailbox is.
    pub fn with_hosts(mut self, hosts: &[&str], store: usize) -> HostedUser {
        self.mail_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        self.store = store;
        self
    }

    /// What a client types: `joe@siroe.com`.
    pub fn login(&self) -> String {
        format!("{}@{}", self.uid, self.domain)
    }

    /// The entry: `uid=joe,ou=people,o=siroe.com,o=isp`.
    pub fn dn(&self) -> String {
        format!("uid={},ou=people,o={},{ORG_ROOT}", self.uid, self.domain)
    }

    /// The user as the lab's flat [`User`] with the login a store sees under `replay`
    /// (see [`expand_replay`]).
    pub fn store_user(&self, replay: &str) -> User {
        User { uid: expand_replay(replay, &self.uid, &self.domain), password: self.password.clone(), store: self.store }
    }
}

/// The login a store sees for `uid@domain` under a `ReplayFormat`/`mailAccessProxyReplay`
/// template, as the MMP documents it: `%U` user id, `%V` domain, `%s` `uid@domain`, `%o` what
/// the client typed (taken to be `uid@domain`), `%A[uid]`, `%A[mail]` (`uid@domain`), `%%`.
/// Fails the test on any other token: this is a test's expectation, not an implementation.
pub fn expand_replay(template: &str, uid: &str, domain: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (value, used) = match after.as_bytes().first() {
            Some(b'U') => (uid.to_owned(), 1),
            Some(b'V') => (domain.to_owned(), 1),
            Some(b's' | b'o') => (format!("{uid}@{domain}"), 1),
            Some(b'%') => ("%".to_owned(), 1),
            Some(b'A') if after.starts_with("A[uid]") => (uid.to_owned(), "A[uid]".len()),
            Some(b'A') if after.starts_with("A[mail]") => (format!("{uid}@{domain}"), "A[mail]".len()),
            _ => panic!("expand_replay: unsupported token in {template:?}"),
        };
        out.push_str(&value);
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// A filter that finds each domain entry of a [`Site`] under [`DC_ROOT`], when aliases are
/// dereferenced (`-a always`): `(&(objectClass=inetDomain)(|(associatedDomain=D)(sunPreferredDomain=D)))`.
pub fn domain_filter(domain: &str) -> String {
    format!("(&(objectClass=inetDomain)(|(associatedDomain={domain})(sunPreferredDomain={domain})))")
}

/// The `LdapURL` of a hosted directory: `ldap://127.0.0.1:PORT/o=internet`.
pub fn ldap_url(slapd: &Slapd) -> String {
    format!("{}/{DC_ROOT}", slapd.url)
}

/// mailmux configuration lines pointing at a hosted directory (`LdapURL`, `BindDN`,
/// `BindPass`), to append to a service file: later lines override the lab's.
pub fn config_lines(slapd: &Slapd) -> String {
    format!(
        "default:LdapURL {}\ndefault:BindDN \"{}\"\ndefault:BindPass {}\n",
        ldap_url(slapd),
        slapd.admin_dn,
        slapd.admin_password
    )
}

/// A set of hosted domains.
#[derive(Debug, Clone)]
pub struct Site {
    /// The domains, in LDIF order.
    pub domains: Vec<Domain>,
}

impl Site {
    /// The site in the [module documentation](self).
    pub fn standard() -> Site {
        let (a, b) = (0, 1);
        let siroe = |uid: &str| HostedUser::new(uid, SIROE, a);
        let down = DOWN_STORE_IP.to_string();
        let store_b = STORE_IPS[b].to_string();
        let mut siroe_domain = Domain::new(SIROE, DomainNode::DcTree)
            .with_user(siroe("joe").with_status(Some("active"), Some("active")))
            .with_user(siroe("inactive").with_status(Some("inactive"), None))
            .with_user(siroe("deleted").with_status(Some("deleted"), None))
            .with_user(siroe("overquota").with_status(None, Some("overquota")))
            .with_user(siroe("disabled").with_status(None, Some("disabled")))
            .with_user(siroe("hold").with_status(None, Some("hold")))
            .with_user(siroe("nostatus"))
            .with_user(siroe(TWO_HOSTS).with_hosts(&[&down, &store_b], b));
        siroe_domain.replay = Some(SIROE_REPLAY.into());
        let sesta = Domain::new(SESTA, DomainNode::AliasToOrganization)
            .with_user(HostedUser::new("joe", SESTA, b).with_status(Some("active"), Some("active")));
        let mut varrius = Domain::new(VARRIUS, DomainNode::DcTree)
            .with_user(HostedUser::new("vic", VARRIUS, a).with_status(Some("active"), Some("active")));
        varrius.inet_domain_status = Some("inactive".into());
        let mut airius = Domain::new(AIRIUS, DomainNode::DcTree)
            .with_user(HostedUser::new("amy", AIRIUS, b).with_status(Some("active"), Some("active")));
        airius.mail_domain_status = Some("inactive".into());
        Site { domains: vec![siroe_domain, sesta, varrius, airius] }
    }

    /// A domain; fails the test if the site has none by that name.
    pub fn domain(&self, name: &str) -> &Domain {
        self.domains.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no domain {name} in the site"))
    }

    /// A user; fails the test if there is none.
    pub fn user(&self, uid: &str, domain: &str) -> &HostedUser {
        self.domain(domain).user(uid)
    }

    /// Every user of every domain.
    pub fn users(&self) -> impl Iterator<Item = &HostedUser> {
        self.domains.iter().flat_map(|d| d.users.iter())
    }

    /// The logins the stores need when mailmux's global `ReplayFormat` is `replay`: each
    /// user's login after its domain's `mailAccessProxyReplay` (or `replay`), with its password
    /// and store. Fails the test if two users would share a store login.
    pub fn store_users(&self, replay: &str) -> Vec<User> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for domain in &self.domains {
            for user in &domain.users {
                let store_user = user.store_user(domain.replay.as_deref().unwrap_or(replay));
                if let Some(other) = seen.insert(store_user.uid.clone(), user.login()) {
                    panic!(
                        "with ReplayFormat {replay:?}, {} and {other} both log into the store as {:?}",
                        user.login(),
                        store_user.uid
                    );
                }
                out.push(store_user);
            }
        }
        out
    }

    /// The directory as LDIF, parents first: `o=internet` and the DC tree, then `o=isp`, the
    /// organizations, their `ou=people` and the users.
    pub fn ldif(&self) -> String {
        let mut out = format!("dn: {DC_ROOT}\nobjectClass: organization\no: internet\n\n");
        // DC-tree nodes by depth: intermediate `domain` nodes (dc=com) and the domains' own.
        let mut dc_nodes: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        let own: BTreeSet<String> = self.domains.iter().map(Domain::dc_dn).collect();
        for domain in &self.domains {
            let labels: Vec<&str> = domain.name.split('.').collect();
            for start in 1..labels.len() {
                let dn = dc_dn(&labels[start..]);
                if !own.contains(&dn) {
                    let entry = format!("dn: {dn}\nobjectClass: domain\ndc: {}\n\n", labels[start]);
                    dc_nodes.entry(labels.len() - start).or_default().insert(dn, entry);
                }
            }
            dc_nodes.entry(labels.len()).or_default().insert(domain.dc_dn(), dc_node(domain, labels[0]));
        }
        for entry in dc_nodes.values().flat_map(BTreeMap::values) {
            out.push_str(entry);
        }
        out.push_str(&format!("dn: {ORG_ROOT}\nobjectClass: organization\no: isp\n\n"));
        for domain in &self.domains {
            out.push_str(&organization(domain));
            out.push_str(&format!("dn: {}\nobjectClass: organizationalUnit\nou: people\n\n", domain.people_dn()));
            for user in &domain.users {
                out.push_str(&user_entry(user));
            }
        }
        out
    }

    /// The slapd configuration for this site: null suffix, [`ADMIN_DN`], the standard schemas
    /// with `mailHost` multi-valued, `mailhosting.schema`, operations logged (for
    /// [`Slapd::searches`]).
    pub fn slapd_config() -> SlapdConfig {
        let mut config = SlapdConfig::default().with_suffix("", ADMIN_DN).with_stats();
        config.schemas = ["core", "cosine", "inetorgperson", "nis"].into_iter().map(Schema::System).collect();
        config
            .with_schema(Schema::misc_multivalued_mailhost())
            .with_schema(Schema::Text { file_name: "mailhosting.schema".into(), text: MAILHOSTING_SCHEMA.into() })
    }

    /// Starts a slapd in `dir` holding this site (configured by [`Site::slapd_config`]).
    pub fn start_slapd(&self, dir: &Path) -> Slapd {
        Slapd::start_config(dir, &self.ldif(), &Site::slapd_config())
    }
}

fn dc_dn(labels: &[&str]) -> String {
    let mut dn: String = labels.iter().map(|l| format!("dc={l},")).collect();
    dn.push_str(DC_ROOT);
    dn
}

/// The domain's attributes, on whichever entry carries them.
fn domain_attributes(domain: &Domain) -> String {
    let mut out = format!("inetDomainBaseDN: {}\n", domain.base_dn());
    for (name, value) in [
        ("inetDomainStatus", &domain.inet_domain_status),
        ("mailDomainStatus", &domain.mail_domain_status),
        ("mailAccessProxyReplay", &domain.replay),
    ] {
        if let Some(value) = value {
            out.push_str(&format!("{name}: {value}\n"));
        }
    }
    out
}

fn dc_node(domain: &Domain, label: &str) -> String {
    let dn = domain.dc_dn();
    match domain.node {
        DomainNode::DcTree => format!(
            "dn: {dn}\nobjectClass: domain\nobjectClass: domainRelatedObject\nobjectClass: inetDomain\n\
             objectClass: mailDomain\ndc: {label}\nassociatedDomain: {}\n{}\n",
            domain.name,
            domain_attributes(domain)
        ),
        DomainNode::AliasToOrganization => format!(
            "dn: {dn}\nobjectClass: alias\nobjectClass: extensibleObject\ndc: {label}\naliasedObjectName: {}\n\n",
            domain.base_dn()
        ),
    }
}

fn organization(domain: &Domain) -> String {
    let dn = domain.base_dn();
    match domain.node {
        DomainNode::DcTree => format!("dn: {dn}\nobjectClass: organization\no: {}\n\n", domain.name),
        DomainNode::AliasToOrganization => {
            assert!(
                domain.inet_domain_status.is_some(),
                "{}: sunManagedOrganization requires inetDomainStatus",
                domain.name
            );
            format!(
                "dn: {dn}\nobjectClass: organization\nobjectClass: sunManagedOrganization\nobjectClass: inetDomain\n\
                 objectClass: mailDomain\no: {}\nsunPreferredDomain: {}\n{}\n",
                domain.name,
                domain.name,
                domain_attributes(domain)
            )
        }
    }
}

fn user_entry(user: &HostedUser) -> String {
    let mut e = format!(
        "dn: {}\nobjectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\nobjectClass: inetUser\n\
         objectClass: inetMailUser\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {}\nuserPassword: {}\n",
        user.dn(),
        user.login(),
        user.password,
        uid = user.uid,
    );
    for host in &user.mail_hosts {
        e.push_str(&format!("mailHost: {host}\n"));
    }
    for (name, value) in [("inetUserStatus", &user.inet_user_status), ("mailUserStatus", &user.mail_user_status)] {
        if let Some(value) = value {
            e.push_str(&format!("{name}: {value}\n"));
        }
    }
    e.push('\n');
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_templates_expand_as_documented() {
        assert_eq!(expand_replay("%U", "joe", "siroe.com"), "joe");
        assert_eq!(expand_replay("%U@%V", "joe", "siroe.com"), "joe@siroe.com");
        assert_eq!(expand_replay("%s", "joe", "siroe.com"), "joe@siroe.com");
        assert_eq!(expand_replay("%A[uid]+%V%%", "joe", "siroe.com"), "joe+siroe.com%");
    }

    #[test]
    fn store_logins_follow_the_domain_replay() {
        let site = Site::standard();
        let users = site.store_users("%U");
        let find = |uid: &str| users.iter().find(|u| u.uid == uid).unwrap_or_else(|| panic!("{uid}"));
        assert_eq!(find("joe@siroe.com").store, 0);
        assert_eq!(find("joe@siroe.com").password, "joe-siroe-pw");
        assert_eq!(find("joe").store, 1);
        assert_eq!(find("joe").password, "joe-sesta-pw");
        assert_eq!(find("twohosts@siroe.com").store, 1);
    }

    #[test]
    #[should_panic(expected = "both log into the store")]
    fn clashing_store_logins_fail() {
        let mut site = Site::standard();
        site.domains[0].replay = None;
        site.store_users("%U");
    }

    #[test]
    fn ldif_puts_parents_first() {
        let ldif = Site::standard().ldif();
        let dns: Vec<&str> = ldif.lines().filter_map(|l| l.strip_prefix("dn: ")).collect();
        for (i, dn) in dns.iter().enumerate() {
            if let Some((_, parent)) = dn.split_once(',') {
                assert!(dns[..i].contains(&parent), "{dn} comes before its parent");
            }
        }
        assert!(dns.contains(&"dc=sesta,dc=com,o=internet"));
    }
}
