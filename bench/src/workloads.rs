//! The workloads, each run against one target at a time and bounded by time and by count:
//! logins (IMAP plain and over implicit TLS, POP3), TLS handshakes, relay throughput, NOOP
//! round trips, and memory per idle logged-in session. Each returns its figures (and the
//! proxy's CPU, where a rate is measured) and how many connections failed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailmux_testkit::User;
use mailmux_testkit::dovecot::marker_subject;
use mailmux_testkit::lab::{Lab, STORE_NAMES};

use crate::client::{self, Conn};
use crate::peers::Target;
use crate::procs;

/// The most iterations of any timed loop, whatever its duration.
const MAX_ITERATIONS: usize = 2_000_000;
/// The message the relay workloads fetch is message 2 of these users' INBOX.
pub const BIG_MESSAGE: u32 = 2;

/// What every workload needs.
pub struct Ctx {
    /// The lab.
    pub lab: Arc<Lab>,
    /// The TLS client (full handshakes).
    pub tls: tokio_rustls::TlsConnector,
    /// Duration of each timed measurement.
    pub duration: Duration,
    /// Concurrent clients of the login workloads.
    pub clients: usize,
    /// Idle sessions opened for the memory figure.
    pub sessions: usize,
    /// Connections of the multi-connection relay figure.
    pub relay_connections: usize,
}

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// IMAP LOGIN, SELECT, LOGOUT.
    ImapLogins,
    /// POP3 USER, PASS, QUIT.
    Pop3Logins,
    /// IMAP LOGIN, SELECT, LOGOUT over implicit TLS.
    TlsLogins,
    /// Connect, TLS handshake, greeting, close.
    TlsHandshakes,
    /// FETCH of the big message, one connection.
    Relay1,
    /// FETCH of the big message, several connections.
    RelayN,
    /// FETCH of the big message, one connection over implicit TLS.
    RelayTls,
    /// NOOP round trips on one logged-in connection.
    Noop,
    /// Memory per idle logged-in session, in a freshly started proxy.
    Memory,
}

impl Workload {
    /// Every workload, in the order run (memory last: it leaves the stores with thousands of
    /// spare processes).
    pub const ALL: [Workload; 9] = [
        Workload::ImapLogins,
        Workload::Pop3Logins,
        Workload::TlsLogins,
        Workload::TlsHandshakes,
        Workload::Relay1,
        Workload::RelayN,
        Workload::RelayTls,
        Workload::Noop,
        Workload::Memory,
    ];

    /// Its name on the command line (`--only`).
    pub fn key(self) -> &'static str {
        match self {
            Workload::ImapLogins => "imap-logins",
            Workload::Pop3Logins => "pop3-logins",
            Workload::TlsLogins => "tls-logins",
            Workload::TlsHandshakes => "tls-handshakes",
            Workload::Relay1 => "relay-1",
            Workload::RelayN => "relay-n",
            Workload::RelayTls => "relay-tls",
            Workload::Noop => "noop",
            Workload::Memory => "memory",
        }
    }

    /// Whether it is measured on `target`: the mailmux variants differ only in how a login
    /// is authorized, so they run the login workloads only; the stores have no proxy memory.
    pub fn applies_to(self, target: &Target) -> bool {
        match self {
            Workload::ImapLogins | Workload::Pop3Logins | Workload::TlsLogins => true,
            Workload::Memory => !target.variant && !target.is_direct(),
            _ => !target.variant,
        }
    }
}

