//! Stores and directories that misbehave: each client gets the right temporary answer in
//! time, and nobody else is slowed down.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Mailmux, MailmuxProcess, captured_logs, imap_expect_store, lab};
use mailmux_testkit::hostile::{Hostile, HostileServer};
use mailmux_testkit::lab::{DirectoryKind, Lab};
use mailmux_testkit::slapd::{self, SUFFIX, Slapd};
use mailmux_testkit::transcript::Transcript;

const USERS: usize = 4;
const UNAVAILABLE: &str = "a NO [UNAVAILABLE]";

/// The lab's users plus one user per hostile store (`mailHost` = the store's address), as
/// an LdapURL line.
fn directory_with(lab: &Lab, name: &str, stores: &[(&str, SocketAddr)]) -> String {
    let mut text = std::fs::read_to_string(&lab.ldif).expect("lab LDIF");
    for (uid, addr) in stores {
        text.push_str(&slapd::person(uid, "any-password", Some(&addr.to_string())));
    }
    let path = lab.dir.path().join(name);
    std::fs::write(&path, text).expect("write LDIF");
    format!("default:LdapURL ldif:{}\n", path.display())
}

/// Logs in over IMAP; the tagged answer and how long it took.
async fn login(addr: SocketAddr, user: &str, password: &str) -> (String, Duration) {
    let mut c = Transcript::connect(addr).await;
    c.expect("* OK").await;
    let started = Instant::now();
    c.send(&format!("a LOGIN {user} {password}")).await;
    (c.until("a ").await.pop().unwrap_or_default(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stores_get_temporary_answers_in_time() {
    let lab = lab(USERS);
    let hung = HostileServer::start(Hostile::Silent).await;
    let preauth = HostileServer::start(Hostile::Says(b"* PREAUTH welcome, no login needed\r\n".to_vec())).await;
    let garbage = HostileServer::start(Hostile::Says(b"\x16\x03\x01 garbage\r\n".to_vec())).await;
    let noisy = HostileServer::start(Hostile::NoisyLogin { noise: 1000, answer: "NO [AUTHENTICATIONFAILED] no" }).await;
    let endless = HostileServer::start(Hostile::NoisyLogin { noise: usize::MAX, answer: "OK" }).await;
    let dies = HostileServer::start(Hostile::DiesAfterLogin).await;
    let directory = directory_with(
        lab,
        "hostile-stores.ldif",
        &[
            ("hung", hung.addr),
            ("preauth", preauth.addr),
            ("garbage", garbage.addr),
            ("noisy", noisy.addr),
            ("endless", endless.addr),
            ("dies", dies.addr),
        ],
    );
    let extra = format!("{directory}default:BacksideTimeout 2\n");
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &extra, &extra)).await;
    let bound = Duration::from_secs(4);
    for (user, expected) in [
        ("hung", UNAVAILABLE),
        ("preauth", UNAVAILABLE),
        ("garbage", UNAVAILABLE),
        ("noisy", "a NO [AUTHENTICATIONFAILED]"),
        ("endless", UNAVAILABLE),
    ] {
        let (answer, took) = login(mm.imap, user, "any-password").await;
        assert!(answer.starts_with(expected), "{user}: {answer}");
        assert!(took < bound, "{user} answered after {took:?}");
    }
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send("USER hung").await;
    p.expect("+OK").await;
    p.send("PASS any-password").await;
    p.expect("-ERR [SYS/TEMP]").await;

    // A store that dies mid-session: the client's connection ends with it.
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("a LOGIN dies any-password").await;
    c.expect("a OK").await;
    c.send("b SELECT INBOX").await;
    c.expect_closed().await;

    // 200 logins to the hung store at once: every one answered in time, and a user of a
    // working store meanwhile logs in at once.
    let started = Instant::now();
    let hung_logins: Vec<_> = (0..200).map(|_| tokio::spawn(login(mm.imap, "hung", "any-password"))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let user = lab.user_on(1);
    let (answer, took) = login(mm.imap, &user.uid, &user.password).await;
    assert!(answer.starts_with("a OK") && took < Duration::from_secs(1), "{answer} after {took:?}");
    for hung_login in hung_logins {
        let (answer, _) = hung_login.await.expect("client");
        assert!(answer.starts_with(UNAVAILABLE), "{answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(8), "200 hung logins took {:?}", started.elapsed());
    assert!(hung.accepted() >= 200);
    mm.stop().await;
    let logs = captured_logs();
    assert!(logs.contains("no greeting in time"), "the log says why");
    assert!(logs.contains("did not answer the login in time"), "the log says why");
    assert!(logs.contains("store greeted with PREAUTH"), "the log says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_never_answers_cannot_stall_logins() {
    let lab = lab(USERS);
    let hole = HostileServer::start(Hostile::Silent).await;
    let dead = format!("ldap://{}/{SUFFIX}", hole.addr);
    let only_dead = format!("default:LdapURL {dead}\ndefault:LdapTimeout 2\n");
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, &only_dead, &only_dead)).await;
    let user = lab.user_on(0).clone();
    let started = Instant::now();
    let logins: Vec<_> = (0..200)
        .map(|_| {
            let (uid, password) = (user.uid.clone(), user.password.clone());
            tokio::spawn(async move { login(mm.imap, &uid, &password).await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for l in logins {
        let (answer, took) = l.await.expect("client");
        assert!(answer.starts_with(UNAVAILABLE), "{answer}");
        slowest = slowest.max(took);
    }
    // One LdapTimeout for the attempts in flight; everything after fails at once while the
    // server is marked down. (Before: waits grew with the queue, 20 s for 40 logins.)
    assert!(slowest < Duration::from_secs(5), "slowest answer after {slowest:?}");
    eprintln!(
        "200 logins against a silent directory: all answered within {slowest:?} ({:?} in all)",
        started.elapsed()
    );
    mm.stop().await;

    // The dead server first, slapd second: after the first timeout the dead one is skipped.
    let slapd = lab.slapd.as_ref().expect("lab slapd");
    let both = format!("default:LdapURL \"{dead} {}/{SUFFIX}\"\ndefault:LdapTimeout 2\n", slapd.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldap, &both, "")).await;
    let (answer, first) = login(mm.imap, &user.uid, &user.password).await;
    assert!(answer.starts_with("a OK"), "{answer}");
    assert!(first < Duration::from_secs(4), "{first:?}");
    for _ in 0..5 {
        let (answer, took) = login(mm.imap, &user.uid, &user.password).await;
        assert!(answer.starts_with("a OK") && took < Duration::from_secs(1), "{answer} after {took:?}");
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_hangs_mid_session_is_skipped_not_retried() {
    let lab = lab(USERS);
    let dir = tempfile::tempdir().expect("temp dir");
    let own = Slapd::start(dir.path(), &std::fs::read_to_string(&lab.ldif).expect("lab LDIF"));
    // No route cache: the point is what the pool does when slapd hangs.
    let url = format!("default:LdapURL {}/{SUFFIX}\ndefault:LdapTimeout 2\ndefault:LdapCacheSize 0\n", own.url);
    let mm = Mailmux::start(&lab.write_config(DirectoryKind::Ldif, &url, "")).await;
    let user = lab.user_on(0).clone();
    // Bound connections in every pooled slot, then the server freezes.
    for _ in 0..4 {
        assert!(login(mm.imap, &user.uid, &user.password).await.0.starts_with("a OK"));
    }
    own.pause();
    let logins: Vec<_> = (0..20)
        .map(|_| {
            let (uid, password) = (user.uid.clone(), user.password.clone());
            tokio::spawn(async move { login(mm.imap, &uid, &password).await })
        })
        .collect();
    for l in logins {
        let (answer, took) = l.await.expect("client");
        assert!(answer.starts_with(UNAVAILABLE), "{answer}");
        // One LdapTimeout: an unanswered search is not retried on a new connection.
        assert!(took < Duration::from_secs(4), "answered after {took:?}");
    }
    // Marked down: the next logins are refused at once instead of waiting again.
    let (answer, took) = login(mm.imap, &user.uid, &user.password).await;
    assert!(answer.starts_with(UNAVAILABLE) && took < Duration::from_millis(500), "{answer} after {took:?}");
    own.resume();
    let resumed = Instant::now();
    while !login(mm.imap, &user.uid, &user.password).await.0.starts_with("a OK") {
        assert!(resumed.elapsed() < Duration::from_secs(10), "not back within 10 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_disk_does_not_stop_sessions_and_an_impossible_log_dir_stops_start_up() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    std::fs::create_dir_all(cfg.join("log")).expect("log dir");
    // Every write to the log fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", cfg.join("log/mailmux.log")).expect("symlink to /dev/full");
    let mm = MailmuxProcess::start(&cfg, "").await;
    for store in [0, 1, 0] {
        let user = lab.user_on(store);
        let mut c = Transcript::connect(mm.imap).await;
        c.expect("* OK").await;
        c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
        c.expect("a OK").await;
        imap_expect_store(&mut c, store).await;
    }
    drop(mm);

    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    std::fs::write(
        cfg.join("AService.cfg"),
        "default:ServiceList imapproxy@127.0.0.1:0\ndefault:LogDir /etc/passwd/not-a-directory\n",
    )
    .expect("write AService.cfg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailmux"))
        .args(["run", "-c"])
        .arg(&cfg)
        .output()
        .expect("run mailmux");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the log") && stderr.contains("/etc/passwd/not-a-directory"), "{stderr}");
}
