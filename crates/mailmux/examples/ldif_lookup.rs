//! How fast the embedded LDIF directory answers a login's search, at a million users.
//!
//! Writes an LDIF file of users shaped like the lab's (`uid=userN,ou=people,dc=example,dc=com`
//! with objectClass, uid, cn, sn, mail, mailHost, userPassword) to a temporary file, loads it,
//! and reports the load time, the resident memory, the first search of each attribute (which
//! builds its index), and the median and 99th percentile of many random searches. A few
//! searches that cannot use an index (an OR at the top) show what every search cost before.
//!
//! ```text
//! cargo run --release -p mailmux --example ldif_lookup [-- --entries 1000000 --lookups 100000]
//! ```
//!
//! Every search goes through `Directory::find_user`, the call a login makes, and must find
//! exactly its user; the example fails otherwise. The numbers depend on the machine; record
//! them with the command line (see `bench/README.md`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mailmux::directory::ldif::LdifDirectory;
use mailmux::directory::{Directory, DirectoryError, Entry};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ldif_lookup: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    entries: usize,
    lookups: usize,
    scans: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args { entries: 1_000_000, lookups: 100_000, scans: 20 };
    let mut it = std::env::args().skip(1);
    while let Some(name) = it.next() {
        let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
        let n: usize = value.parse().map_err(|_| format!("{name}: '{value}' is not a count"))?;
        match name.as_str() {
            "--entries" => args.entries = n.max(1),
            "--lookups" => args.lookups = n.max(1),
            "--scans" => args.scans = n,
            _ => return Err(format!("unknown option {name} (--entries N, --lookups N, --scans N)")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = args()?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join("users.ldif");

    let started = Instant::now();
    write_ldif(&path, args.entries).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {} entries, {:.0} MiB, in {:.2} s",
        args.entries,
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    println!("RSS before load: {}", memory());

    let started = Instant::now();
    let directory = LdifDirectory::load(&path, "ou=people,dc=example,dc=com")?;
    println!("load: {:.2} s; RSS after load: {}", started.elapsed().as_secs_f64(), memory());

    let mut rng = Rng(0x6c64_6966);
    for (attr, filter) in [("uid", "(uid=user{})"), ("mail", "(mail=user{}@example.com)")] {
        let first = lookup(&directory, filter, rng.below(args.entries))?;
        println!("{attr}: first search (builds the index) {:.1} ms; RSS {}", first.as_secs_f64() * 1e3, memory());
        let mut times = Vec::with_capacity(args.lookups);
        for _ in 0..args.lookups {
            times.push(lookup(&directory, filter, rng.below(args.entries))?);
        }
        times.sort_unstable();
        println!(
            "{attr}: {} searches {filter}: median {:.2} µs, p90 {:.2} µs, p99 {:.2} µs, max {:.2} µs",
            args.lookups,
            micros(percentile(&times, 50.0)),
            micros(percentile(&times, 90.0)),
            micros(percentile(&times, 99.0)),
            micros(times.last().copied().unwrap_or_default()),
        );
    }

    // The same search as an OR of one term: equivalent, but no index applies, so it scans
    // every entry as each search did before the indexes.
    if args.scans > 0 {
        let mut times = Vec::with_capacity(args.scans);
        for _ in 0..args.scans {
            times.push(lookup(&directory, "(|(uid=user{}))", rng.below(args.entries))?);
        }
        times.sort_unstable();
        println!(
            "scan: {} searches (|(uid=userN)): median {:.2} ms",
            args.scans,
            percentile(&times, 50.0).as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// Searches for user `n` with `filter` (`{}` stands for `n`), checks the answer is theirs,
/// and returns how long the search alone took (not building the filter, not checking).
fn lookup(directory: &LdifDirectory, filter: &str, n: usize) -> Result<Duration, String> {
    let filter = filter.replace("{}", &n.to_string());
    let started = Instant::now();
    let answer = find_user(directory, &filter);
    let took = started.elapsed();
    let want = format!("user{n}");
    match answer.map_err(|e| format!("{filter}: {e}"))? {
        Some(e) if e.first("uid") == Some(want.as_str()) => Ok(took),
        other => Err(format!("{filter}: found {:?}", other.map(|e| e.dn))),
    }
}

/// Runs the login's call to completion: the LDIF directory never waits, so one poll finishes
/// it, and no runtime is timed along with the search.
fn find_user(directory: &LdifDirectory, filter: &str) -> Result<Option<Entry>, DirectoryError> {
    let mut search = directory.find_user(filter, &[]);
    match search.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(answer) => answer,
        Poll::Pending => Err(DirectoryError::Unavailable("the LDIF search did not finish in one poll".into())),
    }
}

fn write_ldif(path: &Path, entries: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "version: 1\n\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n")?;
    for n in 0..entries {
        // Two stores, as in the lab.
        let host = if n % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" };
        writeln!(
            out,
            "dn: uid=user{n},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\n\
             objectClass: inetLocalMailRecipient\nuid: user{n}\ncn: user{n}\nsn: user{n}\n\
             mail: user{n}@example.com\nmailHost: {host}\nuserPassword: password{n}\n"
        )?;
    }
    out.flush()
}

/// `VmRSS` (and the peak, `VmHWM`) of this process.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or_else(|| "?".to_owned(), |kib| format!("{:.0} MiB", kib as f64 / 1024.0))
    };
    format!("{} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p / 100.0).ceil() as usize).saturating_sub(1);
    sorted.get(i.min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// xorshift64*: deterministic searches from run to run, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}
