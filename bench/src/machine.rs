//! What the figures were measured on: CPU, cores, memory, kernel, load, and the versions of
//! every server in the run.

use std::process::Command;

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            // nginx and slapd print their versions on stderr.
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned()))
        })
        .unwrap_or_default()
}

/// The load average (1, 5, 15 minutes).
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Markdown bullet lines describing the machine and the software.
pub fn describe(mailmux: &std::path::Path) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = proc_field("/proc/meminfo", "MemTotal").trim_end_matches("kB").trim().parse().unwrap_or(0);
    let mailmux_version = first_line(&mailmux.display().to_string(), &["--version"]);
    [
        format!("CPU: {} ({cores} cores available to the run)", proc_field("/proc/cpuinfo", "model name")),
        format!("memory: {:.1} GiB", mem_kib as f64 / 1024.0 / 1024.0),
        format!("kernel: {}", first_line("uname", &["-sr"])),
        format!("OS: {}", proc_field("/etc/os-release", "PRETTY_NAME=").trim_matches('"')),
        format!(
            "mailmux: {mailmux_version} (release build, commit {})",
            first_line("git", &["rev-parse", "--short", "HEAD"])
        ),
        format!("Dovecot: {}", first_line("dovecot", &["--version"])),
        format!("nginx: {}", first_line("nginx", &["-v"]).trim_start_matches("nginx version: ")),
        format!("OpenLDAP: {}", first_line("slapd", &["-VV"])),
        format!("rustc: {}", first_line("rustc", &["--version"])),
    ]
    .iter()
    .map(|l| format!("- {l}\n"))
    .collect()
}
