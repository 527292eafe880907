//! `relay-splice`: does `splice(2)` make mailmux's plaintext relay cheaper or faster for large
//! transfers (issue 10)? See "splice(2) for the plaintext relay" in `bench/README.md`.
//!
//! On loopback, a source writes N MiB per connection as fast as it can, through a relay, to a
//! sink that reads and checks every byte. The relay is either mailmux's own
//! ([`mailmux::relay::relay`], plain TCP streams, no lag allowance, no tally, no kick) or the
//! splice relay of [`splice`], with the kernel's default pipe size or 1 MiB pipes, or, as a
//! control, that relay's loop with a 16 KiB or 64 KiB user-space buffer instead of a pipe
//! ([`copy`]). Runs alternate the variants, with 1 and with several concurrent connections,
//! repetition after repetition, and the medians and spreads are printed as a Markdown table.
//!
//! The relay runs alone on a thread of its own (a current-thread tokio runtime) and its CPU
//! time is that thread's `CLOCK_THREAD_CPUTIME_ID` from the moment every connection is in
//! place to the end of the last relay; source and sink share another thread, measured the
//! same way. On loopback the kernel does part of a transfer's work (receive processing,
//! freeing pages) in whichever thread happens to be running, so the table also gives both
//! threads together. Every wait is bounded.
//!
//! | module | what |
//! | --- | --- |
//! | [`traffic`] | the source and the checking sink |
//! | [`splice`] | the splice(2) relay |
//! | [`copy`] | the control: the splice relay's loop through a user-space buffer |

// A binary's root finds its modules next to it, in `src/bin/`: these live in a directory of
// their own so that Cargo does not take them for binaries.
#[path = "relay_splice/copy.rs"]
mod copy;
#[path = "relay_splice/splice.rs"]
mod splice;
#[path = "relay_splice/traffic.rs"]
mod traffic;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::traffic::Pattern;

const USAGE: &str = "usage: relay-splice [--mib 10] [--reps 5] [--connections 1,8] \
     [--variants mailmux,copy-16k,copy-64k,splice,splice-1m]";

/// One run may take this long before it is reported as stuck.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The relay's idle timeout: a stuck direction ends the run long before [`RUN_TIMEOUT`].
const IDLE: Duration = Duration::from_secs(10);

/// A relay under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// mailmux's relay: read into a 16 KiB scratch buffer, write straight out.
    Mailmux,
    /// The splice relay's loop with `read`/`write` through a 16 KiB buffer per direction
    /// (mailmux's chunk): shows whether mailmux's relay costs more than a bare copy loop.
    Copy16K,
    /// The same with 64 KiB (a default pipe's size): what a larger buffer alone gains.
    Copy64K,
    /// splice(2) through a pipe of the kernel's default size (64 KiB) per direction.
    Splice,
    /// splice(2) through a 1 MiB pipe per direction (`F_SETPIPE_SZ`).
    Splice1M,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Mailmux => "mailmux",
            Variant::Copy16K => "copy-16k",
            Variant::Copy64K => "copy-64k",
            Variant::Splice => "splice",
            Variant::Splice1M => "splice-1m",
        }
    }

    fn parse(name: &str) -> Option<Variant> {
        [Variant::Mailmux, Variant::Copy16K, Variant::Copy64K, Variant::Splice, Variant::Splice1M]
            .into_iter()
            .find(|v| v.name() == name)
    }
}

struct Args {
    mib: u64,
    reps: usize,
    connections: Vec<usize>,
    variants: Vec<Variant>,
}

fn fail(what: &str) -> ! {
    eprintln!("relay-splice: {what}\n{USAGE}");
    std::process::exit(2)
}

/// `value` read as a `T` that `fits`, or the program ends with the usage.
fn parse<T: std::str::FromStr>(flag: &str, value: &str, fits: impl Fn(&T) -> bool) -> T {
    value.parse().ok().filter(fits).unwrap_or_else(|| fail(&format!("bad value for {flag}: {value}")))
}

