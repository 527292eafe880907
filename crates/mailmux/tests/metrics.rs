//! The metrics and admin endpoints against the real lab (slapd, two Dovecot stores): `curl`
//! scrapes show the counters move with logins and relayed bytes, labels stay bounded, the
//! admin endpoint lists, kicks and explains, and the endpoints refuse hostile requests.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Mailmux, lab};
use mailmux::control::{ControlAddr, Surface};
use mailmux_testkit::lab::{DirectoryKind, STORE_IPS};
use mailmux_testkit::transcript::Transcript;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USERS: usize = 12;

/// A lab configuration whose AService.cfg also sets `aservice_extra`, served in process.
async fn start(aservice_extra: &str) -> (Mailmux, std::path::PathBuf) {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldap, "", "");
    let aservice = dir.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    std::fs::write(&aservice, format!("{text}{aservice_extra}")).expect("write AService.cfg");
    (Mailmux::start(&dir).await, dir)
}

fn tcp(mm: &Mailmux, surface: Surface) -> SocketAddr {
    match mm.control.iter().find(|(s, _)| *s == surface) {
        Some((_, ControlAddr::Tcp(addr))) => *addr,
        other => panic!("no TCP {surface:?} endpoint: {other:?}"),
    }
}

/// `curl` of a URL: (HTTP status, body). curl is a test dependency of the project (README).
async fn curl(args: &[&str]) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .await
        .expect("curl is installed (scripts/install-test-deps)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or_else(|| panic!("curl said {text:?}"));
    (
        status.trim().parse().unwrap_or_else(|_| panic!("curl: {text:?} {}", String::from_utf8_lossy(&out.stderr))),
        body.to_owned(),
    )
}

/// Every sample of a scrape: series (name and labels) → value.
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let (status, body) = curl(&[&format!("http://{addr}/metrics")]).await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {l:?}"));
            (series.to_owned(), value.parse().unwrap_or_else(|_| panic!("value of {l:?}")))
        })
        .collect()
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("{series} is not in the scrape"))
}

fn moved(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    get(after, series) - before.get(series).copied().unwrap_or(0.0)
}

/// Every label value of a scrape.
fn label_values(m: &HashMap<String, f64>) -> Vec<String> {
    let mut values = Vec::new();
    for series in m.keys() {
        let Some((_, labels)) = series.split_once('{') else { continue };
        for pair in labels.trim_end_matches('}').split("\",") {
            if let Some((_, v)) = pair.split_once("=\"") {
                values.push(v.trim_end_matches('"').to_owned());
            }
        }
    }
    values
}

