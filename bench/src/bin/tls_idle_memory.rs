//! `tls-idle-memory`: what one idle TLS connection costs a server built as mailmux builds
//! its TLS (`mailmux::tls::server_config`, `mailmux::tls::acceptor`), in heap bytes and
//! blocks counted by a counting global allocator ([`counting_alloc`]) and in RSS.
//!
//! One run measures one variant ([`Variant`]): it opens a warm-up connection, takes a
//! baseline, has a child process ([`clients`], so that the clients' memory is not counted)
//! open N connections that each handshake, send `ping\n`, read `pong\n` and go silent, waits
//! until the server side of every one is idle, and prints the growth divided by N. With
//! `--trace` it then opens one more connection with allocation tracing on and prints, by
//! allocation site, the blocks that connection still holds when idle. `--variant all` runs
//! every variant, each in a fresh process, and prints a table. `--malloc-stats` adds glibc's
//! per-arena figures ([`glibc_malloc`]) while the connections are idle.
//!
//! ```text
//! ulimit -n 20000
//! target/release/tls-idle-memory --connections 2000 --variant all
//! target/release/tls-idle-memory --connections 2000 --variant tls13 --trace
//! target/release/tls-idle-memory --connections 2000 --variant tls13 --malloc-stats
//! ```
//!
//! Every run is bounded: N connections, a per-connection timeout, a deadline for all.

#[path = "tls_idle_memory/clients.rs"]
mod clients;
#[path = "tls_idle_memory/counting_alloc.rs"]
mod counting_alloc;
#[path = "tls_idle_memory/glibc_malloc.rs"]
mod glibc_malloc;
#[path = "tls_idle_memory/unbuffered.rs"]
mod unbuffered;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mailmux_config::ServerTls;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

/// All N connections must be idle within this.
const DEADLINE: Duration = Duration::from_secs(120);
/// After the last connection reports idle, its last read is polled (and may allocate).
const SETTLE: Duration = Duration::from_millis(300);

/// What the server side of a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// Plain TCP: the task and the tokio registration alone.
    Tcp,
    /// mailmux's configuration as it is, tokio-rustls, TLS 1.3.
    Tls13,
    /// With `SSLCACertFile`: client certificates requested (the client sends none).
    Tls13ClientAuth,
    /// `send_tls13_tickets = 0`.
    Tls13NoTickets,
    /// `session_storage = NoServerSessionStorage` (no stateful resumption, so no tickets).
    Tls13NoSessionCache,
    /// `set_buffer_limit(Some(1024))` on each connection after the handshake.
    Tls13BufferLimit,
    /// `max_fragment_size = Some(1024)`.
    Tls13MaxFragment,
    /// mailmux's configuration, the client offering TLS 1.2 only.
    Tls12,
    /// mailmux's configuration, the client offering only ChaCha20-Poly1305 (smaller AEAD
    /// state than AES-GCM's key schedule and GHASH table).
    Tls13Chacha20,
    /// mailmux's configuration on `UnbufferedServerConnection`, no buffer held while idle.
    Unbuffered,
    /// The same with `send_tls13_tickets = 0`.
    UnbufferedNoTickets,
}

const VARIANTS: [(Variant, &str); 11] = [
    (Variant::Tcp, "tcp"),
    (Variant::Tls13, "tls13"),
    (Variant::Tls13ClientAuth, "tls13-client-auth"),
    (Variant::Tls13NoTickets, "tls13-no-tickets"),
    (Variant::Tls13NoSessionCache, "tls13-no-session-cache"),
    (Variant::Tls13BufferLimit, "tls13-buffer-limit"),
    (Variant::Tls13MaxFragment, "tls13-max-fragment"),
    (Variant::Tls12, "tls12"),
    (Variant::Tls13Chacha20, "tls13-chacha20"),
    (Variant::Unbuffered, "unbuffered"),
    (Variant::UnbufferedNoTickets, "unbuffered-no-tickets"),
];