fn args() -> Args {
    let mut a = Args {
        mib: 10,
        reps: 5,
        connections: vec![1, 8],
        variants: vec![Variant::Mailmux, Variant::Copy16K, Variant::Copy64K, Variant::Splice, Variant::Splice1M],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--mib" => a.mib = parse(&flag, &value, |m| (1..=1024).contains(m)),
            "--reps" => a.reps = parse(&flag, &value, |r| (1..=50).contains(r)),
            "--connections" => {
                a.connections = value.split(',').map(|c| parse(&flag, c, |c| (1..=64).contains(c))).collect()
            }
            "--variants" => {
                a.variants = value
                    .split(',')
                    .map(|v| Variant::parse(v).unwrap_or_else(|| fail(&format!("unknown variant {v}"))))
                    .collect()
            }
            _ => fail(&format!("unknown flag {flag}")),
        }
    }
    if a.variants.is_empty() || a.connections.is_empty() {
        fail("nothing to run");
    }
    a
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// All connections' bytes over the wall time from the sources' start to the last sink's end.
    mib_per_s: f64,
    /// The relay thread's CPU seconds per GiB relayed.
    relay_cpu_s_per_gib: f64,
    /// The source-and-sink thread's CPU seconds per GiB.
    traffic_cpu_s_per_gib: f64,
    /// Bytes per read the sinks got, on average (a sink asks for up to 64 KiB).
    sink_kib_per_read: f64,
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Relays `connections` pairs accepted on `stores` (the source's side) and `clients` (the
/// sink's side), in the order they were connected. Returns the thread's CPU time from when
/// every pair was in place to the end of the last relay.
async fn relay_side(
    variant: Variant,
    stores: TcpListener,
    clients: TcpListener,
    connections: usize,
    each: u64,
    ready: tokio::sync::oneshot::Sender<()>,
) -> io::Result<Duration> {
    let mut pairs = Vec::with_capacity(connections);
    for _ in 0..connections {
        // The traffic side connects source then sink, one pair after another: the kernel's
        // accept queues keep that order.
        let (store, _) = stores.accept().await?;
        let (client, _) = clients.accept().await?;
        pairs.push((client, store));
    }
    let cpu_before = thread_cpu();
    let _ = ready.send(());
    let mut relays = JoinSet::new();
    for (client, store) in pairs {
        relays.spawn(async move {
            let (up, down) = match variant {
                Variant::Mailmux => {
                    const NO_TALLY: fn(mailmux::relay::Direction, u64) = |_, _| {};
                    let stats = mailmux::relay::relay(
                        client,
                        Vec::new(),
                        store,
                        Vec::new(),
                        IDLE,
                        None,
                        &NO_TALLY,
                        std::future::pending(),
                    )
                    .await;
                    use mailmux::relay::RelayEnd::{ClientClosed, StoreClosed};
                    if !matches!(stats.end, ClientClosed | StoreClosed) {
                        return Err(io::Error::other(format!("the relay ended: {}", stats.end.as_str())));
                    }
                    (stats.client_to_store, stats.store_to_client)
                }
                Variant::Copy16K => copy::relay(&client, &store, 16 * 1024, IDLE).await?,
                Variant::Copy64K => copy::relay(&client, &store, 64 * 1024, IDLE).await?,
                Variant::Splice => splice::relay(&client, &store, None, IDLE).await?,
                Variant::Splice1M => splice::relay(&client, &store, Some(1 << 20), IDLE).await?,
            };
            if (up, down) != (0, each) {
                return Err(io::Error::other(format!("relayed {down} of {each} bytes down, {up} up")));
            }
            Ok(())
        });
    }
    while let Some(done) = relays.join_next().await {
        done.map_err(io::Error::other)??;
    }
    Ok(thread_cpu() - cpu_before)
}

/// What the traffic side measured.
struct Traffic {
    wall: Duration,
    /// This thread's CPU time during the transfer.
    cpu: Duration,
    /// Reads that brought bytes, all sinks together.
    sink_reads: u64,
}

/// Connects the pairs, waits for the relay, then runs every source and sink at once.
async fn traffic_side(
    stores: SocketAddr,
    clients: SocketAddr,
    connections: usize,
    each: u64,
    pattern: Arc<Pattern>,
    ready: tokio::sync::oneshot::Receiver<()>,
) -> io::Result<Traffic> {
    let mut pairs = Vec::with_capacity(connections);
    for _ in 0..connections {
        let source = TcpStream::connect(stores).await?;
        let sink = TcpStream::connect(clients).await?;
        pairs.push((source, sink));
    }
    ready.await.map_err(|_| io::Error::other("the relay side gave up before starting"))?;
    let (cpu_before, start) = (thread_cpu(), Instant::now());
    let mut ends = JoinSet::new();
    for (index, (source, sink)) in pairs.into_iter().enumerate() {
        let start = traffic::start_of(index);
        let p = pattern.clone();
        ends.spawn(async move { traffic::source(source, &p, start, each).await.map(|()| 0) });
        let p = pattern.clone();
        ends.spawn(async move { traffic::sink(sink, &p, start, each).await });
    }
    let mut sink_reads = 0;
    // Every failure is reported: the first to end is often only the reset that the failing
    // side's close caused at its peer.
    let mut failures = Vec::new();
    while let Some(done) = ends.join_next().await {
        match done.map_err(io::Error::other).and_then(|ended| ended) {
            Ok(reads) => sink_reads += reads,
            Err(e) => failures.push(e.to_string()),
        }
    }
    if !failures.is_empty() {
        return Err(io::Error::other(failures.join("; ")));
    }
    Ok(Traffic { wall: start.elapsed(), cpu: thread_cpu() - cpu_before, sink_reads })
}

/// One transfer of `each` bytes on each of `connections` connections through `variant`.
fn run(variant: Variant, connections: usize, each: u64, pattern: &Arc<Pattern>) -> io::Result<Run> {
    let stores = std::net::TcpListener::bind("127.0.0.1:0")?;
    let clients = std::net::TcpListener::bind("127.0.0.1:0")?;
    let (stores_at, clients_at) = (stores.local_addr()?, clients.local_addr()?);
    stores.set_nonblocking(true)?;
    clients.set_nonblocking(true)?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    // Named, to tell it from the traffic side (the main thread) in `perf report --sort comm`.
    let relay_thread = std::thread::Builder::new().name("relay".into()).spawn(move || -> io::Result<Duration> {
        current_thread_runtime()?.block_on(async move {
            let (stores, clients) = (TcpListener::from_std(stores)?, TcpListener::from_std(clients)?);
            let relaying = relay_side(variant, stores, clients, connections, each, ready_tx);
            tokio::time::timeout(RUN_TIMEOUT, relaying).await.map_err(|_| io::Error::other("relay side stuck"))?
        })
    })?;
    let pattern = pattern.clone();
    let traffic = current_thread_runtime()?.block_on(async move {
        let moving = traffic_side(stores_at, clients_at, connections, each, pattern, ready_rx);
        tokio::time::timeout(RUN_TIMEOUT, moving).await.map_err(|_| io::Error::other("traffic side stuck"))?
    });
    // The relay side ends within RUN_TIMEOUT on its own, so this join is bounded too.
    let relay = relay_thread.join().map_err(|_| io::Error::other("the relay thread panicked")).and_then(|r| r);
    // Both sides' failures: a wrong byte shows at the sink, while the relay sees the reset.
    let (relay_cpu, traffic) = match (relay, traffic) {
        (Ok(cpu), Ok(traffic)) => (cpu, traffic),
        (Ok(_), Err(e)) => return Err(io::Error::other(format!("traffic: {e}"))),
        (Err(e), Ok(_)) => return Err(io::Error::other(format!("relay: {e}"))),
        (Err(r), Err(t)) => return Err(io::Error::other(format!("traffic: {t}; relay: {r}"))),
    };
    let total = each * connections as u64;
    let gib = total as f64 / (1u64 << 30) as f64;
    Ok(Run {
        mib_per_s: total as f64 / (1u64 << 20) as f64 / traffic.wall.as_secs_f64(),
        relay_cpu_s_per_gib: relay_cpu.as_secs_f64() / gib,
        traffic_cpu_s_per_gib: traffic.cpu.as_secs_f64() / gib,
        sink_kib_per_read: total as f64 / 1024.0 / traffic.sink_reads.max(1) as f64,
    })
}

/// Median, minimum and maximum.
fn spread(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    (median, values[0], values[n - 1])
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let a = args();
    let each = a.mib << 20;
    let pattern = Arc::new(Pattern::new());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "relay-splice: {} MiB per connection, {} reps, connections {:?}, kernel {}, load average at start {}",
        a.mib,
        a.reps,
        a.connections,
        kernel.trim(),
        loadavg()
    );
    let mut runs: Vec<(Variant, usize, Run)> = Vec::new();
    for rep in 0..a.reps {
        for &connections in &a.connections {
            // The variants' order rotates from one repetition to the next.
            let mut order = a.variants.clone();
            let len = order.len();
            order.rotate_left(rep % len);
            for variant in order {
                match run(variant, connections, each, &pattern) {
                    Ok(r) => {
                        println!(
                            "rep {} {:>2} conn {:<9} {:>7.0} MiB/s  relay {:.3} s/GiB  source+sink {:.3} s/GiB  sink {:.1} KiB/read",
                            rep + 1,
                            connections,
                            variant.name(),
                            r.mib_per_s,
                            r.relay_cpu_s_per_gib,
                            r.traffic_cpu_s_per_gib,
                            r.sink_kib_per_read
                        );
                        runs.push((variant, connections, r));
                    }
                    Err(e) => {
                        eprintln!("relay-splice: {} with {connections} connection(s) failed: {e}", variant.name());
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    println!("load average at end {}\n", loadavg());
    println!(
        "| relay | connections | MiB/s median (min–max) | relay CPU s/GiB median (min–max) \
         | source+sink CPU s/GiB median | both threads s/GiB median (min–max) | sink KiB/read median |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &connections in &a.connections {
        for &variant in &a.variants {
            let of = |f: fn(&Run) -> f64| {
                spread(
                    runs.iter().filter(|(v, c, _)| *v == variant && *c == connections).map(|(_, _, r)| f(r)).collect(),
                )
            };
            let (rate, rate_min, rate_max) = of(|r| r.mib_per_s);
            let (cpu, cpu_min, cpu_max) = of(|r| r.relay_cpu_s_per_gib);
            let (traffic, _, _) = of(|r| r.traffic_cpu_s_per_gib);
            let (both, both_min, both_max) = of(|r| r.relay_cpu_s_per_gib + r.traffic_cpu_s_per_gib);
            let (per_read, _, _) = of(|r| r.sink_kib_per_read);
            println!(
                "| {} | {connections} | {rate:.0} ({rate_min:.0}–{rate_max:.0}) | {cpu:.3} ({cpu_min:.3}–{cpu_max:.3}) | {traffic:.3} \
                 | {both:.3} ({both_min:.3}–{both_max:.3}) | {per_read:.1} |",
                variant.name()
            );
        }
    }
}
