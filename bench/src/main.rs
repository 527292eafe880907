//! `mailmux-bench-peers`: the published benchmark (`scripts/bench`, `bench/README.md`).
//!
//! One run starts, on loopback, a lab of real servers from `mailmux-testkit` (slapd with the
//! users and their `mailHost`, two Dovecot stores in their fast login mode) and, in front of
//! the stores, mailmux and its peers, all routed by the same directory. Each workload then
//! runs against every target (the stores directly, each proxy), repetition after repetition
//! with the order of the targets rotated each time; the medians make one table, printed and
//! written with charts to `docs/PERFORMANCE.md`.
//!
//! | module | what |
//! | --- | --- |
//! | [`peers`] | the targets: the stores, mailmux (and its variants), a Dovecot proxy, nginx mail |
//! | [`auth_http`] | the `auth_http` service nginx asks for `mailHost` (run as `mailmux-bench-peers auth-http FILE`) |
//! | [`client`] | the load generator's IMAP/POP3 client, failures as errors |
//! | [`workloads`] | logins, TLS, relay, NOOP, idle memory: bounded by time and count |
//! | [`procs`] | a proxy's CPU and PSS, all its processes together |
//! | [`report`] | medians, the table, the ratios |
//! | [`chart`] | the SVG charts |
//! | [`machine`] | the machine and the versions measured |
//! | [`doc`] | `docs/PERFORMANCE.md` |

mod auth_http;
mod chart;
mod client;
mod doc;
mod machine;
mod peers;
mod procs;
mod report;
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailmux_testkit::lab::Lab;

use crate::peers::Target;
use crate::report::{Column, Labels, Results};
use crate::workloads::{Ctx, Workload};

/// The command line.
pub struct Args {
    /// The mailmux binary to measure.
    pub mailmux: PathBuf,
    /// Seconds per timed measurement.
    pub seconds: f64,
    /// Repetitions of every workload.
    pub reps: usize,
    /// Concurrent clients of the login workloads.
    pub clients: usize,
    /// Users in the directory.
    pub users: usize,
    /// Idle sessions for the memory figure.
    pub sessions: usize,
    /// Size of the fetched message, MiB.
    pub message_mib: usize,
    /// Connections of the multi-connection relay figure.
    pub relay_connections: usize,
    /// Workloads to run (none: all).
    pub only: Vec<String>,
    /// Targets to measure (none: all).
    pub targets: Vec<String>,
    /// Where the report goes (none: not written).
    pub doc: Option<PathBuf>,
    /// A remark for the report (e.g. how busy the machine was).
    pub note: Option<String>,
}

const USAGE: &str = "usage: mailmux-bench-peers --mailmux PATH [--seconds 8] [--reps 3] [--clients 32] [--users 1000] \
     [--sessions 2000] [--message-mib 10] [--relay-connections 8] [--only W,W…] [--targets T,T…] \
     [--doc docs/PERFORMANCE.md | --no-doc] [--note TEXT]\n\
     workloads: imap-logins pop3-logins tls-logins tls-handshakes relay-1 relay-n relay-tls noop memory\n\
     targets: direct nginx dovecot mailmux mailmux-warm mailmux-preauth";

