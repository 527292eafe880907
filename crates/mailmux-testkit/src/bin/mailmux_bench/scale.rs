//! `--only scale`: many concurrent logged-in sessions in one mailmux process (issue 10's
//! "9,000 sessions on a 20,000-descriptor limit"), against the lab's real Dovecot stores.
//!
//! Dovecot forks one `imap` process per session by default; 9,000 of those would measure the
//! stores, not mailmux. The stores of this run serve many idle sessions per `imap` process
//! instead ([`STORE_CONF`], a documented Dovecot mode), so the machine can hold both sides.
//!
//! Every session logs in (plain IMAP LOGIN) and stays; then each answers a NOOP through
//! mailmux, a late client logs in while all are held, and the sessions close. Errors are
//! counted, never hidden: a session that is refused, times out or answers wrongly is one
//! error. Loops are bounded by the session count and a per-step timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use mailmux_testkit::User;

/// Appended to both stores' dovecot.conf for this run: up to 1,000 idle sessions per `imap`
/// process (Dovecot merges this block into the lab's `service imap`).
pub const STORE_CONF: &str = "service imap {\n  client_limit = 1000\n  process_limit = 64\n  service_count = 0\n}\n";

/// How long one step of one session (connect, greeting, LOGIN, NOOP) may take.
const STEP: Duration = Duration::from_secs(30);

/// What the process looks like from `/proc`: resident and proportional memory, descriptors.
struct Footprint {
    rss_kib: u64,
    pss_kib: u64,
    descriptors: usize,
}

fn footprint(pid: u32) -> Footprint {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let descriptors = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    Footprint { rss_kib: field("Rss:"), pss_kib: field("Pss:"), descriptors }
}

/// The kernel's unreclaimable slab memory (sockets, epoll items, files) in KiB, machine-wide:
/// what every descriptor of this run costs outside the processes' own memory.
fn kernel_slab_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("SUnreclaim:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A client connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
type Conn = Box<dyn Stream>;

/// Reads from `s` into `seen` until a line starting with `tag` has arrived; returns that line.
async fn answer(s: &mut Conn, seen: &mut Vec<u8>, tag: &str) -> Result<String, String> {
    let mut buf = [0u8; 1024];
    loop {
        if let Some(line) = seen
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(tag.as_bytes()) && l.ends_with(b"\r"))
            .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        {
            seen.clear();
            return Ok(line);
        }
        if seen.len() > 64 * 1024 {
            return Err("answer longer than 64 KiB".into());
        }
        match tokio::time::timeout(STEP, s.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("closed".into()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timed out".into()),
        }
    }
}

/// One session (over TLS when `tls` is given): greeting, LOGIN, tagged OK; the stream is
/// kept open by the caller.
async fn log_in(addr: SocketAddr, user: &User, tls: Option<&tokio_rustls::TlsConnector>) -> Result<Conn, String> {
    let tcp = tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut s: Conn = match tls {
        None => Box::new(tcp),
        Some(tls) => {
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            let handshake = tls.connect(name, tcp);
            Box::new(
                tokio::time::timeout(STEP, handshake)
                    .await
                    .map_err(|_| "TLS handshake timed out".to_owned())?
                    .map_err(|e| format!("TLS handshake: {e}"))?,
            )
        }
    };
    let mut seen = Vec::new();
    let greeting = answer(&mut s, &mut seen, "* ").await?;
    if !greeting.starts_with("* OK") {
        return Err(format!("greeting: {greeting}"));
    }
    s.write_all(format!("a LOGIN {} {}\r\n", user.uid, user.password).as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let done = answer(&mut s, &mut seen, "a ").await?;
    if !done.starts_with("a OK") {
        return Err(format!("login: {done}"));
    }
    Ok(s)
}

/// A NOOP on a logged-in session, answered OK.
async fn noop(s: &mut Conn) -> Result<(), String> {
    s.write_all(b"n NOOP\r\n").await.map_err(|e| format!("write: {e}"))?;
    let mut seen = Vec::new();
    let done = answer(s, &mut seen, "n ").await?;
    if done.starts_with("n OK") { Ok(()) } else { Err(format!("noop: {done}")) }
}

/// Runs `f` over `items`, `concurrency` at a time, returning each result in order.
async fn each<T, R, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let f = Arc::new(f);
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| {
            let (limit, f) = (limit.clone(), f.clone());
            tokio::spawn(async move {
                let _turn = limit.acquire_owned().await.expect("semaphore open");
                f(item).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("scale task"));
    }
    out
}

/// Prints the first few distinct errors, with counts.
fn print_errors(what: &str, errors: &[String]) {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in errors {
        match counts.iter_mut().find(|(m, _)| m == e) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.clone(), 1)),
        }
    }
    for (message, n) in counts.iter().take(5) {
        println!("scale: {what}: {n} × {message}");
    }
}

