//! `LogDir`, `LogLevel` and `LogFormat` to tracing subscribers, one log per file that sets them.
//!
//! As in the MMP, each file's `LogDir`/`LogLevel` governs its own lines:
//!
//! | set in | file | holds |
//! | --- | --- | --- |
//! | `ImapProxyAService.cfg` | `LogDir/ImapProxy.log` | IMAP sessions |
//! | `PopProxyAService.cfg` | `LogDir/PopProxy.log` | POP3 sessions |
//! | `AService.cfg` | `LogDir/mailmux.log` | start-up, shutdown, and the sessions of services without a `LogDir` of their own |
//!
//! Without any `LogDir` (or with `--log-stderr`) everything goes to standard error. `LogLevel` is
//! the syslog scale, 1 (alerts) to 7 (debug), mapped as [`crate::log_severity`] says; a service
//! without its own level uses `AService.cfg`'s. `LogFormat` chooses text lines or JSON lines
//! ([`crate::log_json`]) per file the same way. Every line of a session carries its span
//! (`imap{id=… client=… local=…}` / `pop3{…}`; `sid`, `client` … in JSON), whatever the level.
//! `RUST_LOG`, when set, narrows every log further, for debugging.
//!
//! Every field of every text line, span fields and messages included, is written through
//! [`crate::log_safe::Escaped`] ([`safe_fields`]), and every string of a JSON line through
//! [`crate::log_json::json_string`]: values that come from peers cannot break a line or forge
//! one, whichever call site logs them.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mailmux_config::{Config, LogFormat, LogLevel, Protocol};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{FilterFn, dynamic_filter_fn, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the background log writers alive; drop them last.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// The log files in use, to be reopened after logrotate moved them (SIGUSR1, and every
/// reload): a file is reopened by its path, so lines go to the new file from then on.
#[derive(Debug, Clone, Default)]
pub struct LogFiles(Vec<LogFile>);

impl LogFiles {
    /// Reopens every file by its path; the first failure is returned (the others are still
    /// reopened).
    pub fn reopen(&self) -> std::io::Result<()> {
        let mut result = Ok(());
        for file in &self.0 {
            if let Err(e) = file.reopen()
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
}

/// A log file that can be reopened under the writer that holds it.
#[derive(Debug, Clone)]
struct LogFile {
    path: std::path::PathBuf,
    file: Arc<Mutex<std::fs::File>>,
}

impl LogFile {
    fn open(path: &Path) -> std::io::Result<LogFile> {
        let file = open_append(path)?;
        Ok(LogFile { path: path.to_path_buf(), file: Arc::new(Mutex::new(file)) })
    }

    fn reopen(&self) -> std::io::Result<()> {
        let fresh = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }
}

impl std::io::Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).flush()
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// The span name of a protocol's sessions (see `listen.rs`).
pub fn session_span_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
    }
}

fn log_file_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Imap => "ImapProxy.log",
        Protocol::Pop3 => "PopProxy.log",
    }
}

/// The field formatter of every log: `name=value` pairs separated by spaces, the message
/// without its name, every value escaped once ([`crate::log_safe::Escaped`]), strings
/// without quotes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeFields;

/// The formatter (a function, so call sites read the same as before it was a type).
pub fn safe_fields() -> SafeFields {
    SafeFields
}

impl<'w> FormatFields<'w> for SafeFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut visitor = SafeVisitor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct SafeVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl SafeVisitor<'_> {
    fn write(&mut self, field: &Field, text: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let text = crate::log_safe::Escaped(text);
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{text}")
        } else {
            write!(self.writer, "{separator}{}={text}", field.name())
        };
    }
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// What a file at `level` writes ([`crate::log_severity`]), minus ldap3's own lines (it
/// logs every connection error itself; our lines say it better).
fn severity_filter(level: LogLevel) -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(move |meta| crate::log_severity::enabled(meta, level.0) && !meta.target().starts_with("ldap3"))
        .with_max_level_hint(crate::log_severity::max_level(level.0))
}

/// Whether the event or span being filtered belongs to a session span called `name`.
fn within<S>(meta: &tracing::Metadata<'_>, cx: &Context<'_, S>, name: &str) -> bool
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    (meta.is_span() && meta.name() == name)
        || cx.lookup_current().is_some_and(|span| span.scope().any(|s| s.name() == name))
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// A formatting layer in `format` writing to `writer`.
fn format_layer<W>(writer: W, format: LogFormat, ansi: bool) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(safe_fields())
        .with_ansi(ansi && format == LogFormat::Text)
        .with_target(false)
        .with_writer(writer);
    match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.event_format(crate::log_json::JsonLines).boxed(),
    }
}

fn file_writer(
    dir: &Path,
    file: &str,
    guards: &mut Vec<LogGuard>,
    files: &mut LogFiles,
) -> std::io::Result<tracing_appender::non_blocking::NonBlocking> {
    std::fs::create_dir_all(dir).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let log = LogFile::open(&dir.join(file))?;
    files.0.push(log.clone());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(log);
    guards.push(guard);
    Ok(writer)
}

/// Installs the global subscriber. `to_stderr` forces standard error (foreground runs).
/// Returns the writers' guards (drop them last) and the files, for reopening.
pub fn init(config: &Config, to_stderr: bool) -> std::io::Result<(Vec<LogGuard>, LogFiles)> {
    let mut guards = Vec::new();
    let mut files = LogFiles::default();
    // The session fields JSON lines need, kept by every session span: only when some file
    // writes JSON (LogFormat is not changed by a reload), so text-only sites do not pay for
    // it on every connection.
    let json = config.log_format == LogFormat::Json
        || config.services.iter().any(|svc| svc.log_format == Some(LogFormat::Json));
    let mut layers: Vec<BoxedLayer> = Vec::new();
    if json {
        layers.push(crate::log_json::SessionRecorder.boxed());
    }

    let mut own_files: Vec<&'static str> = Vec::new();
    let mut main_level = config.log_level;
    for svc in &config.services {
        let level = svc.log_level.unwrap_or(config.log_level);
        let format = svc.log_format.unwrap_or(config.log_format);
        match (&svc.log_dir, to_stderr) {
            (Some(dir), false) => {
                let name = session_span_name(svc.protocol);
                own_files.push(name);
                let writer = file_writer(dir, log_file_name(svc.protocol), &mut guards, &mut files)?;
                let layer = format_layer(writer, format, false)
                    .with_filter(severity_filter(level))
                    .with_filter(dynamic_filter_fn(move |meta, cx| within(meta, cx, name)));
                layers.push(layer.boxed());
            }
            _ => main_level = main_level.max(level),
        }
    }
    let not_elsewhere = dynamic_filter_fn(move |meta, cx| !own_files.iter().any(|name| within(meta, cx, name)));
    let main: BoxedLayer = match (&config.log_dir, to_stderr) {
        (Some(dir), false) => {
            let writer = file_writer(dir, "mailmux.log", &mut guards, &mut files)?;
            format_layer(writer, config.log_format, false)
                .with_filter(severity_filter(main_level))
                .with_filter(not_elsewhere)
                .boxed()
        }
        // Colour only for a person at a terminal: a pipe or a journal gets plain text.
        _ => format_layer(std::io::stderr, config.log_format, std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(severity_filter(main_level))
            .with_filter(not_elsewhere)
            .boxed(),
    };
    layers.push(main);
    let debug_override = std::env::var_os("RUST_LOG").is_some().then(EnvFilter::from_default_env);
    tracing_subscriber::registry().with(layers).with(debug_override).try_init().map_err(std::io::Error::other)?;
    Ok((guards, files))
}
