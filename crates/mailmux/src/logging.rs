//! `LogDir` and `LogLevel` to a tracing subscriber.
//!
//! Lines go to `LogDir/mailmux.log` (the `AService.cfg` value) or, without one, to standard
//! error. `LogLevel` is the syslog scale: 3 errors, 4 warnings, 5 and 6 notices and
//! information (each session's summary line), 7 debug. The most verbose level set in any
//! file applies. `RUST_LOG`, when set, overrides it for debugging.

use mailmux_config::{Config, LogLevel};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Keeps the background log writer alive; drop it last.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// The tracing level for a syslog level.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level.0 {
        0..=3 => LevelFilter::ERROR,
        4 => LevelFilter::WARN,
        5 | 6 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    }
}

/// Installs the global subscriber. `to_stderr` forces standard error (foreground runs).
pub fn init(config: &Config, to_stderr: bool) -> std::io::Result<Option<LogGuard>> {
    let level = config.services.iter().filter_map(|s| s.log_level).chain([config.log_level]).max().unwrap_or_default();
    let filter = EnvFilter::builder()
        .with_default_directive(level_filter(level).into())
        .from_env_lossy()
        // ldap3 logs every connection error itself; our lines say it better.
        .add_directive("ldap3=off".parse().map_err(std::io::Error::other)?);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match (&config.log_dir, to_stderr) {
        (Some(dir), false) => {
            std::fs::create_dir_all(dir)?;
            let appender = tracing_appender::rolling::never(dir, "mailmux.log");
            let (writer, guard) =
                tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(appender);
            builder.with_ansi(false).with_writer(writer).init();
            Ok(Some(guard))
        }
        _ => {
            builder.with_writer(std::io::stderr).init();
            Ok(None)
        }
    }
}
