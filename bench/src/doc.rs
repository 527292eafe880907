//! `docs/PERFORMANCE.md`, rewritten by each run: the settings and the state of the machine,
//! the table, the charts (`performance.svg` beside it), what each workload does, how each
//! peer was set up, the exact commands, and every repetition's value.

use std::path::Path;

use crate::Args;
use crate::machine;

/// What a run hands to the report.
pub struct Run<'a> {
    /// The command line.
    pub args: &'a Args,
    /// The mailmux binary measured.
    pub mailmux: &'a Path,
    /// The table (Markdown).
    pub table: &'a str,
    /// Every value.
    pub raw: &'a str,
    /// Each measurement as it went.
    pub log: &'a [String],
    /// Failures: (workload, target, connections, first error).
    pub errors: &'a [(String, &'static str, usize, String)],
    /// The TLS parameters each target negotiated: (target, suite and group).
    pub tls: &'a [(&'static str, String)],
    /// Load average when the run began.
    pub load_before: String,
    /// Load average when it ended.
    pub load_after: String,
    /// How long the run took.
    pub minutes: f64,
}

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./,:=".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Writes the report to `path`, and the charts beside it as `performance.svg`.
pub fn write(path: &Path, run: &Run, svg: Option<&str>) {
    let a = run.args;
    let svg_name = "performance.svg";
    if let Some(svg) = svg {
        let svg_path = path.with_file_name(svg_name);
        std::fs::write(&svg_path, svg).unwrap_or_else(|e| panic!("write {}: {e}", svg_path.display()));
    }
    let args: Vec<String> = std::env::args().skip(1).map(|s| shell_quote(&s)).collect();
    let binary = format!("target/release/mailmux-bench-peers {}", args.join(" "));
    // scripts/bench passes `--mailmux target/release/mailmux` itself.
    let script_args = match args.as_slice() {
        [flag, path, rest @ ..] if flag == "--mailmux" && path == "target/release/mailmux" => rest.join(" "),
        all => all.join(" "),
    };
    let default_run = a.seconds == 8.0 && a.reps == 3;
    let note = run.note_line();
    let errors = if run.errors.is_empty() {
        "None: every connection of every workload completed.\n".to_owned()
    } else {
        run.errors
            .iter()
            .map(|(w, t, n, first)| format!("- {w} via {t}: {n} failed connections; first: `{first}`\n"))
            .collect()
    };
    let tls: String = run.tls.iter().map(|(t, p)| format!("- {t}: {p}\n")).collect();
    let text = format!(
        r#"# Performance

<!-- Written by scripts/bench (bench/src/doc.rs). Run it again to replace this file. -->

mailmux against the stores reached directly and against the two proxies people put in front of
Dovecot instead: a Dovecot proxy and nginx's mail proxy. Everything ran on one machine, on
loopback, at the same time as the load generator: real OpenLDAP with {users} users, two Dovecot
2.3 stores in their fast login mode, and each proxy routing by the same `mailHost`.

**This run:** {date}; {seconds} s per measurement, {reps} of each, the targets in
rotating order; figures are medians of the repetitions. {short}It took {minutes:.1} minutes.
Load average {load_before} at the start, {load_after} at the end.
{note}
![Charts of the table below](performance.svg)

## The table

{table}
In a target's column, the ratio in brackets is to the stores reached directly. The last
columns divide mailmux's figure by each peer's: for a rate, above 1 means mailmux is faster;
for a cost (CPU, memory, time added), below 1 means mailmux is cheaper. "—": not measured
(a proxy cost has no value for the stores; the mailmux variants run the login workloads only).

## What each figure is

- **Logins/s**: {clients} clients, each in a loop for the duration: connect, read the greeting,
  `LOGIN`, `SELECT INBOX`, `LOGOUT`, wait for the server to close (POP3: `USER`, `PASS`,
  `QUIT`). The users are taken in turn, so every login is for a different user than the last
  few; every login searches the directory (except with the warm cache).
- **Proxy CPU per login**: user + system CPU time of all the proxy's processes (and the
  children they reaped) during the measurement, divided by the logins: mailmux's one process;
  the Dovecot proxy's master, login, auth and other processes; nginx's master and workers plus
  the `auth_http` service it asks (its directory client, as mailmux's is in its own process).
- **Implicit-TLS logins/s, TLS handshakes/s**: as above on the TLS port; every handshake is a
  full one (the client keeps no session tickets), TLS 1.3 with an ECDSA P-256 certificate from
  the same CA for every server. The handshake workload connects, handshakes, reads the
  greeting and closes.
- **Relay MiB/s**: clients that `FETCH 2 BODY.PEEK[]` of a {mib} MiB message over and over for
  the duration, reading as fast as they can; bytes of complete FETCHes over the time until the
  last one ended.
- **NOOP round trip**: one logged-in client sends `NOOP` and waits for the answer, over and over
  for the duration; the p50 and p99. For proxies, what they add to the stores' own figures.
- **Memory per idle session**: the proxy is restarted, serves {warm} logins, then {sessions}
  clients log in (`LOGIN` only) and stay idle; the growth of the proxy's proportional set size
  (PSS, summed over its processes) divided by the sessions. The stores fork a process per
  session, so this workload itself sends the load average up (into the hundreds by its end).

## How each target was set up

All are given the directory the same way and routed the same way: the user's `mailHost` (a
store address) from one subtree search `(uid=USER)` in slapd as its administrator, no password
check at the proxy (the store checks the password the proxy passes on), and no cache unless the
column says so. Before anything is measured, the run checks that every target routes a user of
each store to that store (the marker message of the INBOX names it; every store accepts every
password, so a login alone would not show it).

- **direct to stores**: the client connects to the user's store itself (127.0.0.2 or
  127.0.0.3). Each store is a Dovecot 2.3 with `service_count = 0` on its login services and
  `service_count = 100` on `imap` (see `crates/mailmux-testkit/src/dovecot.rs`).
