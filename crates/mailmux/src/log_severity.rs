//! The syslog scale of `LogLevel` over tracing's five levels.
//!
//! `LogLevel` is a syslog severity (the MMP's since 6.3): a file gets every line at or above
//! it. tracing has five levels, syslog seven that matter, so two of tracing's are split by
//! target, named at the call site (`tracing::info!(target: log_severity::INFORMATION, …)`):
//!
//! | syslog | `LogLevel` | tracing | what mailmux writes there |
//! | --- | --- | --- | --- |
//! | alert | 1 | `error!` with target [`ALERT`] | mailmux cannot serve: start-up failed, the process exits |
//! | critical | 2 | `error!` with target [`CRITICAL`] | a listener cannot accept (out of descriptors or memory) |
//! | error | 3 | `error!` | a reload refused, a log file that cannot be reopened, CRAMs that cannot work |
//! | warning | 4 | `warn!` | stores and directories failing, refused connections, failed store logins |
//! | notice | 5 | `info!` | each session's summary line, refused logins with the reason, BadGuy, start, reload, stop |
//! | information | 6 | `info!` with target [`INFORMATION`] | logins, pre-authentications, TLS failures, host names, limits |
//! | debug | 7 | `debug!` | search filters, reconnections, skipped stores (`trace!` is never written) |
//!
//! Spans are not filtered by severity: a session's span must exist in every log, whatever its
//! level, or the lines inside it would lose their session id (a `warn!` inside an `info` span
//! is still a warning of that session).

use tracing::{Level, Metadata};

/// Target of alert lines (`LogLevel` 1): mailmux cannot serve.
pub const ALERT: &str = "mailmux::alert";
/// Target of critical lines (`LogLevel` 2).
pub const CRITICAL: &str = "mailmux::critical";
/// Target of information lines (`LogLevel` 6): `info!` lines without it are notices (5).
pub const INFORMATION: &str = "mailmux::information";

/// The syslog severity of an event: 1 (alert) to 7 (debug).
pub fn of(meta: &Metadata<'_>) -> u8 {
    let level = *meta.level();
    if level == Level::ERROR {
        match meta.target() {
            ALERT => 1,
            CRITICAL => 2,
            _ => 3,
        }
    } else if level == Level::WARN {
        4
    } else if level == Level::INFO {
        if meta.target() == INFORMATION { 6 } else { 5 }
    } else {
        7
    }
}

/// The syslog keyword of a severity, as JSON lines write it.
pub fn name(severity: u8) -> &'static str {
    match severity {
        0 => "emerg",
        1 => "alert",
        2 => "crit",
        3 => "err",
        4 => "warning",
        5 => "notice",
        6 => "info",
        _ => "debug",
    }
}

/// Whether a file at `log_level` writes `meta`: spans always (see the module docs) up to
/// INFO, the level [`max_level`] promises; events at or above the level. (A DEBUG span let
/// through under an INFO hint would trip tracing-subscriber's debug assertion.)
pub fn enabled(meta: &Metadata<'_>, log_level: u8) -> bool {
    (meta.is_span() && (*meta.level() <= tracing::Level::INFO || log_level >= 7)) || of(meta) <= log_level
}

/// The most verbose tracing level a file at `log_level` may need: a hint that lets tracing
/// skip call sites no file wants. Never below `INFO`, the level of session spans, which must
/// exist at every `LogLevel`.
pub fn max_level(log_level: u8) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    if log_level >= 7 { LevelFilter::DEBUG } else { LevelFilter::INFO }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    /// An event's severity, and the levels whose files write it.
    type Seen = (u8, Vec<u8>);

    /// Records every event.
    struct Record(Arc<Mutex<Vec<Seen>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Record {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let meta = event.metadata();
            let levels = (1..=7).filter(|l| enabled(meta, *l)).collect();
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((of(meta), levels));
        }
    }

    #[test]
    fn each_level_writes_its_own_lines_and_the_more_severe() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Record(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: ALERT, "cannot start");
            tracing::error!(target: CRITICAL, "cannot accept");
            tracing::error!("reload refused");
            tracing::warn!("store unreachable");
            tracing::info!("session end");
            tracing::info!(target: INFORMATION, "logged in");
            tracing::debug!("directory search");
            tracing::trace!("detail");
        });
        let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let severities: Vec<u8> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(severities, [1, 2, 3, 4, 5, 6, 7, 7]);
        for (severity, levels) in &seen {
            let expected: Vec<u8> = (*severity..=7).collect();
            assert_eq!(levels, &expected, "severity {severity}");
        }
        assert_eq!([1, 2, 3, 4, 5, 6, 7].map(name), ["alert", "crit", "err", "warning", "notice", "info", "debug"]);
    }

    #[test]
    fn spans_pass_every_level() {
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let span = tracing::info_span!("imap");
            let meta = span.metadata().expect("a span of an installed subscriber has metadata");
            assert!(enabled(meta, 1) && enabled(meta, 4));
        });
    }
}