/// Counts the stores' `imap` processes (how Dovecot holds the sessions of this run).
fn store_imap_processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "imap"))
                .count()
        })
        .unwrap_or(0)
}

/// The scale run: `users.len()` sessions through mailmux at `addr` (over TLS when `tls` is
/// given), opened `concurrency` at a time; mailmux is process `pid`.
pub async fn run(
    users: &[User],
    addr: SocketAddr,
    tls: Option<Arc<tokio_rustls::TlsConnector>>,
    pid: u32,
    concurrency: usize,
) {
    let n = users.len();
    let kind = if tls.is_some() { "TLS" } else { "plain" };
    let rest = footprint(pid);
    let slab_before = kernel_slab_kib();
    println!(
        "scale: mailmux at rest: RSS {} KiB, PSS {} KiB, {} descriptors",
        rest.rss_kib, rest.pss_kib, rest.descriptors
    );
    let started = Instant::now();
    let connector = tls.clone();
    let results = each(users.to_vec(), concurrency, move |user| {
        let tls = connector.clone();
        async move { log_in(addr, &user, tls.as_deref()).await }
    })
    .await;
    let opened = started.elapsed();
    let (mut sessions, mut errors) = (Vec::with_capacity(n), Vec::new());
    for r in results {
        match r {
            Ok(s) => sessions.push(s),
            Err(e) => errors.push(e),
        }
    }
    println!(
        "scale: {} of {n} {kind} sessions logged in ({} errors) in {:.1} s at concurrency {concurrency}",
        sessions.len(),
        errors.len(),
        opened.as_secs_f64()
    );
    print_errors("login", &errors);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = footprint(pid);
    let slab_held = kernel_slab_kib();
    let per = |with: u64, from: u64| with.saturating_sub(from) as f64 / sessions.len().max(1) as f64;
    println!(
        "scale: mailmux holding {} logged-in {kind} sessions: RSS {} KiB ({:.1} KiB/session), PSS {} KiB ({:.1} KiB/session), \
         {} descriptors; stores: {} imap processes",
        sessions.len(),
        held.rss_kib,
        per(held.rss_kib, rest.rss_kib),
        held.pss_kib,
        per(held.pss_kib, rest.pss_kib),
        held.descriptors,
        store_imap_processes()
    );
    // Four sockets per session on this machine: the client's, mailmux's two, the store's.
    println!(
        "scale: kernel unreclaimable slab grew {} KiB = {:.1} KiB per session (4 sockets each here, 2 of them mailmux's)",
        slab_held.saturating_sub(slab_before),
        per(slab_held, slab_before)
    );

    // Every held session still relays: one NOOP each.
    let started = Instant::now();
    let results = each(sessions, concurrency, |mut s| async move {
        let started = Instant::now();
        let r = noop(&mut s).await;
        (s, r.map(|()| started.elapsed()))
    })
    .await;
    let mut times = Vec::with_capacity(results.len());
    let (mut sessions, mut errors) = (Vec::with_capacity(n), Vec::new());
    for (s, r) in results {
        match r {
            Ok(t) => times.push(t),
            Err(e) => errors.push(e),
        }
        sessions.push(s);
    }
    times.sort();
    let pct = |p: usize| times.get(times.len().saturating_sub(1) * p / 100).map_or(0.0, |t| t.as_secs_f64() * 1e3);
    println!(
        "scale: NOOP on each of {} held sessions: {} answered OK, {} errors, in {:.1} s; round trip p50 {:.2} ms, p99 {:.2} ms \
         (at concurrency {concurrency})",
        sessions.len(),
        times.len(),
        errors.len(),
        started.elapsed().as_secs_f64(),
        pct(50),
        pct(99)
    );
    print_errors("noop", &errors);

    // A late client while every session is held.
    let late_user = &users[0];
    let late = Instant::now();
    match log_in(addr, late_user, tls.as_deref()).await {
        Ok(_) => println!(
            "scale: a late client logged in while all were held, in {:.1} ms",
            late.elapsed().as_secs_f64() * 1e3
        ),
        Err(e) => println!("scale: a late client could not log in while all were held: {e}"),
    }

    drop(sessions);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = footprint(pid);
    println!(
        "scale: after the sessions closed: RSS {} KiB, PSS {} KiB, {} descriptors",
        after.rss_kib, after.pss_kib, after.descriptors
    );
}