impl Variant {
    fn name(self) -> &'static str {
        VARIANTS.iter().find(|(v, _)| *v == self).map(|(_, n)| *n).unwrap_or("?")
    }

    fn parse(name: &str) -> Option<Variant> {
        VARIANTS.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
    }

    fn is_tls(self) -> bool {
        self != Variant::Tcp
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("client") { client(&args[1..]) } else { server(&args) };
    if let Err(e) = result {
        eprintln!("tls-idle-memory: {e}");
        std::process::exit(1);
    }
}

fn client(args: &[String]) -> Result<(), String> {
    let addr: SocketAddr = args.first().and_then(|a| a.parse().ok()).ok_or("client: ADDR expected")?;
    let ca = args.get(1).filter(|a| !a.starts_with("--")).map(std::path::PathBuf::from);
    let offer = clients::Offer {
        tls12_only: args.iter().any(|a| a == "--tls12"),
        chacha20_only: args.iter().any(|a| a == "--chacha20"),
    };
    clients::run(addr, ca.as_deref(), offer)
}

struct Options {
    connections: usize,
    variant: Option<Variant>,
    trace: bool,
    malloc_stats: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options { connections: 2000, variant: Some(Variant::Tls13), trace: false, malloc_stats: false };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connections" => {
                options.connections = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=20_000).contains(n))
                    .ok_or("--connections takes 1..=20000")?;
            }
            "--variant" => {
                let name = args.next().ok_or("--variant takes a name")?;
                options.variant = if name == "all" {
                    None
                } else {
                    let names: Vec<&str> = VARIANTS.iter().map(|(_, n)| *n).collect();
                    Some(Variant::parse(name).ok_or_else(|| format!("variants: all {}", names.join(" ")))?)
                };
            }
            "--trace" => options.trace = true,
            "--malloc-stats" => options.malloc_stats = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn server(args: &[String]) -> Result<(), String> {
    let options = options(args)?;
    print_sizes();
    match options.variant {
        Some(variant) => measure(variant, &options),
        None => {
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            println!("\n{:<24} {:>12} {:>12} {:>12}", "variant", "heap B/conn", "blocks/conn", "RSS B/conn");
            for (_, name) in VARIANTS {
                let out = Command::new(&me)
                    .args(["--variant", name, "--connections", &options.connections.to_string()])
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&out.stdout);
                let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or(format!("{name}: no result"))?;
                println!("{line}");
            }
            Ok(())
        }
    }
}

fn print_sizes() {
    use std::mem::size_of;
    println!(
        "size_of tokio-rustls server TlsStream<TcpStream>: {}",
        size_of::<tokio_rustls::server::TlsStream<TcpStream>>()
    );
    println!("size_of rustls ServerConnection: {}", size_of::<rustls::ServerConnection>());
    println!("size_of rustls UnbufferedServerConnection: {}", size_of::<rustls::server::UnbufferedServerConnection>());
    println!("size_of tokio TcpStream: {}", size_of::<TcpStream>());
    println!("size_of mailmux ClientStream (TLS boxed inside): {}", size_of::<mailmux::tls::ClientStream>());
}

/// Resident set size, bytes.
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()).unwrap_or(0) * 4096
}

struct Snapshot {
    bytes: i64,
    blocks: i64,
    rss: i64,
}

fn snapshot() -> Snapshot {
    let (bytes, blocks) = counting_alloc::live();
    Snapshot { bytes, blocks, rss: rss() }
}