fn args() -> Args {
    let mut a = Args {
        mailmux: "target/release/mailmux".into(),
        seconds: 8.0,
        reps: 3,
        clients: 32,
        users: 1000,
        sessions: 2000,
        message_mib: 10,
        relay_connections: 8,
        only: Vec::new(),
        targets: Vec::new(),
        doc: Some("docs/PERFORMANCE.md".into()),
        note: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value\n{USAGE}"));
        let list = |v: String| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        match flag.as_str() {
            "--mailmux" => a.mailmux = value().into(),
            "--seconds" => a.seconds = value().parse().expect("--seconds SECONDS"),
            "--reps" => a.reps = value().parse().expect("--reps N"),
            "--clients" => a.clients = value().parse().expect("--clients N"),
            "--users" => a.users = value().parse().expect("--users N"),
            "--sessions" => a.sessions = value().parse().expect("--sessions N"),
            "--message-mib" => a.message_mib = value().parse().expect("--message-mib N"),
            "--relay-connections" => a.relay_connections = value().parse().expect("--relay-connections N"),
            "--only" => a.only = list(value()),
            "--targets" => a.targets = list(value()),
            "--doc" => a.doc = Some(value().into()),
            "--no-doc" => a.doc = None,
            "--note" => a.note = Some(value()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => panic!("unknown argument {flag}\n{USAGE}"),
        }
    }
    assert!(a.seconds > 0.0 && a.seconds <= 600.0, "--seconds must be in (0, 600]");
    assert!((1..=20).contains(&a.reps), "--reps must be 1 to 20");
    assert!((1..=1000).contains(&a.clients), "--clients must be 1 to 1000");
    assert!((2..=100_000).contains(&a.users), "--users must be 2 to 100000");
    assert!((1..=9000).contains(&a.sessions), "--sessions must be 1 to 9000 (the descriptor limit)");
    assert!((1..=a.users).contains(&a.relay_connections), "--relay-connections must be 1 to --users");
    for w in &a.only {
        assert!(Workload::ALL.iter().any(|k| k.key() == w), "unknown workload {w}\n{USAGE}");
    }
    a
}

fn main() {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("auth-http") {
        let path = argv.next().expect("auth-http FILE");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
        runtime.expect("tokio runtime").block_on(auth_http::run(&path));
    }
    let a = args();
    // The client's own runtime: two threads, as many as the machine has cores.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    runtime.expect("tokio runtime").block_on(bench(a));
}

/// Big messages: about `size` bytes in 78-byte lines.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: postmaster@example.com\r\nSubject: big\r\n\r\n".to_vec();
    let mut n = 0u64;
    while m.len() < size {
        m.extend_from_slice(format!("{n:010} {:-<65}\r\n", "").as_bytes());
        n += 1;
    }
    m
}

