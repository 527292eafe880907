//! `mailmux-bench`: login rate, TLS handshake rate and memory per session of a running
//! mailmux, against the lab's real Dovecot stores (LDIF directory, so the figures are about
//! mailmux and Dovecot, not about slapd).
//!
//! Usage: `mailmux-bench --mailmux target/release/mailmux [--sessions 500] [--logins 2000]
//! [--handshakes 2000] [--concurrency 50] [--relay-seconds 8] [--relay-connections 8]
//! [--message-mib 10] [--only handshakes|logins|memory|relay|edge|cache|preauth|scale] [--scale-tls]`. Every loop is
//! bounded by its count or its duration.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmux_testkit::lab::{DirectoryKind, Lab, STORE_IPS};
use mailmux_testkit::ports::free_port;
use mailmux_testkit::transcript::{Transcript, tls_connector};

#[path = "mailmux_bench/scale.rs"]
mod scale;

struct Args {
    mailmux: String,
    sessions: usize,
    logins: usize,
    handshakes: usize,
    concurrency: usize,
    relay_seconds: u64,
    relay_connections: usize,
    message_mib: usize,
    only: Option<String>,
    /// `--only scale` over the implicit-TLS port.
    scale_tls: bool,
}

impl Args {
    fn runs(&self, workload: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == workload)
    }
}

fn args() -> Args {
    let mut a = Args {
        mailmux: "mailmux".into(),
        sessions: 500,
        logins: 2000,
        handshakes: 2000,
        concurrency: 50,
        relay_seconds: 8,
        relay_connections: 8,
        message_mib: 10,
        only: None,
        scale_tls: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--mailmux" => a.mailmux = value(),
            "--sessions" => a.sessions = value().parse().expect("--sessions N"),
            "--logins" => a.logins = value().parse().expect("--logins N"),
            "--handshakes" => a.handshakes = value().parse().expect("--handshakes N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--relay-seconds" => a.relay_seconds = value().parse().expect("--relay-seconds N"),
            "--relay-connections" => a.relay_connections = value().parse().expect("--relay-connections N"),
            "--message-mib" => a.message_mib = value().parse().expect("--message-mib N"),
            "--only" => a.only = Some(value()),
            "--scale-tls" => a.scale_tls = true,
            _ => panic!(
                "usage: mailmux-bench --mailmux PATH [--sessions N] [--logins N] [--handshakes N] [--concurrency N] \
                 [--relay-seconds N] [--relay-connections N] [--message-mib N] [--only handshakes|logins|memory|relay|edge|cache|preauth|scale] [--scale-tls]"
            ),
        }
    }
    a
}

/// This process's soft limit on open files (`ulimit -n`).
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// CPU time (user + system) the process has used, from `/proc/PID/stat`, in milliseconds
/// (assuming the usual 100 clock ticks per second).
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the ")" closing the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(14) + ticks(15)) * 10
}

