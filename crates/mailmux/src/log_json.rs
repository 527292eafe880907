//! `LogFormat json`: one JSON object per line, for log collectors.
//!
//! ```text
//! {"timestamp":"2026-12-03T10:29:43.123456Z","level":"notice","severity":5,"service":"imap","sid":7,
//!  "client":"192.0.2.7:50312","local":"198.51.100.1:143","message":"session end",
//!  "fields":{"user":"joe","store":"127.0.0.2:143","tls":false,"bytes_in":912,…}}
//! ```
//!
//! (one line in the file). `level` is the syslog keyword of the line's severity
//! ([`crate::log_severity`]) and `severity` its number, the scale of `LogLevel`. A line
//! written within a session carries the session's `service` (`imap`, `pop3`), `sid` (the
//! session id, the `id=` of text lines), `client`, `local` and, when a vdmap entry serves it,
//! `vdmap`; process lines have none of these. `fields` holds the line's own fields: numbers
//! and booleans as JSON numbers and booleans, everything else as strings.
//!
//! Every string is JSON-escaped (quotes, backslashes, every control character, and the
//! Unicode characters [`crate::log_safe`] will not let reach a text line, as `\uXXXX`), and
//! cut at [`crate::log_safe::MAX_LOGGED_CHARS`]: a peer's value can neither end the line nor
//! the object, and a parser reads back exactly what the peer sent.
//!
//! The session fields come from the span by [`SessionRecorder`], a layer that keeps them,
//! typed, in the span's extensions; the formatter reads them from there.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::log_safe::{MAX_LOGGED_CHARS, needs_escape};
use crate::log_severity;

/// What a session's span says about it, kept typed for JSON lines.
#[derive(Debug, Clone, Default)]
struct SessionFields {
    service: &'static str,
    sid: Option<u64>,
    client: Option<String>,
    local: Option<String>,
    vdmap: Option<String>,
}

impl Visit for SessionFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "id" {
            self.sid = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let slot = match field.name() {
            "client" => &mut self.client,
            "local" => &mut self.local,
            "vdmap" => &mut self.vdmap,
            _ => return,
        };
        *slot = Some(format!("{value:?}"));
    }
}

/// Keeps the fields of session spans (`imap`, `pop3`) for [`JsonLines`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionRecorder;

fn session_service(name: &str) -> Option<&'static str> {
    [mailmux_config::Protocol::Imap, mailmux_config::Protocol::Pop3]
        .into_iter()
        .map(crate::logging::session_span_name)
        .find(|service| *service == name)
}

impl<S> tracing_subscriber::Layer<S> for SessionRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let Some(service) = session_service(attrs.metadata().name()) else { return };
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SessionFields { service, ..SessionFields::default() };
        attrs.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(fields) = span.extensions_mut().get_mut::<SessionFields>() {
            values.record(fields);
        }
    }
}

/// The JSON-lines event format.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let severity = log_severity::of(event.metadata());
        let mut timestamp = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":");
        json_string(&mut line, &timestamp);
        write!(line, ",\"level\":\"{}\",\"severity\":{severity}", log_severity::name(severity))?;
        let session = ctx
            .event_scope()
            .and_then(|scope| scope.from_root().find_map(|span| span.extensions().get::<SessionFields>().cloned()));
        if let Some(session) = session {
            line.push_str(",\"service\":");
            json_string(&mut line, session.service);
            if let Some(sid) = session.sid {
                write!(line, ",\"sid\":{sid}")?;
            }
            for (name, value) in [("client", &session.client), ("local", &session.local), ("vdmap", &session.vdmap)] {
                if let Some(value) = value {
                    write!(line, ",\"{name}\":")?;
                    json_string(&mut line, value);
                }
            }
        }
        let mut fields = FieldsVisitor::default();
        event.record(&mut fields);
        line.push_str(",\"message\":");
        json_string(&mut line, fields.message.as_deref().unwrap_or(""));
        line.push_str(",\"fields\":{");
        line.push_str(&fields.object);
        line.push_str("}}");
        writeln!(writer, "{line}")
    }
}

/// An event's fields: the message apart, the rest as the members of a JSON object.
#[derive(Debug, Default)]
struct FieldsVisitor {
    message: Option<String>,
    object: String,
}

impl FieldsVisitor {
    fn key(&mut self, field: &Field) {
        if !self.object.is_empty() {
            self.object.push(',');
        }
        json_string(&mut self.object, field.name());
        self.object.push(':');
    }
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
            return;
        }
        self.key(field);
        json_string(&mut self.object, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.object, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.object, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.object, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.key(field);
            let _ = write!(self.object, "{value}");
        } else {
            self.record_str(field, &value.to_string());
        }
    }
}

/// Appends `value` as a JSON string: quoted, escaped (RFC 8259 §7, and the characters that
/// hide or reorder text as `\u` escapes too), cut at [`MAX_LOGGED_CHARS`] characters.
pub fn json_string(out: &mut String, value: &str) {
    out.push('"');
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_LOGGED_CHARS) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    let rest = chars.count();
    if rest > 0 {
        let _ = write!(out, "…({rest} more characters)");
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_session_line_names_its_session_and_types_its_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(SessionRecorder)
            .with(tracing_subscriber::fmt::layer().event_format(JsonLines).with_writer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let client: std::net::SocketAddr = "192.0.2.7:50312".parse().expect("address");
            let span = tracing::info_span!("pop3", id = 42u64, client = %client, local = "198.51.100.1:110", vdmap = tracing::field::Empty);
            span.record("vdmap", "siroe");
            span.in_scope(|| tracing::info!(user = "jo\"e\n", tls = true, bytes_in = 7u64, "session end"));
            tracing::warn!("outside any session");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
            .expect("UTF-8");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let session = &lines[0];
        assert_eq!(session["service"], "pop3");
        assert_eq!(session["sid"], 42);
        assert_eq!(session["client"], "192.0.2.7:50312");
        assert_eq!(session["local"], "198.51.100.1:110");
        assert_eq!(session["vdmap"], "siroe", "recorded after the span was made");
        assert_eq!((session["level"].clone(), session["severity"].clone()), ("notice".into(), 5.into()));
        assert_eq!(session["message"], "session end");
        assert_eq!(session["fields"]["user"], "jo\"e\n", "read back exactly");
        assert_eq!(session["fields"]["tls"], true);
        assert_eq!(session["fields"]["bytes_in"], 7);
        let process = &lines[1];
        assert!(process.get("sid").is_none() && process.get("client").is_none(), "{text}");
        assert_eq!(process["level"], "warning");
    }

    #[test]
    fn strings_cannot_end_the_line_or_the_object() {
        let mut out = String::new();
        json_string(&mut out, "joe\"}\r\n{\"forged\":1}\\\0\u{1b}\u{202e}\u{e0041}é");
        assert_eq!(out, r#""joe\"}\r\n{\"forged\":1}\\\u0000\u001b\u202e\udb40\udc41é""#);
        assert!(!out.contains('\n'));
        let mut long = String::new();
        json_string(&mut long, &"a".repeat(MAX_LOGGED_CHARS + 5));
        assert!(long.ends_with("…(5 more characters)\""), "{long}");
    }
}
