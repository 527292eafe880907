//! The results: every figure of every repetition, their medians, the table (values, ratio to
//! the stores, and mailmux's ratio to each peer), in Markdown for the terminal and for
//! `docs/PERFORMANCE.md`.

use std::collections::HashMap;

/// Whether more is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Rates.
    Higher,
    /// Costs.
    Lower,
}

/// How a row reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rate the stores have too: each proxy's ratio to the stores is shown.
    Rate,
    /// A cost of the proxy alone (CPU, memory): the stores have none.
    Cost,
    /// The NOOP round trip: the stores' p50/p99 are the base, proxies show what they add.
    Noop,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The metric (for [`Kind::Noop`], `noop`: the metrics `noop_p50` and `noop_p99`).
    pub metric: &'static str,
    /// The figure, as the table names it.
    pub label: String,
    /// Short name, for the chart.
    pub short: String,
    /// Unit, for the chart.
    pub unit: &'static str,
    /// Whether more is better.
    pub better: Better,
    /// How it reads.
    pub kind: Kind,
    /// Decimals shown.
    pub decimals: usize,
}

/// The settings the labels quote.
pub struct Labels {
    /// Login clients.
    pub clients: usize,
    /// Relay message size, MiB.
    pub message_mib: usize,
    /// Relay connections.
    pub relay_connections: usize,
    /// Idle sessions of the memory figure.
    pub sessions: usize,
}

/// The rows, in the table's order.
pub fn rows(l: &Labels) -> Vec<Row> {
    let row = |metric, label: String, short: &str, unit, better, kind, decimals| Row {
        metric,
        label,
        short: short.to_owned(),
        unit,
        better,
        kind,
        decimals,
    };
    use Better::{Higher, Lower};
    use Kind::{Cost, Noop, Rate};
    vec![
        row(
            "imap_logins",
            format!("IMAP logins/s, {} clients (LOGIN, SELECT, LOGOUT)", l.clients),
            "IMAP logins/s",
            "/s",
            Higher,
            Rate,
            0,
        ),
        row(
            "imap_login_cpu",
            "proxy CPU per IMAP login, ms (its directory client included)".into(),
            "proxy CPU per IMAP login",
            "ms",
            Lower,
            Cost,
            3,
        ),
        row(
            "pop3_logins",
            format!("POP3 logins/s, {} clients (USER, PASS, QUIT)", l.clients),
            "POP3 logins/s",
            "/s",
            Higher,
            Rate,
            0,
        ),
        row("pop3_login_cpu", "proxy CPU per POP3 login, ms".into(), "proxy CPU per POP3 login", "ms", Lower, Cost, 3),
        row(
            "relay_1",
            format!("relay MiB/s, FETCH of {} MiB, 1 connection", l.message_mib),
            "relay MiB/s, 1 connection",
            "MiB/s",
            Higher,
            Rate,
            0,
        ),
        row(
            "relay_n",
            format!("relay MiB/s, FETCH of {} MiB, {} connections", l.message_mib, l.relay_connections),
            &format!("relay MiB/s, {} connections", l.relay_connections),
            "MiB/s",
            Higher,
            Rate,
            0,
        ),
        row(
            "noop",
            "NOOP round trip, p50 / p99 µs (proxies: added to the stores')".into(),
            "NOOP round trip",
            "µs",
            Lower,
            Noop,
            0,
        ),
        row(
            "idle_memory",
            format!(
                "memory per idle logged-in session, KiB ({} sessions, fresh process, PSS)",
                number(l.sessions as f64, 0)
            ),
            "KiB per idle session",
            "KiB",
            Lower,
            Cost,
            1,
        ),
        row(
            "tls_logins",
            format!("implicit-TLS IMAP logins/s, {} clients (handshake, LOGIN, SELECT, LOGOUT)", l.clients),
            "TLS IMAP logins/s",
            "/s",
            Higher,
            Rate,
            0,
        ),
        row(
            "tls_login_cpu",
            "proxy CPU per TLS IMAP login, ms".into(),
            "proxy CPU per TLS login",
            "ms",
            Lower,
            Cost,
            3,
        ),
        row(
            "tls_handshakes",
            format!("TLS handshakes/s, {} clients (full TLS 1.3 handshake, greeting)", l.clients),
            "TLS handshakes/s",
            "/s",
            Higher,
            Rate,
            0,
        ),
        row(
            "handshake_cpu",
            "proxy CPU per TLS handshake, ms".into(),
            "proxy CPU per TLS handshake",
            "ms",
            Lower,
            Cost,
            3,
        ),
        row(
            "relay_tls",
            format!("relay MiB/s over TLS, FETCH of {} MiB, 1 connection", l.message_mib),
            "relay MiB/s over TLS",
            "MiB/s",
            Higher,
            Rate,
            0,
        ),
    ]
}

/// A column of the table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Target key.
    pub key: &'static str,
    /// Heading.
    pub name: &'static str,
    /// A peer (mailmux is compared to each).
    pub peer: bool,
}