async fn log_in(addr: SocketAddr, uid: &str, password: &str) -> Transcript {
    let mut c = Transcript::connect(addr).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {uid} {password}")).await;
    c.expect("a OK").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_sees_the_counters_move_with_logins_and_relayed_bytes() {
    let lab = lab(USERS);
    let (mm, _dir) = start("default:MetricsListen 127.0.0.1:0\n").await;
    let metrics = tcp(&mm, Surface::Metrics);
    let user = lab.user_on(0);
    let store = format!("{}:{}", STORE_IPS[0], lab.imap_port);
    let before = scrape(metrics).await;

    let mut c = log_in(mm.imap, &user.uid, &user.password).await;
    let relaying = scrape(metrics).await;
    assert_eq!(get(&relaying, "mailmux_sessions{service=\"imap\",phase=\"relay\"}"), 1.0);
    assert_eq!(get(&relaying, &format!("mailmux_store_sessions{{store=\"{store}\"}}")), 1.0);
    // Bytes are counted while the session relays, not only when it ends.
    c.send("s1 SELECT INBOX").await;
    c.until("s1 OK").await;
    c.send("f1 FETCH 1 BODY.PEEK[]").await;
    c.until("f1 OK").await;
    let mid = scrape(metrics).await;
    let down = "mailmux_relayed_bytes_total{service=\"imap\",direction=\"store-to-client\"}";
    let up = "mailmux_relayed_bytes_total{service=\"imap\",direction=\"client-to-store\"}";
    assert!(
        moved(&relaying, &mid, down) > 300.0,
        "a FETCH of the marker message moved {}",
        moved(&relaying, &mid, down)
    );
    assert!(moved(&relaying, &mid, up) >= 40.0, "SELECT and FETCH went up: {}", moved(&relaying, &mid, up));
    c.send("z LOGOUT").await;
    c.expect("* BYE").await;
    c.expect_closed().await;
    drop(c);

    // A wrong password and a POP3 login.
    let mut bad = Transcript::connect(mm.imap).await;
    bad.expect("* OK").await;
    bad.send(&format!("b LOGIN {} wrong", user.uid)).await;
    bad.expect("b NO").await;
    bad.send("c LOGOUT").await;
    bad.expect_closed().await;
    drop(bad);
    let mut p = Transcript::connect(mm.pop3).await;
    p.expect("+OK").await;
    p.send(&format!("USER {}", user.uid)).await;
    p.expect("+OK").await;
    p.send(&format!("PASS {}", user.password)).await;
    p.expect("+OK").await;
    p.send("QUIT").await;
    p.expect("+OK").await;
    p.expect_closed().await;
    drop(p);

    // Sessions end in their own tasks: wait until the summary counters have them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = scrape(metrics).await;
        if get(&now, "mailmux_sessions{service=\"imap\",phase=\"relay\"}") == 0.0
            && moved(&before, &now, "mailmux_sessions_ended_total{service=\"pop3\",outcome=\"store-closed\"}") >= 1.0
            || Instant::now() > deadline
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (series, at_least) in [
        ("mailmux_connections_total{service=\"imap\"}", 2.0),
        ("mailmux_connections_total{service=\"pop3\"}", 1.0),
        ("mailmux_logins_total{service=\"imap\",outcome=\"ok\"}", 1.0),
        ("mailmux_logins_total{service=\"imap\",outcome=\"auth-failed\"}", 1.0),
        ("mailmux_logins_total{service=\"pop3\",outcome=\"ok\"}", 1.0),
        ("mailmux_sessions_ended_total{service=\"imap\",outcome=\"store-closed\"}", 1.0),
        ("mailmux_sessions_ended_total{service=\"imap\",outcome=\"closed-before-login\"}", 1.0),
        ("mailmux_sessions_ended_total{service=\"pop3\",outcome=\"store-closed\"}", 1.0),
        ("mailmux_directory_seconds_count{service=\"imap\",op=\"search\",result=\"found\"}", 1.0),
        ("mailmux_route_cache_total{service=\"imap\",result=\"miss\"}", 1.0),
        ("mailmux_route_cache_total{service=\"imap\",result=\"hit\"}", 1.0),
        ("mailmux_relayed_bytes_total{service=\"pop3\",direction=\"store-to-client\"}", 10.0),
    ] {
        let delta = moved(&before, &after, series);
        assert!(delta >= at_least, "{series} moved {delta}, expected at least {at_least}");
    }
    assert_eq!(get(&after, "mailmux_sessions{service=\"imap\",phase=\"relay\"}"), 0.0);
    assert_eq!(get(&after, "mailmux_sessions{service=\"imap\",phase=\"prelogin\"}"), 0.0);
    assert_eq!(get(&after, &format!("mailmux_store_sessions{{store=\"{store}\"}}")), 0.0);
    // Store latencies, per store: one IMAP connect and login for this user (+ the failed one's
    // store is never contacted: the wrong password is the store's refusal, so two).
    let connects = moved(&before, &after, &format!("mailmux_store_connect_seconds_count{{store=\"{store}\"}}"));
    let logins = moved(&before, &after, &format!("mailmux_store_login_seconds_count{{store=\"{store}\"}}"));
    assert_eq!((connects, logins), (2.0, 2.0), "the good and the wrong password both reached store A");
    assert_eq!(
        get(&after, &format!("mailmux_store_login_seconds_bucket{{store=\"{store}\",le=\"+Inf\"}}")),
        get(&after, &format!("mailmux_store_login_seconds_count{{store=\"{store}\"}}"))
    );
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_stay_bounded_however_many_users_and_clients() {
    let lab = lab(USERS);
    let (mm, _dir) = start("default:MetricsListen 127.0.0.1:0\n").await;
    let metrics = tcp(&mm, Surface::Metrics);
    // Warm up both stores so every store label exists.
    for store in 0..2 {
        let u = lab.user_on(store);
        let mut c = log_in(mm.imap, &u.uid, &u.password).await;
        c.send("z LOGOUT").await;
        c.expect_closed().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = scrape(metrics).await;
    // Every user, from ten client addresses, plus unknown users and hostile names.
    for (i, u) in lab.users.iter().enumerate() {
        let source = std::net::IpAddr::from([127, 0, 1, (i % 10) as u8 + 1]);
        let mut c = Transcript::connect_from(source, mm.imap).await;
        c.expect("* OK").await;
        c.send(&format!("b LOGIN nosuch{i} \"x\\\"}}\"")).await;
        c.expect("b NO").await;
        c.send(&format!("a LOGIN {} {}", u.uid, u.password)).await;
        c.expect("a OK").await;
        c.send("z LOGOUT").await;
        c.expect_closed().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = scrape(metrics).await;
    let mut a: Vec<&String> = first.keys().collect();
    let mut b: Vec<&String> = later.keys().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the set of series does not grow with users or clients");
    for value in label_values(&later) {
        assert!(!value.contains("user") && !value.contains("nosuch"), "a user name is a label: {value}");
        assert!(
            !value.starts_with("127.0.0.1") && !value.starts_with("127.0.1."),
            "a client address is a label: {value}"
        );
    }
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_kicks_and_explains() {
    let lab = lab(USERS);
    let (mm, _dir) = start("default:AdminListen 127.0.0.1:0\n").await;
    let admin = tcp(&mm, Surface::Admin);
    let url = |path: &str| format!("http://{admin}{path}");
    let (user, other) = (lab.user_on(0), lab.user_on(1));
    let store_a = format!("{}:{}", STORE_IPS[0], lab.imap_port);

    let (status, body) = curl(&[&url("/explain?user=")]).await;
    assert_eq!(status, 400, "{body}");
    // Explain before any login: not cached; the store named; after a login: cached.
    let (status, body) = curl(&[&url(&format!("/explain?user={}", user.uid))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("filter: (uid={})", user.uid)), "{body}");
    assert!(body.contains("route cache: not cached"), "{body}");
    assert!(body.contains(&format!("store chosen: {store_a}")), "{body}");
    assert!(body.contains("address: 127.0.0.1 (no vdmap entry)"), "{body}");
    let (_, again) = curl(&[&url(&format!("/explain?user={}", user.uid))]).await;
    assert!(again.contains("route cache: cached (fresh)"), "{again}");
    let (status, body) = curl(&[&url("/explain?user=nobody&service=pop3")]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("entry: none"), "{body}");

    let mut mine = log_in(mm.imap, &user.uid, &user.password).await;
    mine.send("s SELECT INBOX").await;
    mine.until("s OK").await;
    let mut theirs = log_in(mm.imap, &other.uid, &other.password).await;
    let mut pop = Transcript::connect(mm.pop3).await;
    pop.expect("+OK").await;
    pop.send(&format!("USER {}", user.uid)).await;
    pop.expect("+OK").await;
    pop.send(&format!("PASS {}", user.password)).await;
    pop.expect("+OK").await;

    let (status, list) = curl(&[&url("/sessions")]).await;
    assert_eq!(status, 200, "{list}");
    let mine_line =
        list.lines().find(|l| l.contains(&format!("\timap\t{}\t", user.uid))).unwrap_or_else(|| panic!("{list}"));
    assert!(mine_line.contains(&format!("\t{store_a}\t")), "{mine_line}");
    assert!(
        list.contains(&format!("\tpop3\t{}\t", user.uid)) && list.contains(&format!("\timap\t{}\t", other.uid)),
        "{list}"
    );

    // Acting needs POST.
    let (status, _) = curl(&[&url(&format!("/kick?user={}", user.uid))]).await;
    assert_eq!(status, 405);
    let (status, body) = curl(&["-X", "POST", &url(&format!("/kick?user={}", user.uid.to_uppercase()))]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("kicked 2 session(s)"), "{body}");
    mine.expect("* BYE [UNAVAILABLE]").await;
    mine.expect_closed().await;
    pop.expect_closed().await;
    // The other user goes on.
    theirs.send("n NOOP").await;
    theirs.until("n OK").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, list) = curl(&[&url("/sessions")]).await;
    assert!(!list.contains(&format!("\t{}\t", user.uid)) && list.contains(&format!("\t{}\t", other.uid)), "{list}");
    let (_, text) = curl(&[&url("/metrics")]).await;
    assert!(text.contains("mailmux_sessions_ended_total{service=\"imap\",outcome=\"kicked\"} 1"), "{text}");
    assert!(text.contains("mailmux_sessions_ended_total{service=\"pop3\",outcome=\"kicked\"} 1"), "{text}");

    let (status, body) = curl(&[&url("/health")]).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = curl(&[&url("/ready")]).await;
    assert_eq!(status, 200);
    let (status, body) = curl(&["-X", "POST", &url("/reload")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("reloaded: kept"), "{body}");
    theirs.send("n2 NOOP").await;
    theirs.until("n2 OK").await;
    mm.stop().await;
}

/// Writes `bytes` to the endpoint and returns everything it answers before closing.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await.expect("closed in time");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoints_refuse_huge_slow_and_too_many_requests() {
    let (mm, _dir) = start("default:MetricsListen 127.0.0.1:0\ndefault:AdminListen 127.0.0.1:0\n").await;
    let (metrics, admin) = (tcp(&mm, Surface::Metrics), tcp(&mm, Surface::Admin));
    // The metrics endpoint serves no admin command.
    let (status, _) = curl(&[&format!("http://{metrics}/sessions")]).await;
    assert_eq!(status, 404);
    let (status, _) = curl(&["-X", "POST", &format!("http://{metrics}/reload")]).await;
    assert_eq!(status, 404);
    // A head over 8 KiB.
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(raw(metrics, huge.as_bytes()).await.starts_with("HTTP/1.1 431 "));
    // A body, and garbage.
    assert!(
        raw(admin, b"POST /kick?user=x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
            .await
            .starts_with("HTTP/1.1 413 ")
    );
    assert!(raw(admin, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await.starts_with("HTTP/1.1 400 "));
    // Slow senders: 16 connections that never finish their head hold every slot; the 17th is
    // turned away at once; after the request timeout each slow one is answered 408.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..16 {
        let mut s = tokio::net::TcpStream::connect(admin).await.expect("connect");
        s.write_all(b"GET /sessions HTTP/1.1\r\n").await.expect("write");
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = raw(admin, b"GET /health HTTP/1.1\r\n\r\n").await;
    assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
    assert!(started.elapsed() < Duration::from_secs(4), "the 17th waited {:?}", started.elapsed());
    // The metrics endpoint has its own slots.
    let (status, _) = curl(&[&format!("http://{metrics}/health")]).await;
    assert_eq!(status, 200);
    for mut s in slow {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
            .await
            .expect("answered")
            .expect("read");
        assert!(answer.starts_with(b"HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&answer));
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(9), "{waited:?}");
    // Free again.
    let (status, _) = curl(&[&format!("http://{admin}/health")]).await;
    assert_eq!(status, 200);
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailmux_admin_speaks_to_a_unix_socket() {
    let lab = lab(USERS);
    let (mm, dir) = start("default:AdminListen unix:admin.sock\n").await;
    let socket = dir.join("admin.sock");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).expect("socket file").permissions());
    assert_eq!(mode & 0o777, 0o600, "only the owner may use the admin socket");
    let user = lab.user_on(1);
    let mut c = log_in(mm.imap, &user.uid, &user.password).await;
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailmux"))
            .arg("admin")
            .arg("-c")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run mailmux admin");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = tokio::task::block_in_place(|| admin(&["sessions"]));
    assert!(ok && out.contains(&format!("\timap\t{}\t", user.uid)), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| admin(&["explain", &user.uid, "--service", "pop3"]));
    assert!(ok && out.contains(&format!("store chosen: {}:{}", STORE_IPS[1], lab.pop3_port)), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| admin(&["kick", &user.uid]));
    assert!(ok && out.starts_with("kicked 1 session(s)"), "{out}");
    c.expect("* BYE").await;
    c.expect_closed().await;
    let (ok, out) = tokio::task::block_in_place(|| admin(&["metrics"]));
    assert!(ok && out.contains("mailmux_logins_total{service=\"imap\",outcome=\"ok\"} 1"), "{out}");
    let (ok, _) = tokio::task::block_in_place(|| admin(&["explain", "nobody"]));
    assert!(!ok, "a user without a route fails the command");
    mm.stop().await;
    assert!(!socket.exists(), "the socket file is removed at exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_limits_refusals_and_badguy_penalties_are_counted() {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldif, "default:ConnLimits 0.0.0.0|0.0.0.0:1\ndefault:BGPenalty 1\n", "");
    let aservice = dir.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    std::fs::write(&aservice, format!("{text}default:MetricsListen 0\n")).expect("write AService.cfg");
    let mm = Mailmux::start(&dir).await;
    let metrics = tcp(&mm, Surface::Metrics);
    let before = scrape(metrics).await;
    let user = lab.user_on(0);
    // One connection per address: the second from 127.0.2.1 is turned away.
    let first_from = std::net::IpAddr::from([127, 0, 2, 1]);
    let mut first = Transcript::connect_from(first_from, mm.imap).await;
    first.expect("* OK").await;
    let mut second = Transcript::connect_from(first_from, mm.imap).await;
    second.expect("* BYE [UNAVAILABLE] Too many connections from your address").await;
    // A wrong password from 127.0.2.2 earns badness; its next attempt waits for it.
    let mut guesser = Transcript::connect_from(std::net::IpAddr::from([127, 0, 2, 2]), mm.imap).await;
    guesser.expect("* OK").await;
    guesser.send(&format!("a LOGIN {} wrong", user.uid)).await;
    guesser.expect("a NO").await;
    let started = Instant::now();
    guesser.send(&format!("b LOGIN {} {}", user.uid, user.password)).await;
    guesser.expect("b OK").await;
    assert!(started.elapsed() >= Duration::from_millis(900), "BadGuy held the second attempt back");
    let after = scrape(metrics).await;
    assert_eq!(moved(&before, &after, "mailmux_refusals_total{service=\"imap\",reason=\"conn-limit\"}"), 1.0);
    assert_eq!(moved(&before, &after, "mailmux_refusals_total{service=\"pop3\",reason=\"conn-limit\"}"), 0.0);
    assert_eq!(moved(&before, &after, "mailmux_badguy_penalties_total{service=\"imap\"}"), 1.0);
    assert_eq!(moved(&before, &after, "mailmux_badguy_delays_total{service=\"imap\"}"), 1.0);
    assert_eq!(moved(&before, &after, "mailmux_logins_total{service=\"imap\",outcome=\"auth-failed\"}"), 1.0);
    // The LDIF directory is timed like LDAP.
    assert!(
        moved(&before, &after, "mailmux_directory_seconds_count{service=\"imap\",op=\"search\",result=\"found\"}")
            >= 1.0
    );
    drop((first, second, guesser));
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_follows_the_vdmap_entry_of_the_address() {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldif, "default:VirtualDomainFile vdmap.cfg\n", "");
    std::fs::write(dir.join("vdmap.cfg"), "vdmap siroe 127.0.0.5\nsiroe:DefaultDomain siroe.com\n").expect("vdmap.cfg");
    let aservice = dir.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    std::fs::write(&aservice, format!("{text}default:AdminListen 0\n")).expect("write AService.cfg");
    let mm = Mailmux::start(&dir).await;
    let admin = tcp(&mm, Surface::Admin);
    let user = lab.user_on(1);
    let (status, plain) = curl(&[&format!("http://{admin}/explain?user={}", user.uid)]).await;
    assert_eq!(status, 200, "{plain}");
    assert!(plain.contains(&format!("identity: {}\n", user.uid)), "{plain}");
    let (_, body) = curl(&[&format!("http://{admin}/explain?user={}&address=127.0.0.5", user.uid)]).await;
    assert!(body.contains("address: 127.0.0.5 (vdmap entry siroe)"), "{body}");
    assert!(body.contains(&format!("identity: {}@siroe.com\n", user.uid)), "the entry's DefaultDomain applies: {body}");
    let (status, body) = curl(&[&format!("http://{admin}/explain?user={}&address=not-an-ip", user.uid)]).await;
    assert_eq!(status, 400, "{body}");
    mm.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailmux_process_serves_metrics_and_reloads_through_its_admin_socket() {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldap, "", "");
    let port = mailmux_testkit::ports::free_port();
    let process = common::MailmuxProcess::start(
        &dir,
        &format!("default:MetricsListen {port}\ndefault:AdminListen unix:admin.sock\n"),
    )
    .await;
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(metrics).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "the metrics endpoint listens");
    let before = scrape(metrics).await;
    let user = lab.user_on(0);
    let mut c = log_in(process.imap, &user.uid, &user.password).await;
    c.send("s SELECT INBOX").await;
    c.until("s OK").await;
    let during = scrape(metrics).await;
    assert_eq!(moved(&before, &during, "mailmux_logins_total{service=\"imap\",outcome=\"ok\"}"), 1.0);
    assert!(
        moved(&before, &during, "mailmux_relayed_bytes_total{service=\"imap\",direction=\"store-to-client\"}") > 0.0
    );
    let admin = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailmux"))
            .arg("admin")
            .arg("-c")
            .arg(&dir)
            .args(args)
            .output()
            .expect("run mailmux admin");
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, out) = tokio::task::block_in_place(|| admin(&["reload"]));
    assert!(ok && out.starts_with("reloaded: kept"), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| admin(&["ready"]));
    assert!(ok && out == "ready\n", "{out}");
    // A broken file: refused, nothing changed, exit 1, counted.
    let service = dir.join("ImapProxyAService.cfg");
    let text = std::fs::read_to_string(&service).expect("service file");
    std::fs::write(&service, format!("{text}default:BacksidePort 99999\n")).expect("break the file");
    let (ok, out) = tokio::task::block_in_place(|| admin(&["reload"]));
    assert!(!ok && out.contains("reload refused, nothing changed") && out.contains("BacksidePort"), "{out}");
    std::fs::write(&service, text).expect("repair the file");
    c.send("n NOOP").await;
    c.until("n OK").await;
    let after = scrape(metrics).await;
    assert_eq!(moved(&before, &after, "mailmux_reloads_total{result=\"ok\"}"), 1.0);
    assert_eq!(moved(&before, &after, "mailmux_reloads_total{result=\"refused\"}"), 1.0);
    drop(c);
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preauth_binds_and_auth_cache_hits_are_counted() {
    let lab = lab(USERS);
    let dir = lab.write_config(DirectoryKind::Ldap, "default:PreAuth yes\n", "");
    let aservice = dir.join("AService.cfg");
    let text = std::fs::read_to_string(&aservice).expect("AService.cfg");
    std::fs::write(&aservice, format!("{text}default:MetricsListen 0\n")).expect("write AService.cfg");
    let mm = Mailmux::start(&dir).await;
    let metrics = tcp(&mm, Surface::Metrics);
    let user = lab.user_on(1);
    for _ in 0..2 {
        let mut c = log_in(mm.imap, &user.uid, &user.password).await;
        c.send("z LOGOUT").await;
        c.expect_closed().await;
    }
    let mut c = Transcript::connect(mm.imap).await;
    c.expect("* OK").await;
    c.send(&format!("a LOGIN {} wrong", user.uid)).await;
    c.expect("a NO").await;
    let m = scrape(metrics).await;
    assert_eq!(get(&m, "mailmux_preauth_total{service=\"imap\",result=\"bound\"}"), 1.0);
    assert_eq!(get(&m, "mailmux_preauth_total{service=\"imap\",result=\"cached\"}"), 1.0);
    assert_eq!(get(&m, "mailmux_preauth_total{service=\"imap\",result=\"refused\"}"), 1.0);
    // The two binds were timed; the cached login made none.
    assert_eq!(get(&m, "mailmux_directory_seconds_count{service=\"imap\",op=\"bind\",result=\"found\"}"), 1.0);
    assert_eq!(get(&m, "mailmux_directory_seconds_count{service=\"imap\",op=\"bind\",result=\"not-found\"}"), 1.0);
    drop(c);
    mm.stop().await;
}
