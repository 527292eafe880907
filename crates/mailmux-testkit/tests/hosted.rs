//! The hosted-domain directory, the search counter and the delaying relay, checked against a
//! real slapd with `ldapsearch`, and the hosted users' logins against the lab's real stores.

use std::process::Command;
use std::time::{Duration, Instant};

use mailmux_testkit::delay::{DelayRelay, Direction};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::hosted::{self, AIRIUS, DC_ROOT, SESTA, SIROE, Site, TWO_HOSTS, VARRIUS};
use mailmux_testkit::lab::{Lab, STORE_IPS, STORE_NAMES};
use mailmux_testkit::require_binary;
use mailmux_testkit::slapd::{self, Slapd};
use mailmux_testkit::transcript::Transcript;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start() -> (tempfile::TempDir, Site, Slapd) {
    let dir = tempfile::tempdir().expect("temp dir");
    let site = Site::standard();
    let slapd = site.start_slapd(dir.path());
    (dir, site, slapd)
}

/// The DNs in ldapsearch output, in order.
fn dns(ldif: &str) -> Vec<&str> {
    ldif.lines().filter_map(|l| l.strip_prefix("dn: ")).collect()
}

/// The values of `attr` in ldapsearch output, in order.
fn values<'a>(ldif: &'a str, attr: &str) -> Vec<&'a str> {
    let prefix = format!("{attr}: ");
    ldif.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
}

#[test]
fn domains_are_found_by_name_by_preferred_domain_and_through_the_alias() {
    let (_dir, site, slapd) = start();
    let siroe = site.domain(SIROE);
    let sesta = site.domain(SESTA);

    // A DC-tree node, found by associatedDomain, carrying the base DN and the replay format.
    let filter = format!("(&(objectClass=domain)(|(associatedDomain={SIROE})(sunPreferredDomain={SIROE})))");
    let out = slapd.ldapsearch(&["-b", DC_ROOT, &filter, "inetDomainBaseDN", "mailAccessProxyReplay"]);
    assert_eq!(dns(&out), [siroe.dc_dn()], "{out}");
    assert_eq!(values(&out, "inetDomainBaseDN"), ["o=siroe.com,o=isp"], "{out}");
    assert_eq!(values(&out, "mailAccessProxyReplay"), ["%U@%V"], "{out}");

    // sesta.com's entry is under o=isp, found from o=internet only through the alias, and by
    // sunPreferredDomain; it is an organization, so objectClass=domain misses it.
    let filter = hosted::domain_filter(SESTA);
    assert_eq!(dns(&slapd.ldapsearch(&["-a", "never", "-b", DC_ROOT, &filter])), Vec::<&str>::new());
    let out = slapd.ldapsearch(&["-a", "always", "-b", DC_ROOT, &filter, "inetDomainBaseDN", "associatedDomain"]);
    assert_eq!(dns(&out), ["o=sesta.com,o=isp"], "{out}");
    assert_eq!(values(&out, "inetDomainBaseDN"), [sesta.base_dn()], "{out}");
    assert!(values(&out, "associatedDomain").is_empty(), "{out}");
    let by_domain_class = format!("(&(objectClass=domain)(sunPreferredDomain={SESTA}))");
    assert!(dns(&slapd.ldapsearch(&["-a", "always", "-b", DC_ROOT, &by_domain_class])).is_empty());

    // Reading the DC node by its DN: the alias itself, or what it points to.
    let node = sesta.dc_dn();
    let out = slapd.ldapsearch(&["-a", "never", "-s", "base", "-b", &node, "(objectClass=*)", "aliasedObjectName"]);
    assert_eq!(values(&out, "aliasedObjectName"), ["o=sesta.com,o=isp"], "{out}");
    let out = slapd.ldapsearch(&["-a", "always", "-s", "base", "-b", &node, "(objectClass=*)", "sunPreferredDomain"]);
    assert_eq!(dns(&out), [sesta.entry_dn()], "{out}");
    assert_eq!(values(&out, "sunPreferredDomain"), [SESTA], "{out}");

    // The same filter finds every domain of the site when aliases are followed.
    for domain in &site.domains {
        let out = slapd.ldapsearch(&["-a", "always", "-b", DC_ROOT, &hosted::domain_filter(&domain.name)]);
        assert_eq!(dns(&out), [domain.entry_dn()], "{}: {out}", domain.name);
    }

    // The domain statuses.
    let status = |domain: &str, attr: &str| {
        let entry = site.domain(domain).entry_dn();
        let out = slapd.ldapsearch(&["-s", "base", "-b", &entry, "(objectClass=*)", attr]);
        values(&out, attr).join(",")
    };
    assert_eq!(status(VARRIUS, "inetDomainStatus"), "inactive");
    assert_eq!(status(VARRIUS, "mailDomainStatus"), "active");
    assert_eq!(status(AIRIUS, "inetDomainStatus"), "active");
    assert_eq!(status(AIRIUS, "mailDomainStatus"), "inactive");
}

