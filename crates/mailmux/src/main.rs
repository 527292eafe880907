//! The `mailmux` command: `run` serves, `check` validates a configuration directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mailmux::Server;
use mailmux::service::Service;
use rustix::process::{Pid, Signal, kill_process};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// An IMAP/POP3 multiplexor: routes each login by LDAP to the user's mail store.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Configuration directory holding AService.cfg and the files it names.
    #[arg(short = 'c', long = "config", default_value = "/etc/mailmux")]
    dir: PathBuf,
    /// Instance name: `NAME:Param` lines apply on top of `default:Param` lines.
    #[arg(long)]
    instance: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the configured IMAP and POP3 proxies until SIGTERM or SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Log to standard error even when LogDir is set.
        #[arg(long)]
        log_stderr: bool,
    },
    /// Load and validate the configuration; print every problem with file and line.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Then print every parameter's effective value and where it came from (default,
        /// file:line, vdmap), per service and per vdmap entry; secrets print as <hidden>.
        #[arg(long)]
        effective: bool,
    },
    /// Make the running instance re-read its configuration (SIGHUP): sessions in progress
    /// go on; a configuration with errors changes nothing (the instance's log says why).
    Reload {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Stop the running instance (SIGTERM) and wait for it: relayed sessions may finish
    /// until ShutdownTimeout.
    Stop {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Ask the running instance through its admin endpoint (AdminListen in AService.cfg).
    Admin {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Whether the process answers (exit 0) .
    Health,
    /// Whether it accepts connections (exit 1 before start and while shutting down).
    Ready,
    /// The metrics, in the Prometheus text format.
    Metrics,
    /// The relayed sessions: id, service, user, client, store, seconds, bytes both ways.
    Sessions,
    /// End every relayed session of USER (IMAP clients are told `* BYE`), e.g. to move a mailbox.
    Kick {
        /// The user, as the sessions list shows it.
        user: String,
    },
    /// Where a login of USER would go: vdmap entry, filter, entry, mail host, store, cache.
    Explain {
        /// The login name.
        user: String,
        /// The service whose configuration applies.
        #[arg(long, default_value = "imap", value_parser = ["imap", "pop3"])]
        service: String,
        /// The mailmux address the client would connect to (selects a vdmap entry).
        #[arg(long)]
        address: Option<std::net::IpAddr>,
    },
    /// Re-read the configuration; prints what changed, or why nothing did.
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config, effective } => check(&config, effective),
        Command::Reload { config } => signal_instance(&config, Signal::HUP),
        Command::Stop { config } => signal_instance(&config, Signal::TERM),
        Command::Admin { config, command } => admin(&config, &command),
        Command::Run { config, log_stderr } => match run(&config, log_stderr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mailmux: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(args: &ConfigArgs, effective: bool) -> ExitCode {
    let loaded = match mailmux_config::load(&args.dir, args.instance.as_deref()) {
        Ok(loaded) => loaded,
        Err(diags) => {
            print!("{diags}");
            let errors = diags.0.iter().filter(|d| d.severity == mailmux_config::Severity::Error).count();
            println!("{}: {errors} error(s), {} warning(s)", args.dir.display(), diags.0.len() - errors);
            return ExitCode::FAILURE;
        }
    };
    print!("{}", loaded.warnings);
    let mut ok = true;
    for svc in &loaded.config.services {
        let listeners: Vec<String> = svc.listeners.iter().map(ToString::to_string).collect();
        match Service::build(svc.clone(), &mailmux::server::Caches::for_config(svc)) {
            Ok(service) => {
                for warning in &service.warnings {
                    println!("warning: {warning}");
                }
                println!(
                    "{}: {} on {} (directory: {}; model: {})",
                    svc.file.display(),
                    svc.protocol.as_str(),
                    listeners.join(", "),
                    svc.directory.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                    svc.lookup.model()
                );
                for domain in &svc.virtual_domains {
                    ok &= check_virtual_domain(domain, &service.warnings);
                }
                ok &= check_crams(std::sync::Arc::new(service));
            }
            Err(e) => {
                println!("{e}");
                ok = false;
            }
        }
    }
    for (what, addr) in [("metrics", &loaded.config.metrics_listen), ("admin", &loaded.config.admin_listen)] {
        if let Some(addr) = addr {
            println!("{what} endpoint on {addr}");
        }
    }
    println!("{}: {}, {} warning(s)", args.dir.display(), if ok { "ok" } else { "errors" }, loaded.warnings.0.len());
    if effective {
        print!("\n{}", mailmux_config::effective::report(&loaded.config));
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// With `CRAMs yes` here or in a vdmap entry: asks the directory whether `BindDN` can read
/// the cleartext passwords CRAM-MD5 and APOP need; `false` when it cannot. A directory that
/// cannot be asked is a warning (check may run where the directory is not reachable).
fn check_crams(service: std::sync::Arc<Service>) -> bool {
    let services: Vec<_> = service.and_virtual_domains().filter(|s| s.config.auth.crams).collect();
    if services.is_empty() {
        return true;
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        println!("warning: cannot start a runtime to check CRAMs");
        return true;
    };
    let mut ok = true;
    for s in services {
        match runtime.block_on(s.crams_problem()) {
            None => {}
            Some(problem @ mailmux::service::CramsProblem::Certain(_)) => {
                println!("error: {problem}");
                ok = false;
            }
            Some(problem) => println!("warning: {problem}"),
        }
    }
    ok
}

/// Prints what a vdmap entry changes and checks its configuration the way a service's is
/// checked (its own LdapURL and LDIF file, TLS settings); `false` on an error.
fn check_virtual_domain(domain: &mailmux_config::VirtualDomain, service_warnings: &[String]) -> bool {
    let overrides = if domain.overrides.is_empty() { "nothing".to_owned() } else { domain.overrides.join(", ") };
    let pending = if domain.not_implemented.is_empty() {
        String::new()
    } else {
        format!("; not in effect (not implemented yet): {}", domain.not_implemented.join(", "))
    };
    println!("  vdmap {} {}: overrides {overrides}{pending}", domain.name, domain.address);
    match Service::build((*domain.config).clone(), &mailmux::server::Caches::for_config(&domain.config)) {
        Ok(built) => {
            // The service's own warnings were printed with it.
            for warning in built.warnings.iter().filter(|w| !service_warnings.contains(w)) {
                println!("warning: vdmap {}: {warning}", domain.name);
            }
            true
        }
        Err(e) => {
            println!("vdmap {}: {e}", domain.name);
            false
        }
    }
}

fn run(args: &ConfigArgs, log_stderr: bool) -> anyhow::Result<()> {
    let loaded = mailmux_config::load(&args.dir, args.instance.as_deref())
        .map_err(|diags| anyhow::anyhow!("configuration has errors:\n{diags}"))?;
    let (_guards, log_files) = mailmux::logging::init(&loaded.config, log_stderr).context("cannot open the log")?;
    for warning in &loaded.warnings.0 {
        tracing::warn!("{warning}");
    }
    let served = serve(&loaded.config, log_files);
    if let Err(e) = &served {
        // Standard error may go nowhere under a service manager: the log says it too.
        tracing::error!(target: mailmux::log_severity::ALERT, "cannot serve: {e:#}; exiting");
    }
    served
}

/// Serves `config` until a stop signal, then drains.
fn serve(config: &mailmux_config::Config, log_files: mailmux::logging::LogFiles) -> anyhow::Result<()> {
    let pid_file = PidFile::write(&config.pid_file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        let handle = server.handle();
        let shutdown = CancellationToken::new();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => {
                        reopen(&log_files);
                        tracing::info!("SIGHUP: reloading the configuration");
                        let _ = mailmux::control::reload::from_files(&handle).await;
                    }
                    _ = usr1.recv() => reopen(&log_files),
                }
            }
            tracing::info!("stop signal received");
            stopper.cancel();
        });
        server.run(shutdown).await;
        anyhow::Ok(())
    })?;
    // Sessions that outlived the drain deadline end with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(pid_file);
    Ok(())
}

