//! The `mailmux` command: `run` serves, `check` validates a configuration directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mailmux::Server;
use mailmux::service::Service;
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config, log_stderr } => match run(&config, log_stderr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mailmux: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(args: &ConfigArgs) -> ExitCode {
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
        match Service::build(svc.clone(), &mailmux::directory::route_cache(svc)) {
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
            }
            Err(e) => {
                println!("{e}");
                ok = false;
            }
        }
    }
    println!("{}: {}, {} warning(s)", args.dir.display(), if ok { "ok" } else { "errors" }, loaded.warnings.0.len());
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
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
    match Service::build((*domain.config).clone(), &mailmux::directory::route_cache(&domain.config)) {
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
    let _guards = mailmux::logging::init(&loaded.config, log_stderr).context("cannot open the log")?;
    for warning in &loaded.warnings.0 {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = Server::bind(&loaded.config).await?;
        let shutdown = CancellationToken::new();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => tracing::warn!("SIGHUP: configuration reload is not implemented yet; ignored"),
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
    Ok(())
}
