//! What a proxy costs the machine, read from `/proc`: CPU time and proportional memory (PSS)
//! of a process and all its descendants (Dovecot's master, login and auth processes; nginx's
//! master and workers; mailmux's one process), and finding a daemon's pid.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime: the process's own CPU and that of children it reaped.
    ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes the command name: state is field 3, ppid 4, utime 14,
    // stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat { ppid: u32::try_from(field(4)?).ok()?, ticks: field(14)? + field(15)? + field(16)? + field(17)? })
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// `roots` and all their descendants, with their stats.
fn trees(roots: &[u32]) -> Vec<(u32, Stat)> {
    let stats: HashMap<u32, Stat> = all_pids().into_iter().filter_map(|p| Some((p, stat(p)?))).collect();
    let mut members: Vec<u32> = roots.iter().copied().filter(|p| stats.contains_key(p)).collect();
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(stats.iter().filter(|(_, s)| s.ppid == parent).map(|(p, _)| *p));
        i += 1;
    }
    members.sort_unstable();
    members.dedup();
    let mut stats = stats;
    members.into_iter().filter_map(|p| Some((p, stats.remove(&p)?))).collect()
}

/// CPU time used so far by `roots` and their descendants (reaped children included), in ms.
pub fn cpu_ms(roots: &[u32]) -> u64 {
    trees(roots).iter().map(|(_, s)| s.ticks).sum::<u64>() * 1000 / TICKS_PER_SECOND
}

/// Proportional set size of `roots` and their descendants, in KiB (shared pages divided
/// among the processes sharing them, so a family of forked processes is not counted twice).
pub fn pss_kib(roots: &[u32]) -> u64 {
    trees(roots)
        .iter()
        .filter_map(|(pid, _)| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
            text.lines().find_map(|l| l.strip_prefix("Pss:"))?.trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        })
        .sum()
}

/// The pid of the process whose command line contains `needle`, that is not the testkit's
/// `sh` watchdog around it (whose command line holds the same words).
pub fn find_by_cmdline(needle: &str) -> Option<u32> {
    all_pids().into_iter().find(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        comm.trim() != "sh" && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle)
    })
}

/// The pid written in `path` (Dovecot's `master.pid`, nginx's pid file), waiting up to 10 s for it.
pub fn pid_file(path: &std::path::Path) -> u32 {
    for _ in 0..200 {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()) {
            return pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no pid in {} after 10 s", path.display());
}
