//! Reload without dropping a session: new settings for new sessions, sessions in progress
//! untouched, listeners added and removed; stop, reload and log reopening through the
//! `mailmux` command and signals.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Mailmux, MailmuxProcess, lab};
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{DirectoryKind, STORE_NAMES};
use mailmux_testkit::ports::free_port;
use mailmux_testkit::transcript::{Transcript, tls_connector};

const USERS: usize = 20;

fn load(dir: &std::path::Path) -> mailmux_config::Config {
    mailmux_config::load(dir, None).unwrap_or_else(|d| panic!("{d}")).config
}

/// Logs in and fetches the marker over and over until told to stop; every answer must be
/// whole and the right store's. Returns how many fetches it made.
async fn keep_fetching(mut c: Transcript, store: usize, until: Instant) -> usize {
    let subject = format!("Subject: {}", marker_subject(STORE_NAMES[store]));
    c.send("s SELECT INBOX").await;
    c.until("s OK").await;
    let mut fetches = 0;
    // Every FETCH of the message must come back byte for byte as the first did (its
    // literal and the untagged lines; the tagged OK carries timings, so it is left out).
    let mut first: Option<Vec<String>> = None;
    while Instant::now() < until {
        c.send(&format!("f{fetches} FETCH 1 BODY.PEEK[]")).await;
        let mut lines = c.until(&format!("f{fetches} ")).await;
        if !lines.pop().is_some_and(|l| l.starts_with(&format!("f{fetches} OK"))) || !lines.contains(&subject) {
            c.fail("a fetch came back wrong");
        }
        match &first {
            None => first = Some(lines),
            Some(first) if *first != lines => c.fail("a fetch came back with other bytes than the first"),
            Some(_) => {}
        }
        fetches += 1;
    }
    c.send("z LOGOUT").await;
    c.expect("* BYE").await;
    fetches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_while_a_hundred_sessions_relay() {
    let lab = lab(USERS);
    let banner = |n: usize| format!("default:Banner \"generation {n}\"\n");
    let tls_cfg = lab.write_tls_config(DirectoryKind::Ldif, &banner(0), &banner(0));
    let mm = Mailmux::start(&tls_cfg.dir).await;
    let tls = tls_connector(&lab.ca.cert, None);
    let imaps: SocketAddr = ([127, 0, 0, 1], tls_cfg.imaps).into();
    let until = Instant::now() + Duration::from_secs(12);
    let mut sessions = Vec::new();
    for i in 0..100 {
        let user = lab.users[i % lab.users.len()].clone();
        let mut c =
            if i % 2 == 0 { Transcript::connect(mm.imap).await } else { Transcript::connect_tls(imaps, &tls).await };
        c.expect("* OK").await;
        c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
        c.expect("a OK").await;
        sessions.push(tokio::spawn(keep_fetching(c, user.store, until)));
    }
    // 50 reloads, each with a new banner that new sessions must see at once.
    for n in 1..=50 {
        for file in ["ImapProxyAService.cfg", "PopProxyAService.cfg"] {
            let path = tls_cfg.dir.join(file);
            let text = std::fs::read_to_string(&path).expect("service file");
            let text = text.replace(&format!("generation {}", n - 1), &format!("generation {n}"));
            std::fs::write(&path, text).expect("rewrite service file");
        }
        let summary = mm.handle.reload(load(&tls_cfg.dir)).await.expect("reload");
        assert!(summary.added.is_empty() && summary.removed.is_empty(), "{summary:?}");
        let mut c = Transcript::connect(mm.imap).await;
        let greeting = c.expect("* OK").await;
        assert!(greeting.ends_with(&format!("generation {n}")), "{greeting}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut fetches = 0;
    for s in sessions {
        fetches += s.await.expect("a session broke during the reloads");
    }
    eprintln!("100 sessions (50 TLS) made {fetches} fetches through 50 reloads, none broken");
    assert!(fetches >= 100, "{fetches}");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_come_and_go_with_the_service_list() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "", "");
    let mm = Mailmux::start(&cfg).await;
    let aservice = cfg.join("AService.cfg");
    let original = std::fs::read_to_string(&aservice).expect("AService.cfg");
    let extra = free_port();
    std::fs::write(
        &aservice,
        original.replace("imapproxy@127.0.0.1:0", &format!("imapproxy@127.0.0.1:0|127.0.0.1:{extra}")),
    )
    .expect("add a port");
    let summary = mm.handle.reload(load(&cfg)).await.expect("reload");
    assert_eq!(summary.added.len(), 1, "{summary:?}");
    let added: SocketAddr = ([127, 0, 0, 1], extra).into();
    let mut c = Transcript::connect(added).await;
    c.expect("* OK").await;
    // A session on the port to be removed outlives its listener.
    let user = lab.user_on(0);
    c.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    c.expect("a OK").await;
    std::fs::write(&aservice, &original).expect("remove the port");
    let summary = mm.handle.reload(load(&cfg)).await.expect("reload");
    assert_eq!(summary.removed, vec![added], "{summary:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(added).await.is_err(), "the removed port still listens");
    c.send("n NOOP").await;
    c.until("n OK").await;
    // The unchanged listener kept its socket.
    let mut d = Transcript::connect(mm.imap).await;
    d.expect("* OK").await;
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reloads_refuses_bad_files_reopens_logs_and_stops() {
    let lab = lab(USERS);
    let cfg = lab.write_config(DirectoryKind::Ldif, "default:Banner \"first\"\n", "");
    let mut mm = MailmuxProcess::start(&cfg, "").await;
    let pid_file = cfg.join("mailmux.pid");
    assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file").trim(), mm.pid.to_string());
    let mailmux = |verb: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailmux"))
            .arg(verb)
            .arg("-c")
            .arg(&cfg)
            .output()
            .expect("run mailmux")
    };
    let user = lab.user_on(1);
    let mut relayed = Transcript::connect(mm.imap).await;
    relayed.expect("* OK").await;
    relayed.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    relayed.expect("a OK").await;

    let service = cfg.join("ImapProxyAService.cfg");
    let text = std::fs::read_to_string(&service).expect("service file");
    std::fs::write(&service, text.replace("\"first\"", "\"second\"")).expect("edit");
    assert!(mailmux("reload").status.success());
    let mut greeted = String::new();
    for _ in 0..50 {
        let mut c = Transcript::connect(mm.imap).await;
        greeted = c.expect("* OK").await;
        if greeted.ends_with("second") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(greeted.ends_with("second"), "{greeted}");

    // A broken file changes nothing, and the log says why.
    std::fs::write(&service, text.replace("\"first\"", "\"third\"") + "default:Timeout soon\n").expect("break");
    let out = mailmux("reload");
    assert!(!out.status.success(), "reload of a broken configuration must fail");
    let _ = rustix_kill(mm.pid, "-HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = Transcript::connect(mm.imap).await;
    assert!(c.expect("* OK").await.ends_with("second"));
    assert!(mm.log(&cfg).contains("reload refused, nothing changed"), "{}", mm.log(&cfg));

    // logrotate: the file is moved away, SIGUSR1, new lines go to a new file.
    std::fs::rename(cfg.join("log/mailmux.log"), cfg.join("log/mailmux.log.1")).expect("rotate");
    let _ = rustix_kill(mm.pid, "-USR1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send("q LOGOUT").await;
    c.expect_closed().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mm.log(&cfg).contains("session end"), "the reopened file has the new lines");

    // The session logged in before all this is still there, and `stop` waits for the exit
    // (with the files still broken: a broken edit must not keep an operator from stopping).
    relayed.send("n NOOP").await;
    relayed.until("n OK").await;
    drop(relayed);
    let started = Instant::now();
    let out = mailmux("stop");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = mm.child.wait().await;
    assert!(
        !pid_file.exists(),
        "the pid file is removed at exit: {status:?} {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        mm.log(&cfg)
    );
    eprintln!("mailmux stop returned after {:?}", started.elapsed());
}

fn rustix_kill(pid: u32, signal: &str) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("kill").arg(signal).arg(pid.to_string()).status()
}
