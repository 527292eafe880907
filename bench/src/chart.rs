//! The charts of `docs/PERFORMANCE.md`, as one hand-written SVG: a small horizontal bar chart
//! per figure, two to a line, one bar per target in the same colour everywhere, the stores in
//! grey, mailmux in blue; each panel says whether longer is better.

use crate::report::{Better, Column, Kind, Results, Row, noop_added, number};

const PANEL_W: f64 = 480.0;
const LABEL_W: f64 = 150.0;
const BAR_MAX: f64 = 240.0;
const BAR_H: f64 = 16.0;
const GAP: f64 = 4.0;
const HEAD: f64 = 26.0;
const FOOT: f64 = 14.0;

fn colour(key: &str) -> &'static str {
    match key {
        "direct" => "#9e9e9e",
        "nginx" => "#2e7d32",
        "dovecot" => "#ef6c00",
        "mailmux" => "#1565c0",
        "mailmux-warm" => "#42a5f5",
        _ => "#90caf9",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

struct Panel {
    title: String,
    bars: Vec<(&'static str, &'static str, f64, String)>,
}

fn panels(results: &Results, rows: &[Row], columns: &[Column]) -> Vec<Panel> {
    let mut out = Vec::new();
    for row in rows {
        let hint = match row.better {
            Better::Higher => "longer is better",
            Better::Lower => "shorter is better",
        };
        if row.kind == Kind::Noop {
            for (i, q) in ["p50", "p99"].into_iter().enumerate() {
                let base = results.median(&format!("noop_{q}"), "direct");
                let bars = columns
                    .iter()
                    .filter_map(|c| {
                        let (a, b) = noop_added(results, c.key)?;
                        let v = if i == 0 { a } else { b };
                        (c.key != "direct").then(|| (c.key, c.name, v.max(0.0), format!("+{} µs", number(v, 0))))
                    })
                    .collect();
                let base = base.map_or(String::new(), |b| format!(", stores {} µs", number(b, 0)));
                out.push(Panel { title: format!("NOOP round trip added, {q} (µs{base}; {hint})"), bars });
            }
            continue;
        }
        let bars: Vec<_> = columns
            .iter()
            .filter_map(|c| {
                let v = results.median(row.metric, c.key)?;
                Some((c.key, c.name, v, format!("{} {}", number(v, row.decimals), row.unit)))
            })
            .collect();
        if !bars.is_empty() {
            out.push(Panel { title: format!("{} ({hint})", row.short), bars });
        }
    }
    out
}

/// The SVG, or `None` when nothing was measured.
pub fn svg(results: &Results, rows: &[Row], columns: &[Column], caption: &str) -> Option<String> {
    let panels = panels(results, rows, columns);
    if panels.is_empty() {
        return None;
    }
    let height_of = |p: &Panel| HEAD + p.bars.len() as f64 * (BAR_H + GAP) + FOOT;
    let mut body = String::new();
    let mut y = 34.0;
    for pair in panels.chunks(2) {
        let line_h = pair.iter().map(height_of).fold(0.0, f64::max);
        for (col, panel) in pair.iter().enumerate() {
            let x = 10.0 + col as f64 * (PANEL_W + 10.0);
            body.push_str(&format!(
                "<text x=\"{x:.0}\" y=\"{:.0}\" class=\"t\">{}</text>\n",
                y + 14.0,
                escape(&panel.title)
            ));
            let max = panel.bars.iter().map(|b| b.2).fold(0.0, f64::max);
            for (i, (key, name, value, text)) in panel.bars.iter().enumerate() {
                let by = y + HEAD + i as f64 * (BAR_H + GAP);
                let w = if max > 0.0 { (value / max * BAR_MAX).max(1.0) } else { 1.0 };
                body.push_str(&format!(
                    "<text x=\"{:.0}\" y=\"{:.0}\" class=\"l\">{}</text>\
                     <rect x=\"{:.0}\" y=\"{by:.0}\" width=\"{w:.1}\" height=\"{BAR_H:.0}\" fill=\"{}\"/>\
                     <text x=\"{:.0}\" y=\"{:.0}\" class=\"v\">{}</text>\n",
                    x + LABEL_W - 6.0,
                    by + 12.0,
                    escape(name),
                    x + LABEL_W,
                    colour(key),
                    x + LABEL_W + w + 4.0,
                    by + 12.0,
                    escape(text)
                ));
            }
        }
        y += line_h;
    }
    let width = 2.0 * PANEL_W + 30.0;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" viewBox=\"0 0 {width:.0} {:.0}\" font-family=\"sans-serif\">\n\
         <style>.t{{font-size:13px;font-weight:bold}} .l{{font-size:12px;text-anchor:end}} .v{{font-size:11px}} .c{{font-size:12px;fill:#555}}</style>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" class=\"c\">{}</text>\n{body}</svg>\n",
        y + 10.0,
        y + 10.0,
        escape(caption)
    ))
}