async fn bench(a: Args) {
    let started = Instant::now();
    let load_before = machine::load();
    let mailmux = std::fs::canonicalize(&a.mailmux)
        .unwrap_or_else(|e| panic!("{}: {e} (build it: cargo build --release -p mailmux)", a.mailmux.display()));
    eprintln!("bench: starting slapd with {} users and two Dovecot stores …", a.users);
    let lab = Arc::new(Lab::start(a.users, true));
    let message = big_message(a.message_mib << 20);
    for user in lab.users.iter().take(a.relay_connections) {
        lab.stores[user.store].add_message(&user.uid, "1700000001.M2P1.big", &message);
    }
    eprintln!("bench: starting the proxies …");
    let wanted = |key: &str| a.targets.is_empty() || a.targets.iter().any(|t| t == key);
    let mut targets: Vec<Target> = Vec::new();
    if wanted("direct") {
        targets.push(Target::direct(&lab));
    }
    if wanted("nginx") {
        targets.push(Target::nginx(&lab));
    }
    if wanted("dovecot") {
        targets.push(Target::dovecot(&lab));
    }
    let variants: [(&'static str, &'static str, bool, &str); 3] = [
        ("mailmux", "mailmux", false, "default:LdapCacheSize 0\n"),
        ("mailmux-warm", "mailmux, warm cache", true, ""),
        (
            "mailmux-preauth",
            "mailmux, PreAuth",
            true,
            "default:LdapCacheSize 0\ndefault:PreAuth yes\ndefault:AuthCacheSize 0\n",
        ),
    ];
    for (key, name, variant, extra) in variants {
        if wanted(key) {
            targets.push(Target::mailmux(key, name, variant, &lab, &mailmux, extra));
        }
    }
    let ctx = Ctx {
        lab: lab.clone(),
        tls: client::tls_connector(&lab.ca.cert),
        duration: Duration::from_secs_f64(a.seconds),
        clients: a.clients,
        sessions: a.sessions,
        relay_connections: a.relay_connections,
    };
    // What each TLS server negotiates with the client.
    let mut tls_notes = Vec::new();
    for t in &targets {
        let addr = t.imaps(&lab.users[0]);
        match client::Conn::tls(addr, &ctx.tls).await {
            Ok(c) => {
                let negotiated = c.tls.unwrap_or_default();
                eprintln!("bench: {:<20} TLS {negotiated}", t.name);
                tls_notes.push((t.name, negotiated));
            }
            Err(e) => panic!("{}: TLS handshake failed: {e}\n{}", t.name, t.log_tail()),
        }
    }
    for t in &targets {
        if let Err(e) = workloads::check_routing(&ctx, t).await {
            panic!("{}: {e}\n{}", t.name, t.log_tail());
        }
    }
    eprintln!("bench: every target routes each user to the user's store");
    eprintln!("bench: warming up (every user logs in to its store once; the warm-cache mailmux sees every user) …");
    for t in &targets {
        let everyone = t.is_direct() || t.key == "mailmux-warm";
        let errors = workloads::warm_up(&ctx, t, if everyone { a.users } else { a.clients * 2 }).await;
        assert!(
            errors.is_none(),
            "warm-up through {} failed: {}\n{}",
            t.name,
            errors.unwrap_or_default(),
            t.log_tail()
        );
    }
    let mut results = Results::default();
    // Each measurement as it went, with the 1-minute load average when it began.
    let mut run_log: Vec<String> = Vec::new();
    let selected: Vec<Workload> =
        Workload::ALL.into_iter().filter(|w| a.only.is_empty() || a.only.iter().any(|o| o == w.key())).collect();
    for workload in selected {
        for rep in 0..a.reps {
            let n = targets.len();
            for i in 0..n {
                let t = &mut targets[(i + rep) % n];
                if !workload.applies_to(t) {
                    continue;
                }
                let load = machine::load();
                let m = workloads::run(&ctx, workload, t).await;
                let shown: Vec<String> =
                    m.values.iter().map(|(k, v)| format!("{k} {}", report::number(*v, 3))).collect();
                let line = format!(
                    "[{}/{}] load {:<5} {:<14} {:<20} {}",
                    rep + 1,
                    a.reps,
                    load.split(' ').next().unwrap_or(""),
                    workload.key(),
                    t.name,
                    shown.join(", ")
                );
                eprintln!("  {line}");
                run_log.push(line);
                for (metric, value) in &m.values {
                    results.add(metric, t.key, *value);
                }
                if m.errors > 0 {
                    let first = m.first_error.unwrap_or_default();
                    eprintln!("      {} failed connections; first: {first}", m.errors);
                    results.errors.push((workload.key().to_owned(), t.key, m.errors, first));
                }
            }
        }
    }
    let labels = Labels {
        clients: a.clients,
        message_mib: a.message_mib,
        relay_connections: a.relay_connections,
        sessions: a.sessions,
    };
    let rows = report::rows(&labels);
    let columns: Vec<Column> = targets
        .iter()
        .map(|t| Column { key: t.key, name: t.name, peer: matches!(t.key, "nginx" | "dovecot") })
        .collect();
    let table = report::table(&results, &rows, &columns);
    println!("\n{table}");
    for (workload, target, errors, first) in &results.errors {
        println!("failures: {workload} via {target}: {errors} connections; first: {first}");
    }
    if let Some(path) = &a.doc {
        let run = doc::Run {
            args: &a,
            mailmux: &mailmux,
            table: &table,
            raw: &report::raw(&results, &rows, &columns),
            log: &run_log,
            errors: &results.errors,
            tls: &tls_notes,
            load_before,
            load_after: machine::load(),
            minutes: started.elapsed().as_secs_f64() / 60.0,
        };
        let caption = format!(
            "mailmux and its peers on loopback, medians of {} × {} s ({}); see PERFORMANCE.md",
            a.reps,
            a.seconds,
            doc::today()
        );
        doc::write(path, &run, chart::svg(&results, &rows, &columns, &caption).as_deref());
        eprintln!("bench: wrote {}", path.display());
    }
    drop(targets);
}