/// The server configuration mailmux builds for a certificate from a test CA (which also
/// vouches for client certificates when `client_auth`); the CA certificate.
fn mailmux_config(dir: &std::path::Path, client_auth: bool) -> Result<(Arc<ServerConfig>, std::path::PathBuf), String> {
    let ca = mailmux_testkit::pki::Ca::new(dir, "tls-idle-memory-ca");
    let leaf = ca.server("server", &["127.0.0.1"]);
    let tls = ServerTls {
        cert_file: leaf.cert,
        key_file: leaf.key,
        implicit_ports: Vec::new(),
        cipher_suites: Vec::new(),
        client_ca_file: client_auth.then(|| ca.cert.clone()),
        crl_file: None,
    };
    let (config, _) = mailmux::tls::server_config(&tls).map_err(|e| e.to_string())?;
    Ok((config, ca.cert.clone()))
}

fn variant_config(variant: Variant, base: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(base);
    match variant {
        Variant::Tls13NoTickets | Variant::UnbufferedNoTickets => config.send_tls13_tickets = 0,
        Variant::Tls13NoSessionCache => config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {}),
        Variant::Tls13MaxFragment => config.max_fragment_size = Some(1024),
        _ => return base.clone(),
    }
    Arc::new(config)
}

fn measure(variant: Variant, options: &Options) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("tls-idle-memory-{}", std::process::id()));
    let measured = measure_in(&dir, variant, options);
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