fn reopen(files: &mailmux::logging::LogFiles) {
    match files.reopen() {
        Ok(()) => tracing::info!("log files reopened"),
        Err(e) => tracing::error!(error = %e, "cannot reopen a log file; writing on to the old one"),
    }
}

/// `mailmux admin …`: one request to the admin endpoint; the answer's body is printed, and
/// the exit status says whether it was a success (2xx).
fn admin(args: &ConfigArgs, command: &AdminCommand) -> ExitCode {
    use mailmux_proto::http::percent_encode;
    let addr = match mailmux_config::admin_listen(&args.dir, args.instance.as_deref()) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!("mailmux: AdminListen is not set in {}", args.dir.join(mailmux_config::ASERVICE_FILE).display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("mailmux: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (method, target) = match command {
        AdminCommand::Health => ("GET", "/health".to_owned()),
        AdminCommand::Ready => ("GET", "/ready".to_owned()),
        AdminCommand::Metrics => ("GET", "/metrics".to_owned()),
        AdminCommand::Sessions => ("GET", "/sessions".to_owned()),
        AdminCommand::Kick { user } => ("POST", format!("/kick?user={}", percent_encode(user))),
        AdminCommand::Explain { user, service, address } => {
            let mut target = format!("/explain?user={}&service={service}", percent_encode(user));
            if let Some(ip) = address {
                target.push_str(&format!("&address={}", percent_encode(&ip.to_string())));
            }
            ("GET", target)
        }
        AdminCommand::Reload => ("POST", "/reload".to_owned()),
    };
    match admin_request(&addr, method, &target) {
        Ok((status, body)) => {
            print!("{body}");
            if (200..300).contains(&status) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("mailmux: cannot ask the admin endpoint at {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One HTTP/1.1 request over TCP or a Unix socket: the status and the body.
fn admin_request(addr: &mailmux::control::ControlAddr, method: &str, target: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let request = format!("{method} {target} HTTP/1.1\r\nHost: mailmux\r\nContent-Length: 0\r\n\r\n");
    // A reload reads every file again; an explain may wait for the directory.
    let timeout = Some(std::time::Duration::from_secs(60));
    let mut answer = Vec::new();
    match addr {
        mailmux::control::ControlAddr::Tcp(at) => {
            let mut stream = std::net::TcpStream::connect_timeout(at, std::time::Duration::from_secs(5))?;
            stream.set_read_timeout(timeout)?;
            stream.write_all(request.as_bytes())?;
            stream.read_to_end(&mut answer)?;
        }
        mailmux::control::ControlAddr::Unix(path) => {
            let mut stream = std::os::unix::net::UnixStream::connect(path)?;
            stream.set_read_timeout(timeout)?;
            stream.write_all(request.as_bytes())?;
            stream.read_to_end(&mut answer)?;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("incomplete answer"))?;
    let status =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| anyhow::anyhow!("not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}

/// The pid file of a running instance: written at start, removed at exit.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn write(path: &std::path::Path) -> anyhow::Result<PidFile> {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && running(pid)
            && pid != std::process::id() as i32
        {
            anyhow::bail!(
                "{} names process {pid}, which is running: is this instance started already?",
                path.display()
            );
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `mailmux reload` / `mailmux stop`: signals the instance named by its pid file (and, for
/// stop, waits until it has exited).
fn signal_instance(args: &ConfigArgs, signal: Signal) -> ExitCode {
    let loaded = mailmux_config::load(&args.dir, args.instance.as_deref());
    // The drain deadline the instance was most likely started with; a stop of an instance
    // whose files are broken now still works, with a generous wait.
    let drain = match (&loaded, signal) {
        (Ok(loaded), _) => loaded.config.services.iter().map(|s| s.shutdown_timeout).max().unwrap_or_default(),
        (Err(diags), Signal::TERM) => {
            eprint!("mailmux: the configuration has errors now (stopping anyway):\n{diags}");
            std::time::Duration::from_secs(120)
        }
        (Err(diags), _) => {
            // A reload of a broken configuration would be refused anyway: say why now.
            print!("{diags}");
            return ExitCode::FAILURE;
        }
    };
    let path = mailmux_config::pid_file(&args.dir, args.instance.as_deref());
    let path = &path;
    let pid =
        match std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<i32>().ok()).and_then(Pid::from_raw) {
            Some(pid) => pid,
            None => {
                eprintln!("mailmux: no running instance: {} is missing or empty", path.display());
                return ExitCode::FAILURE;
            }
        };
    if let Err(e) = kill_process(pid, signal) {
        eprintln!("mailmux: cannot signal process {} ({}): {e}", pid.as_raw_nonzero(), path.display());
        return ExitCode::FAILURE;
    }
    if signal == Signal::TERM {
        let deadline = drain + std::time::Duration::from_secs(10);
        let started = std::time::Instant::now();
        while running(pid.as_raw_nonzero().get()) {
            if started.elapsed() > deadline {
                eprintln!("mailmux: process {} still running after {:?}", pid.as_raw_nonzero(), deadline);
                return ExitCode::FAILURE;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        println!("stopped process {}", pid.as_raw_nonzero());
    } else {
        println!("asked process {} to reload; its log says what changed", pid.as_raw_nonzero());
    }
    ExitCode::SUCCESS
}

/// Whether process `pid` is alive: it exists and is not a zombie waiting for its parent.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}