#[test]
fn joe_exists_in_each_domain_with_his_own_store_and_password() {
    let (_dir, site, slapd) = start();
    for (domain, store) in [(SIROE, 0), (SESTA, 1)] {
        let base = site.domain(domain).base_dn();
        let out = slapd.ldapsearch(&["-b", &base, "(uid=joe)", "mailHost"]);
        assert_eq!(dns(&out), [format!("uid=joe,ou=people,{base}")], "{out}");
        assert_eq!(values(&out, "mailHost"), [STORE_IPS[store].to_string()], "{out}");
    }
    // Under the whole organization tree, joe is two users.
    assert_eq!(dns(&slapd.ldapsearch(&["-b", hosted::ORG_ROOT, "(uid=joe)", "1.1"])).len(), 2);

    // Each joe binds with his own password only (what PreAuth does).
    let ldapwhoami = require_binary("ldapwhoami", "ldap-utils");
    let binds = |dn: &str, password: &str| {
        Command::new(&ldapwhoami)
            .args(["-x", "-H", &slapd.url, "-D", dn, "-w", password])
            .output()
            .expect("run ldapwhoami")
            .status
            .success()
    };
    let (siroe_joe, sesta_joe) = (site.user("joe", SIROE), site.user("joe", SESTA));
    assert!(binds(&siroe_joe.dn(), &siroe_joe.password));
    assert!(binds(&sesta_joe.dn(), &sesta_joe.password));
    assert!(!binds(&siroe_joe.dn(), &sesta_joe.password));

    // Two mail hosts, in the order written, the first where nothing listens.
    let two = site.user(TWO_HOSTS, SIROE);
    let out = slapd.ldapsearch(&["-s", "base", "-b", &two.dn(), "(objectClass=*)", "mailHost"]);
    assert_eq!(values(&out, "mailHost"), ["127.0.0.9", "127.0.0.3"], "{out}");

    // Every user status value is there once.
    for (attr, value) in [
        ("inetUserStatus", "inactive"),
        ("inetUserStatus", "deleted"),
        ("mailUserStatus", "overquota"),
        ("mailUserStatus", "disabled"),
        ("mailUserStatus", "hold"),
    ] {
        let out = slapd.ldapsearch(&["-b", hosted::ORG_ROOT, &format!("({attr}={value})"), "uid"]);
        assert_eq!(values(&out, "uid"), [value], "{attr}={value}: {out}");
    }
    let out = slapd.ldapsearch(&["-b", hosted::ORG_ROOT, "(objectClass=inetMailUser)", "1.1"]);
    assert_eq!(dns(&out).len(), site.users().count());
}

#[test]
fn searches_are_counted() {
    let (_dir, _site, slapd) = start();
    let before = slapd.searches();
    slapd.ldapsearch(&["-b", DC_ROOT, "(associatedDomain=siroe.com)", "1.1"]);
    slapd.ldapsearch(&["-a", "always", "-s", "base", "-b", "dc=sesta,dc=com,o=internet", "(objectClass=*)"]);
    assert!(slapd.wait_for_searches_blocking(before + 2) >= before + 2);
    let log = slapd.search_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("base=\"o=internet\" scope=2 deref=0 filter=\"(associatedDomain=siroe.com)\""))
    );
    assert!(log.iter().any(|l| l.starts_with("base=\"dc=sesta,dc=com,o=internet\" scope=0 deref=3")), "{log:?}");
}

#[test]
fn the_count_survives_a_restart_and_the_flat_directory_still_starts() {
    let (_dir, _site, mut slapd) = start();
    slapd.ldapsearch(&["-b", DC_ROOT, "(associatedDomain=siroe.com)", "1.1"]);
    let before = slapd.wait_for_searches_blocking(1);
    slapd.restart();
    slapd.ldapsearch(&["-b", DC_ROOT, "(associatedDomain=siroe.com)", "1.1"]);
    assert!(slapd.wait_for_searches_blocking(before + 1) > before);

    let flat_dir = tempfile::tempdir().expect("temp dir");
    let users = [mailmux_testkit::User { uid: "user1".into(), password: "secret1".into(), store: 0 }];
    let flat = Slapd::start(flat_dir.path(), &slapd::users_ldif(&users, &["127.0.0.2"], ""));
    assert_eq!(flat.suffix, slapd::SUFFIX);
    let out = flat.ldapsearch(&["-b", slapd::SUFFIX, "(uid=user1)", "mailHost"]);
    assert_eq!(values(&out, "mailHost"), ["127.0.0.2"], "{out}");
}