fn measure_in(dir: &std::path::Path, variant: Variant, options: &Options) -> Result<(), String> {
    let connections = options.connections;
    let (base, ca) = mailmux_config(dir, variant == Variant::Tls13ClientAuth)?;
    let config = variant_config(variant, &base);
    // As mailmux's `serve`: a multi-threaded runtime, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let idle = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    runtime.spawn(accept_loop(listener, variant, config, idle.clone(), failed.clone()));

    let mut child_args = vec!["client".to_string(), addr.to_string()];
    if variant.is_tls() {
        child_args.push(ca.display().to_string());
    }
    if variant == Variant::Tls12 {
        child_args.push("--tls12".into());
    }
    if variant == Variant::Tls13Chacha20 {
        child_args.push("--chacha20".into());
    }
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(&child_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut to_child = child.stdin.take().ok_or("child stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().ok_or("child stdout")?);
    let started = Instant::now();
    let mut open = |count: usize, expect_idle: usize| -> Result<(), String> {
        writeln!(to_child, "open {count}").map_err(|e| e.to_string())?;
        let mut line = String::new();
        from_child.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            return Err(format!("the clients failed ({line:?})"));
        }
        while idle.load(Ordering::SeqCst) < expect_idle {
            if failed.load(Ordering::SeqCst) > 0 {
                return Err("a server-side connection failed".into());
            }
            if started.elapsed() > DEADLINE {
                return Err("connections did not go idle in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(SETTLE);
        Ok(())
    };

    // One warm-up connection: one-time set-up (lazy statics, CPU feature detection, the
    // first slab page) is not counted.
    open(1, 1)?;
    let before = snapshot();
    open(connections, connections + 1)?;
    let after = snapshot();
    let n = connections as i64;
    let (bytes, blocks, rss) =
        ((after.bytes - before.bytes) / n, (after.blocks - before.blocks) / n, (after.rss - before.rss) / n);
    println!("RESULT {:<24} {:>12} {:>12} {:>12}", variant.name(), bytes, blocks, rss);
    if options.malloc_stats {
        eprintln!("glibc malloc_stats() with {} connections idle (and the warm-up one):", connections);
        glibc_malloc::print_stats();
    }

    if options.trace {
        counting_alloc::trace_start();
        let traced = open(1, connections + 2);
        let blocks = counting_alloc::trace_stop();
        traced?;
        print_trace(&blocks);
    }
    drop(to_child);
    let _ = child.wait();
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    variant: Variant,
    config: Arc<ServerConfig>,
    idle: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let acceptor = mailmux::tls::acceptor(&config);
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, config, idle, failed) = (acceptor.clone(), config.clone(), idle.clone(), failed.clone());
        tokio::spawn(async move {
            let idle_now = move || {
                idle.fetch_add(1, Ordering::SeqCst);
            };
            let served = match variant {
                Variant::Tcp => serve_plain(tcp, idle_now).await,
                Variant::Unbuffered | Variant::UnbufferedNoTickets => unbuffered::serve(config, tcp, idle_now).await,
                _ => serve_buffered(&acceptor, variant, tcp, idle_now).await,
            };
            if let Err(e) = served {
                eprintln!("server side: {e}");
                failed.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

async fn serve_plain(mut tcp: TcpStream, idle: impl FnOnce()) -> Result<(), String> {
    let mut line = [0u8; 5];
    tcp.read_exact(&mut line).await.map_err(|e| e.to_string())?;
    tcp.write_all(b"pong\n").await.map_err(|e| e.to_string())?;
    idle();
    let _ = tcp.read(&mut line).await;
    Ok(())
}

/// As a mailmux session holds its client: the tokio-rustls stream, boxed.
async fn serve_buffered(
    acceptor: &TlsAcceptor,
    variant: Variant,
    tcp: TcpStream,
    idle: impl FnOnce(),
) -> Result<(), String> {
    let mut tls = Box::new(acceptor.accept(tcp).await.map_err(|e| e.to_string())?);
    if variant == Variant::Tls13BufferLimit {
        tls.get_mut().1.set_buffer_limit(Some(1024));
    }
    let mut line = [0u8; 5];
    tls.read_exact(&mut line).await.map_err(|e| e.to_string())?;
    tls.write_all(b"pong\n").await.map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    idle();
    let _ = tls.read(&mut line).await;
    Ok(())
}

/// The traced blocks by allocation site: the first frames outside the allocator and the
/// standard library, each as `function (crate/file:line)`.
fn print_trace(blocks: &[(usize, std::backtrace::Backtrace)]) {
    let mut sites: std::collections::BTreeMap<String, (usize, usize)> = std::collections::BTreeMap::new();
    for (size, trace) in blocks {
        let frames: Vec<String> = frames(&trace.to_string())
            .into_iter()
            .filter(|(name, at)| !uninteresting(name, at))
            .take(4)
            .map(|(name, at)| format!("{} ({})", strip_hash(&name), short_path(&at)))
            .collect();
        let site = sites.entry(format!("{:>6}  {}", size, frames.join("\n                        <- "))).or_default();
        site.0 += 1;
        site.1 += size;
    }
    let mut sites: Vec<_> = sites.into_iter().collect();
    sites.sort_by_key(|(_, (_, bytes))| std::cmp::Reverse(*bytes));
    let total: usize = sites.iter().map(|(_, (_, bytes))| bytes).sum();
    let count: usize = sites.iter().map(|(_, (n, _))| n).sum();
    println!("\nLive blocks of one traced idle connection: {count} blocks, {total} bytes");
    println!("{:>7} {:>6}  {:>6}  site", "bytes", "blocks", "size");
    for (site, (n, bytes)) in sites {
        println!("{bytes:>7} {n:>6}  {site}");
    }
}

/// A backtrace's text as (function, location) pairs; the location may be empty.
fn frames(text: &str) -> Vec<(String, String)> {
    let mut frames: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(at) = line.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                last.1 = at.to_string();
            }
        } else if let Some((_, name)) = line.split_once(": ") {
            frames.push((name.to_string(), String::new()));
        }
    }
    frames
}

fn uninteresting(name: &str, at: &str) -> bool {
    name.starts_with("__rust")
        || at.contains("/rustc/")
        || at.contains("counting_alloc.rs")
        || at.contains("/hashbrown-")
        || (at.is_empty() && (name.starts_with("std::") || name.starts_with("__rust") || name.starts_with("alloc::")))
}

/// The last three components of a source path: enough to name the crate and file.
fn short_path(at: &str) -> String {
    let parts: Vec<&str> = at.rsplit('/').take(3).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

fn strip_hash(frame: &str) -> String {
    match frame.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => head.to_string(),
        _ => frame.to_string(),
    }
}
