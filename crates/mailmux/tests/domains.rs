//! Hosted domains against a real DC-tree slapd (`mailhosting.schema`), virtual domains by
//! listening address, and the route cache in front of a slow directory.
//!
//! The site (testkit `hosted::Site::standard`): `joe` exists in siroe.com (store A, replayed
//! as `joe@siroe.com` by the domain's `mailAccessProxyReplay %U@%V`) and in sesta.com (store
//! B, reached through an alias node of the DC tree), users and domains in every status, and a
//! user whose first mailHost is down.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Mailmux, captured_logs, imap_expect_store};
use mailmux_testkit::delay::{DelayRelay, Direction};
use mailmux_testkit::hosted::{self, AIRIUS, SESTA, SIROE, Site, TWO_HOSTS, VARRIUS};
use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_IPS};
use mailmux_testkit::ports::free_port_on;
use mailmux_testkit::slapd::Slapd;
use mailmux_testkit::transcript::Transcript;

struct Hosted {
    lab: Lab,
    site: Site,
    slapd: Slapd,
    _dir: tempfile::TempDir,
}

/// The tests of this binary share one slapd and one test counts its searches: they take
/// turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn hosted() -> &'static Hosted {
    static HOSTED: OnceLock<Hosted> = OnceLock::new();
    common::capture_logs();
    HOSTED.get_or_init(|| {
        let site = Site::standard();
        let lab = Lab::start_with(4, false, &site.store_users("%U"));
        let dir = tempfile::tempdir().expect("temp dir");
        let slapd = site.start_slapd(dir.path());
        Hosted { lab, site, slapd, _dir: dir }
    })
}