/// Runs `ldapsearch` for joe@siroe.com through `url`; returns how long it took.
fn timed_search(url: &str, slapd: &Slapd) -> Duration {
    let ldapsearch = require_binary("ldapsearch", "ldap-utils");
    let started = Instant::now();
    let out = Command::new(ldapsearch)
        .args(["-x", "-LLL", "-H", url, "-D", &slapd.admin_dn, "-w", &slapd.admin_password])
        .args(["-b", "o=siroe.com,o=isp", "(uid=joe)", "mailHost"])
        .output()
        .expect("run ldapsearch");
    let took = started.elapsed();
    assert!(out.status.success(), "ldapsearch through {url}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mailHost: 127.0.0.2"));
    took
}

#[test]
fn the_relay_delays_answers_and_can_be_switched_off_mid_answer() {
    let (_dir, _site, slapd) = start();
    let delay = Duration::from_secs(1);
    let relay = DelayRelay::start(slapd.addr, delay, Direction::ServerToClient);
    let url = format!("ldap://{}", relay.addr);
    // Bind and search each wait for one delayed answer.
    let took = timed_search(&url, &slapd);
    assert!(took >= 2 * delay, "a bind and a search through a {delay:?} relay took {took:?}");
    assert_eq!(relay.accepted(), 1);

    // Answers held back go out as soon as the delay is switched off.
    relay.set_delay(Duration::from_secs(60));
    let searching = std::thread::spawn({
        let url = url.clone();
        let slapd_admin = (slapd.admin_dn.clone(), slapd.admin_password.clone());
        move || {
            let ldapsearch = require_binary("ldapsearch", "ldap-utils");
            let started = Instant::now();
            let ok = Command::new(ldapsearch)
                .args(["-x", "-LLL", "-H", &url, "-D", &slapd_admin.0, "-w", &slapd_admin.1])
                .args(["-b", "o=isp", "(uid=joe)", "1.1"])
                .output()
                .expect("run ldapsearch")
                .status
                .success();
            (ok, started.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    relay.delay_handle().store(0, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(relay.delay(), Duration::ZERO);
    let (ok, took) = searching.join().expect("search thread");
    assert!(ok, "the search through the relay failed");
    assert!(took < Duration::from_secs(30), "answers stayed held back after the delay was switched off: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_keeps_the_byte_stream_in_both_directions() {
    // An echo server, behind a relay delaying both ways.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let echo_addr = echo.local_addr().expect("echo address");
    tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.expect("accept");
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
        let _ = w.shutdown().await;
    });
    let relay = DelayRelay::start(echo_addr, Duration::from_millis(30), Direction::Both);
    let stream = tokio::net::TcpStream::connect(relay.addr).await.expect("connect to the relay");
    let (mut read, mut write) = stream.into_split();
    let sent: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for piece in to_send.chunks(7_919) {
            write.write_all(piece).await.expect("write");
        }
        // The end of the stream is relayed too: the echo server sees it and closes.
        write.shutdown().await.expect("shutdown");
    });
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut received))
        .await
        .expect("the echo came back and closed within 60 s")
        .expect("read");
    writer.await.expect("writer");
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "the relayed bytes differ from those sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_stores_know_the_hosted_users() {
    let site = Site::standard();
    // With ReplayFormat %U: siroe.com replays %U@%V, the other domains the bare uid.
    let store_users = site.store_users("%U");
    let lab = Lab::start_with(2, false, &store_users);
    for (login, password, store) in [
        ("joe@siroe.com", "joe-siroe-pw", 0),
        ("joe", "joe-sesta-pw", 1),
        ("twohosts@siroe.com", "twohosts-siroe-pw", 1),
    ] {
        assert!(store_users.iter().any(|u| u.uid == login && u.password == password && u.store == store));
        let addr = std::net::SocketAddr::from((STORE_IPS[store], lab.imap_port));
        let mut c = Transcript::connect(addr).await;
        c.expect("* OK").await;
        c.send(&format!("a LOGIN \"{login}\" \"{password}\"")).await;
        if !c.until("a ").await.last().is_some_and(|l| l.starts_with("a OK")) {
            c.fail(&format!("{login} was refused"));
        }
        c.send("b SELECT INBOX").await;
        c.until("b OK").await;
        c.send("c FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
        let lines = c.until("c ").await;
        let subject = format!("Subject: {}", marker_subject(STORE_NAMES[store]));
        if !lines.contains(&subject) {
            c.fail(&format!("{login}: expected the marker of {}", STORE_NAMES[store]));
        }
        c.send("d LOGOUT").await;
        c.until("d OK").await;
    }
    // The wrong password for the login is refused (the other joe's).
    let mut c = Transcript::connect(std::net::SocketAddr::from((STORE_IPS[0], lab.imap_port))).await;
    c.expect("* OK").await;
    c.send("a LOGIN \"joe@siroe.com\" \"joe-sesta-pw\"").await;
    if !c.until("a ").await.last().is_some_and(|l| l.starts_with("a NO")) {
        c.fail("joe@siroe.com logged in with the other joe's password");
    }
}