/// Everything measured in a run.
#[derive(Default)]
pub struct Results {
    /// (metric, target key) → one value per repetition.
    values: HashMap<(&'static str, &'static str), Vec<f64>>,
    /// (workload key, target key) → failed connections, over all repetitions.
    pub errors: Vec<(String, &'static str, usize, String)>,
}

impl Results {
    /// Records one figure.
    pub fn add(&mut self, metric: &'static str, target: &'static str, value: f64) {
        self.values.entry((metric, target)).or_default().push(value);
    }

    /// The median of a figure's repetitions.
    pub fn median(&self, metric: &str, target: &str) -> Option<f64> {
        let (_, v) = self.values.iter().find(|((m, t), _)| *m == metric && *t == target)?;
        median(v)
    }

    /// All values of a figure, in the order measured.
    pub fn all(&self, metric: &str, target: &str) -> Vec<f64> {
        self.values.iter().find(|((m, t), _)| *m == metric && *t == target).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// The median (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// `1234567.8` with `decimals` → `1,234,568`.
pub fn number(x: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if x < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0') { format!("-{out}") } else { out }
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 { "—".into() } else { format!("{:.2}×", a / b) }
}

/// The NOOP figures of `target` added to the stores': (p50, p99).
pub fn noop_added(results: &Results, target: &str) -> Option<(f64, f64)> {
    let (p50, p99) = (results.median("noop_p50", target)?, results.median("noop_p99", target)?);
    let (b50, b99) = (results.median("noop_p50", "direct")?, results.median("noop_p99", "direct")?);
    Some((p50 - b50, p99 - b99))
}

fn signed(x: f64) -> String {
    if x >= 0.0 { format!("+{}", number(x, 0)) } else { number(x, 0) }
}

fn cell(results: &Results, row: &Row, target: &str) -> String {
    match row.kind {
        Kind::Noop if target == "direct" => {
            match (results.median("noop_p50", target), results.median("noop_p99", target)) {
                (Some(a), Some(b)) => format!("{} / {} (base)", number(a, 0), number(b, 0)),
                _ => "—".into(),
            }
        }
        Kind::Noop => {
            noop_added(results, target).map_or("—".into(), |(a, b)| format!("{} / {}", signed(a), signed(b)))
        }
        Kind::Cost => results.median(row.metric, target).map_or("—".into(), |v| number(v, row.decimals)),
        Kind::Rate => match (results.median(row.metric, target), results.median(row.metric, "direct")) {
            (Some(v), Some(base)) if target != "direct" => format!("{} ({})", number(v, row.decimals), ratio(v, base)),
            (Some(v), _) => number(v, row.decimals),
            (None, _) => "—".into(),
        },
    }
}

fn peer_ratio(results: &Results, row: &Row, peer: &str) -> String {
    match row.kind {
        Kind::Noop => match (noop_added(results, "mailmux"), noop_added(results, peer)) {
            (Some((m50, m99)), Some((p50, p99))) => {
                let r = |a: f64, b: f64| if b > 0.0 && a >= 0.0 { format!("{:.2}", a / b) } else { "—".into() };
                format!("{} / {}", r(m50, p50), r(m99, p99))
            }
            _ => "—".into(),
        },
        _ => match (results.median(row.metric, "mailmux"), results.median(row.metric, peer)) {
            (Some(m), Some(p)) => ratio(m, p),
            _ => "—".into(),
        },
    }
}

/// The table in Markdown: a column per target, then mailmux's ratio to each peer.
pub fn table(results: &Results, rows: &[Row], columns: &[Column]) -> String {
    let peers: Vec<&Column> = columns.iter().filter(|c| c.peer).collect();
    let mut out = String::from("| figure |");
    for c in columns {
        out.push_str(&format!(" {} |", c.name));
    }
    for p in &peers {
        out.push_str(&format!(" mailmux ÷ {} |", p.name));
    }
    out.push_str("\n|---|");
    for _ in 0..columns.len() + peers.len() {
        out.push_str("---|");
    }
    out.push('\n');
    for row in rows {
        let measured = columns.iter().any(|c| cell(results, row, c.key) != "—");
        if !measured {
            continue;
        }
        out.push_str(&format!("| {} |", row.label));
        for c in columns {
            out.push_str(&format!(" {} |", cell(results, row, c.key)));
        }
        for p in &peers {
            out.push_str(&format!(" {} |", peer_ratio(results, row, p.key)));
        }
        out.push('\n');
    }
    out
}

/// Every repetition's value, for the record: `metric target: v1, v2, v3`.
pub fn raw(results: &Results, rows: &[Row], columns: &[Column]) -> String {
    let mut out = String::new();
    for row in rows {
        let metrics: &[&str] = if row.kind == Kind::Noop { &["noop_p50", "noop_p99"] } else { &[row.metric] };
        for metric in metrics {
            for c in columns {
                let all = results.all(metric, c.key);
                if !all.is_empty() {
                    let shown: Vec<String> = all.iter().map(|v| number(*v, row.decimals.max(1))).collect();
                    out.push_str(&format!("{metric:<16} {:<22} {}\n", c.name, shown.join(", ")));
                }
            }
        }
    }
    out
}