/// Figures from one run of one workload on one target: (metric, value) pairs.
pub struct Measured {
    /// The figures (metric keys as in [`crate::report`]).
    pub values: Vec<(&'static str, f64)>,
    /// Connections that failed.
    pub errors: usize,
    /// The first failure, to show.
    pub first_error: Option<String>,
}

/// Runs `workload` on `target`.
pub async fn run(ctx: &Ctx, workload: Workload, target: &mut Target) -> Measured {
    match workload {
        Workload::ImapLogins => {
            let addrs = addrs(&ctx.lab.users, |u| target.imap(u));
            login_rate(ctx, target, "imap_logins", "imap_login_cpu", addrs, |addr, user| async move {
                let mut c = Conn::plain(addr).await?;
                client::imap_login(&mut c, &user.uid, &user.password, true).await?;
                client::imap_logout(&mut c).await
            })
            .await
        }
        Workload::Pop3Logins => {
            let addrs = addrs(&ctx.lab.users, |u| target.pop3(u));
            login_rate(ctx, target, "pop3_logins", "pop3_login_cpu", addrs, |addr, user| async move {
                let mut c = Conn::plain(addr).await?;
                client::pop3_session(&mut c, &user.uid, &user.password).await
            })
            .await
        }
        Workload::TlsLogins => {
            let addrs = addrs(&ctx.lab.users, |u| target.imaps(u));
            let tls = ctx.tls.clone();
            login_rate(ctx, target, "tls_logins", "tls_login_cpu", addrs, move |addr, user| {
                let tls = tls.clone();
                async move {
                    let mut c = Conn::tls(addr, &tls).await?;
                    client::imap_login(&mut c, &user.uid, &user.password, true).await?;
                    client::imap_logout(&mut c).await
                }
            })
            .await
        }
        Workload::TlsHandshakes => {
            let addrs = addrs(&ctx.lab.users, |u| target.imaps(u));
            let tls = ctx.tls.clone();
            login_rate(ctx, target, "tls_handshakes", "handshake_cpu", addrs, move |addr, _| {
                let tls = tls.clone();
                async move {
                    let mut c = Conn::tls(addr, &tls).await?;
                    c.expect("* OK").await
                }
            })
            .await
        }
        Workload::Relay1 => relay(ctx, target, "relay_1", 1, false).await,
        Workload::RelayN => relay(ctx, target, "relay_n", ctx.relay_connections, false).await,
        Workload::RelayTls => relay(ctx, target, "relay_tls", 1, true).await,
        Workload::Noop => noop(ctx, target).await,
        Workload::Memory => memory(ctx, target).await,
    }
}

fn addrs(users: &[User], addr: impl Fn(&User) -> SocketAddr) -> Arc<Vec<(SocketAddr, User)>> {
    Arc::new(users.iter().map(|u| (addr(u), u.clone())).collect())
}

/// Counts successes and failures of jobs run by `workers` concurrent loops, until `duration`
/// has passed or `max` jobs have started; each job gets the next user in turn.
struct Tally {
    ok: AtomicUsize,
    errors: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

async fn timed_loops<F, Fut>(
    workers: usize,
    duration: Duration,
    max: usize,
    users: Arc<Vec<(SocketAddr, User)>>,
    job: F,
) -> (Arc<Tally>, Duration)
where
    F: Fn(SocketAddr, User) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let tally =
        Arc::new(Tally { ok: AtomicUsize::new(0), errors: AtomicUsize::new(0), first_error: Default::default() });
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (tally, next, job, users) = (tally.clone(), next.clone(), job.clone(), users.clone());
        set.spawn(async move {
            while start.elapsed() < duration {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    break;
                }
                let (addr, user) = users[i % users.len()].clone();
                match job(addr, user).await {
                    Ok(()) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        tally.first_error.lock().expect("tally lock").get_or_insert_with(|| format!("{addr}: {e}"));
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    (tally, start.elapsed())
}

/// Sessions per second with `ctx.clients` clients for `ctx.duration`, and the proxy's CPU
/// per session (ms).
async fn login_rate<F, Fut>(
    ctx: &Ctx,
    target: &Target,
    rate_metric: &'static str,
    cpu_metric: &'static str,
    users: Arc<Vec<(SocketAddr, User)>>,
    job: F,
) -> Measured
where
    F: Fn(SocketAddr, User) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let pids = target.pids();
    let cpu_before = procs::cpu_ms(&pids);
    let (tally, elapsed) = timed_loops(ctx.clients, ctx.duration, MAX_ITERATIONS, users, job).await;
    let cpu = procs::cpu_ms(&pids).saturating_sub(cpu_before);
    let ok = tally.ok.load(Ordering::Relaxed);
    let mut values = vec![(rate_metric, ok as f64 / elapsed.as_secs_f64())];
    if !pids.is_empty() && ok > 0 {
        values.push((cpu_metric, cpu as f64 / ok as f64));
    }
    let first_error = tally.first_error.lock().expect("tally lock").take();
    Measured { values, errors: tally.errors.load(Ordering::Relaxed), first_error }
}

/// MiB/s of `connections` clients each fetching the big message over and over for
/// `ctx.duration` (the bytes of complete FETCHes over the time until the last one ended).
async fn relay(ctx: &Ctx, target: &Target, metric: &'static str, connections: usize, tls: bool) -> Measured {
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    let duration = ctx.duration;
    for user in ctx.lab.users.iter().take(connections).cloned() {
        let addr = if tls { target.imaps(&user) } else { target.imap(&user) };
        let connector = ctx.tls.clone();
        set.spawn(async move {
            let run = async {
                let mut c = if tls { Conn::tls(addr, &connector).await? } else { Conn::plain(addr).await? };
                client::imap_login(&mut c, &user.uid, &user.password, true).await?;
                let mut bytes = 0u64;
                for _ in 0..MAX_ITERATIONS {
                    if start.elapsed() >= duration {
                        break;
                    }
                    bytes += client::fetch_body(&mut c, BIG_MESSAGE).await? as u64;
                }
                client::imap_logout(&mut c).await?;
                Ok::<u64, std::io::Error>(bytes)
            };
            run.await.map_err(|e| format!("{addr}: {e}"))
        });
    }
    let (mut bytes, mut errors, mut first_error) = (0u64, 0, None);
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(b)) => bytes += b,
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let mib_s = bytes as f64 / start.elapsed().as_secs_f64() / f64::from(1u32 << 20);
    Measured { values: vec![(metric, mib_s)], errors, first_error }
}

/// NOOP round trips on one logged-in connection for `ctx.duration`: p50 and p99, in µs.
async fn noop(ctx: &Ctx, target: &Target) -> Measured {
    let user = ctx.lab.users[0].clone();
    let addr = target.imap(&user);
    let run = async {
        let mut c = Conn::plain(addr).await?;
        client::imap_login(&mut c, &user.uid, &user.password, true).await?;
        for _ in 0..200 {
            c.send("n NOOP").await?;
            c.tagged_ok("n").await?;
        }
        let mut times = Vec::new();
        let start = Instant::now();
        while start.elapsed() < ctx.duration && times.len() < MAX_ITERATIONS {
            let t = Instant::now();
            c.send("n NOOP").await?;
            c.tagged_ok("n").await?;
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        client::imap_logout(&mut c).await?;
        Ok::<Vec<f64>, std::io::Error>(times)
    };
    match run.await {
        Ok(mut times) if !times.is_empty() => {
            times.sort_by(f64::total_cmp);
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            Measured { values: vec![("noop_p50", at(0.50)), ("noop_p99", at(0.99))], errors: 0, first_error: None }
        }
        Ok(_) => Measured { values: Vec::new(), errors: 1, first_error: Some("no NOOP completed".into()) },
        Err(e) => Measured { values: Vec::new(), errors: 1, first_error: Some(format!("{addr}: {e}")) },
    }
}

/// Memory per idle logged-in session: the proxy restarted, a few logins to start its pools
/// and workers, then `ctx.sessions` sessions logged in (LOGIN only) and left idle; the
/// growth of the proxy's PSS (all its processes) divided by the sessions.
async fn memory(ctx: &Ctx, target: &mut Target) -> Measured {
    target.restart();
    let users = addrs(&ctx.lab.users, |u| target.imap(u));
    let (warm, _) =
        timed_loops(ctx.clients, Duration::from_secs(10), ctx.clients * 4, users.clone(), |addr, user| async move {
            let mut c = Conn::plain(addr).await?;
            client::imap_login(&mut c, &user.uid, &user.password, false).await?;
            client::imap_logout(&mut c).await
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = target.pids();
    let before = procs::pss_kib(&pids);
    let held = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(ctx.sessions)));
    let keep = held.clone();
    // Opened `clients` at a time, each session LOGIN only, then held open.
    let (tally, _) = timed_loops(ctx.clients, Duration::from_secs(300), ctx.sessions, users, move |addr, user| {
        let keep = keep.clone();
        async move {
            let mut c = Conn::plain(addr).await?;
            client::imap_login(&mut c, &user.uid, &user.password, false).await?;
            keep.lock().await.push(c);
            Ok(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = procs::pss_kib(&pids);
    let open = held.lock().await.len();
    held.lock().await.clear();
    let errors = warm.errors.load(Ordering::Relaxed) + tally.errors.load(Ordering::Relaxed);
    let first_error = tally.first_error.lock().expect("tally lock").take();
    let values =
        if open > 0 { vec![("idle_memory", after.saturating_sub(before) as f64 / open as f64)] } else { Vec::new() };
    Measured { values, errors, first_error }
}

/// Untimed logins through `target` before anything is measured: `count` users each log in
/// once over IMAP (with SELECT) and once over POP3, so that Dovecot's first-login work, the
/// proxies' pools and (for the warm-cache mailmux) the directory cache are done. Returns the
/// first failure, if any.
pub async fn warm_up(ctx: &Ctx, target: &Target, count: usize) -> Option<String> {
    let imap = addrs(&ctx.lab.users, |u| target.imap(u));
    let pop3 = addrs(&ctx.lab.users, |u| target.pop3(u));
    let limit = Duration::from_secs(300);
    let (a, _) = timed_loops(ctx.clients, limit, count, imap, |addr, user| async move {
        let mut c = Conn::plain(addr).await?;
        client::imap_login(&mut c, &user.uid, &user.password, true).await?;
        client::imap_logout(&mut c).await
    })
    .await;
    let (b, _) = timed_loops(ctx.clients, limit, count, pop3, |addr, user| async move {
        let mut c = Conn::plain(addr).await?;
        client::pop3_session(&mut c, &user.uid, &user.password).await
    })
    .await;
    let first = a.first_error.lock().expect("tally lock").take();
    first.or_else(|| b.first_error.lock().expect("tally lock").take())
}

/// Checks that `target` routes each user to the user's own store: for a user of each store,
/// the marker message (message 1) must name that store. Every store accepts every password,
/// so a login alone would not show a proxy sending everyone to one store.
pub async fn check_routing(ctx: &Ctx, target: &Target) -> Result<(), String> {
    for (store, name) in STORE_NAMES.iter().enumerate() {
        let user = ctx.lab.user_on(store).clone();
        let addr = target.imap(&user);
        let subject = async {
            let mut c = Conn::plain(addr).await?;
            client::imap_login(&mut c, &user.uid, &user.password, true).await?;
            let subject = client::subject(&mut c, 1).await?;
            client::imap_logout(&mut c).await?;
            Ok::<String, std::io::Error>(subject)
        }
        .await
        .map_err(|e| format!("{} via {addr}: {e}", user.uid))?;
        let expected = marker_subject(name);
        if !subject.contains(&expected) {
            return Err(format!("{} reached the wrong store: {subject:?}, not {expected:?}", user.uid));
        }
    }
    Ok(())
}