- **nginx mail**: Debian's nginx with `libnginx-mod-mail`, `worker_processes 2` (one per core),
  `auth_http` to a small service of the benchmark (`bench/src/auth_http.rs`) that finds
  `mailHost` on 4 pooled LDAP connections, as mailmux does, and answers `Auth-Status: OK`,
  `Auth-Server`, `Auth-Port`. nginx asks it once per login over a new HTTP/1.0 connection, as
  nginx does.
- **Dovecot proxy**: a third Dovecot 2.3, `passdb ldap` with
  `pass_attrs = =proxy=y, =host=%{{ldap:mailHost}}, =port=…, =nopassword=y` (the proxy forwards
  the client's password and the store checks it), no auth cache (Dovecot's default), login
  services with `service_count = 0` and `process_min_avail = 2` (its high-performance mode).
- **mailmux**: the release build, `LdapCacheSize 0` (every login searches, as the peers do),
  otherwise as shipped (`LogLevel 5`, one line per session; Dovecot also logs each login).
- **mailmux, warm cache**: the shipped directory cache (`LdapCacheSize 10000`), every user
  logged in once before timing, so logins are answered without asking slapd.
- **mailmux, PreAuth**: `PreAuth yes` with both caches off (`LdapCacheSize 0`,
  `AuthCacheSize 0`): every login searches and then binds to slapd as the user, so the
  password is checked before any store is contacted. The peers above do not check it.

TLS as negotiated with the client:

{tls}
## The machine

{machine}
## Commands

This run:

```
scripts/bench {script_args}
```

which ran

```
{binary}
```

`scripts/bench` installs what is missing (slapd, Dovecot with its LDAP driver, nginx and its
mail module; Debian, as root), builds `mailmux` and the benchmark in release mode, and runs
`target/release/mailmux-bench-peers --mailmux target/release/mailmux` with the arguments given.
{full}
## The run, measurement by measurement

Repetition, the 1-minute load average when the measurement began, workload, target, figures
(rates per second, CPU in ms, NOOP in µs, memory in KiB):

```
{log}
```

## Every value

Per figure and target, each repetition in the order run (µs, ms, KiB, MiB/s or per second):

```
{raw}```

## Failures

{errors}"#,
        users = crate::report::number(a.users as f64, 0),
        reps = if a.reps == 1 { "1 repetition".to_owned() } else { format!("{} repetitions", a.reps) },
        log = run.log.join("\n"),
        date = today(),
        seconds = a.seconds,
        short = if default_run {
            String::new()
        } else {
            "These are **shorter settings than the default** (8 s, 3 repetitions): read the figures as a first look. "
                .into()
        },
        minutes = run.minutes,
        load_before = run.load_before,
        load_after = run.load_after,
        table = run.table,
        clients = a.clients,
        mib = a.message_mib,
        warm = a.clients * 4,
        sessions = crate::report::number(a.sessions as f64, 0),
        machine = machine::describe(run.mailmux),
        full = if default_run {
            String::new()
        } else {
            "\nThe full run (8 s per measurement, 3 repetitions, about twenty minutes): `scripts/bench`.\n".into()
        },
        raw = run.raw,
    );
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Run<'_> {
    fn note_line(&self) -> String {
        self.args.note.as_ref().map_or(String::new(), |n| format!("\n> **Note on this run:** {n}\n"))
    }
}