/// Runs `total` jobs, `concurrency` at a time; returns the elapsed time.
async fn run_jobs<F, Fut>(total: usize, concurrency: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(total) {
        let (job, next) = (job.clone(), next.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                job(i).await;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.expect("worker");
    }
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    eprintln!("starting the lab ({} users, two Dovecot stores) …", a.sessions.max(100));
    // The cache workload needs a real LDAP server; the others use the LDIF directory.
    let with_slapd = matches!(a.only.as_deref(), Some("cache" | "preauth"));
    let lab = if a.only.as_deref() == Some("scale") {
        // Each session costs this process one descriptor and mailmux two: both need the
        // 20,000 of `ulimit -n 20000`.
        let limit = open_files_limit();
        assert!(
            limit > 2 * a.sessions as u64 + 1_000,
            "--only scale with {} sessions needs more open files than {limit}: run it under `ulimit -n 20000`",
            a.sessions
        );
        Arc::new(Lab::start_with_store_conf(a.sessions, false, &[], scale::STORE_CONF))
    } else {
        Arc::new(Lab::start(a.sessions.max(100), with_slapd))
    };
    if a.runs("relay") {
        let message = big_message(a.message_mib << 20);
        for user in lab.users.iter().take(a.relay_connections) {
            lab.stores[user.store].add_message(&user.uid, "1700000001.M2P1.big", &message);
        }
    }
    // The lab turns the edge's protections off for tests; the edge workload measures them as
    // shipped (an older build warns about the names it does not know).
    let edge_defaults = if a.only.as_deref() == Some("edge") {
        "default:FailureDelay 3\ndefault:BGPenalty 2\ndefault:ConnLimits 0.0.0.0|0.0.0.0:20\n"
    } else {
        ""
    };
    let directory = if with_slapd { DirectoryKind::Ldap } else { DirectoryKind::Ldif };
    let cfg = lab.write_tls_config(directory, edge_defaults, edge_defaults);
    let (imap_port, pop3_port) = (free_port(), free_port());
    std::fs::write(
        cfg.dir.join("AService.cfg"),
        format!(
            "default:ServiceList imapproxy@127.0.0.1:{imap_port}|127.0.0.1:{} popproxy@127.0.0.1:{pop3_port}|127.0.0.1:{}\ndefault:LogLevel 4\n",
            cfg.imaps, cfg.pop3s
        ),
    )
    .expect("write AService.cfg");
    let mut child = Command::new(&a.mailmux)
        .args(["run", "--log-stderr", "-c"])
        .arg(&cfg.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mailmux");
    let pid = child.id();
    let imap: SocketAddr = ([127, 0, 0, 1], imap_port).into();
    let imaps: SocketAddr = ([127, 0, 0, 1], cfg.imaps).into();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(imaps).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let tls = Arc::new(tls_connector(&lab.ca.cert, None));
    let c = a.concurrency;

    if a.runs("handshakes") {
        // 1. TLS handshakes: connect, handshake, read the greeting, close.
        let t = tls.clone();
        let cpu_before = cpu_ms(pid);
        let elapsed = run_jobs(a.handshakes, c, move |_| {
            let t = t.clone();
            async move {
                let mut s = Transcript::connect_tls(imaps, &t).await;
                s.expect("* OK").await;
            }
        })
        .await;
        println!(
            "TLS handshakes (TLS 1.3, ECDSA P-256, greeting read): {} in {:.2} s = {:.0}/s at concurrency {c}; mailmux CPU {:.0} µs/handshake",
            a.handshakes,
            elapsed.as_secs_f64(),
            a.handshakes as f64 / elapsed.as_secs_f64(),
            (cpu_ms(pid) - cpu_before) as f64 * 1000.0 / a.handshakes as f64
        );
    }
    if a.runs("logins") {
        // 2. Logins through mailmux, and straight to the stores for comparison.
        let login_job = |target: fn(&mailmux_testkit::User, u16, SocketAddr) -> SocketAddr, port: u16| {
            let lab = lab.clone();
            move |i: usize| {
                let user = lab.users[i % lab.users.len()].clone();
                let addr = target(&user, port, imap);
                async move {
                    let mut s = Transcript::connect(addr).await;
                    s.expect("* OK").await;
                    s.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
                    s.expect("a OK").await;
                    s.send("b LOGOUT").await;
                    s.expect_closed().await;
                }
            }
        };
        let cpu_before = cpu_ms(pid);
        let via_mailmux = run_jobs(a.logins, c, login_job(|_, _, mm| mm, 0)).await;
        let login_cpu_us = (cpu_ms(pid) - cpu_before) as f64 * 1000.0 / a.logins as f64;
        let direct =
            run_jobs(a.logins, c, login_job(|u, port, _| SocketAddr::from((STORE_IPS[u.store], port)), lab.imap_port))
                .await;
        println!(
            "IMAP LOGIN+LOGOUT through mailmux: {:.0}/s; straight to Dovecot: {:.0}/s ({} logins, concurrency {c}); mailmux CPU {login_cpu_us:.0} µs/login",
            a.logins as f64 / via_mailmux.as_secs_f64(),
            a.logins as f64 / direct.as_secs_f64(),
            a.logins
        );
    }
    if a.runs("memory") {
        // 3. Memory: plain logged-in sessions first, in the fresh process (measured after the
        //    TLS ones, glibc's reuse of their freed memory hid the plain sessions' cost), then
        //    idle TLS sessions before login, then logged-in TLS sessions.
        let base = rss_kib(pid);
        let mut plain = Vec::new();
        for user in lab.users.iter().take(a.sessions) {
            let mut s = Transcript::connect(imap).await;
            s.expect("* OK").await;
            s.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
            s.expect("a OK").await;
            plain.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let with_plain = rss_kib(pid);
        drop(plain);
        tokio::time::sleep(Duration::from_millis(800)).await;
        let after_plain = rss_kib(pid);
        let mut idle = Vec::new();
        for _ in 0..a.sessions {
            let mut s = Transcript::connect_tls(imaps, &tls).await;
            s.expect("* OK").await;
            idle.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let with_idle = rss_kib(pid);
        drop(idle);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut relayed = Vec::new();
        for user in lab.users.iter().take(a.sessions) {
            let mut s = Transcript::connect_tls(imaps, &tls).await;
            s.expect("* OK").await;
            s.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
            s.expect("a OK").await;
            relayed.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let with_relayed = rss_kib(pid);
        drop(relayed);
        let per = |with: u64, from: u64| (with.saturating_sub(from)) as f64 / a.sessions as f64;
        println!("mailmux RSS: {base} KiB at rest");
        println!(
            "  {} plain sessions logged in and relaying: +{} KiB = {:.1} KiB/session",
            a.sessions,
            with_plain.saturating_sub(base),
            per(with_plain, base)
        );
        println!(
            "  {} TLS sessions before login: +{} KiB = {:.1} KiB/session (measured from {after_plain} KiB)",
            a.sessions,
            with_idle.saturating_sub(after_plain),
            per(with_idle, after_plain)
        );
        println!(
            "  {} TLS sessions logged in and relaying: +{} KiB = {:.1} KiB/session (measured from {after_plain} KiB)",
            a.sessions,
            with_relayed.saturating_sub(after_plain),
            per(with_relayed, after_plain)
        );
    }
    if a.runs("relay") {
        relay(&a, &lab, [imap, imaps], &tls, pid).await;
    }
    if a.only.as_deref() == Some("edge") {
        edge(&lab, imap).await;
    }
    if a.only.as_deref() == Some("cache") {
        cache(&a, &lab, imap).await;
    }
    if a.only.as_deref() == Some("preauth") {
        preauth(&a, &lab).await;
    }
    if a.only.as_deref() == Some("scale") {
        let (addr, connector) = if a.scale_tls { (imaps, Some(tls.clone())) } else { (imap, None) };
        scale::run(&lab.users, addr, connector, pid, c).await;
    }
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
}

/// A message of about `size` bytes in 78-byte lines.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: postmaster@example.com\r\nSubject: big\r\n\r\n".to_vec();
    let mut n = 0u64;
    while m.len() < size {
        m.extend_from_slice(format!("{n:010} {:-<65}\r\n", "").as_bytes());
        n += 1;
    }
    m
}

/// Relay throughput: `relay_connections` clients each FETCH the big message (message 2) over
/// and over for `relay_seconds`, reading as fast as they can; plain and over TLS, and plain
/// straight to the stores for comparison. A FETCH that does not complete (15 s without a
/// byte) counts as an error and ends that connection.
async fn relay(
    a: &Args,
    lab: &Arc<Lab>,
    [imap, imaps]: [SocketAddr; 2],
    tls: &Arc<tokio_rustls::TlsConnector>,
    pid: u32,
) {
    // Panics in the client tasks are the errors counted below; one line each is enough.
    std::panic::set_hook(Box::new(|info| {
        let what = info.payload().downcast_ref::<String>().map_or("", |s| s.lines().next().unwrap_or(""));
        eprintln!("client failed: {what}");
    }));
    let duration = Duration::from_secs(a.relay_seconds);
    for (name, target) in
        [("straight to Dovecot", None), ("through mailmux, plain", Some(imap)), ("through mailmux, TLS", Some(imaps))]
    {
        let mut clients = tokio::task::JoinSet::new();
        let start = Instant::now();
        let cpu_before = cpu_ms(pid);
        for user in lab.users.iter().take(a.relay_connections).cloned() {
            let (tls, addr) = (tls.clone(), target.unwrap_or(SocketAddr::from((STORE_IPS[user.store], lab.imap_port))));
            let tls_on = target == Some(imaps);
            clients.spawn(async move {
                let mut c =
                    if tls_on { Transcript::connect_tls(addr, &tls).await } else { Transcript::connect(addr).await };
                c.expect("* OK").await;
                c.send(&format!("l LOGIN {} {}", user.uid, user.password)).await;
                c.expect("l OK").await;
                c.send("s SELECT INBOX").await;
                c.until("s OK").await;
                let mut bytes = 0u64;
                while start.elapsed() < duration {
                    c.send("f FETCH 2 BODY.PEEK[]").await;
                    let head = c.expect("* 2 FETCH (BODY[] {").await;
                    let len: usize = head
                        .trim_start_matches("* 2 FETCH (BODY[] {")
                        .trim_end_matches('}')
                        .parse()
                        .expect("literal length");
                    bytes += c.read_bytes(len, 64 * 1024, Duration::ZERO).await.len() as u64;
                    c.expect(")").await;
                    c.expect("f OK").await;
                }
                bytes
            });
        }
        let (mut bytes, mut errors) = (0u64, 0usize);
        while let Some(r) = clients.join_next().await {
            match r {
                Ok(b) => bytes += b,
                Err(_) => errors += 1,
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = match target {
            // mailmux's CPU time per GiB relayed (the stores' and this client's are not in it).
            Some(_) => format!(
                "; mailmux CPU {:.2} s/GiB",
                (cpu_ms(pid) - cpu_before) as f64 / 1000.0 / (bytes as f64 / (1u64 << 30) as f64)
            ),
            None => String::new(),
        };
        println!(
            "relay, FETCH of a {} MiB message, {} connections, {name}: {:.0} MiB/s, {errors} stalled or failed connections{cpu}",
            a.message_mib,
            a.relay_connections,
            bytes as f64 / elapsed / (1 << 20) as f64
        );
    }
    let _ = std::panic::take_hook();
}

/// The attacks of issue 6, against mailmux's shipped edge settings (only with `--only edge`):
/// idle sockets from one address, pipelined guessing on one connection, and the timing of an
/// unknown user against a wrong password. Run the client with `ulimit -n 20000`.
async fn edge(lab: &Arc<Lab>, imap: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 1. 9,000 idle connections from 127.0.0.1, while a user logged in from 127.0.0.1 works
    //    and a new client from 127.0.0.5 arrives.
    let user = lab.user_on(0).clone();
    let mut worker = Transcript::connect(imap).await;
    worker.expect("* OK").await;
    worker.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
    worker.expect("a OK").await;
    let started = Instant::now();
    let (mut greeted, mut refused, mut silent) = (0, 0, 0);
    let mut idle = Vec::new();
    for _ in 0..9_000 {
        let Ok(mut s) = tokio::net::TcpStream::connect(imap).await else {
            silent += 1;
            continue;
        };
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(n)) if buf[..n].starts_with(b"* OK") => greeted += 1,
            Ok(Ok(n)) if buf[..n].starts_with(b"* BYE") => refused += 1,
            _ => silent += 1,
        }
        idle.push(s);
    }
    let opened = started.elapsed();
    let noop = Instant::now();
    worker.send("b NOOP").await;
    worker.until("b OK").await;
    let noop = noop.elapsed();
    let mut other = Transcript::connect_from(std::net::IpAddr::from([127, 0, 0, 5]), imap).await;
    let other_greeting = other.line().await;
    println!(
        "edge: 9000 connections from one address in {:.1} s: {greeted} greeted, {refused} refused with BYE, {silent} unanswered; \
         a logged-in user's NOOP took {:.1} ms; a client from another address got: {other_greeting}",
        opened.as_secs_f64(),
        noop.as_secs_f64() * 1000.0
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 2. 100,000 pipelined LOGINs on one connection.
    let mut s = match connect_from(std::net::IpAddr::from([127, 0, 0, 6]), imap).await {
        Ok(s) => s,
        Err(e) => {
            println!("edge: cannot connect for the guessing test: {e}");
            return;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let _ = s.read(&mut buf).await;
    let guesses: String = (0..100_000).map(|i| format!("g{i} LOGIN {} guess{i}\r\n", user.uid)).collect();
    let started = Instant::now();
    let (mut read, mut write) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(guesses.as_bytes()).await;
        write
    });
    let mut answers = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), read.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answers.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answers);
    println!(
        "edge: 100000 pipelined LOGINs: {} answered, connection closed after {:.1} s",
        text.matches(" NO ").count(),
        started.elapsed().as_secs_f64()
    );

    // 3. An unknown user against a wrong password (fresh source addresses, so BadGuy does
    //    not add to either).
    let times = |uid: String, base: u8| async move {
        let mut t = Vec::new();
        for i in 0..5u8 {
            let mut c = Transcript::connect_from(std::net::IpAddr::from([127, 0, 1, base + i]), imap).await;
            c.expect("* OK").await;
            let started = Instant::now();
            c.send(&format!("a LOGIN {uid} wrong-password")).await;
            c.until("a ").await;
            t.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        t.sort_by(f64::total_cmp);
        t
    };
    let unknown = times("nosuchuser".into(), 10).await;
    let wrong = times(user.uid.clone(), 20).await;
    println!(
        "edge: failed-login time, median (min-max) of 5: unknown user {:.0} ms ({:.0}-{:.0}), wrong password {:.0} ms ({:.0}-{:.0})",
        unknown[2], unknown[0], unknown[4], wrong[2], wrong[0], wrong[4]
    );
}

/// Connects from `source` (an address the rest of the run does not use).
async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// The route cache against a real slapd (only with `--only cache`): IMAP LOGIN+LOGOUT of
/// every lab user once with an empty cache (each login asks slapd), then the same logins
/// again (each answered from the cache). Every user first logs in straight to its store,
/// untimed, so that Dovecot's first-login work (creating the user's index) is not counted in
/// the cold pass.
async fn cache(a: &Args, lab: &Arc<Lab>, imap: SocketAddr) {
    let users: Vec<mailmux_testkit::User> = lab.users.clone();
    let n = users.len();
    let users = Arc::new(users);
    let store_port = lab.imap_port;
    for pass in ["stores warmed directly (untimed)", "cold cache", "warm cache"] {
        let users = users.clone();
        let direct = pass.starts_with("stores");
        let elapsed = run_jobs(n, a.concurrency, move |i| {
            let user = users[i].clone();
            let addr = if direct { SocketAddr::from((STORE_IPS[user.store], store_port)) } else { imap };
            async move {
                let mut s = Transcript::connect(addr).await;
                s.expect("* OK").await;
                s.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
                s.expect("a OK").await;
                s.send("b LOGOUT").await;
                s.expect_closed().await;
            }
        })
        .await;
        if direct {
            continue;
        }
        println!(
            "cache: {n} IMAP LOGIN+LOGOUT, {pass}, LDAP directory: {:.0}/s (concurrency {})",
            n as f64 / elapsed.as_secs_f64(),
            a.concurrency
        );
    }
}

/// Logins with PreAuth off, on with a cold AuthCache, and on with a warm one, in one run: two
/// more mailmux processes on the lab's slapd, the route cache off in both so that every login
/// searches once and PreAuth's bind (or cached proof) is the only difference.
async fn preauth(a: &Args, lab: &Arc<Lab>) {
    let users = Arc::new(lab.users.clone());
    let n = users.len();
    let store_port = lab.imap_port;
    let login = |addr: SocketAddr, user: mailmux_testkit::User| async move {
        let mut s = Transcript::connect(addr).await;
        s.expect("* OK").await;
        s.send(&format!("a LOGIN {} {}", user.uid, user.password)).await;
        s.expect("a OK").await;
        s.send("b LOGOUT").await;
        s.expect_closed().await;
    };
    let direct = users.clone();
    run_jobs(n, a.concurrency, move |i| {
        let user = direct[i].clone();
        login(SocketAddr::from((STORE_IPS[user.store], store_port)), user)
    })
    .await;
    for (label, extra, passes) in [
        ("PreAuth off", "default:LdapCacheSize 0\n", &["timed"][..]),
        ("PreAuth on", "default:LdapCacheSize 0\ndefault:PreAuth yes\n", &["cold AuthCache", "warm AuthCache"][..]),
    ] {
        let cfg = lab.write_config(DirectoryKind::Ldap, extra, "");
        let port = free_port();
        std::fs::write(
            cfg.join("AService.cfg"),
            format!("default:ServiceList imapproxy@127.0.0.1:{port}\ndefault:LogLevel 4\n"),
        )
        .expect("write AService.cfg");
        let mut child = Command::new(&a.mailmux)
            .args(["run", "--log-stderr", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mailmux");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for pass in passes {
            let users = users.clone();
            let cpu_before = cpu_ms(child.id());
            let elapsed = run_jobs(n, a.concurrency, move |i| login(addr, users[i].clone())).await;
            let cpu = cpu_ms(child.id()) - cpu_before;
            println!(
                "preauth: {n} IMAP LOGIN+LOGOUT, {label}, {pass}: {:.0}/s, mailmux CPU {:.3} ms per login (concurrency {})",
                n as f64 / elapsed.as_secs_f64(),
                cpu as f64 / n as f64,
                a.concurrency
            );
        }
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
}