/// Service lines for the hosted directory, reached through `url` (the slapd, or a relay).
fn hosted_lines(h: &Hosted, url: &str, extra: &str) -> String {
    let lines = hosted::config_lines(&h.slapd).replace(&hosted::ldap_url(&h.slapd), url);
    format!("{lines}default:HostedDomains yes\ndefault:VirtualDomainDelim +@\n{extra}")
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> (String, Duration) {
    let mut c = Transcript::connect(addr).await;
    c.expect("* OK").await;
    let started = Instant::now();
    c.send(&format!("a LOGIN {user} {password}")).await;
    (c.until("a ").await.pop().unwrap_or_default(), started.elapsed())
}

async fn login_reaches(addr: SocketAddr, user: &str, password: &str, store: usize) {
    let mut c = Transcript::connect(addr).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {user} {password}")).await;
    c.expect("a OK").await;
    imap_expect_store(&mut c, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_uid_in_two_hosted_domains_lands_on_two_stores() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let url = hosted::ldap_url(&h.slapd);
    let mm = Mailmux::start(&h.lab.write_config(DirectoryKind::Ldif, &hosted_lines(h, &url, ""), "")).await;
    let (siroe_joe, sesta_joe) = (h.site.user("joe", SIROE), h.site.user("joe", SESTA));
    login_reaches(mm.imap, "joe@siroe.com", &siroe_joe.password, 0).await;
    // sesta's entry is an organization reached through an alias node of the DC tree.
    login_reaches(mm.imap, "joe@sesta.com", &sesta_joe.password, 1).await;
    // Another delimiter, another case: the same user.
    login_reaches(mm.imap, "joe+SIROE.com", &siroe_joe.password, 0).await;
    // siroe's mailAccessProxyReplay (%U@%V) gave the store joe@siroe.com; sesta's users get
    // the service's ReplayFormat (%U): joe.
    h.lab.stores[0].wait_for_logins("joe@siroe.com", 2, |_| true).await;
    h.lab.stores[1].wait_for_logins("joe", 1, |_| true).await;
    // The other store's password does not open this one.
    assert!(login(mm.imap, "joe@siroe.com", &sesta_joe.password).await.0.starts_with("a NO [AUTHENTICATIONFAILED]"));
    // The domain search follows aliases in its scope (sesta.com needs it: deref=3, always);
    // user searches follow only an alias at their base (deref=2, finding), which spares
    // slapd an alias scan per login.
    let log = h.slapd.search_log();
    assert!(log.iter().any(|l| l.contains("deref=3") && l.contains("sunPreferredDomain=sesta.com")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("deref=2") && l.contains("filter=\"(uid=joe)\"")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("deref=3") && l.contains("(uid=")), "{log:#?}");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_unknown_domains_and_failover_in_a_hosted_directory() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let url = hosted::ldap_url(&h.slapd);
    let mm = Mailmux::start(&h.lab.write_config(DirectoryKind::Ldif, &hosted_lines(h, &url, ""), "")).await;
    let user = |uid: &str, domain: &str| (format!("{uid}@{domain}"), h.site.user(uid, domain).password.clone());
    for (uid, domain) in [
        ("inactive", SIROE),
        ("deleted", SIROE),
        ("disabled", SIROE),
        ("hold", SIROE),
        ("vic", VARRIUS),
        ("amy", AIRIUS),
    ] {
        let (name, password) = user(uid, domain);
        assert_eq!(
            login(mm.imap, &name, &password).await.0,
            "a NO [AUTHENTICATIONFAILED] Authentication failed.",
            "{name}"
        );
    }
    for (uid, domain) in [("overquota", SIROE), ("nostatus", SIROE)] {
        let (name, password) = user(uid, domain);
        assert!(login(mm.imap, &name, &password).await.0.starts_with("a OK"), "{name}");
    }
    assert!(login(mm.imap, "joe@nowhere.example", "x").await.0.starts_with("a NO [AUTHENTICATIONFAILED]"));
    // First mailHost down, second store B.
    let (name, password) = user(TWO_HOSTS, SIROE);
    login_reaches(mm.imap, &name, &password, 1).await;
    mm.stop().await;
    let logs = captured_logs();
    for line in [
        "user 'inactive@siroe.com' inetUserStatus: 'inactive'",
        "user 'deleted@siroe.com' inetUserStatus: 'deleted'",
        "user 'disabled@siroe.com' mailUserStatus: 'disabled'",
        "user 'hold@siroe.com' mailUserStatus: 'hold'",
        "domain 'varrius.com' inetDomainStatus: 'inactive'",
        "domain 'airius.com' mailDomainStatus: 'inactive'",
        "domain 'nowhere.example' not found in LDAP",
        "store unreachable; failing over",
    ] {
        assert!(logs.contains(line), "missing {line:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_domains_by_listening_address() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let url = hosted::ldap_url(&h.slapd);
    let cfg = h.lab.write_config(DirectoryKind::Ldif, &hosted_lines(h, &url, ""), "");
    // mailmux listens on 127.0.0.2 and 127.0.0.3 (beside the stores, on a port of its own);
    // each address has its own default domain.
    let port = free_port_on(&STORE_IPS);
    std::fs::write(
        cfg.join("AService.cfg"),
        format!("default:ServiceList imapproxy@127.0.0.2:{port}|127.0.0.3:{port} popproxy@127.0.0.1:0\n"),
    )
    .expect("write AService.cfg");
    std::fs::write(cfg.join("vdmap.cfg"), "vdmap siroe 127.0.0.2\nsiroe:DefaultDomain siroe.com\n\nvdmap sesta 127.0.0.3\nsesta:DefaultDomain sesta.com\n")
        .expect("write vdmap.cfg");
    let service = cfg.join("ImapProxyAService.cfg");
    let text = std::fs::read_to_string(&service).expect("service file");
    std::fs::write(&service, text + "default:VirtualDomainFile vdmap.cfg\n").expect("write service file");
    let mm = Mailmux::start(&cfg).await;
    let at = |ip: Ipv4Addr| SocketAddr::from((ip, port));
    let (siroe_joe, sesta_joe) = (h.site.user("joe", SIROE), h.site.user("joe", SESTA));
    login_reaches(at(STORE_IPS[0]), "joe", &siroe_joe.password, 0).await;
    login_reaches(at(STORE_IPS[1]), "joe", &sesta_joe.password, 1).await;
    // A domain in the name still wins over the address's default.
    login_reaches(at(STORE_IPS[0]), "joe@sesta.com", &sesta_joe.password, 1).await;
    mm.stop().await;
    assert!(captured_logs().contains("vdmap=sesta"), "the session's log lines name the entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_routes_do_not_wait_for_a_slow_directory_and_one_search_serves_many() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let relay = DelayRelay::start(h.slapd.addr, Duration::ZERO, Direction::ServerToClient);
    let url = format!("ldap://{}/{}", relay.addr, hosted::DC_ROOT);
    let lines = hosted_lines(h, &url, "default:LdapTimeout 10\n");
    let mm = Mailmux::start(&h.lab.write_config(DirectoryKind::Ldif, &lines, "")).await;
    let joe = h.site.user("joe", SIROE);
    // Warm: joe's domain and entry are cached.
    assert!(login(mm.imap, "joe@siroe.com", &joe.password).await.0.starts_with("a OK"));
    relay.set_delay(Duration::from_secs(2));
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let (answer, took) = login(mm.imap, "joe@siroe.com", &joe.password).await;
        assert!(answer.starts_with("a OK"), "{answer}");
        slowest = slowest.max(took);
    }
    assert!(slowest < Duration::from_millis(1500), "a cached user waited {slowest:?} for a 2 s directory");
    eprintln!("cached logins with the directory at 2 s per answer: slowest {slowest:?}");
    // 100 logins at once of a user not yet cached (in a cached domain): one user search.
    let user = h.site.user("nostatus", SIROE).clone();
    let before = h.slapd.searches();
    let logins: Vec<_> = (0..100)
        .map(|_| {
            let (addr, password) = (mm.imap, user.password.clone());
            tokio::spawn(async move { login(addr, "nostatus@siroe.com", &password).await })
        })
        .collect();
    for l in logins {
        let (answer, _) = l.await.expect("client");
        assert!(answer.starts_with("a OK"), "{answer}");
    }
    relay.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.slapd.searches() - before, 1, "{:?}", &h.slapd.search_log()[before..]);
    mm.stop().await;
}

/// Sets (or with `None` removes) a domain entry's `mailAccessProxyPreAuth`, and removes it again
/// when dropped, so a failing test leaves the shared directory as it found it.
struct DomainPreAuth<'a> {
    slapd: &'a Slapd,
    dn: String,
}

impl<'a> DomainPreAuth<'a> {
    fn set(slapd: &'a Slapd, dn: String, value: &str) -> DomainPreAuth<'a> {
        slapd.ldapmodify(&format!(
            "dn: {dn}\nchangetype: modify\nreplace: mailAccessProxyPreAuth\nmailAccessProxyPreAuth: {value}\n"
        ));
        DomainPreAuth { slapd, dn }
    }
}

impl Drop for DomainPreAuth<'_> {
    fn drop(&mut self) {
        self.slapd.ldapmodify(&format!("dn: {}\nchangetype: modify\nreplace: mailAccessProxyPreAuth\n", self.dn));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domains_mail_access_proxy_preauth_overrides_the_services_preauth() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let url = hosted::ldap_url(&h.slapd);
    let (siroe_joe, sesta_joe) = (h.site.user("joe", SIROE), h.site.user("joe", SESTA));
    // siroe.com turns PreAuth on for its users; the service leaves it off.
    let _siroe = DomainPreAuth::set(&h.slapd, h.site.domain(SIROE).entry_dn(), "yes");
    let lines = hosted_lines(h, &url, "default:PreAuth no\ndefault:LdapCacheSize 0\n");
    let mm = Mailmux::start(&h.lab.write_config(DirectoryKind::Ldif, &lines, "")).await;
    let (siroe_binds, sesta_binds) = (h.slapd.binds_as(&siroe_joe.dn()), h.slapd.binds_as(&sesta_joe.dn()));
    let (answer, _) = login(mm.imap, "joe@siroe.com", "wrong").await;
    assert!(answer.starts_with("a NO [AUTHENTICATIONFAILED]"), "{answer}");
    login_reaches(mm.imap, "joe@siroe.com", &siroe_joe.password, 0).await;
    login_reaches(mm.imap, "joe@sesta.com", &sesta_joe.password, 1).await;
    assert_eq!(h.slapd.binds_as(&siroe_joe.dn()), siroe_binds + 2, "siroe's users are bound as themselves");
    assert_eq!(h.slapd.binds_as(&sesta_joe.dn()), sesta_binds, "sesta's are not");
    let logs = captured_logs();
    assert!(logs.contains(") joe@siroe.com pre-authenticated - 127.0.0.1, 127.0.0.1"), "{logs}");
    assert!(!logs.contains("joe@sesta.com pre-authenticated"), "{logs}");
    mm.stop().await;

    // sesta.com turns it off for its users; the service has it on.
    let _sesta = DomainPreAuth::set(&h.slapd, h.site.domain(SESTA).entry_dn(), "no");
    let lines = hosted_lines(h, &url, "default:PreAuth yes\ndefault:LdapCacheSize 0\n");
    let mm = Mailmux::start(&h.lab.write_config(DirectoryKind::Ldif, &lines, "")).await;
    let sesta_binds = h.slapd.binds_as(&sesta_joe.dn());
    login_reaches(mm.imap, "joe@sesta.com", &sesta_joe.password, 1).await;
    assert_eq!(h.slapd.binds_as(&sesta_joe.dn()), sesta_binds, "mailAccessProxyPreAuth no: no bind");
    mm.stop().await;
}

/// POP3 `PASS` for `name` through `addr`: the answer line, then the client for more.
async fn pop3_pass(addr: SocketAddr, name: &str, password: &str) -> (String, Transcript) {
    let mut c = Transcript::connect(addr).await;
    c.expect("+OK").await;
    c.send(&format!("USER {name}")).await;
    c.expect("+OK").await;
    c.send(&format!("PASS {password}")).await;
    (c.until("").await.pop().unwrap_or_default(), c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoof_temp_fail_serves_a_user_on_hold_and_nobody_else() {
    let _turn = TURN.lock().await;
    let h = hosted();
    let url = hosted::ldap_url(&h.slapd);
    let user = |uid: &str| (format!("{uid}@{SIROE}"), h.site.user(uid, SIROE).password.clone());
    let (hold, hold_pw) = user("hold");
    let (disabled, disabled_pw) = user("disabled");
    for (extra, hold_spoofed) in [
        ("default:SpoofEmptyMailbox yes\ndefault:SpoofTempFail yes\n", true),
        ("default:SpoofEmptyMailbox yes\n", false),
    ] {
        let cfg = h.lab.write_config(DirectoryKind::Ldif, "", &hosted_lines(h, &url, extra));
        let mm = Mailmux::start(&cfg).await;
        let (answer, mut c) = pop3_pass(mm.pop3, &hold, &hold_pw).await;
        if hold_spoofed {
            assert_eq!(answer, "+OK Logged in.", "{extra}");
            c.send("STAT").await;
            c.expect("+OK 0 0").await;
            c.send("QUIT").await;
            c.expect("+OK Logging out").await;
        } else {
            assert!(answer.starts_with("-ERR [AUTH]"), "{extra}: {answer}");
        }
        // A disabled user is refused either way: only hold is temporary.
        let (answer, _) = pop3_pass(mm.pop3, &disabled, &disabled_pw).await;
        assert!(answer.starts_with("-ERR [AUTH]"), "{extra}: {answer}");
        mm.stop().await;
    }
}
